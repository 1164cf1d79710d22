"""`envbuild run` / `Environment.run`: build if needed, run in the image with the working directory mounted.

The docker command line is checked without an engine; everything else runs real containers on the real engine
(one tiny pip environment, built once for the module).
"""

from __future__ import annotations

import json
import os
import csv
from pathlib import Path

import pytest

from envbuild import curated, runner
from envbuild.cache import Index
from envbuild.errors import EnvbuildError
from envbuild.resolver import read_lock
from envbuild.spec import Environment
from tests.conftest import write
from tests.support.cli import cli

SPEC = """\
name: runner-test
dependencies:
  - pip:
    - six>=1.16
variables:
  GREETING: bonjour
"""

SCRIPT = """\
import os, sys
import six
with open("result.txt", "w") as out:
    out.write(f"{six.__name__} {os.environ['GREETING']} {os.environ.get('EXTRA', '-')} {os.getcwd()}")
print("to stdout")
print("to stderr", file=sys.stderr)
sys.exit(int(sys.argv[1]))
"""


# -- the command line, without an engine --------------------------------------------------------------------------


def test_a_comma_in_the_working_directory_stays_in_the_path(tmp_path):
    workdir = tmp_path / "a,readonly"
    cmd = runner.docker_command("img:1", ["true"], workdir=workdir, docker="docker")
    assert next(csv.reader([cmd[cmd.index("--mount") + 1]])) == [
        "type=bind", f"source={workdir}", f"target={cmd[cmd.index('-w') + 1]}"]


def test_docker_command_mounts_the_working_directory_and_applies_options(tmp_path):
    cmd = runner.docker_command("img:1", ["python", "x.py"], workdir=tmp_path, shm_size="2g", gpus=True,
                                environment={"B": "2", "A": "1"}, docker="docker")
    assert cmd[:3] == ["docker", "run", "--rm"]
    mount = next(csv.reader([cmd[cmd.index("--mount") + 1]]))  # docker reads the value as one CSV record
    assert mount == ["type=bind", f"source={tmp_path}", f"target={tmp_path}"]
    assert cmd[cmd.index("-w") + 1] == str(tmp_path)
    assert cmd[cmd.index("--shm-size") + 1] == "2g"
    assert cmd[cmd.index("--gpus") + 1] == "all"
    assert cmd[-3:] == ["img:1", "python", "x.py"]
    assert [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "-e"] == ["A=1", "B=2"]
    assert "--gpus" not in runner.docker_command("img:1", ["true"], workdir=tmp_path, docker="docker")
    as_user = runner.docker_command("img:1", ["true"], workdir=tmp_path, user="1000:1000", docker="docker")
    assert as_user[as_user.index("--user") + 1] == "1000:1000" and "HOME=/tmp" in as_user


def test_a_working_directory_that_would_hide_system_files_is_mounted_at_workspace(tmp_path):
    assert runner.mount_point(Path("/usr/src/project")) == "/workspace"
    assert runner.mount_point(Path("/")) == "/workspace"
    assert runner.mount_point(tmp_path) == str(tmp_path)
    assert runner.mount_point(tmp_path, "/code") == "/code"


def test_gpu_images_are_known_by_the_cuda_label_the_renderer_gives_them():
    """run decides on --gpus from the image; the label it reads is the one the renderer writes for GPU stacks."""
    from envbuild.bases import BaseImage
    from envbuild.keys import canonical_spec
    from envbuild.renderer import render

    for name, gpu in (("pytorch-gpu", True), ("sklearn", False)):
        env = canonical_spec(curated.load_curated(f"curated:{name}@latest"))
        lock = read_lock(curated.curated_path(f"curated:{name}") / "conda-lock.yml")
        base = BaseImage(ref="base:nominal", id="nominal", python_version="3.11", glibc="2.36", from_ref="base:nominal")
        assert (f"{runner.GPU_LABEL}=" in render(env, lock, base).dockerfile) is gpu


# -- real containers -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_home(engine, tmp_path_factory):
    """One envbuild home for the module, so the test environment is built once."""
    path = tmp_path_factory.mktemp("run-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENVBUILD_HOME", str(path))
        yield path


@pytest.fixture
def project(tmp_path) -> Path:
    write(tmp_path / "environment.yml", SPEC)
    write(tmp_path / "script.py", SCRIPT)
    return tmp_path


@pytest.mark.engine
def test_api_run_writes_into_the_mounted_directory_and_returns_exit_code_and_output(shared_home, project):
    env = Environment.from_file(project / "environment.yml")
    result = env.run(["python", "script.py", "3"], workdir=project, environment={"EXTRA": "extra"})
    assert result.returncode == 3 and not result.ok
    with pytest.raises(EnvbuildError, match="exited with 3") as failed:
        result.check()
    assert "to stderr" in failed.value.fix
    assert (result.stdout, result.stderr) == ("to stdout\n", "to stderr\n")
    assert (project / "result.txt").read_text() == f"six bonjour extra {project}"
    assert result.image.spec_key == env.key

    again = env.run("echo $GREETING from $(pwd)", workdir=project)
    assert (again.returncode, again.stdout) == (0, f"bonjour from {project}\n")
    assert again.image.cached and again.image.id == result.image.id


@pytest.mark.engine
def test_cli_run_passes_exit_code_stdout_and_stderr_through(shared_home, project):
    done = cli("run", "environment.yml", "--", "python", "script.py", "0", cwd=project)
    assert done.stdout == "to stdout\n" and done.stderr.endswith("to stderr\n")
    assert (project / "result.txt").read_text() == f"six bonjour - {project}"

    (project / "result.txt").unlink()
    failed = cli("run", "environment.yml", "-q", "-e", "EXTRA=cli", "--", "python", "script.py", "42", cwd=project,
                 check=False)
    assert failed.returncode == 42
    assert (failed.stdout, failed.stderr) == ("to stdout\n", "to stderr\n")
    assert (project / "result.txt").read_text() == f"six bonjour cli {project}"

    missing = cli("run", "environment.yml", "--", "no-such-command", cwd=project, check=False)
    assert missing.returncode == 127


@pytest.mark.engine
def test_cli_run_shm_size_is_configurable(shared_home, project):
    probe = "import os; s = os.statvfs('/dev/shm'); print(s.f_blocks * s.f_frsize)"
    done = cli("run", "environment.yml", "--shm-size", "256m", "--", "python", "-c", probe, cwd=project)
    assert int(done.stdout) == 256 * 1024 * 1024


@pytest.mark.engine
def test_run_by_catalog_name_records_the_image_and_its_lock(shared_home, project):
    registered = json.loads(cli("env", "create", "--file", "environment.yml", "--name", "runner", "--json",
                                cwd=project).stdout)
    for _ in range(2):
        done = cli("run", "runner:1", "--", "python", "-c", "import six; print(six.__version__)", cwd=project)
    shown = json.loads(cli("env", "show", "--name", "runner", "--version", "1", "--json", cwd=project).stdout)
    (build,) = shown["builds"]  # the second run reused the image: one record
    assert shown["key"] == registered["key"]
    assert build["image"].startswith("envbuild/env:") and build["image_id"].startswith("sha256:")
    lock = cli("env", "show", "--name", "runner", "--version", "1", "--lock", cwd=project).stdout
    locked = [line for line in lock.splitlines() if "six-" in line and "url:" in line]
    assert locked and locked[0].split("six-")[1].split("-")[0] == done.stdout.strip()
    history = cli("history", "runner", cwd=project).stdout
    assert build["image"] in history

    prebuilt = json.loads(cli("env", "create", "--file", "environment.yml", "--name", "prebuilt", "--build", "--json",
                              cwd=project).stdout)
    assert [b["image_id"] for b in prebuilt["builds"]] == [build["image_id"]]  # same definition, same image


@pytest.mark.engine
def test_the_lock_of_an_image_this_home_did_not_build_is_read_from_the_image(shared_home, home, project):
    """Images pulled from a shared registry or found on the engine carry their lock: the catalog records that."""
    env = Environment.from_file(project / "environment.yml")
    image = env.run(["true"], workdir=project, cache_dir=shared_home).image  # `home` is ENVBUILD_HOME here
    with Index(home) as fresh:
        assert fresh.detail_get(image.key) is None  # nothing about this image in the new home
    text = runner.lock_text(image, cache_dir=home)
    assert read_lock(write(project / "from-image.yml", text)).key == image.lock_key


@pytest.mark.engine
def test_curated_reference_runs(shared_home, project):
    done = cli("run", "curated:python-minimal@latest", "--", "python", "-c",
               "import os, sys; print(sys.version_info[:2], os.environ['PYTHONUNBUFFERED'])", cwd=project)
    assert done.stdout == "(3, 11) 1\n"


@pytest.mark.engine
def test_shell_reads_its_commands_from_stdin_when_not_a_terminal(shared_home, project):
    done = cli("shell", "environment.yml", cwd=project, input='echo "$GREETING in $(pwd)"\nexit 5\n', check=False)
    assert done.returncode == 5, done.stderr
    assert done.stdout == f"bonjour in {project}\n"


@pytest.mark.engine
def test_running_as_a_user_writes_files_they_own_with_a_writable_home(shared_home, project):
    shared = project / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    env = Environment.from_file(project / "environment.yml")
    result = env.run("touch made-here && mkdir -p $HOME/.cache && id -u", workdir=shared, user="4321:4321")
    assert (result.returncode, result.stdout) == (0, "4321\n"), result.stderr
    assert os.stat(shared / "made-here").st_uid == 4321
