"""The walking skeleton, end to end on a real engine: spec file → lock → Dockerfile → image → cache hit."""

from __future__ import annotations

import json

import pytest

import envbuild
from envbuild.cache import Index
from tests.conftest import docker, write
from tests.support.cache_helpers import entries
from tests.support.cli import cli

pytestmark = pytest.mark.engine


def run_in(image: str, *command: str) -> str:
    return docker("run", "--rm", image, *command).stdout.strip()


def test_pip_only_environment_builds_and_runs_the_locked_version(engine, home, tmp_path):
    spec = write(tmp_path / "requirements.txt", "six>=1.16\n")
    result = json.loads(cli("build", str(spec), "--json", "-q").stdout)
    # "engine": the engine already held this very image (an earlier run built it); it was not rebuilt.
    assert result["source"] in ("built", "engine")

    lock = cli("lock", str(spec)).stdout
    locked = [line for line in lock.splitlines() if "six-" in line and "url:" in line]
    assert locked, lock
    version = locked[0].split("six-")[1].split("-")[0]
    assert run_in(result["image"], "python", "-c", "import six; print(six.__version__)") == version
    # The lock travels inside the image, and the labels carry the keys.
    assert "six" in run_in(result["image"], "cat", "/opt/envbuild/conda-lock.yml")
    labels = json.loads(docker("image", "inspect", "--format", "{{json .Config.Labels}}", result["image"]).stdout)
    assert labels["org.envbuild.build-key"] == result["key"]
    assert labels["org.envbuild.lock-key"] == result["lock_key"]
    assert labels["org.envbuild.version"] == envbuild.__version__


def test_conda_environment_from_a_local_channel_runs_its_tool(engine, home, tmp_path, conda_channel):
    spec = write(tmp_path / "environment.yml", f"""\
name: greeter
channels:
  - {conda_channel.as_uri()}
dependencies:
  - hello-tool=1.0
""")
    env = envbuild.Environment.from_conda_specification("greeter", spec)
    image = envbuild.build(env)
    assert image.source in ("built", "engine")
    assert run_in(image.image, "hello-tool") == "hello-tool 1.0 says hello 1.0"


def test_second_build_is_a_cache_hit_and_equivalent_specs_share_it(engine, home, tmp_path):
    spec = write(tmp_path / "a" / "requirements.txt", "six>=1.16,<2\nidna\n")
    first = json.loads(cli("build", str(spec), "--json", "-q").stdout)
    second = json.loads(cli("build", str(spec), "--json", "-q").stdout)
    assert second["cached"] is True and second["id"] == first["id"] and second["image"] == first["image"]
    # Reordered, recased, respelled, specifiers swapped, comments added: the same environment.
    variant = write(tmp_path / "b" / "requirements.txt", "# the same thing\nIDNA\nSix <2, >=1.16\n")
    third = json.loads(cli("build", str(variant), "--json", "-q").stdout)
    assert third["cached"] is True and third["id"] == first["id"]
    # No second image was built: the index holds the one entry, untouched by the hits but for its counters.
    indexed = entries(home)
    assert list(indexed) == [first["key"]] and indexed[first["key"]]["hits"] == 2


def test_different_specs_that_lock_to_the_same_packages_share_one_image(engine, home, tmp_path, conda_channel):
    def spec(name: str, dependency: str):
        path = write(tmp_path / name / "environment.yml",
                     f"channels:\n  - {conda_channel.as_uri()}\ndependencies:\n  - {dependency}\n")
        return envbuild.Environment.from_conda_specification(name, path)

    exact, ranged = spec("exact", "hello-tool=1.0"), spec("ranged", "hello-tool>=1,<2")
    assert exact.key != ranged.key
    first = envbuild.build(exact)
    second = envbuild.build(ranged)
    assert second.lock_key == first.lock_key
    assert (second.key, second.id) == (first.key, first.id) and second.cached is True


def test_image_deleted_behind_the_cache_is_rebuilt_and_the_index_updated(engine, home, tmp_path):
    spec = write(tmp_path / "requirements.txt", "six\n")
    env = envbuild.Environment.from_pip_requirements("six", spec)
    first = envbuild.build(env)
    docker("rmi", "-f", first.image)
    again = envbuild.build(env)
    assert again.cached is False and again.source == "built"
    assert docker("image", "inspect", again.image, check=False).returncode == 0
    index = Index(home)
    try:
        assert index.get(again.key)["id"] == again.id
    finally:
        index.close()
    assert envbuild.build(env).cached is True


def test_unknown_package_fails_clearly_and_leaves_no_entry(engine, home, tmp_path):
    spec = write(tmp_path / "requirements.txt", "six\nthis-package-does-not-exist-envbuild-xyz==1.0\n")
    done = cli("build", str(spec), "--json", "-q", check=False)
    assert done.returncode != 0
    assert "this-package-does-not-exist-envbuild-xyz" in done.stderr
    assert "Traceback" not in done.stderr
    assert entries(home) == {}


def test_failing_docker_build_leaves_no_entry(engine, home, tmp_path):
    spec = write(tmp_path / "requirements.txt", "six\n")
    template = write(tmp_path / "broken.Dockerfile.j2", """\
{% extends "environment.Dockerfile.j2" %}
{% block user_steps %}RUN echo about to fail && false{% endblock %}
""")
    env = envbuild.Environment.from_pip_requirements("broken", spec)
    with pytest.raises(envbuild.BuildError) as failure:
        envbuild.build(env, template=template)
    assert "echo about to fail" in str(failure.value)
    assert entries(home) == {}


def test_render_is_deterministic_and_names_the_base(engine, home, tmp_path):
    spec = write(tmp_path / "requirements.txt", "six\n")
    first = cli("render", str(spec)).stdout
    assert first == cli("render", str(spec)).stdout
    assert first.startswith("# Generated by envbuild")
    assert "FROM envbuild/python:3.11-bookworm" in first


def test_lock_writes_a_conda_lock_file_conda_lock_can_read(engine, home, tmp_path):
    from conda_lock.lockfile import parse_conda_lock_file

    spec = write(tmp_path / "requirements.txt", "six\n")
    out = tmp_path / "conda-lock.yml"
    cli("lock", str(spec), "-o", str(out))
    parsed = parse_conda_lock_file(out)
    six = [p for p in parsed.package if p.name == "six"]
    assert six and six[0].manager == "pip" and len(six[0].hash.sha256) == 64


def test_a_reindexed_local_channel_is_not_served_the_old_image(engine, home, tmp_path):
    from tests.support.conda_channel import add_package, make_channel

    channel = make_channel(tmp_path / "channel")
    spec = write(tmp_path / "environment.yml",
                 f"channels:\n  - {channel.as_uri()}\ndependencies:\n  - libgreet\n")
    before = json.loads(cli("build", str(spec), "--json", "-q").stdout)
    add_package(channel, "libgreet", "3.0")  # the same spec now resolves to a newer package
    after = json.loads(cli("build", str(spec), "--json", "-q").stdout)
    assert after["lock_key"] != before["lock_key"] and after["id"] != before["id"]
    assert run_in(after["image"], "cat", "/opt/env/share/libgreet/VERSION") == "3.0"


def test_an_environment_changed_after_loading_does_not_stand_for_its_file(engine, home, tmp_path):
    spec = write(tmp_path / "requirements.txt", "six\n")
    changed = envbuild.Environment.from_pip_requirements("six", spec)
    changed.environment_variables["ONLY_IN_THE_API"] = "1"
    envbuild.build(changed)
    from_file = json.loads(cli("build", str(spec), "--json", "-q").stdout)
    assert run_in(from_file["image"], "sh", "-c", "echo ${ONLY_IN_THE_API:-unset}") == "unset"
