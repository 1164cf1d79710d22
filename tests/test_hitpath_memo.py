"""The fast path's memo and answer files: read whole or not at all, and never an older image than the index's.

A hit reads two small files instead of the index (SQLite and pickle cost it milliseconds of imports), so what the
index would answer must reach those files: after `build --refresh-lock` gives a new image, the fast path answers
the new one; and a damaged file is no answer (the full path answers, and writes it again).
"""

from __future__ import annotations

import os
import stat

import pytest

from envbuild.hitpath import (
    _answer_path,
    _memo_path,
    _read,
    _write,
    cached_build_for_file,
    remembered_run_options,
)
from envbuild.keys import file_memo_key
from tests.conftest import write
from tests.support.cache_helpers import remove_images
from tests.support.cli import cli_json
from tests.support.private_index import GATEWAY, make_wheel, running_index

TOKEN = "memo-token-5Rk8"


def test_a_file_is_read_back_as_written_and_only_by_its_owner(tmp_path):
    path = str(tmp_path / "index" / "memo" / "v1-abc")
    _write(path, {"spec_key": "v1:spec", "template": None, "files": ["0123 /a b/c.txt", "4567 /d"],
                  "local_channels": [], "shm_size": "2g"})
    assert _read(path, ("spec_key",)) == {"spec_key": "v1:spec", "files": ["0123 /a b/c.txt", "4567 /d"],
                                          "local_channels": [], "arguments": [], "shm_size": "2g"}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and os.listdir(os.path.dirname(path)) == ["v1-abc"]


@pytest.mark.parametrize("text", [b"", b"spec_key v1:spec\n", b"envbuild fast path 1\nspec_key v1:sp",
                                  b"envbuild fast path 1\nspec_key v1:a\nspec_key v1:b\n",
                                  b"envbuild fast path 1\nplatform linux-64\n", b"\x00\xff garbage\n"])
def test_a_file_of_another_format_torn_or_incomplete_is_no_answer(tmp_path, text):
    path = tmp_path / "memo"
    path.write_bytes(text)
    assert _read(str(path), ("spec_key",)) is None


def test_a_value_holding_a_newline_is_not_written(tmp_path):
    path = tmp_path / "memo" / "v1-abc"
    with pytest.raises(ValueError):
        _write(str(path), {"files": ["0123 /a\nspec_key v1:forged"]})
    assert not path.exists()


def test_run_options_come_from_the_memo_of_the_files_bytes(tmp_path):
    spec = write(tmp_path / "environment.yml", "name: x\n")
    _write(_memo_path(str(tmp_path / "home"), file_memo_key(spec, None)),
           {"spec_key": "v1:spec", "shm_size": "1g", "arguments": ["--cap-add", "SYS_PTRACE"]})
    assert remembered_run_options(spec, tmp_path / "home") == {"shm_size": "1g",
                                                               "arguments": ["--cap-add", "SYS_PTRACE"]}
    spec.write_text("name: y\n")
    assert remembered_run_options(spec, tmp_path / "home") == {}


@pytest.mark.engine
def test_the_fast_path_answers_the_image_of_the_latest_lock_and_damaged_files_are_no_answer(engine, home, tmp_path):
    make_wheel(tmp_path / "index", "memopkg", "1.0")
    spec = tmp_path / "spec" / "requirements.txt"
    credentials = {"PRIV_TOKEN": TOKEN}
    try:
        with running_index(tmp_path / "index", tmp_path / "server", "alice", TOKEN) as port:
            write(spec, f"--index-url http://alice:${{PRIV_TOKEN}}@{GATEWAY}:{port}/simple\nmemopkg\n")
            first = cli_json("build", str(spec), "-q", env=credentials)
            assert cached_build_for_file(spec).id == first["id"]

            make_wheel(tmp_path / "index", "memopkg", "1.1")  # the index moves on; the lock cache does not
            assert cli_json("build", str(spec), "-q", env=credentials)["id"] == first["id"]
            relocked = cli_json("build", str(spec), "-q", "--refresh-lock", env=credentials)
        assert relocked["key"] != first["key"] and relocked["id"] != first["id"]
        hit = cached_build_for_file(spec)
        assert (hit.source, hit.key, hit.id, hit.lock_key) == ("cache", relocked["key"], relocked["id"],
                                                               relocked["lock_key"])

        memo = _memo_path(str(home), file_memo_key(spec, None))
        for damaged in (memo, _answer_path(str(home), _read(memo, ())["request_key"])):
            with open(damaged, "r+b") as file:  # torn in the middle of a line
                file.truncate(os.path.getsize(damaged) - 7)
            assert cached_build_for_file(spec) is None
            answered = cli_json("build", str(spec), "-q", env=credentials)  # the full path, from the index
            assert (answered["source"], answered["id"]) == ("cache", relocked["id"])
            assert cached_build_for_file(spec).id == relocked["id"]  # and the file is whole again
    finally:
        remove_images(home)
