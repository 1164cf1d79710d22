"""Azure ML's behaviours envbuild follows: conda's fallback channels, .amlignore, git build contexts, saved paths,
and the SDK v1 members (CondaDependencies' and Environment's) with v1's meaning."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

import envbuild
from envbuild import CondaDependencies, Environment
from envbuild.catalog import Catalog
from envbuild.channels import DEFAULT_CHANNELS
from envbuild.errors import SpecError
from envbuild.buildcontext import context_entries


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- conda files without channels ----------------------------------------------------------------------------------

@pytest.fixture
def no_condarc(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.delenv("CONDARC", raising=False)
    return tmp_path / "user"


def test_conda_packages_without_channels_use_condas_defaults_and_say_so(tmp_path, no_condarc, caplog):
    bare = Environment.from_file(write(tmp_path / "a" / "environment.yml", "dependencies: [numpy=1.26]\n"))
    assert bare.canonical()["channels"] == list(DEFAULT_CHANNELS)
    assert "conda's defaults" in caplog.text and DEFAULT_CHANNELS[0] in caplog.text
    defaults = Environment.from_file(write(tmp_path / "b" / "environment.yml",
                                           "channels: [defaults]\ndependencies: [numpy=1.26]\n"))
    assert bare.key == defaults.key


def test_a_condarc_chooses_the_fallback_channels(tmp_path, no_condarc, conda_channel, caplog, home):
    condarc = write(no_condarc / ".condarc", f"channels:\n  - {conda_channel.as_uri()}\n")
    env = Environment.from_file(write(tmp_path / "environment.yml", "dependencies: [hello-tool=1.0]\n"))
    assert env.canonical()["channels"] == [conda_channel.as_uri()]
    assert str(condarc) in caplog.text
    locked = envbuild.lock(env)  # solvable: the channel .condarc names is the one used
    assert {p.name for p in locked.packages} == {"hello-tool", "libgreet"}


# -- .amlignore -------------------------------------------------------------------------------------------------------

def test_amlignore_keeps_files_out_of_the_context_and_its_key(tmp_path):
    root = tmp_path / "ctx"
    write(root / "Dockerfile", "FROM python:3.11\nCOPY . /app\n")
    write(root / "train.py", "print(1)\n")
    write(root / "data" / "big.csv", "1,2\n")
    write(root / "logs" / "keep.log", "kept\n")
    write(root / ".amlignore", "data/\n*.log\n!keep.log\n")
    assert sorted(context_entries(root, "Dockerfile")) == [".amlignore", "Dockerfile", "logs", "logs/keep.log",
                                                           "train.py"]
    key = Environment.from_build_context("c", root).key
    write(root / "data" / "big.csv", "3,4\n")
    write(root / "run.log", "ignored\n")
    assert Environment.from_build_context("c", root).key == key
    write(root / "train.py", "print(2)\n")
    assert Environment.from_build_context("c", root).key != key


# -- git build contexts ---------------------------------------------------------------------------------------------

def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repository(tmp_path) -> Path:
    repo = tmp_path / "repo"
    write(repo / "images" / "train" / "Dockerfile", "FROM python:3.11\nCOPY app.py /app.py\n")
    write(repo / "images" / "train" / "app.py", "print(1)\n")
    repo.mkdir(exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    return repo


def test_a_git_url_build_context_is_checked_out_at_its_ref_and_keyed_by_commit(tmp_path, repository, home):
    local = Environment.from_build_context("t", repository / "images" / "train")
    spec = write(tmp_path / "env" / "environment.yaml",
                 f"name: t\nbuild:\n  path: git+{repository.as_uri()}#main:images/train\n")
    first = Environment.from_file(spec)
    first_commit = git(repository, "rev-parse", "HEAD")
    assert first.key == local.key
    assert Path(first.docker.build_context).parent.parent.name == first_commit
    assert Path(first.docker.build_context).is_relative_to(home) and not (
        Path(first.docker.build_context).parent.parent / ".git").exists()
    write(repository / "images" / "train" / "app.py", "print(2)\n")
    git(repository, "commit", "-q", "-am", "two")
    assert Environment.from_file(spec).key != first.key  # the branch moved: a new commit, a new environment
    write(spec, f"name: t\nbuild:\n  path: {repository.as_uri()}#{first_commit}:images/train\n")
    pinned = Environment.from_file(spec)
    assert pinned.key == first.key
    pinned.save_to_directory(tmp_path / "saved")
    saved = yaml.safe_load((tmp_path / "saved" / "environment.yaml").read_text())
    assert saved["build"]["path"] == f"{repository.as_uri()}#{first_commit}:images/train"
    assert Environment.load_from_directory(tmp_path / "saved").key == first.key


def test_a_git_daemon_url_and_a_missing_ref(tmp_path, repository, home):
    bare = tmp_path / "served" / "repo.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repository), str(bare)], check=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    daemon = subprocess.Popen(["git", "daemon", "--export-all", "--reuseaddr", "--listen=127.0.0.1", f"--port={port}",
                               f"--base-path={tmp_path / 'served'}", str(tmp_path / "served")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        url = f"git://127.0.0.1:{port}/repo.git"
        env = Environment.from_docker_build_context("served", f"{url}#main:images/train")
        assert env.key == Environment.from_build_context("t", repository / "images" / "train").key
        with pytest.raises(SpecError, match="no branch, tag or commit 'nope'"):
            Environment.from_docker_build_context("served", f"{url}#nope:images/train")
    finally:
        daemon.terminate()
        daemon.wait()


# -- saved paths --------------------------------------------------------------------------------------------------

def test_a_context_outside_the_saved_directory_is_saved_relative_and_moves_with_it(tmp_path):
    write(tmp_path / "project" / "ctx" / "Dockerfile", "FROM python:3.11\nCOPY a /a\n")
    write(tmp_path / "project" / "ctx" / "a", "a\n")
    env = Environment.from_build_context("c", tmp_path / "project" / "ctx")
    env.save_to_directory(tmp_path / "project" / "envs" / "c")
    key = env.key
    saved = yaml.safe_load((tmp_path / "project" / "envs" / "c" / "environment.yaml").read_text())
    assert saved["build"]["path"] == "../../ctx"
    (tmp_path / "project").rename(tmp_path / "moved")
    assert Environment.load_from_directory(tmp_path / "moved" / "envs" / "c").key == key


def test_an_environment_on_envbuilds_default_base_saves_azures_default_image_and_loads_back(tmp_path):
    env = Environment("plain")
    env.python.conda_dependencies = CondaDependencies.create(conda_packages=["numpy"], channels=["conda-forge"])
    env.save_to_directory(tmp_path / "plain")
    saved = yaml.safe_load((tmp_path / "plain" / "environment.yaml").read_text())
    assert saved["image"].startswith("mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04")
    assert yaml.safe_load((tmp_path / "plain" / "envbuild.yaml").read_text())["default_base"] is True
    loaded = Environment.load_from_directory(tmp_path / "plain")
    assert loaded.docker.base_image is None and loaded == env


# -- SDK v1 members -------------------------------------------------------------------------------------------------

def test_conda_dependencies_v1_members(tmp_path):
    deps = CondaDependencies.create(conda_packages=["numpy=1.26"], pip_packages=["six"], python_version="3.11",
                                    channels=["conda-forge"], pip_options=["--extra-index-url https://a/simple"])
    deps.set_pip_index_url("https://mirror/simple")
    deps.set_pip_index_url("https://other/simple")  # v1 keeps one option per flag
    assert deps.pip_options == ["--extra-index-url https://a/simple", "--index-url https://other/simple"]
    assert deps.as_dict() == {"channels": ["conda-forge"], "dependencies": [
        "python=3.11", "numpy=1.26", {"pip": [*deps.pip_options, "six"]}]}
    path = deps.save(tmp_path / "conda.yml")
    assert Path(path).read_text() == deps.serialize_to_string()
    assert Environment.from_conda_specification("x", path).python.conda_dependencies == deps
    with pytest.raises(SpecError, match="is a directory"):
        deps.save(tmp_path)
    deps.remove_pip_option("--extra-index-url")
    assert deps.pip_options == ["--index-url https://other/simple"]
    deps.set_pip_requirements(["--find-links https://wheels", "requests>=2", "idna"])
    assert deps.pip_packages == ["requests>=2", "idna"] and deps.pip_options == ["--find-links https://wheels"]
    assert CondaDependencies.merge_requirements(["numpy>=1.20", "six", "numpy<2"]) == ["numpy>=1.20,<2", "six"]


def test_environment_v1_members(tmp_path, home):
    env = Environment("base", version="3")
    env.docker.base_image = "python:3.11"
    clone = env.clone("copy")
    assert (clone.name, clone.version, clone.key) == ("copy", None, env.key)
    clone.environment_variables["X"] = "1"
    assert not env.environment_variables
    write(tmp_path / "ctx" / "sub" / "Dockerfile", "FROM python:3.11\n")

    class DockerBuildContext:  # what v1's object offers
        location, dockerfile_path = str(tmp_path / "ctx"), "sub/Dockerfile"

    assert Environment.from_docker_build_context("c", DockerBuildContext()).key == Environment.from_build_context(
        "c", tmp_path / "ctx", dockerfile_path="sub/Dockerfile").key
    with pytest.raises(SpecError, match="useDocker"):
        env.build_local(useDocker=False)
    env.version = None
    with Catalog(home) as catalog:
        catalog.register(env)
        env.python.conda_dependencies.add_pip_package("six")
        catalog.register(env)
    Environment.label(home, "base", 1, ["production"])
    Environment.label(home, "base", 2, ["production", "candidate"])
    with Catalog(home) as catalog:
        assert catalog.entry("base", 1).tags == {}
        assert catalog.entry("base", 2).tags == {"label:production": "", "label:candidate": ""}
