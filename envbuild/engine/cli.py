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
         fix: str | None = None, timeout: float | None = None) -> None:
    transfer(["pull", ref], what=f"pull {ref}", on_log=on_log, error=error, fix=fix, timeout=timeout)


def push(ref: str, *, on_log: Callable[[str], None] | None = None, error: type[EnvbuildError] = EngineError,
         fix: str | None = None, timeout: float | None = None) -> str | None:
    """Push `ref`; returns the manifest digest the registry reported (None when the CLI did not say)."""
    output = transfer(["push", ref], what=f"push {ref}", on_log=on_log, error=error, fix=fix, timeout=timeout)
    found = re.search(r"digest: (sha256:[0-9a-f]{64})", output)
    return found.group(1) if found else None


# What the CLI prints when a registry refused a layer and it tries again (five times, with growing waits: about a
# minute against a registry that answers 5xx). A refusal is not going to change in the next minute.
_RETRYING = re.compile(r"Retrying in \d+ seconds?")


def transfer(args: list[str], *, what: str, on_log: Callable[[str], None] | None = None,
             error: type[EnvbuildError] = EngineError, fix: str | None = None, timeout: float | None = None) -> str:
    """`docker pull|push ...`, ending at the first sign of the CLI retrying (its "Retrying in N seconds" lines) or
    after `timeout` seconds, with one short line: the cause, never the retry log. Returns the output."""
    import threading

    process = subprocess.Popen([docker_cli(), *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, errors="replace", env=cli_environment())
    timer = threading.Timer(timeout, process.kill) if timeout else None
    if timer:
        timer.start()
    lines: list[str] = []
    refused = None
    try:
        for line in process.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            if on_log:
                on_log(line)
            if _RETRYING.search(line):
                refused = line
                process.kill()
                break
        returncode = process.wait()
    finally:
        if timer:
            timer.cancel()
        process.stdout.close()
    if refused is not None:
        raise error(f"docker {what}: the registry refused a layer, stopped at the CLI's first retry "
                    f"({_short(refused)})", fix=fix)
    if returncode != 0:
        if timeout and returncode < 0:
            raise error(f"docker {what} took more than {timeout:.0f}s", fix=fix)
        last = next((line for line in reversed(lines) if line.strip()), "no output")
        raise error(f"docker {what} failed: {_short(last)}", fix=fix)
    return "\n".join(lines)


def _short(line: str, limit: int = 200) -> str:
    line = line.strip()
    return line if len(line) <= limit else line[:limit] + "…"


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

