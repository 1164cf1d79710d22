"""A catalog version keeps its private wheels: registered on one machine, the version builds on another whose
wheel store never saw the wheel (its bytes travel with the version, as its other files do)."""

from __future__ import annotations

import hashlib

from envbuild.catalog import Catalog
from envbuild.spec import Environment
from tests.support.private_index import make_wheel


def test_a_version_brings_its_private_wheel_to_another_home(tmp_path, monkeypatch):
    catalog_url = f"sqlite:///{tmp_path / 'team-catalog.sqlite'}"
    wheel = make_wheel(tmp_path / "dist", "privpkg", "1.0")
    sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()

    machine_a = tmp_path / "home-a"
    monkeypatch.setenv("ENVBUILD_HOME", str(machine_a))
    env = Environment("private")
    env.python.conda_dependencies.add_private_pip_wheel(wheel)
    with Catalog(machine_a, catalog_url) as catalog:
        version = catalog.register(env)

    machine_b = tmp_path / "home-b"
    monkeypatch.setenv("ENVBUILD_HOME", str(machine_b))
    with Catalog(machine_b, catalog_url) as catalog:
        again = catalog.get("private", version)
    stored = machine_b / "wheels" / sha256 / wheel.name
    assert stored.read_bytes() == wheel.read_bytes()
    assert again.python.conda_dependencies.pip_packages == [f"privpkg @ {stored.as_uri()}"]
    assert again.key == env.key  # keyed by the wheel's content, not by where a machine stores it
    assert not (machine_b / "wheels" / sha256 / wheel.name).samefile(machine_a / "wheels" / sha256 / wheel.name)
