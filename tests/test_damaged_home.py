"""A damaged or unusable envbuild home: healed, or one message naming the path and the fix; never a traceback.

These need no engine: an index whose images are on an engine is healed in tests/test_damaged_home_engine.py. The
full-disk and read-only homes are small tmpfs mounts the tests make and remove (root only).
"""

from __future__ import annotations

import os
import random
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from envbuild.cache import Index, new_entry
from envbuild.errors import CacheError
from tests.support.cli import cli, command, environment

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def _entry(image: str) -> dict:
    return new_entry(image=image, image_id="sha256:" + "0" * 64, name="x", spec_key="s", lock_key="l", base_id="b",
                     build_seconds=1.0, size=1, source="built")


def _filled_home(home: Path) -> Path:
    with Index(home) as index:
        for i in range(20):
            index.put(f"v1:{i:032x}", _entry(f"envbuild/env:v1-{i:032x}"), log="line\n" * 50)
    return home / "index" / "cache.db"


def test_a_home_and_its_index_are_for_the_user_alone(tmp_path):
    home = tmp_path / "home"
    database = _filled_home(home)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "index").stat().st_mode) == 0o700
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


def _damage(database: Path, how: str) -> None:
    data = bytearray(database.read_bytes())
    for extra in database.parent.glob("cache.db-*"):
        extra.unlink()
    if how == "garbage":
        data = bytearray(random.Random(1).randbytes(len(data)))
    elif how == "truncated":
        data = data[: len(data) // 2]
    else:  # flipped bytes all over the file, header included
        rng = random.Random(2)
        for at in rng.sample(range(len(data)), 300):
            data[at] ^= 0xFF
    database.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["garbage", "truncated", "flipped"])
def test_a_damaged_index_is_moved_aside_with_one_warning_and_every_command_works(tmp_path, how):
    home = tmp_path / "home"
    _damage(_filled_home(home), how)
    env = {**NO_ENGINE, "ENVBUILD_HOME": str(home)}
    for args in (["ls"], ["stats"], ["ls"]):
        done = cli(*args, check=False, env=env)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    moved = sorted(home.glob("index.damaged-*"))
    first = cli("stats", env=env)
    assert "Traceback" not in first.stderr and "damaged" not in first.stderr  # healed once, quiet afterwards
    if how != "flipped" or moved:  # 300 flipped bytes may all land in free pages, which no reader ever sees
        assert len(moved) == 1 and (moved[0] / "cache.db").exists()  # kept for whoever wants to look


def test_the_warning_names_where_the_damaged_index_went(tmp_path):
    home = tmp_path / "home"
    _damage(_filled_home(home), "garbage")
    done = cli("ls", env={**NO_ENGINE, "ENVBUILD_HOME": str(home)})
    moved = next(home.glob("index.damaged-*"))
    assert len(done.stderr.splitlines()) == 1 and "was damaged" in done.stderr and str(moved) in done.stderr


def test_a_home_that_is_a_file_is_one_message(tmp_path):
    home = tmp_path / "home"
    home.write_text("not a directory")
    done = cli("ls", "--cache-dir", str(home), check=False, env=NO_ENGINE)
    assert done.returncode == CacheError.exit_code and "Traceback" not in done.stderr
    assert f"{home}" in done.stderr and "not a directory" in done.stderr and "fix:" in done.stderr


@pytest.fixture
def tmpfs(tmp_path):
    """A 2 MB tmpfs at a fresh directory (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_one_message_and_nothing_half_written(tmpfs):
    home = tmpfs / "home"
    database = _filled_home(home)
    before = sorted(dict(Index(home).entries()))
    filler = tmpfs / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:  # fill the disk to the last block
        while os.write(descriptor, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(descriptor)
    with pytest.raises(CacheError) as caught:
        with Index(home) as index:
            for i in range(100):
                index.put(f"v1:{100 + i:032x}", _entry("envbuild/env:new"), log="x" * 100_000)
    assert "no space left" in caught.value.what and str(home) in caught.value.what
    filler.unlink()
    after = sorted(dict(Index(home).entries()))
    assert set(before) <= set(after) and database.exists()
    assert all(key.startswith("v1:") for key in after)


def test_a_read_only_home_is_one_message(tmpfs):
    home = tmpfs / "home"
    _filled_home(home)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    done = cli("ls", check=False, env={**NO_ENGINE, "ENVBUILD_HOME": str(home)})
    assert done.returncode == CacheError.exit_code, done.stderr
    assert "Traceback" not in done.stderr and str(home) in done.stderr and "writable" in done.stderr


def test_logs_piped_to_head_ends_quietly(tmp_path):
    home = tmp_path / "home"
    with Index(home) as index:
        index.put("v1:" + "a" * 32, _entry("envbuild/env:v1-" + "a" * 32), log="a build log line\n" * 200_000)
    shell = f"{' '.join(command('logs', 'v1:aaaa'))} | head -5"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True,
                          env=environment({"ENVBUILD_HOME": str(home), **NO_ENGINE}))
    assert done.stdout.splitlines() == ["a build log line"] * 5
    assert done.stderr == "" and done.returncode == 0


def test_concurrent_healers_move_the_index_aside_once(tmp_path):
    home = tmp_path / "home"
    _damage(_filled_home(home), "garbage")
    processes = [subprocess.Popen(command("ls"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=environment({"ENVBUILD_HOME": str(home), **NO_ENGINE})) for _ in range(6)]
    for process in processes:
        _, errors = process.communicate(timeout=120)
        assert process.returncode == 0 and "Traceback" not in errors, errors
    assert len(list(home.glob("index.damaged-*"))) == 1
    shutil.rmtree(home)
