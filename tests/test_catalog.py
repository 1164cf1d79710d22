"""The catalog on a real SQLite file and on a real PostgreSQL server (the same tests, `catalog_home`): versions,
immutability, archive, audit, concurrency, self-contained versions; and curated environments.

No engine needed: registering and reading definitions never builds.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from envbuild import catalog, curated, references
from envbuild.catalog import Catalog
from envbuild.errors import CatalogError, SpecError
from envbuild.spec import Environment
from tests.conftest import write
from tests.support.cli import cli


def shared_url(home) -> str:
    """The URL of the catalog under test, for a second home (machine) to reach the same one."""
    return os.environ.get("ENVBUILD_CATALOG") or f"sqlite:///{home / catalog.CATALOG_FILE}"


def pip_env(name: str, *requirements: str, **variables: str) -> Environment:
    env = Environment(name=name)
    for requirement in requirements:
        env.python.conda_dependencies.add_pip_package(requirement)
    env.environment_variables.update(variables)
    return env


def rich_env() -> Environment:
    """Every section filled in: what a catalog round trip must keep."""
    env = Environment(name="rich", description="all sections", tags={"team": "vision", "stage": "dev"})
    deps = env.python.conda_dependencies
    for channel in ("conda-forge", "defaults"):
        deps.add_channel(channel)
    deps.add_conda_package("python=3.11")
    deps.add_conda_package("numpy>=1.24,<2")
    deps.add_pip_package("six>=1.16")
    deps.pip_options.append("--extra-index-url https://example.invalid/simple")
    env.python.interpreter_path = "/opt/env/bin/python"
    env.environment_variables.update({"OMP_NUM_THREADS": "4", "EMPTY": ""})
    env.docker.base_image = "envbuild/python:3.11-bookworm"
    env.docker.gpu = True
    env.docker.cuda = "12.1"
    return env


def test_unchanged_definition_keeps_its_version_and_a_changed_one_gets_the_next(catalog_home, tmp_path):
    first = write(tmp_path / "a" / "requirements.txt", "six>=1.16,<2\nidna\n")
    # Reordered, recased, respelled, commented: the same environment, so the same version.
    same = write(tmp_path / "b" / "requirements.txt", "# same thing\nIDNA\nSix <2, >=1.16\n")
    changed = write(tmp_path / "c" / "requirements.txt", "six>=1.16,<2\nidna\npackaging\n")

    assert catalog.register(Environment.from_file(first, name="web")) == "1"
    assert catalog.register(Environment.from_file(same, name="web")) == "1"
    assert catalog.register(Environment.from_file(changed, name="web")) == "2"
    # Back to the first definition: a new version (the latest is what changed), not a rewrite of history.
    assert catalog.register(Environment.from_file(first, name="web")) == "3"
    assert [e.version for e in catalog.list("web")] == ["3", "2", "1"]
    assert catalog.get("web", 1).key == catalog.get("web", 3).key != catalog.get("web", 2).key


def test_metadata_alone_is_not_a_new_version_but_is_set_on_the_existing_one(catalog_home):
    env = pip_env("meta", "six")
    env.tags = {"team": "ml"}
    assert catalog.register(env) == "1"
    env.description, env.tags = "now described", {"k": "v"}
    assert catalog.register(env) == "1"
    got = catalog.get("meta")
    assert (got.version, got.description, got.tags) == ("1", "now described", {"team": "ml", "k": "v"})
    env.description, env.tags = None, {}  # given nothing: what the version has stays
    assert catalog.register(env) == "1"
    assert (catalog.get("meta").description, catalog.get("meta").tags) == ("now described", {"team": "ml", "k": "v"})
    with Catalog() as cat:
        assert [e["action"] for e in cat.history("meta")[1]] == ["register", "update"]


def test_get_returns_an_environment_equal_to_the_registered_one(catalog_home):
    env = rich_env()
    version = catalog.register(env)
    expected = env.copy()
    expected.version = version
    for ref in (version, int(version), "latest", None):
        got = catalog.get("rich", ref)
        assert got == expected
        assert got.key == env.key
    assert catalog.from_dict(json.loads(json.dumps(catalog.to_dict(env)))) == env


def test_explicit_versions_are_immutable(catalog_home):
    env = pip_env("pinned", "six")
    env.version = "5"
    assert catalog.register(env) == "5"
    assert catalog.register(env) == "5"
    changed = pip_env("pinned", "six", "idna")
    changed.version = "5"
    with pytest.raises(CatalogError, match="already exists with a different definition"):
        catalog.register(changed)
    changed.version = None
    assert catalog.register(changed) == "6"


def test_update_changes_only_description_and_tags(catalog_home):
    catalog.register(pip_env("upd", "six"))
    key = catalog.get("upd", 1).key
    entry = catalog.update("upd", 1, description="This is an updated description.", tags={"owner": "ml"})
    assert (entry.description, entry.tags) == ("This is an updated description.", {"owner": "ml"})
    got = catalog.get("upd", 1)
    assert (got.description, got.tags, got.key) == ("This is an updated description.", {"owner": "ml"}, key)

    for field, value in (("environment_variables", {"A": "1"}), ("python", None), ("name", "other"),
                         ("version", "2"), ("docker", None)):
        with pytest.raises(CatalogError, match="only description and tags are mutable") as raised:
            catalog.update("upd", 1, **{field: value})
        assert "new version" in raised.value.fix
    assert catalog.get("upd", 1) == got


def test_delete_archives_hidden_from_list_but_exact_version_still_resolves(catalog_home):
    catalog.register(pip_env("arch", "six"))
    catalog.register(pip_env("arch", "six", "idna"))
    catalog.delete("arch", 2)
    assert [e.version for e in catalog.list("arch")] == ["1"]
    assert [(e.name, e.version) for e in catalog.list()] == [("arch", "1")]
    assert catalog.get("arch").version == "1"  # latest skips the archived version
    assert catalog.get("arch", 2).python.conda_dependencies.pip_packages == ["six", "idna"]
    assert [e.version for e in catalog.list("arch", include_archived=True)] == ["2", "1"]
    catalog.delete("arch", 1)
    assert catalog.list() == []
    with pytest.raises(CatalogError, match="no environment named 'arch'"):
        catalog.get("arch")
    with Catalog() as cat:
        cat.restore("arch", 2)
    assert catalog.get("arch").version == "2"


def test_history_records_who_when_key_and_every_action(catalog_home, monkeypatch):
    monkeypatch.setenv("ENVBUILD_USER", "alice")
    catalog.register(pip_env("audit", "six"))
    monkeypatch.setenv("ENVBUILD_USER", "bob")
    catalog.register(pip_env("audit", "six", "idna"))
    catalog.update("audit", 1, description="old")
    catalog.delete("audit", 1)
    with Catalog() as cat:
        entries, events = cat.history("audit")
    assert [(e.version, e.created_by, e.archived) for e in entries] == [("1", "alice", True), ("2", "bob", False)]
    assert entries[0].key == pip_env("x", "six").key and entries[0].created_at <= entries[1].created_at
    assert [(e["version"], e["action"], e["by"]) for e in events] == [
        ("1", "register", "alice"), ("2", "register", "bob"), ("1", "update", "bob"), ("1", "archive", "bob")]


def test_a_file_that_is_not_a_catalog_is_a_catalog_error(home):
    write(home / catalog.CATALOG_FILE, "not a database\n" * 100)
    with pytest.raises(CatalogError, match="is not a usable catalog"):
        catalog.list()
    broken = cli("env", "list", check=False)
    assert broken.returncode == CatalogError.exit_code and "Traceback" not in broken.stderr


def test_unknown_names_versions_and_bad_references_are_catalog_errors(catalog_home):
    catalog.register(pip_env("known", "six"))
    with pytest.raises(CatalogError, match="no version 7 of environment 'known'"):
        catalog.get("known", 7)
    with pytest.raises(CatalogError, match="no version seven of environment 'known'"):
        catalog.get("known", "seven")
    for bad in ("0", "1 0", "-1", "1:2"):
        with pytest.raises(CatalogError, match="invalid version"):
            catalog.get("known", bad)
    with pytest.raises(CatalogError, match="invalid environment name"):
        catalog.register(pip_env("has space", "six"))
    assert catalog.parse_ref("known:3") == ("known", "3")
    assert catalog.parse_ref("known:1.0.3") == ("known", "1.0.3")
    assert catalog.parse_ref("known@latest") == ("known", None)
    assert catalog.parse_ref("known") == ("known", None)
    assert catalog.parse_ref("azureml:known:3") == ("known", "3")
    assert catalog.parse_ref("azureml:known@latest") == ("known", None)


_REGISTER_MANY = textwrap.dedent("""\
    import json, sys
    from envbuild import catalog
    from envbuild.spec import Environment
    worker, count = int(sys.argv[1]), int(sys.argv[2])
    sys.stdin.readline()  # start together
    out = []
    for i in range(count):
        env = Environment(name="shared")
        env.python.conda_dependencies.add_pip_package(f"pkg-{worker}-{i}")
        out.append([f"pkg-{worker}-{i}", catalog.register(env)])
        same = Environment(name="same")
        same.python.conda_dependencies.add_pip_package("six")
        out.append(["six", catalog.register(same)])
    print(json.dumps(out))
""")


def test_concurrent_registration_from_processes_gives_consecutive_distinct_versions(catalog_home, tmp_path):
    script = write(tmp_path / "register_many.py", _REGISTER_MANY)
    workers, count = 4, 8
    procs = [subprocess.Popen([sys.executable, str(script), str(w), str(count)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in range(workers)]
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, errors = proc.communicate(timeout=120)
        assert proc.returncode == 0, errors
        results += json.loads(out)
    shared = {package: version for package, version in results if package != "six"}
    assert sorted(int(v) for v in shared.values()) == list(range(1, workers * count + 1))
    for package, version in shared.items():
        assert catalog.get("shared", version).python.conda_dependencies.pip_packages == [package]
    # The same definition registered by every process at once: one version, returned to all.
    assert {version for package, version in results if package == "six"} == {"1"}
    assert [e.version for e in catalog.list("same")] == ["1"]


def test_cli_mirrors_az_ml_environment(catalog_home, tmp_path):
    spec = write(tmp_path / "environment.yml", """\
name: docker-image-example
dependencies:
  - pip:
    - six>=1.16
variables:
  GREETING: hello
""")
    created = json.loads(cli("env", "create", "--file", str(spec), "--name", "docker-image-example",
                             "--description", "first", "--tag", "team=ml", "--json").stdout)
    assert (created["name"], created["version"], created["tags"]) == ("docker-image-example", "1", {"team": "ml"})
    assert cli("env", "create", "--file", str(spec), "--name", "docker-image-example").stdout.startswith(
        "docker-image-example:1 ")

    listed = json.loads(cli("env", "list", "--json").stdout)
    assert [(e["name"], e["version"]) for e in listed] == [("docker-image-example", "1")]
    shown = json.loads(cli("env", "show", "--name", "docker-image-example", "--version", "1", "--json").stdout)
    assert shown["definition"]["environment_variables"] == {"GREETING": "hello"}
    assert shown["key"] == created["key"]

    updated = json.loads(cli("env", "update", "--name", "docker-image-example", "--version", "1", "--set",
                             "description=This is an updated description.", "--set", "tags.stage=prod",
                             "--json").stdout)
    assert updated["description"] == "This is an updated description."
    assert updated["tags"] == {"team": "ml", "stage": "prod"}
    refused = cli("env", "update", "--name", "docker-image-example", "--version", "1", "--set", "image=other:1",
                  check=False)
    assert refused.returncode == CatalogError.exit_code
    assert "only description and tags are mutable" in refused.stderr and "Traceback" not in refused.stderr

    write(spec, spec.read_text().replace("hello", "bonjour"))
    assert cli("env", "create", "--file", str(spec), "--name", "docker-image-example").stdout.startswith(
        "docker-image-example:2 ")
    diff = json.loads(cli("diff", "docker-image-example:1", "docker-image-example:2", "--json").stdout)
    assert not diff["same_key"]
    assert diff["changes"] == [{"field": "variables.GREETING", "change": "changed", "a": "hello", "b": "bonjour",
                                "item": None}]
    assert [(d["field"], d["change"], d["a"]) for d in diff["metadata"]] == [
        ("description", "removed", "This is an updated description."), ("tags.stage", "removed", "prod"),
        ("tags.team", "removed", "ml")]
    assert "variables.GREETING: 'hello' → 'bonjour'" in cli("diff", "docker-image-example:1",
                                                           "docker-image-example:2").stdout

    cli("env", "delete", "--name", "docker-image-example", "--version", "2")
    assert [e["version"] for e in json.loads(cli("env", "list", "--name", "docker-image-example",
                                                 "--json").stdout)] == ["1"]
    history = json.loads(cli("history", "docker-image-example", "--json").stdout)
    assert [(v["version"], v["archived"]) for v in history["versions"]] == [("1", False), ("2", True)]
    assert all(v["created_by"] and v["created_at"] and v["key"].startswith("v1:") for v in history["versions"])
    assert "docker-image-example" not in cli("history", "nothing-here", check=False).stdout


# -- curated environments -------------------------------------------------------------------------------------


def test_curated_references_resolve_and_ship_a_dockerfile():
    names = curated.curated_names()
    assert {"python-minimal", "sklearn", "pytorch-cpu", "pytorch-gpu"} <= set(names)
    for name in names:
        latest = curated.load_curated(f"curated:{name}@latest")
        versions = curated.curated_versions(name)
        assert latest == curated.load_curated(f"curated:{name}:{versions[-1]}") == curated.load_curated(
            f"curated:{name}")
        assert (latest.name, latest.version) == (name, str(versions[-1]))
        assert latest.description
        folder = curated.curated_path(f"curated:{name}")
        assert (folder / "Dockerfile").read_text().startswith("#")
    gpu = curated.load_curated("curated:pytorch-gpu@latest")
    assert gpu.docker.gpu and gpu.docker.cuda
    with pytest.raises(CatalogError, match="no curated environment named 'nope'"):
        curated.load_curated("curated:nope:1")
    with pytest.raises(CatalogError, match="has no version 99"):
        curated.load_curated("curated:python-minimal:99")


def test_shipped_dockerfiles_were_rendered_from_the_shipped_definitions_and_locks():
    """Edit a curated definition without re-running envbuild/curated/render_curated.py and this fails."""
    import yaml

    from envbuild.keys import key_of
    from envbuild.resolver import read_lock

    for name in curated.curated_names():
        folder = curated.curated_path(f"curated:{name}")
        header = dict(line[2:].split(" ", 1) for line in (folder / "Dockerfile").read_text().splitlines()[:3]
                      if line.startswith("# lock "))
        if not (folder / "conda-lock.yml").exists():
            assert "NOT locked" in (folder / "Dockerfile").read_text()  # written by hand, and says why
            continue
        # The Dockerfile was rendered from this lock, and the lock was solved for this definition.
        assert header == {"lock": read_lock(folder / "conda-lock.yml").key}, name
        solved_for = yaml.safe_load((folder / "conda-lock.yml").read_text())["metadata"]["content_hash"]
        spec_key = curated.load_curated(f"curated:{name}").key
        assert solved_for == {p: key_of({"spec": spec_key, "platform": p}) for p in solved_for}, name


def test_curated_environment_registers_and_diffs_like_any_spec(catalog_home):
    assert json.loads(cli("env", "create", "--file", "curated:sklearn@latest", "--json").stdout)["version"] == "1"
    assert catalog.get("sklearn") == curated.load_curated("curated:sklearn@latest")
    assert "same canonical form" in cli("diff", "curated:sklearn@latest", "sklearn:1").stdout
    listed = json.loads(cli("env", "list", "--curated", "--json").stdout)
    assert "curated:python-minimal:1" in {row["ref"] for row in listed}


def test_curated_files_ship_as_package_data(tmp_path):
    """setuptools' build_py (what a wheel is made of) on a copy of the project picks up every curated file."""
    import shutil
    from pathlib import Path

    root = Path(catalog.__file__).resolve().parents[2]
    project = tmp_path / "project"
    shutil.copytree(root / "envbuild", project / "envbuild", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, project / name)
    done = subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py",
                           "--build-lib", str(tmp_path / "lib")], cwd=project, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    shipped = tmp_path / "lib" / "envbuild" / "curated"
    files = [p.relative_to(curated.CURATED) for p in curated.CURATED.rglob("*") if p.is_file()
             and "__pycache__" not in p.parts]
    for name in curated.curated_names():
        for version in curated.curated_versions(name):
            assert {"environment.yaml", "Dockerfile"} <= {f.name for f in files if f.parts[:2] == (name, str(version))}
    for file in files:
        assert (shipped / file).read_bytes() == (curated.CURATED / file).read_bytes()


def test_any_catalog_version_round_trips_through_save_and_load_directory(catalog_home, tmp_path):
    catalog.register(rich_env())
    catalog.register(pip_env("rich", "six"))
    for version in (1, 2):
        stored = catalog.get("rich", version)
        stored.save_to_directory(tmp_path / str(version))
        loaded = Environment.load_from_directory(tmp_path / str(version))
        assert loaded == stored and loaded.key == stored.key
    # Registered back from its directory, the latest version is recognised as unchanged.
    loaded.version = None
    assert catalog.register(loaded) == "2"


def test_builds_are_recorded_once_per_image_with_their_lock(catalog_home):
    from envbuild.api import Image

    catalog.register(pip_env("built", "six"))
    # The image was first built for another definition that locks to the same packages: its label names that one.
    image = Image(image="envbuild/env:v1-abc", id="sha256:abc", key="v1:abc", spec_key="v1:another-environment",
                  lock_key="v1:lock", cached=False, source="built", seconds=1.0)
    first = catalog.record_build("built", 1, image, "version: 1\npackage: []\n")
    assert catalog.record_build("built", 1, image, "ignored: the image is known") == first
    with Catalog() as cat:
        entry = cat.entry("built", 1)
        _, events = cat.history("built")
    assert entry.builds == (first,) and entry.latest_build.lock == "version: 1\npackage: []\n"
    assert (first.image, first.image_id, first.build_key, first.lock_key) == (
        "envbuild/env:v1-abc", "sha256:abc", "v1:abc", "v1:lock")
    assert (first.spec_key, first.image_spec_key) == (entry.key, "v1:another-environment")
    assert [e["action"] for e in events] == ["register", "build"]
    shown = json.loads(cli("env", "show", "--name", "built", "--version", "1", "--json").stdout)
    assert shown["builds"][0]["image"] == "envbuild/env:v1-abc" and "lock" not in shown["builds"][0]
    assert cli("env", "show", "--name", "built", "--lock").stdout == "version: 1\npackage: []\n"


def test_env_create_takes_name_version_description_and_tags_from_an_azure_ml_file(catalog_home, tmp_path):
    write(tmp_path / "conda.yml", "dependencies:\n  - pip:\n    - six>=1.16\n")
    spec = write(tmp_path / "env.yml", """\
$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json
name: docker-image-plus-conda-example
version: 3
description: Environment created from a Docker image plus Conda environment.
tags:
  owner: ml
image: envbuild/python:3.11-bookworm
conda_file: conda.yml
""")
    created = json.loads(cli("env", "create", "--file", str(spec), "--json").stdout)
    assert (created["name"], created["version"], created["tags"]) == ("docker-image-plus-conda-example", "3",
                                                                        {"owner": "ml"})
    assert created["description"] == "Environment created from a Docker image plus Conda environment."
    assert created["definition"]["docker"]["base_image"] == "envbuild/python:3.11-bookworm"

    write(tmp_path / "conda.yml", "dependencies:\n  - pip:\n    - six>=1.15\n")
    clash = cli("env", "create", "--file", str(spec), check=False)
    assert clash.returncode == CatalogError.exit_code
    assert "docker-image-plus-conda-example:3 already exists with a different definition" in clash.stderr
    assert "docker-image-plus-conda-example:4" in clash.stderr
    assert cli("env", "create", "--file", str(spec), "--version", "4").stdout.startswith(
        "docker-image-plus-conda-example:4 ")


def test_a_version_keeps_its_files_and_builds_them_after_the_originals_change(catalog_home, tmp_path, monkeypatch):
    context = tmp_path / "context"
    write(context / "Dockerfile", "FROM envbuild/python:3.11-bookworm\nCOPY . /app\n")
    write(context / "data.txt", "one\n")
    write(context / "bin" / "tool", "#!/bin/sh\necho tool\n").chmod(0o755)
    (context / "empty").mkdir()
    write(context / ".dockerignore", "*.log\n")
    write(context / "noise.log", "not part of the build\n")
    monkeypatch.chdir(tmp_path)
    env = Environment.from_build_context("ctx", "context")
    key = env.key
    version = catalog.register(env)
    with Catalog() as cat:
        entry = cat.entry("ctx", version)
    assert entry.definition["docker"]["build_context"] == str(context)  # where it was registered from

    write(context / "data.txt", "two\n")
    (context / "bin" / "tool").unlink()
    stored = catalog.get("ctx", version)
    copy = Path(stored.docker.build_context)
    assert copy.parent == catalog_home / "catalog-files" and stored.key == entry.key == key
    assert (copy / "data.txt").read_text() == "one\n" and (copy / "bin" / "tool").stat().st_mode & 0o111
    assert (copy / "empty").is_dir() and not (copy / "noise.log").exists()
    assert catalog.register(Environment.from_build_context("ctx", "context")) == str(int(version) + 1)

    # Another home (another machine) on the same catalog writes its own copy from the catalog's blobs.
    other = catalog.get("ctx", version, home=tmp_path / "other-home", url=shared_url(catalog_home))
    assert other.key == entry.key and Path(other.docker.build_context).parent == tmp_path / "other-home" / \
        "catalog-files"
    # diff compares what each version was registered with, not the files as they are now.
    diff = json.loads(cli("diff", f"ctx:{version}", f"ctx:{int(version) + 1}", "--json").stdout)
    assert (diff["old_key"], diff["same_key"]) == (entry.key, False)
    assert [d["field"] for d in diff["changes"]] == ["docker.build_context"]


def test_a_lock_file_and_a_dockerfile_path_travel_with_the_version(catalog_home, tmp_path):
    original = Path(__file__).parent / "specs" / "lock" / "conda-and-pip" / "conda-lock.yml"
    lock = write(tmp_path / "conda-lock.yml", original.read_text())
    locked = Environment.from_lock_file("locked", lock)
    dockerfile = write(tmp_path / "base.Dockerfile", "FROM envbuild/python:3.11-bookworm\nRUN true\n")
    based = pip_env("based", "six")
    based.docker.base_dockerfile = str(dockerfile)
    keys = {env.name: (env.key, catalog.register(env)) for env in (locked, based)}
    lock.unlink()
    write(dockerfile, "FROM envbuild/python:3.11-bookworm\nRUN false\n")

    stored_lock = catalog.get("locked", keys["locked"][1])
    assert Path(stored_lock.lock_file).read_text() == original.read_text()
    stored_base = catalog.get("based", keys["based"][1])
    assert stored_base.docker.base_dockerfile_text() == "FROM envbuild/python:3.11-bookworm\nRUN true\n"
    assert (stored_lock.key, stored_base.key) == (keys["locked"][0], keys["based"][0])


def test_string_versions_are_kept_and_the_integer_sequence_continues(catalog_home):
    env = pip_env("semver", "six")
    env.version = "1.0.3"
    assert catalog.register(env) == "1.0.3"
    assert catalog.register(pip_env("semver", "six", "idna")) == "1"
    pinned = pip_env("semver", "six", "packaging")
    pinned.version = "007"
    assert catalog.register(pinned) == "7"
    assert catalog.register(pip_env("semver", "idna")) == "8"
    assert [e.version for e in catalog.list("semver")] == ["8", "7", "1", "1.0.3"]  # newest registered first
    assert catalog.get("semver", "1.0.3").python.conda_dependencies.pip_packages == ["six"]
    assert catalog.get("semver").version == "8"
    assert references.resolve("azureml:semver:1.0.3")[1].ref == "semver:1.0.3"
    assert references.resolve("azureml:semver@latest")[1].ref == "semver:8"


def test_the_azure_ml_sdk_class_methods(catalog_home):
    env = pip_env("sdk", "six")
    registered = env.register()
    assert (registered.name, registered.version, registered.key) == ("sdk", "1", env.key)
    assert Environment.get("sdk") == registered == Environment.get("sdk", version="1", label=None)
    assert Environment.register(pip_env("sdk", "six", "idna")).version == "2"  # the unbound spelling too
    assert {name: e.version for name, e in Environment.list().items()} == {"sdk": "2"}
    with pytest.raises(SpecError, match="unknown label 'prod'"):
        Environment.get("sdk", label="prod")


def test_description_and_tags_on_an_unchanged_definition_update_it_from_the_cli(catalog_home, tmp_path):
    spec = write(tmp_path / "requirements.txt", "six\n")
    cli("env", "create", "--file", str(spec), "--name", "web", "--version", "1", "--description", "first")
    again = json.loads(cli("env", "create", "--file", str(spec), "--name", "web", "--version", "1", "--description",
                           "other", "--tag", "team=ml", "--json").stdout)
    assert (again["version"], again["description"], again["tags"]) == ("1", "other", {"team": "ml"})
    history = json.loads(cli("history", "web", "--json").stdout)
    assert [e["action"] for e in history["events"]] == ["register", "update"]


def test_blobs_are_content_addressed_and_shared_through_the_catalog(catalog_home, tmp_path):
    digest = catalog.put_blob(b"wheel bytes")
    assert digest == hashlib.sha256(b"wheel bytes").hexdigest() == catalog.put_blob(b"wheel bytes")
    assert catalog.get_blob(digest, home=tmp_path / "other-home", url=shared_url(catalog_home)) == b"wheel bytes"
    with pytest.raises(CatalogError, match="no blob"):
        catalog.get_blob("0" * 64)
