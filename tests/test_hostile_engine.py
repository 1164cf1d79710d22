"""Faults with a real engine: a damaged index finds its images again; locking runs no package code on the host;
many processes and a killed build leave a consistent index."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.conftest import write
from tests.support.cache_helpers import entries, remove_images, unique_template
from tests.support.cli import cli, cli_json, command, environment
from tests.test_damaged_home import _damage

pytestmark = pytest.mark.engine


@pytest.fixture
def built(engine, home, tmp_path):
    """One small image built into `home` (unique to this test), removed afterwards."""
    spec = write(tmp_path / "requirements.txt", "six\n")
    template = unique_template(tmp_path)
    result = cli_json("build", str(spec), "--template", str(template), "-q")
    yield spec, template, result
    remove_images(home)


@pytest.mark.parametrize("how", ["garbage", "truncated", "flipped"])
def test_a_damaged_index_finds_its_images_again_on_the_engine(built, home, how):
    spec, template, first = built
    _damage(home / "index" / "cache.db", how)
    listed = cli_json("ls")
    assert first["key"] in {entry["key"] for entry in listed}, listed
    again = cli_json("build", str(spec), "--template", str(template), "-q")
    assert again["key"] == first["key"] and again["id"] == first["id"] and again["source"] in ("cache", "engine")


def _marker_sdist(directory: Path, marker: Path) -> Path:
    """An sdist whose setup.py writes `marker` and, inside a container, declares a dependency on six: the lock
    then shows where its code ran."""
    setup = (f"import os, pathlib\np = pathlib.Path({str(marker)!r})\np.parent.mkdir(parents=True, exist_ok=True)\n"
             "p.write_text('ran')\nfrom setuptools import setup\n"
             "setup(name='markerpkg', version='1.0', py_modules=[],\n"
             "      install_requires=['six'] if os.path.exists('/.dockerenv') else [])\n")
    directory.mkdir(parents=True, exist_ok=True)
    sdist = directory / "markerpkg-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        for name, text in (("setup.py", setup), ("PKG-INFO", "Metadata-Version: 2.1\nName: markerpkg\nVersion: 1.0\n")):
            data = text.encode()
            info = tarfile.TarInfo(f"markerpkg-1.0/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return sdist


def test_locking_an_sdist_runs_its_code_in_a_container_not_on_the_host(engine, home, tmp_path):
    marker = tmp_path / "host-marker" / "setup-py-ran"
    links = tmp_path / "links"
    _marker_sdist(links, marker)
    spec = write(tmp_path / "requirements.txt", f"--find-links {links}\nmarkerpkg\n")
    lock = cli("lock", str(spec), "--python", "3.11", "-o", str(tmp_path / "conda-lock.yml"))
    assert not marker.exists(), "setup.py ran on the host"
    text = (tmp_path / "conda-lock.yml").read_text()
    assert "name: markerpkg" in text and "name: six" in text, lock.stderr  # six: it ran in a container
    # The explicit opt-in runs it here.
    cli("lock", str(spec), "--python", "3.11", "--refresh", "--allow-host-builds",
        env={"UV_CACHE_DIR": str(tmp_path / "fresh-uv-cache")})
    assert marker.read_text() == "ran"


def _start(args: list[str], home: Path) -> subprocess.Popen:
    return subprocess.Popen(command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=environment({"ENVBUILD_HOME": str(home)}))


def _consistent(home: Path) -> dict:
    """The index's entries, each naming an image the engine has with that id."""
    from tests.conftest import docker

    found = entries(home)
    for key, entry in found.items():
        inspected = docker("image", "inspect", "--format", "{{.Id}}", entry["image"], check=False)
        assert inspected.stdout.strip() == entry["id"], (key, entry)
    return found


def test_eight_processes_one_key_and_six_processes_six_keys_leave_a_consistent_index(engine, home, tmp_path):
    spec = write(tmp_path / "requirements.txt", "six\n")
    try:
        shared = unique_template(tmp_path)
        same = [_start(["build", str(spec), "--template", str(shared), "--json", "-q"], home) for _ in range(8)]
        templates = [unique_template(tmp_path) for _ in range(6)]
        different = [_start(["build", str(spec), "--template", str(t), "--json", "-q"], home) for t in templates]
        results = []
        for process in same + different:
            out, errors = process.communicate(timeout=900)
            assert process.returncode == 0 and "Traceback" not in errors, errors
            results.append(json.loads(out))
        assert len({r["key"] for r in results[:8]}) == 1
        assert len({r["key"] for r in results[8:]}) == 6
        assert sorted(r["source"] for r in results[:8]).count("built") == 1
        index = _consistent(home)
        assert {r["key"] for r in results} <= set(index)
    finally:
        remove_images(home)


def test_a_build_killed_with_sigkill_leaves_a_consistent_index(engine, home, tmp_path):
    spec = write(tmp_path / "requirements.txt", "six\n")
    try:
        cli_json("build", str(spec), "--template", str(unique_template(tmp_path)), "-q")  # something indexed
        slow = unique_template(tmp_path, "RUN sleep 30")
        process = _start(["build", str(spec), "--template", str(slow), "-q"], home)
        time.sleep(8)
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=60)
        before = _consistent(home)
        listed = cli_json("ls")
        assert {entry["key"] for entry in listed} == set(before)
        done = cli_json("build", str(spec), "--template", str(slow), "-q")
        assert done["source"] in ("built", "engine") and done["key"] in _consistent(home)
    finally:
        remove_images(home)
