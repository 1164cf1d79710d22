"""Builds in flight: identical requests from many processes merge into one build, and a builder killed midway
leaves nothing behind (no entry, no lock that blocks the next one)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.conftest import write
from tests.support.cache_helpers import entries, remove_images, unique_template
from tests.support.cli import cli_json, command, environment

pytestmark = pytest.mark.engine


def start_build(spec, template, home, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(command("build", str(spec), "--template", str(template), "--json", *extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=environment({"ENVBUILD_HOME": str(home)}))


def test_four_processes_asking_at_once_get_one_build_and_the_same_image(engine, home, tmp_path):
    spec = write(tmp_path / "requirements.txt", "six\n")
    template = unique_template(tmp_path, "RUN sleep 3")
    # Two users (envbuild homes) on one engine, two processes each: still one build on the engine.
    homes = [home, home, tmp_path / "second-home", tmp_path / "second-home"]
    processes = [start_build(spec, template, each, "-q") for each in homes]
    results = []
    for process in processes:
        out, errors = process.communicate(timeout=600)
        assert process.returncode == 0, errors
        results.append(json.loads(out))
    sources = sorted(result["source"] for result in results)
    assert sources.count("built") == 1, sources
    assert set(sources) <= {"built", "joined", "cache", "engine"}  # engine: the other home, after the build
    assert len({(r["key"], r["id"], r["image"]) for r in results}) == 1
    for each in (home, tmp_path / "second-home"):
        assert list(entries(each)) == [results[0]["key"]]
    assert cli_json("stats")["builds"] + cli_json("stats", env={"ENVBUILD_HOME": str(homes[-1])})["builds"] == 1
    remove_images(home)


def test_a_build_killed_midway_leaves_no_entry_and_the_next_call_builds(engine, home, tmp_path):
    spec = write(tmp_path / "requirements.txt", "six\n")
    template = unique_template(tmp_path, "RUN echo envbuild-test-step-started && sleep 6")
    victim = start_build(spec, template, home)
    deadline = time.monotonic() + 300
    for line in victim.stderr:  # plain progress: the build log streams to stderr line by line
        if "envbuild-test-step-started" in line or time.monotonic() > deadline:
            break
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert entries(home) == {}

    # A process waiting for the killed one is not blocked forever: the kernel dropped the dead one's lock.
    after = cli_json("build", str(spec), "--template", str(template), "-q")
    assert after["source"] == "built"
    assert list(entries(home)) == [after["key"]]
    remove_images(home)


def test_threads_of_one_process_also_share_one_build(engine, home, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    import envbuild

    env = envbuild.Environment.from_pip_requirements("threads", write(tmp_path / "requirements.txt", "six\n"))
    template = unique_template(tmp_path, "RUN sleep 2")
    with ThreadPoolExecutor(3) as pool:
        images = list(pool.map(lambda _: envbuild.build(env, template=template), range(3)))
    assert sorted(image.source for image in images).count("built") == 1
    assert len({image.id for image in images}) == 1
    remove_images(home)
