"""Test world: a real Docker Engine, envbuild's default base image, a local conda channel, isolated homes.

scripts/setup.sh installs and starts what these fixtures need; the fixtures check and start what they can
themselves, so `pytest` also works on a machine that is already set up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support.conda_channel import make_channel

pytest_plugins = ["tests.support.postgres"]  # the `postgres` server and the `catalog_home` fixtures

# CI runs the property tests with a fixed seed: a failure there is reproducible, never a flake. Locally they
# explore new examples each run.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
# The dedicated fuzz run (tests/test_hostile_inputs.py): HYPOTHESIS_PROFILE=fuzz, 10,000 cases per property.
settings.register_profile("fuzz", max_examples=10_000, deadline=None)
if os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])

DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else (shutil.which("docker") or "docker")


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, check=check)


def pytest_collection_modifyitems(items) -> None:
    """A test that asks for the engine, itself or through one of its fixtures, is in the engine tier: `-m "not
    engine"` (scripts/test.sh --unit) never starts one."""
    for item in items:
        if "engine" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.engine)


def _engine_up() -> bool:
    return subprocess.run([DOCKER, "info"], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def engine():
    """A running Docker Engine and envbuild's default base image on it."""
    if not _engine_up() and shutil.which("dockerd"):
        subprocess.Popen(["dockerd"], stdout=open("/var/log/envbuild-dockerd.log", "ab"), stderr=subprocess.STDOUT,
                         start_new_session=True)
        for _ in range(60):
            if _engine_up():
                break
            time.sleep(1)
    if not _engine_up():
        pytest.fail("no Docker Engine: run scripts/setup.sh (installs docker.io and starts dockerd)")
    from envbuild.bases import resolve_base
    from envbuild.engine import Engine

    eng = Engine()
    base = resolve_base(None, eng)
    assert base is not None and base.python_version
    yield eng
    eng.close()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty envbuild home (cache index, lock cache) for one test."""
    path = tmp_path / "envbuild-home"
    monkeypatch.setenv("ENVBUILD_HOME", str(path))
    return path


@pytest.fixture(scope="session")
def conda_channel(tmp_path_factory) -> Path:
    return make_channel(tmp_path_factory.mktemp("channel") / "local")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
