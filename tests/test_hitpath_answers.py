"""The shortcuts that keep json, urllib and pathlib off a cache hit give the answers the modules they replace give."""

from __future__ import annotations

import json
import os
import urllib.parse
import uuid

import pytest

from envbuild.engine.client import _quote
from envbuild.hitpath import _request_key, cached_build_for_file
from envbuild.keys import file_memo_key, request_key
from tests.conftest import docker, write
from tests.support.cache_helpers import remove_images
from tests.support.cli import cli_json

BASE = "sha256:" + "1" * 64
MOVED = "sha256:" + "2" * 64


@pytest.mark.parametrize("ref", ["python:3.11-slim", "envbuild/env:v1-0123abcd", "localhost:5000/a/b:c",
                                 "docker.io/library/python@sha256:" + "a" * 64, "x y%z?#&=+", "caf\u00e9:\u00fc"])
def test_image_references_are_quoted_as_urllib_quotes_them(ref):
    assert _quote(ref) == urllib.parse.quote(ref, safe="")


def remembered(template: str | None = None, local_channels: tuple[str, ...] = ()) -> dict:
    """A memo as the full path writes it: the request key it computed for BASE."""
    return {"spec_key": "v1:spec", "base_id": BASE, "template": template, "local_channels": list(local_channels),
            "platform": "linux-64", "request_key": request_key("v1:spec", BASE, template, local_channels)}


def test_the_remembered_request_key_is_the_one_the_full_path_computes():
    memo = remembered()
    assert _request_key(memo, BASE, None) == memo["request_key"] == request_key("v1:spec", BASE, None)


@pytest.mark.parametrize("base, template", [(MOVED, None), (BASE, "v1:another-template")])
def test_a_moved_base_or_another_template_keys_the_request_again(base, template):
    assert _request_key(remembered(), base, template) == request_key("v1:spec", base, template)
    assert _request_key(remembered(), base, template) != remembered()["request_key"]


def test_local_channels_are_keyed_again_on_every_hit(tmp_path):
    channel = tmp_path / "channel"
    (channel / "linux-64").mkdir(parents=True)
    (channel / "linux-64" / "repodata.json").write_text("{}")
    memo = remembered(local_channels=(channel.as_uri(),))
    (channel / "linux-64" / "repodata.json").write_text('{"packages": {}}')  # re-indexed since it was remembered
    assert _request_key(memo, BASE, None) == request_key("v1:spec", BASE, None, [channel.as_uri()])
    assert _request_key(memo, BASE, None) != memo["request_key"]


def test_a_spec_file_is_remembered_by_its_real_path_its_bytes_and_the_base_override(tmp_path):
    spec = write(tmp_path / "requirements.txt", "six\n")
    os.symlink(spec, tmp_path / "link.txt")
    key = file_memo_key(spec, None)
    assert file_memo_key(str(tmp_path / "link.txt"), None) == key == file_memo_key(spec, "")
    assert file_memo_key(spec, "python:3.12") != key
    assert file_memo_key(write(tmp_path / "copy" / "requirements.txt", "six\n"), None) != key
    spec.write_text("six\nidna\n")
    assert file_memo_key(spec, None) != key


@pytest.mark.engine
def test_the_image_id_read_without_json_is_the_engines(engine):
    from envbuild.bases import DEFAULT_BASE

    assert engine.image_id(DEFAULT_BASE) == json.loads(docker("image", "inspect", DEFAULT_BASE).stdout)[0]["Id"]
    assert engine.image_id(f"envbuild-test/absent:{uuid.uuid4().hex}") is None


@pytest.mark.engine
def test_a_hit_on_a_base_tag_that_moved_is_not_the_old_image(engine, home, tmp_path):
    from envbuild.bases import DEFAULT_BASE

    base = f"envbuild-test/moving-base:{uuid.uuid4().hex[:12]}"
    spec = write(tmp_path / "requirements.txt", "six\n")
    context = write(tmp_path / "other-base" / "Dockerfile", f"FROM {DEFAULT_BASE}\nLABEL org.envbuild.test={base}\n")
    docker("tag", DEFAULT_BASE, base)
    try:
        built = cli_json("build", str(spec), "--base-image", base, "-q")
        assert cached_build_for_file(spec, base_image=base).id == built["id"]
        docker("build", "-q", "-t", base, str(context.parent))  # the tag now names another image
        assert cached_build_for_file(spec, base_image=base) is None
        docker("tag", DEFAULT_BASE, base)  # and back: the remembered request key applies again
        assert cached_build_for_file(spec, base_image=base).id == built["id"]
    finally:
        remove_images(home)
        docker("rmi", base, check=False)
