"""The cache index on a real engine: hits without building, images deleted behind it, inspection, gc."""

from __future__ import annotations


import pytest

import envbuild
from tests.conftest import docker, write
from tests.support.cache_helpers import entries, remove_images, unique_template
from tests.support.cli import cli, cli_json

pytestmark = pytest.mark.engine


@pytest.fixture
def spec(tmp_path):
    return write(tmp_path / "requirements.txt", "six\n")


@pytest.fixture
def cleanup(home):
    yield
    remove_images(home)


def exists(image: str) -> bool:
    return docker("image", "inspect", image, check=False).returncode == 0


def test_a_hit_needs_no_docker_build_and_says_it_came_from_the_cache(engine, home, tmp_path, spec, cleanup):
    template = unique_template(tmp_path)
    first = cli_json("build", str(spec), "--template", str(template), "-q")
    assert first["source"] == "built" and first["cached"] is False and first["builder"] in ("buildx", "buildkit")
    # With no docker CLI at all, a hit still answers: it never reaches a builder.
    second = cli_json("build", str(spec), "--template", str(template), env={"ENVBUILD_DOCKER": "/nonexistent/docker"})
    assert second["source"] == "cache" and second["cached"] is True
    assert (second["id"], second["key"]) == (first["id"], first["key"])
    again = envbuild.build(envbuild.Environment.from_pip_requirements("six", spec), template=template)
    assert again.source == "cache" and again.id == first["id"]
    entry = entries(home)[first["key"]]
    assert entry["hits"] == 2 and entry["last_hit"] >= entry["created"]
    assert entry["build_seconds"] > 0 and entry["size"] > 0 and entry["envbuild_version"] == envbuild.__version__
    stats = cli_json("stats")
    assert (stats["hits"], stats["misses"], stats["builds"]) == (2, 1, 1)
    assert stats["seconds_saved"] == pytest.approx(2 * entry["build_seconds"])


def test_deleted_image_is_rebuilt_and_an_unindexed_one_is_found_on_the_engine(engine, home, tmp_path, spec, cleanup):
    env = envbuild.Environment.from_pip_requirements("six", spec)
    template = unique_template(tmp_path)
    first = envbuild.build(env, template=template)
    docker("rmi", "-f", first.image)
    rebuilt = envbuild.build(env, template=template)
    assert rebuilt.source == "built" and exists(rebuilt.image)
    assert entries(home)[rebuilt.key]["id"] == rebuilt.id
    # Another envbuild home (another user, a wiped cache) on the same engine: found by its key tag, not built.
    other = envbuild.build(env, template=template, cache_dir=tmp_path / "other-home")
    assert other.source == "engine" and other.id == rebuilt.id
    assert envbuild.build(env, template=template, cache_dir=tmp_path / "other-home").source == "cache"


def test_ls_show_logs_describe_what_was_built(engine, home, tmp_path, spec, cleanup):
    template = unique_template(tmp_path, "RUN echo envbuild-log-marker")
    built = cli_json("build", str(spec), "--template", str(template), "-q")
    listed = cli_json("ls")
    assert [row["key"] for row in listed] == [built["key"]]
    assert listed[0]["name"] == "requirements" and listed[0]["size"] > 0
    table = cli("ls").stdout
    assert "KEY" in table and built["key"] in table
    shown = cli_json("show", built["key"][:10])
    assert "envbuild-log-marker" in shown["dockerfile"] and "six" in shown["lock"]
    assert shown["labels"]["org.envbuild.build-key"] == built["key"]
    assert "envbuild-log-marker" in shown["log"]
    text = cli("show", built["image"]).stdout
    assert "--- Dockerfile ---" in text and "envbuild-log-marker" in text
    assert "envbuild-log-marker" in cli("logs", built["key"]).stdout
    missing = cli("show", "v1:0000", check=False)
    assert missing.returncode != 0 and "envbuild ls" in missing.stderr and "Traceback" not in missing.stderr


def test_gc_removes_images_and_entries_together_in_policy_order(engine, home, tmp_path, spec, cleanup):
    # Each image gets a layer of its own (a variable alone makes no layer: the three would be one set of layers).
    templates = {name: unique_template(tmp_path, "RUN echo $ENVBUILD_TEST_RUN > /test-run")
                 for name in ("cold", "warm", "hot")}
    built = {name: cli_json("build", str(spec), "--template", str(t), "-q") for name, t in templates.items()}
    for name, hits in (("warm", 1), ("hot", 3)):
        for _ in range(hits):
            assert cli_json("build", str(spec), "--template", str(templates[name]))["source"] == "cache"
    # The three share all but their last layers: sizes count shared layers once (what they occupy together).
    size = max(entry["size"] for entry in entries(home).values())
    unique = max(row["unique_size"] for row in cli_json("ls"))
    keep_two = str(size + unique + unique // 2)

    dry = cli_json("gc", "--max-size", keep_two, "--policy", "lfu", "--dry-run")
    assert [r["key"] for r in dry["evicted"]] == [built["cold"]["key"]]
    assert len(entries(home)) == 3 and exists(built["cold"]["image"])

    done = cli_json("gc", "--max-size", keep_two, "--policy", "lfu")
    assert [(r["key"], r["removed"]) for r in done["evicted"]] == [(built["cold"]["key"], True)]
    assert not exists(built["cold"]["image"]) and built["cold"]["key"] not in entries(home)
    assert exists(built["warm"]["image"]) and exists(built["hot"]["image"])

    # lru: "hot" was used last, so "warm" goes first when only one may stay.
    done = cli_json("gc", "--max-size", str(size + unique // 2), "--policy", "lru")
    assert [r["key"] for r in done["evicted"]] == [built["warm"]["key"]]
    assert list(entries(home)) == [built["hot"]["key"]] and exists(built["hot"]["image"])


def test_gc_without_a_limit_is_refused(home):
    done = cli("gc", check=False)
    assert done.returncode != 0 and "--max-size" in done.stderr and "Traceback" not in done.stderr


def test_classic_builder_is_a_last_resort_that_says_what_it_cannot_do(engine, home, tmp_path, cleanup):
    # No packages: the classic builder has no BuildKit secret for the host CA, so PyPI is out of its reach here.
    spec = write(tmp_path / "requirements.txt", "# nothing to install\n")
    built = cli_json("build", str(spec), "--template", str(unique_template(tmp_path)), "--builder", "classic", "-q")
    assert built["source"] == "built" and built["builder"] == "classic"
    assert any("cache mounts" in warning for warning in built["warnings"])
    assert "Step 1/" in cli("logs", built["key"]).stdout  # the classic builder's own log, kept with the entry

    failing = unique_template(tmp_path, "RUN echo classic-about-to-fail && false")
    done = cli("build", str(spec), "--template", str(failing), "--builder", "classic", "-q", check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "classic-about-to-fail" in done.stderr and " at Step " in done.stderr
