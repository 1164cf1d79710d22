"""References that are not spec files (curated:, docker://, catalog NAME:VERSION) resolve in envbuild.references;
the model's `from_file` reads only files and says where references go. Pure logic on a real SQLite catalog."""

from __future__ import annotations

import pytest

from envbuild import catalog, references
from envbuild.curated import load_curated
from envbuild.errors import CatalogError, SpecError
from envbuild.spec import Environment
from tests.conftest import write


@pytest.mark.parametrize("ref", ["curated:python-minimal", "docker://python:3.11"])
def test_from_file_refuses_a_reference_and_names_where_it_resolves(ref):
    with pytest.raises(SpecError, match="is a reference, not a file") as raised:
        Environment.from_file(ref)
    assert "envbuild.references" in raised.value.fix


def test_every_kind_of_reference_resolves_to_its_environment(home, tmp_path):
    spec = write(tmp_path / "environment.yml", "channels: [conda-forge]\ndependencies: [python=3.11, six]\n")
    registered = Environment.from_file(spec, name="web")
    assert catalog.register(registered) == "1"

    by_file, no_entry = references.resolve(str(spec))
    assert by_file == Environment.from_file(spec) and no_entry is None
    by_name, entry = references.resolve("web:1")
    assert entry is not None and entry.ref == "web:1" and by_name.key == registered.key
    assert references.resolve("web@latest")[1].ref == "web:1"
    curated_env, no_entry = references.resolve("curated:python-minimal@latest")
    assert curated_env == load_curated("curated:python-minimal") and no_entry is None
    image, _ = references.resolve("docker://python:3.11")
    assert image.docker.base_image == "python:3.11" and image.python.user_managed_dependencies


def test_load_names_files_and_images_but_a_curated_environment_keeps_its_name(tmp_path):
    spec = write(tmp_path / "requirements.txt", "six==1.16.0\n")
    assert references.load(spec, name="mine").name == "mine"
    assert references.load("docker://python:3.11", name="py").name == "py"
    assert references.load("curated:python-minimal", name="other").name == "python-minimal"


def test_an_unknown_reference_says_what_it_could_have_been(home):
    with pytest.raises(CatalogError, match="neither a spec file nor an environment reference"):
        references.resolve("no such/thing")
    with pytest.raises(CatalogError, match="is not a spec file"):
        references.resolve("nosuchenv:2")
