"""Hostile and clumsy input: no spec hangs, crashes or escapes as anything but an EnvbuildError at file:line.

The fuzz tests draw documents of every form envbuild loads (tests/support/hostile.py). Their size is the
hypothesis profile's: CI's derandomized default (100 each), `HYPOTHESIS_PROFILE=fuzz` for the dedicated run of
10,000 cases each (the counts it prints are in the issue note). The regressions below are the inputs that hung,
crashed or printed a traceback before; each runs in its own process where a crash (SIGSEGV) or a hang is the
failure, with a generous timeout as a guard, not a measurement.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from envbuild.cli import main
from envbuild.errors import EnvbuildError, SpecError
from envbuild.keys import canonical_spec
from envbuild.limits import MAX_DEPTH, MAX_NAME_CHARS
from envbuild.spec import Environment
from tests.conftest import write
from tests.support.cli import cli, environment
from tests.support.hostile import Tally, documents

TALLY = Tally()
CLI_TALLY = Tally()
_counter = iter(range(10**9))


def _has_line(error: EnvbuildError) -> bool:
    return bool(error.where) and error.where.rsplit(":", 1)[-1].isdigit()


def _place(root: Path, name: str, data: bytes) -> Path:
    directory = root / str(next(_counter))
    directory.mkdir()
    (directory / "conda.yaml").write_text("dependencies: [numpy]\n")
    path = directory / name
    path.write_bytes(data)
    return path


@settings(deadline=None, suppress_health_check=list(HealthCheck))
@given(document=documents)
def test_every_loader_answers_any_file_with_a_value_or_one_envbuild_error(tmp_path_factory, document):
    path = _place(tmp_path_factory.getbasetemp(), *document)
    try:
        canonical_spec(Environment.from_file(path)).key
    except EnvbuildError as error:
        TALLY.add(f"{type(error).__name__}{'' if _has_line(error) else ' (no line)'}")
        assert error.where, error.message  # every loader error names its file at least
        return
    TALLY.add("loaded")


@settings(deadline=None, suppress_health_check=list(HealthCheck))
@given(document=documents)
def test_the_command_line_never_prints_a_traceback(tmp_path_factory, capsys, document):
    path = _place(tmp_path_factory.getbasetemp(), *document)
    code = main(["key", str(path)])
    captured = capsys.readouterr()
    CLI_TALLY.add(f"exit {code}")
    assert "Traceback" not in captured.err and "internal error" not in captured.err, captured.err
    assert code in (0, 2, 3), captured.err  # loaded, or a spec (2) / resolve (3) error


def test_fuzz_counts(request):
    """Not a check: prints what the fuzz tests saw (run with -s), for the issue note."""
    print(f"\nloaders: {TALLY}\ncli: {CLI_TALLY}")


def _envbuild_key(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "envbuild", "key", str(path)], capture_output=True, text=True,
                          env=environment(), timeout=60)


def test_a_549_byte_alias_bomb_is_refused_at_its_line(tmp_path):
    lines = ["name: bomb", "image: python:3.11", "properties:", "  a0: &a0 [x, y, z, x, y, z, x, y, z]"]
    lines += [f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    spec = write(tmp_path / "environment.yaml", "\n".join(lines) + "\n")
    assert len(spec.read_bytes()) < 600
    done = _envbuild_key(spec)
    assert done.returncode == 2 and "aliases expand" in done.stderr, done.stderr
    assert f"{spec}:" in done.stderr and "Traceback" not in done.stderr


def test_a_few_aliases_still_load(tmp_path):
    spec = write(tmp_path / "environment.yml", "channels: &c [conda-forge]\ndependencies:\n  - python=3.11\n"
                                                "variables: {A: &v one, B: *v}\n")
    env = Environment.from_file(spec)
    assert env.environment_variables == {"A": "one", "B": "one"}


@pytest.mark.parametrize("text", ["dependencies: " + "[" * 50_000 + "]" * 50_000 + "\n",
                                  "name: x\nimage: python:3.11\nproperties:\n  p: " + "[" * 5_000 + "]" * 5_000 + "\n",
                                  "dependencies:\n" + "".join("  " * i + "- \n" for i in range(1, 200))],
                         ids=["50000-flow", "5000-azure-properties", "200-block"])
def test_deep_nesting_is_one_error_not_a_crash(tmp_path, text):
    spec = write(tmp_path / ("environment.yaml" if "image:" in text else "environment.yml"), text)
    done = _envbuild_key(spec)
    assert done.returncode == 2, (done.returncode, done.stderr[-500:])  # not 139 (SIGSEGV), not a traceback
    assert f"more than {MAX_DEPTH} levels" in done.stderr and f"{spec}:" in done.stderr


def test_a_deep_lock_file_is_refused_too(tmp_path):
    lock = write(tmp_path / "conda-lock.yml", "version: 1\nmetadata: " + "[" * 50_000 + "]" * 50_000 + "\n")
    done = _envbuild_key(lock)
    assert done.returncode == 2 and "levels deep" in done.stderr, done.stderr[-500:]


@pytest.mark.parametrize("placeholder", ["{{name}}", "{{latest-image-tag:\\d{6}}}"])
def test_an_unrendered_placeholder_is_reported_at_its_line(tmp_path, placeholder):
    spec = write(tmp_path / "environment.yaml", f"name: x\ndescription: d\nimage: mcr.microsoft.com/a:{placeholder}\n")
    with pytest.raises(SpecError) as caught:
        Environment.from_file(spec)
    assert caught.value.where == f"{spec}:3" and placeholder in caught.value.what


TYPED = {
    "pip_options: 5": "setting `pip_options` must be a list",
    "pip_options: [[--pre]]": "list of text items",
    "base_dockerfile_file: [a, b]": "setting `base_dockerfile_file` must be text",
    "lock_file: missing-conda-lock.yml": "setting `lock_file` missing-conda-lock.yml does not exist",
    "base_dockerfile_file: " + "d" * 5_000: "over envbuild's limit",
    "gpu: maybe": "must be true or false",
    "cuda: [12]": "must be a version",
    "cuda: twelve": "is not a CUDA version",
}


@pytest.mark.parametrize("field", sorted(TYPED))
def test_a_wrongly_typed_envbuild_section_field_is_refused_at_its_line(tmp_path, field):
    spec = write(tmp_path / "environment.yaml", f"name: x\nimage: python:3.11\nenvbuild:\n  {field}\n")
    with pytest.raises(SpecError) as caught:
        Environment.from_file(spec)
    assert TYPED[field] in caught.value.what and caught.value.where == f"{spec}:4"


def test_a_very_long_conda_file_is_missing_at_its_line(tmp_path):
    spec = write(tmp_path / "environment.yaml", "name: x\nimage: python:3.11\nconda_file: " + "c" * 300 + "\n")
    with pytest.raises(SpecError) as caught:
        Environment.from_file(spec)
    assert caught.value.where == f"{spec}:3" and "does not exist" in caught.value.what


@pytest.mark.parametrize("metadata,line,what", [
    ("  platforms: 5\n  channels: []\n", 5, "metadata.platforms"),
    ("  platforms: [linux-64]\n  channels: 7\n", 6, "metadata.channels"),
])
def test_wrongly_typed_lock_metadata_is_refused_at_its_line(tmp_path, metadata, line, what):
    lock = write(tmp_path / "conda-lock.yml", "# generated by conda-lock\nversion: 1\npackage: []\nmetadata:\n"
                 + metadata)
    with pytest.raises(SpecError) as caught:
        Environment.from_file(lock)
    assert what in caught.value.what and caught.value.where == f"{lock}:{line}"


@pytest.mark.parametrize("name,text,line", [
    ("requirements.txt", "six\n--index-url https://example.invalid/" + "a" * 200_000 + "\n", 2),
    ("environment.yml", "channels:\n  - " + "c" * 200_000 + "\ndependencies: [python]\n", 2),
    ("requirements.txt", "a" * 200_000 + "==1\n", 1),
    ("environment.yml", "channels:\n  - " + "c" * 5_000 + "\ndependencies: [python]\n", 2),
], ids=["index-option-200k", "channel-200k", "requirement-200k", "channel-5k"])
def test_long_values_are_refused_at_their_line_with_the_limit_named(tmp_path, name, text, line):
    spec = write(tmp_path / name, text)
    with pytest.raises(SpecError) as caught:
        canonical_spec(Environment.from_file(spec)).key
    assert caught.value.where == f"{spec}:{line}" and "limit" in caught.value.what


def test_a_20000_line_requirements_file_loads_every_line(tmp_path):
    spec = write(tmp_path / "requirements.txt", "".join(f"package-{i}==1.{i}\n" for i in range(20_000)))
    env = Environment.from_file(spec)
    assert len(env.python.conda_dependencies.pip_packages) == 20_000
    assert env.python.conda_dependencies.origins["package-19999==1.19999"].line == 20_000


def test_a_name_at_the_limit_is_accepted_and_one_over_is_not(tmp_path):
    ok = write(tmp_path / "ok" / "requirements.txt", "a" * (MAX_NAME_CHARS - 5) + "==1\n")
    canonical_spec(Environment.from_file(ok)).key
    over = write(tmp_path / "over" / "requirements.txt", "a" * MAX_NAME_CHARS + "==1\n")
    with pytest.raises(SpecError):
        Environment.from_file(over)


@pytest.mark.parametrize("image", ["UPPER/Case:1", "a b", "python:", "x@sha256:zz"])
def test_an_invalid_image_is_refused_at_its_line_before_any_engine_call(tmp_path, image):
    spec = write(tmp_path / "environment.yaml", f"name: x\nimage: '{image}'\n")
    done = cli("render", str(spec), check=False, env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert done.returncode == 2 and f"{spec}:2" in done.stderr and "not a valid image reference" in done.stderr


def test_not_utf8_is_reported_at_the_line_of_the_first_bad_byte(tmp_path):
    spec = tmp_path / "requirements.txt"
    spec.write_bytes(b"six\nnumpy\n\xff\xfe\n")
    with pytest.raises(SpecError) as caught:
        Environment.from_file(spec)
    assert caught.value.where == f"{spec}:3"
