"""The docker CLI: which one, pointed at which engine, and the calls that go through it.

Moving bytes between an engine and a registry or a file (pull, push, save, load, import) and running containers
go through the CLI: it carries the user's registry login and passes a container's stdin, stdout, signals and exit
code straight through. ``ENVBUILD_DOCKER`` names the CLI; otherwise every ``docker`` on PATH is a candidate, in
PATH order (the builder picks among them the one that can build with BuildKit, see builder.py; any of them can
run the plain commands here). Every subprocess gets the environment of `current_endpoint()`, so it reaches the
engine the Engine API client reaches.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import IO, Callable

from ..errors import EngineError, EnvbuildError
from .endpoint import Endpoint, current_endpoint


def docker_clis() -> list[str]:
    """The docker CLIs to consider: ENVBUILD_DOCKER alone when set, else each distinct `docker` on PATH."""
    named = os.environ.get("ENVBUILD_DOCKER")
    if named:
        return [named]
    found: list[str] = []
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = shutil.which("docker", path=directory)
        if candidate and os.path.realpath(candidate) not in {os.path.realpath(f) for f in found}:
            found.append(candidate)
    return found


def docker_cli() -> str:
    """The CLI for plain commands (run, pull, push, save, load, import): the first candidate."""
    found = docker_clis()
    if not found:
        raise EngineError("no docker CLI found", fix="install docker's CLI, or point ENVBUILD_DOCKER at one")
    return found[0]


def cli_environment(endpoint: Endpoint | None = None) -> dict:
    """The environment of a docker CLI subprocess: this process's, pointed at `endpoint` (default: the current)."""
    return (endpoint or current_endpoint()).cli_environment()


def docker(args: list[str], *, what: str, on_log: Callable[[str], None] | None = None, check: bool = True,
           stdin: IO | None = None, error: type[EnvbuildError] = EngineError, fix: str | None = None,
           endpoint: Endpoint | None = None) -> str:
    """Run `docker ARGS` against the engine; returns its stdout (each line of stdout and stderr also goes to
    `on_log`). A failure raises `error` naming `what` failed and the CLI's last words, unless check=False."""
    done = subprocess.run([docker_cli(), *args], stdin=stdin if stdin is not None else subprocess.DEVNULL,
                          capture_output=True, text=True, errors="replace", env=cli_environment(endpoint))
    output = done.stdout + done.stderr
    if on_log:
        for line in output.splitlines():
            on_log(line)
    if check and done.returncode != 0:
        raise error(f"docker {what} failed: {output.strip()[-800:]}", fix=fix)
    return done.stdout


def pull(ref: str, *, on_log: Callable[[str], None] | None = None, error: type[EnvbuildError] = EngineError,
         fix: str | None = None) -> None:
    docker(["pull", ref], what=f"pull {ref}", on_log=on_log, error=error, fix=fix)


def push(ref: str, *, on_log: Callable[[str], None] | None = None, error: type[EnvbuildError] = EngineError,
         fix: str | None = None) -> str | None:
    """Push `ref`; returns the manifest digest the registry reported (None when the CLI did not say)."""
    output = docker(["push", ref], what=f"push {ref}", on_log=on_log, error=error, fix=fix)
    found = re.search(r"digest: (sha256:[0-9a-f]{64})", output)
    return found.group(1) if found else None


def save(refs: list[str], path: str, *, endpoint: Endpoint | None = None) -> None:
    """Write the images `refs` to the tar archive `path` (`docker save`)."""
    docker(["save", "-o", path, *refs], what=f"save {' '.join(refs)}", endpoint=endpoint)


def load(path: str, *, endpoint: Endpoint | None = None) -> None:
    """Load the images of the tar archive `path` (`docker load`), e.g. onto another engine."""
    with open(path, "rb") as archive:
        docker(["load"], what=f"load {path}", stdin=archive, endpoint=endpoint)


def import_root(tar: IO, tag: str) -> None:
    """Make the image `tag` from a root filesystem streamed as a tar archive (`docker import`)."""
    docker(["import", "-", tag], what=f"import of {tag}", stdin=tar)

