"""Loaders: every input kind, the Python API, save/load, and the errors users get. Pure logic, no engine."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envbuild import references
from envbuild.errors import EnvbuildError, SpecError
from envbuild.spec import CondaDependencies, Environment
from tests.conftest import write
from tests.support.cli import cli


def conda_env(tmp_path, text: str, name: str = "environment.yml") -> Environment:
    return Environment.from_file(write(tmp_path / name, text))


def pip_env(tmp_path, text: str, name: str = "requirements.txt") -> Environment:
    return Environment.from_file(write(tmp_path / name, text))


# -- conda environment.yml --------------------------------------------------------------------------------------

# Every match-spec form, one a folder: tests/specs/conda/ (test_spec_cases.py).


def test_environment_yml_with_everything(tmp_path, caplog):
    write(tmp_path / "more.txt", "idna==3.7  # pinned\n")
    caplog.set_level("INFO", logger="envbuild.spec")
    env = conda_env(tmp_path, """\
# a comment
name: demo
channels:
  - conda-forge
  - nodefaults
dependencies:
  - python=3.11   # the interpreter
  - pip
  - pip:
      - --index-url https://example.org/simple
      - --extra-index-url=https://download.pytorch.org/whl/cpu
      - requests[socks]>=2.31 ; python_version >= "3.8"
      - clip @ git+https://github.com/openai/CLIP.git@a1b2c3
      - git+https://github.com/psf/black@24.1.0#egg=black
      - -r more.txt
variables:
  MODE: fast
  RATIO: 1.10
prefix: /opt/conda/envs/demo
""")
    deps = env.python.conda_dependencies
    assert env.name == "demo"
    assert deps.channels == ["conda-forge", "nodefaults"]
    assert deps.conda_packages == ["python=3.11", "pip"]
    assert deps.pip_options == ["--index-url https://example.org/simple",
                                "--extra-index-url https://download.pytorch.org/whl/cpu"]
    assert env.environment_variables == {"MODE": "fast", "RATIO": "1.10"}  # as written, not the float 1.1
    canonical = env.canonical()
    assert canonical["channels"] == ["conda-forge"]  # nodefaults only says "add no defaults", which envbuild never does
    assert canonical["pip"] == [
        "black @ git+https://github.com/psf/black@24.1.0",
        "clip @ git+https://github.com/openai/CLIP.git@a1b2c3",
        "idna==3.7",
        'requests[socks]>=2.31; python_version >= "3.8"',
    ]
    assert str(tmp_path / "more.txt") in env.source_files
    assert "prefix: /opt/conda/envs/demo` ignored" in caplog.text


def test_platform_selectors_and_unidep_selectors(tmp_path):
    text = """\
channels: [conda-forge]
dependencies:
  - python <3.11
  - clang_osx-arm64  # [arm64]
  - gcc_linux-aarch64  # [aarch64]
  - gcc_linux-64>=6  # [linux64]
  - tool  # [not win]
  - sel(osx): pexpect
  - sel(linux): adaptive >=0.15.0, <2.0.0
  - numpy  # [see the docs]
"""
    env = conda_env(tmp_path, text)
    assert [s.split()[0].split(">")[0] for s in env.python.conda_dependencies.conda_packages] == [
        "python", "gcc_linux-64", "tool", "adaptive", "numpy"]
    arm = Environment(name="arm")
    arm.docker.platform = "linux-aarch64"
    from envbuild.spec import load_conda_file

    load_conda_file(tmp_path / "environment.yml", arm)
    assert "gcc_linux-aarch64" in arm.python.conda_dependencies.conda_packages
    assert "clang_osx-arm64" not in arm.python.conda_dependencies.conda_packages  # arm64 is macOS, as in conda-lock
    assert "gcc_linux-64>=6" not in arm.python.conda_dependencies.conda_packages


def test_conda_lock_platforms_pick_a_linux_platform(tmp_path):
    env = conda_env(tmp_path, "channels: [conda-forge]\ndependencies: [zlib]\nplatforms: [osx-arm64, linux-aarch64]\n")
    assert env.docker.platform == "linux-aarch64"
    with pytest.raises(SpecError, match="no Linux platform"):
        conda_env(tmp_path, "dependencies: [zlib]\nplatforms: [osx-arm64, win-64]\n", "mac.yml")


# -- requirements.txt -------------------------------------------------------------------------------------------

# Every requirement form, one a folder: tests/specs/pip/ (test_spec_cases.py).


def test_requirements_includes_options_hashes_and_continuations(tmp_path):
    write(tmp_path / "sub" / "common.txt", "six\n-c constraints.txt\n")
    write(tmp_path / "sub" / "constraints.txt", "idna<4\n")
    env = pip_env(tmp_path, f"""\
-r sub/common.txt
-i https://pypi.org/simple/
--extra-index-url "https://download.pytorch.org/whl/cpu/"
--pre
attrs==23.2.0 \\
    --hash=sha256:{"a" * 64} \\
    --hash=sha256:{"b" * 64}
    # via something
--require-hashes
""")
    deps = env.python.conda_dependencies
    assert deps.pip_packages == ["six", "attrs==23.2.0"]
    assert deps.pip_hashes == {"attrs==23.2.0": [f"sha256:{'a' * 64}", f"sha256:{'b' * 64}"]}  # pins (issue 15)
    assert deps.pip_options == ["--constraint idna<4", "--index-url https://pypi.org/simple/",
                                "--extra-index-url https://download.pytorch.org/whl/cpu/", "--pre"]
    # Quotes and trailing slashes are spelling.
    assert env.canonical()["pip_options"] == ["--constraint idna<4", "--index-url https://pypi.org/simple",
                                              "--extra-index-url https://download.pytorch.org/whl/cpu", "--pre"]
    read = ("requirements.txt", "sub/common.txt", "sub/constraints.txt")
    assert env.source_files == [str(tmp_path / p) for p in read]


# -- errors: what, where, how to fix --------------------------------------------------------------------------------

# One malformed file a folder, with the where and what its error must name: tests/specs/*/error-*/
# (test_spec_cases.py). Here: what needs more than one file.


def test_cyclic_includes_through_two_files(tmp_path):
    write(tmp_path / "a.txt", "-r b.txt\n")
    write(tmp_path / "b.txt", "six\n-r a.txt\n")
    with pytest.raises(SpecError, match="include cycle"):
        Environment.from_file(tmp_path / "a.txt")


def test_the_cli_prints_errors_without_a_traceback(tmp_path):
    spec = write(tmp_path / "environment.yml", "channels: [x]\ndependencies:\n  - numpy>=>1\n")
    result = cli("key", str(spec), check=False)
    assert result.returncode == SpecError.exit_code
    assert f"{spec}:3" in result.stderr and "fix:" in result.stderr
    assert "Traceback" not in result.stderr


# -- Azure ML environment YAML ----------------------------------------------------------------------------------


def test_azureml_image_with_conda_file_relative_to_the_yaml(tmp_path):
    write(tmp_path / "env" / "conda.yml",
          "channels: [conda-forge]\ndependencies:\n  - python=3.10\n  - pip:\n    - six\n")
    spec = write(tmp_path / "env" / "environment.yml", """\
$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json
name: docs-example
version: 1.10
description: An example
tags:
  cuda: 11.8
image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest
conda_file: file:conda.yml
os_type: linux
""")
    env = Environment.from_file(spec)
    assert (env.name, env.version, env.description) == ("docs-example", "1.10", "An example")
    assert env.tags == {"cuda": "11.8"}  # as written, not the float 11.8
    assert env.docker.base_image == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest"
    assert env.python.conda_dependencies.pip_packages == ["six"]
    assert not env.python.user_managed_dependencies
    same = Environment.from_conda_specification("x", tmp_path / "env" / "conda.yml")
    same.docker.base_image = env.docker.base_image
    assert same.key == env.key


def test_azureml_build_context(tmp_path):
    write(tmp_path / "context" / "Dockerfile", "FROM python:3.11\nCOPY requirements.txt .\n")
    write(tmp_path / "context" / "requirements.txt", "six\n")
    env = Environment.from_file(write(tmp_path / "env.yml", "name: ctx\nbuild:\n  path: ./context/\n"))
    assert env.docker.build_context == str(tmp_path / "context")
    assert env.docker.dockerfile_path == "Dockerfile"
    assert env.python.user_managed_dependencies
    before = env.key
    write(tmp_path / "context" / "requirements.txt", "six==1.16.0\n")
    assert env.key != before  # the context's content is keyed


# Schema errors, one a folder: tests/specs/azureml/error-*/ (test_spec_cases.py).


def test_the_inline_environment_of_an_azureml_job(tmp_path):
    write(tmp_path / "job" / "conda.yaml", "channels: [conda-forge]\ndependencies:\n  - pip:\n    - six\n")
    job = write(tmp_path / "job" / "job.yml", """\
$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
type: command
name: train
command: python train.py --data ${{inputs.data}}
environment:
  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04
  conda_file: ./conda.yaml
environment_variables:
  RUNTIME_ONLY: "1"
""")
    env = Environment.from_file(job)
    assert env.name == "train" and env.docker.base_image == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04"
    assert env.python.conda_dependencies.pip_packages == ["six"] and env.environment_variables == {}
    with pytest.raises(SpecError, match="reference to a registered Azure ML environment"):
        Environment.from_file(write(tmp_path / "ref.yml", "type: command\nenvironment: azureml:sklearn:3\n"))


def test_a_conda_file_named_as_azureml_environment_is_detected(tmp_path):
    conda = write(tmp_path / "conda.yml", "channels: [conda-forge]\ndependencies: [six]\n")
    with pytest.raises(SpecError, match="conda file pasted"):
        Environment.from_azureml_yaml(conda)
    azure = write(tmp_path / "azure.yml", "name: x\nimage: a:1\nconda_file: other.yml\n")
    write(tmp_path / "other.yml", "name: y\nimage: b:1\n")
    with pytest.raises(SpecError, match="belongs to an Azure ML environment YAML"):
        Environment.from_file(azure)


# -- prefix, images, Dockerfiles, lock files, curated -----------------------------------------------------------


def test_existing_conda_prefix(tmp_path):
    prefix = tmp_path / "envs" / "demo"
    for name, version, build, channel, subdir in [
        ("python", "3.11.9", "hab00c5b_0_cpython", "https://conda.anaconda.org/conda-forge/linux-64", "linux-64"),
        ("six", "1.16.0", "pyhd8ed1ab_0", "https://conda.anaconda.org/conda-forge/noarch", "noarch"),
        ("mkl", "2023.1.0", "h213fc3f_46344", "https://repo.anaconda.com/pkgs/main/linux-64", "linux-64"),
    ]:
        write(prefix / "conda-meta" / f"{name}-{version}-{build}.json",
              json.dumps({"name": name, "version": version, "build": build, "channel": channel, "subdir": subdir}))
    write(prefix / "lib" / "python3.11" / "site-packages" / "idna-3.7.dist-info" / "INSTALLER", "pip\n")
    write(prefix / "lib" / "python3.11" / "site-packages" / "six-1.16.0.dist-info" / "INSTALLER", "conda\n")
    env = Environment.from_file(prefix)
    deps = env.python.conda_dependencies
    assert deps.conda_packages == ["https://repo.anaconda.com/pkgs/main::mkl ==2023.1.0 h213fc3f_46344",
                                   "conda-forge::python ==3.11.9 hab00c5b_0_cpython",
                                   "conda-forge::six ==1.16.0 pyhd8ed1ab_0"]
    assert deps.channels == ["conda-forge", "https://repo.anaconda.com/pkgs/main"]
    assert deps.pip_packages == ["idna==3.7"]
    assert env.docker.platform == "linux-64"
    assert env.canonical()["conda"][1] == "conda-forge::python ==3.11.9 hab00c5b_0_cpython"
    with pytest.raises(SpecError, match="not a conda environment"):
        Environment.from_conda_prefix("x", tmp_path)


def test_existing_conda_environment_by_name(tmp_path, monkeypatch):
    write(tmp_path / "envs" / "mycondaenv" / "conda-meta" / "six-1.16.0-py_0.json",
          json.dumps({"name": "six", "version": "1.16.0", "build": "py_0", "channel": "conda-forge",
                      "subdir": "noarch"}))
    monkeypatch.setenv("CONDA_ENVS_PATH", str(tmp_path / "envs"))
    env = Environment.from_existing_conda_environment(name="myenv", conda_environment_name="mycondaenv")
    assert env.name == "myenv" and env.python.conda_dependencies.conda_packages == ["conda-forge::six ==1.16.0 py_0"]
    with pytest.raises(SpecError, match="no conda environment named 'other'"):
        Environment.from_existing_conda_environment("x", "other")


def test_docker_image_is_user_managed_unless_packages_are_given(tmp_path):
    assert references.load("docker://python:3.11") == Environment.from_docker_image("image", "python:3.11")
    env = Environment.from_docker_image("img", "python:3.11")
    assert env.python.user_managed_dependencies and env.docker.base_image == "python:3.11"
    assert env.canonical()["docker"]["base_image"] == "docker.io/library/python:3.11"
    requirements = write(tmp_path / "r.txt", "six\n")
    with_packages = Environment.from_docker_image("img", "python:3.11", pip_requirements=requirements)
    assert not with_packages.python.user_managed_dependencies
    assert with_packages.python.conda_dependencies.pip_packages == ["six"]


def test_dockerfile_and_build_context(tmp_path):
    plain = write(tmp_path / "plain" / "Dockerfile", "FROM python:3.11\nRUN pip install six\n")
    env = Environment.from_file(plain)
    assert env.docker.base_dockerfile == plain.read_text() and env.python.user_managed_dependencies
    copying = write(tmp_path / "copying" / "Dockerfile", "FROM python:3.11\nCOPY app.py /app.py\n")
    write(tmp_path / "copying" / "app.py", "print(1)\n")
    env = Environment.from_file(copying)  # it needs its directory: that becomes the build context
    assert env.docker.build_context == str(tmp_path / "copying") and env.docker.base_dockerfile is None
    # The cache-hit memo checks every source file: a changed context file must not hit the old image.
    assert env.source_files == [str(copying), str(tmp_path / "copying" / "app.py")]
    assert Environment.from_file(tmp_path / "copying").key == env.key
    with pytest.raises(SpecError, match="placeholder"):
        Environment.from_file(write(tmp_path / "t" / "Dockerfile", "FROM base:{{tag}}\n"))
    with pytest.raises(SpecError, match="has no Other.Dockerfile"):
        Environment.from_build_context("x", tmp_path / "plain", dockerfile_path="Other.Dockerfile")


LOCK = """\
version: 1
metadata:
  content_hash: {linux-64: abc}
  channels: [{url: conda-forge, used_env_vars: []}]
  platforms: [linux-64, osx-arm64]
  sources: [environment.yml]
package:
- name: six
  version: 1.16.0
  manager: conda
  platform: linux-64
  dependencies: {}
  url: https://conda.anaconda.org/conda-forge/noarch/six-1.16.0-pyh6c4a22f_0.tar.bz2
  hash: {md5: 1, sha256: aaa}
- name: six
  version: 1.16.0
  manager: conda
  platform: osx-arm64
  dependencies: {}
  url: https://conda.anaconda.org/conda-forge/noarch/six-1.16.0-pyh6c4a22f_0.tar.bz2
  hash: {md5: 1, sha256: aaa}
"""


def test_conda_lock_file_is_keyed_by_what_it_installs(tmp_path):
    env = Environment.from_file(write(tmp_path / "conda-lock.yml", LOCK))
    assert env.lock_file == str(tmp_path / "conda-lock.yml")
    assert env.python.conda_dependencies.channels == ["conda-forge"]
    key = env.key
    # Comments and the other platform's packages do not change the linux-64 image...
    reformatted = "# regenerated\n" + LOCK.replace("hash: {md5: 1, sha256: aaa}\n", "hash: {md5: 1, sha256: aaa}  \n")
    assert Environment.from_file(write(tmp_path / "b" / "conda-lock.yml", reformatted)).key == key
    other_platform = LOCK[: LOCK.rindex("  hash:")] + "  hash: {md5: 2, sha256: bbb}\n"
    assert Environment.from_file(write(tmp_path / "c" / "conda-lock.yml", other_platform)).key == key
    # ...a different package hash does.
    changed = LOCK.replace("sha256: aaa}", "sha256: ccc}", 1)
    assert Environment.from_file(write(tmp_path / "d" / "conda-lock.yml", changed)).key != key
    dev_only = LOCK.replace("  platform: linux-64\n", "  platform: linux-64\n  category: dev\n", 1)
    assert Environment.from_file(write(tmp_path / "e" / "conda-lock.yml", dev_only)).key != key


def test_curated_references_go_to_the_references_module():
    try:
        env = references.load("curated:python-minimal@latest")
    except EnvbuildError as exc:
        pytest.skip(f"no curated python-minimal here: {exc.what}")
    assert env.name == "python-minimal" and env.key.startswith("v1:")


@pytest.mark.parametrize("file", ["pyproject.toml", "Pipfile", "setup.py", "uv.lock"])
def test_project_files_are_not_environments(tmp_path, file):
    with pytest.raises(SpecError, match="describes a project, not an environment"):
        Environment.from_file(write(tmp_path / file, "[project]\n"))


def test_directory_with_nothing_to_load(tmp_path):
    with pytest.raises(SpecError, match="nothing envbuild can load"):
        Environment.from_file(tmp_path)


# -- Python API -----------------------------------------------------------------------------------------------


def test_python_api_mirrors_the_azure_ml_sdk():
    env = Environment("api")
    deps = CondaDependencies.create(conda_packages=["numpy=1.26"], pip_packages=["six"], python_version="3.11",
                                    channels=["conda-forge"])
    env.python.conda_dependencies = deps
    assert deps.conda_packages == ["python=3.11", "numpy=1.26"] and deps.get_python_version() == "3.11"
    deps.set_python_version("3.12")
    deps.add_conda_package("numpy=1.26")  # already there
    deps.add_pip_package("Requests>=2")
    deps.add_channel("bioconda")
    assert deps.conda_packages == ["python=3.12", "numpy=1.26"] and deps.channels == ["conda-forge", "bioconda"]
    deps.remove_pip_package("requests")
    deps.remove_conda_package("NumPy")
    deps.remove_channel("bioconda")
    assert (deps.conda_packages, deps.pip_packages, deps.channels) == (["python=3.12"], ["six"], ["conda-forge"])
    env.environment_variables["OMP_NUM_THREADS"] = "1"
    env.docker.gpu_support = True  # the SDK's spelling
    env.docker.enabled = True
    env.docker.cuda = "12.1.0"
    assert env.docker.gpu and env.canonical()["docker"]["cuda"] == "12.1"
    with pytest.raises(SpecError, match="builds container images"):
        env.docker.enabled = False
    env.docker.base_image = "python:3.11"
    with pytest.raises(SpecError, match="cannot be set while docker.base_image is set"):
        env.docker.base_dockerfile = "FROM scratch\n"
    env.docker.base_image = None
    env.docker.base_dockerfile = "FROM scratch\n"
    with pytest.raises(SpecError, match="exactly one of"):
        env.docker.build_context = "/tmp"


def full_environment(tmp_path) -> Environment:
    env = Environment("full", version="3", description="everything", tags={"team": "ml", "ratio": "1.10"})
    env.python.conda_dependencies = CondaDependencies.create(
        conda_packages=["numpy>=1.20,<2", "conda-forge::scipy=1.11"], pip_packages=["six==1.16.0", "Requests[socks]"],
        python_version="3.11", channels=["conda-forge", "defaults"],
        pip_options=["--extra-index-url https://download.pytorch.org/whl/cpu", "--constraint idna<4"])
    env.environment_variables = {"MODE": "fast", "EMPTY": "", "NUMBER": "1.10"}
    env.docker.gpu, env.docker.cuda, env.docker.platform = True, "12.1", "linux-aarch64"
    env.python.interpreter_path = "/opt/env/bin/python"
    return env


@pytest.mark.parametrize("base", ["image", "dockerfile", "context", "default", "lock"])
def test_save_to_directory_round_trips_exactly(tmp_path, base):
    env = full_environment(tmp_path)
    if base == "image":
        env.docker.base_image = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest"
    elif base == "dockerfile":
        env.docker.base_dockerfile = "FROM python:3.11\nRUN echo hi\n"
    elif base == "context":
        write(tmp_path / "ctx" / "Build.Dockerfile", "FROM python:3.11\nCOPY a /a\n")
        write(tmp_path / "ctx" / "a", "a\n")
        env.docker.build_context = str(tmp_path / "ctx")
        env.docker.dockerfile_path = "Build.Dockerfile"
    elif base == "lock":
        env.lock_file = str(write(tmp_path / "conda-lock.yml", LOCK.replace("osx-arm64", "linux-aarch64")))
    env.save_to_directory(tmp_path / "saved")
    loaded = Environment.load_from_directory(tmp_path / "saved")
    assert loaded == env
    assert loaded.key == env.key
    assert Environment.from_file(tmp_path / "saved") == env
    with pytest.raises(SpecError, match="not empty"):
        env.save_to_directory(tmp_path / "saved")
    env.save_to_directory(tmp_path / "saved", overwrite=True)


def test_saved_directory_is_an_azure_ml_environment(tmp_path):
    env = full_environment(tmp_path)
    env.docker.base_image = "python:3.11"
    env.save_to_directory(tmp_path / "saved")
    import yaml

    spec = yaml.safe_load((tmp_path / "saved" / "environment.yaml").read_text())
    assert spec["image"] == "python:3.11" and spec["conda_file"] == "conda.yaml" and spec["os_type"] == "linux"
    conda = yaml.safe_load((tmp_path / "saved" / "conda.yaml").read_text())
    assert conda["dependencies"][-1] == {"pip": ["--extra-index-url https://download.pytorch.org/whl/cpu",
                                                 "six==1.16.0", "Requests[socks]"]}


# -- robustness: whatever a file holds, the answer is an Environment or an EnvbuildError -----------------------------

FRAGMENTS = ["name: x\n", "channels:\n", "  - conda-forge\n", "dependencies:\n", "  - numpy\n", "  - pip:\n",
             "    - six\n", "\t", "- ", ": ", "{", "}", "[", "]", "&a ", "*a", "!!python/object:os.system ", "---\n",
             "image: x\n", "build:\n  path: .\n", "conda_file: c.yml\n", "variables:\n  A: [1]\n", "\u00e9", "#",
             "\\\n", "-r ", "-e ", "--hash=sha256:x ", "@ ", "; python_version<'3'", "==", "1.0", "git+", "https://",
             "#egg=", "\n", "{{x}}", "package:\n", "metadata: {}\n", "FROM ", "COPY . /\n"]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["environment.yml", "requirements.txt", "Dockerfile", "conda-lock.yml", "azure.yml"]),
       st.lists(st.sampled_from(FRAGMENTS), max_size=30))
def test_any_file_content_loads_or_raises_an_envbuild_error(file, fragments):
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp) / file, "".join(fragments))
        try:
            env = Environment.from_file(path)
            assert env.key.startswith("v1:")
        except EnvbuildError as exc:
            assert exc.what and exc.fix
