"""Running `uv pip compile` so that no package's code runs on the host.

uv reads a wheel's metadata from the index, but an sdist's only by building it: running its setup.py (or build
backend), which is code from whoever published the package. A lock is therefore first tried on the host with
`--no-build`: most requirements resolve to wheels, and then nothing else happens (about 0.3 s). Only when that
fails because an sdist has to be built is the same command run again inside a throwaway container (`docker run
--rm`) of the target's base image: the build happens there, with the target's Python and platform, and the
container is gone afterwards. The container sees the host's uv binary, the work directory and any local
`--find-links` directory (the first read-only), the host's CA bundle read-only (corporate proxies), the index
variables by name only (never on a command line), and the network (PyPI). Opting in to host builds
(`allow_host_builds`) runs the command on the host as it is.

A caveat of `--no-build` kept in mind: a package whose newest release has only an sdist may resolve to an older
release with a wheel on the host attempt; such a lock installs wheels only, which is what most users want.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import ResolveError
from ..hosts import is_loopback


@dataclass(frozen=True)
class SdistPolicy:
    """Where an sdist may be built to read its metadata while locking: in a container of `image` (the target's
    base; None means envbuild's default base), or on the host when `allow_host` (an explicit opt-in)."""

    image: str | None = None
    allow_host: bool = False


# uv's words when --no-build stops it: "Wheels are required for `name` because building from source is disabled".
_BUILD_DISABLED = "building from source is disabled"


def compile_requirements(cmd: list[str], workdir: Path, env: dict, policy: SdistPolicy | None) -> \
        subprocess.CompletedProcess:
    """Run the `uv pip compile` command `cmd` (its files under `workdir`) without building on the host unless
    `policy` allows it."""
    from ..limits import MAX_NAME_CHARS

    too_long = next((arg for arg in cmd if len(arg) > MAX_NAME_CHARS), None)
    if too_long is not None:  # from the API (files are checked at their line): never an "Argument list too long"
        raise ResolveError(f"a pip requirement or option of {len(too_long):,} characters, over envbuild's limit of "
                           f"{MAX_NAME_CHARS:,}", fix="shorten it")  # not shown: an index URL can hold a token
    policy = policy or SdistPolicy()
    if policy.allow_host:
        return subprocess.run(cmd, capture_output=True, text=True, env=env)
    first = subprocess.run([*cmd, "--no-build"], capture_output=True, text=True, env=env)
    if first.returncode == 0 or _BUILD_DISABLED not in first.stderr:
        return first
    return _in_container(cmd, workdir, env, policy, _sdist_name(first.stderr))


def _sdist_name(stderr: str) -> str:
    import re

    found = re.search(r"Wheels are required for `([^`]+)`", stderr)
    return found.group(1) if found else "a package"


def _in_container(cmd: list[str], workdir: Path, env: dict, policy: SdistPolicy, package: str) -> \
        subprocess.CompletedProcess:
    from ..config import host_ca_bundle
    from ..engine.cli import cli_environment, docker_cli
    from ..errors import EngineError

    image = policy.image or _default_image()
    uv = os.path.realpath(cmd[0])
    args = ["run", "--rm", "--user", f"{os.getuid()}:{os.getgid()}", "-v", f"{uv}:{uv}:ro",
            "-v", f"{workdir}:{workdir}", "-e", "HOME=/tmp", "-e", "UV_CACHE_DIR=/tmp/uv-cache",
            "-e", "UV_PYTHON_DOWNLOADS=never", "-e", "UV_NO_PROGRESS=1"]
    for directory in _local_links(cmd):
        args += ["-v", f"{directory}:{directory}:ro"]
    args += ["-w", os.getcwd()]  # a relative --find-links is read from here, as on the host
    ca = host_ca_bundle()
    if ca is not None:
        args += ["-v", f"{ca.resolve()}:/etc/envbuild-ca.pem:ro", "-e", "SSL_CERT_FILE=/etc/envbuild-ca.pem"]
    passed = {name: value for name, value in env.items() if name.startswith(("UV_INDEX", "UV_DEFAULT_INDEX",
                                                                            "UV_EXTRA_INDEX", "UV_NATIVE_TLS"))}
    for name in passed:
        args += ["-e", name]  # by name: the value (it may hold a token) comes from the CLI's environment
    if _loopback_index(cmd, passed):
        args += ["--network", "host"]  # an index on the host's loopback is reachable only from its network
    try:
        docker = docker_cli()
    except EngineError as exc:
        raise _refusal(package, f"no container can be started here ({exc.what})") from None
    done = subprocess.run([docker, *args, image, *cmd], capture_output=True, text=True,
                          env={**cli_environment(), **passed})
    if done.returncode in (125, 126, 127):  # docker's own failures: no engine, no image, no uv to run
        raise _refusal(package, f"the container on {image} did not start: {done.stderr.strip()[-300:]}")
    if "No interpreter found" in done.stderr or "no Python" in done.stderr.lower():
        raise _refusal(package, f"{image} has no Python to build it with")
    return done


def _refusal(package: str, why: str) -> ResolveError:
    return ResolveError(f"{package} is published only as source, and reading its metadata means running its build "
                        f"code; envbuild runs that only in a container, and {why}",
                        fix="pin a version with a wheel, start the Docker Engine (and use a base image with "
                            "Python), or allow builds on this machine explicitly: `--allow-host-builds` "
                            "(API: allow_host_builds=True)")


def _default_image() -> str:
    from ..bases import DEFAULT_BASE, resolve_base
    from ..engine import Engine

    engine = Engine()
    try:
        return resolve_base(DEFAULT_BASE, engine).from_ref
    finally:
        engine.close()


def _option_values(cmd: list[str], flags: tuple[str, ...]) -> list[str]:
    return [cmd[i + 1] for i, arg in enumerate(cmd[:-1]) if arg in flags]


def _local_links(cmd: list[str]) -> list[str]:
    """The local directories `--find-links` names (mounted at the same path, read-only)."""
    found = []
    for value in _option_values(cmd, ("--find-links",)):
        path = value.removeprefix("file://")
        if "://" not in path and os.path.isdir(path):
            found.append(os.path.abspath(path))
    return found


def _loopback_index(cmd: list[str], passed: dict) -> bool:
    from urllib.parse import urlsplit

    urls = _option_values(cmd, ("--index-url", "--extra-index-url", "--find-links")) + list(passed.values())
    for url in urls:
        for one in url.split():
            try:
                host = urlsplit(one).hostname
            except ValueError:
                continue
            if is_loopback(host):
                return True
    return False
