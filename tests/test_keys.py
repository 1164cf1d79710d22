"""Canonical form and keys: pure logic, no engine."""

from __future__ import annotations

from envbuild.spec import Environment
from tests.conftest import write


def key_of_requirements(tmp_path, text: str, name: str = "r") -> str:
    return Environment.from_pip_requirements(name, write(tmp_path / f"{name}.txt", text)).key


def test_cosmetic_variants_share_a_key(tmp_path):
    base = key_of_requirements(tmp_path, "numpy>=1,<2\nScikit_Learn\n", "a")
    assert key_of_requirements(tmp_path, "scikit-learn\nnumpy<2,>=1\n", "b") == base
    assert key_of_requirements(tmp_path, "# comment\n  NumPy <2 , >=1  \nscikit.learn\nnumpy<2,>=1\n", "c") == base


def test_semantic_changes_change_the_key(tmp_path):
    base = key_of_requirements(tmp_path, "numpy>=1,<2\n", "a")
    assert key_of_requirements(tmp_path, "numpy>=1,<3\n", "b") != base
    assert key_of_requirements(tmp_path, "numpy[extra]>=1,<2\n", "c") != base
    assert key_of_requirements(tmp_path, "numpy>=1,<2; python_version>'3.8'\n", "d") != base


def test_conda_channel_order_matters_but_dependency_order_does_not(tmp_path):
    def key(text: str, name: str) -> str:
        return Environment.from_conda_specification(name, write(tmp_path / f"{name}.yml", text)).key

    a = key("channels: [a, b]\ndependencies:\n  - numpy>=1.20,<2\n  - Python=3.11\n", "a")
    assert key("name: other\nchannels: [a, b]\ndependencies:\n  - python=3.11\n  - numpy <2,>=1.20\n", "b") == a
    assert key("channels: [b, a]\ndependencies:\n  - numpy>=1.20,<2\n  - python=3.11\n", "c") != a


def test_metadata_never_enters_the_key(tmp_path):
    env = Environment.from_pip_requirements("x", write(tmp_path / "r.txt", "six\n"))
    key = env.key
    env.name, env.version, env.description, env.tags = "other", "7", "described", {"team": "a"}
    assert env.key == key
    env.environment_variables["MODE"] = "fast"
    assert env.key != key


def test_keys_are_versioned(tmp_path):
    assert key_of_requirements(tmp_path, "six\n").startswith("v1:")
