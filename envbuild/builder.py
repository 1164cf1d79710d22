"""Builders: turn a build context (Dockerfile + files) into an image on a real engine.

BuildKit is what the templates are written for (cache mounts for downloads, secrets for CA bundles and index
tokens), so the builder looks for a docker CLI that can use it, in this order:
1. ``docker buildx build`` where the buildx plugin exists (``ENVBUILD_BUILDX_BUILDER`` names a buildx builder,
   e.g. a remote BuildKit made with ``docker buildx create``);
2. a docker CLI before 23, whose built-in builder is BuildKit when ``DOCKER_BUILDKIT=1``;
3. the docker SDK's classic builder, last: it cannot mount caches or secrets, so envbuild renders a plainer
   Dockerfile for it and says so (a logged warning, and `Builder.limitations` in every result).
The candidate CLIs (``ENVBUILD_DOCKER``, else PATH) and the engine they build on (DOCKER_HOST with TLS, a docker
context) come from the Docker adapter (engine/), the same engine the cache-hit path asks: a build never lands on an
engine the next lookup does not see. ``ENVBUILD_BUILDER=buildx|buildkit|classic`` forces a kind. Logs stream line
by line to a callback and are returned whole for the cache entry; a failure names the failing step and shows its
last lines.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .engine.cli import cli_environment, docker_clis
from .engine.endpoint import current_endpoint
from .errors import BuildError

log = logging.getLogger(__name__)

LogCallback = Callable[[str], None]
KINDS = ("buildx", "buildkit", "classic")
CLASSIC_LIMITATIONS = ("the classic builder cannot use cache mounts or BuildKit secrets: downloads are not cached "
                       "between builds and the host CA bundle is not passed in; install buildx or a docker CLI "
                       "before 23 (ENVBUILD_DOCKER) for BuildKit")


@dataclass(frozen=True)
class Builder:
    kind: str  # "buildx" | "buildkit" | "classic"
    path: str | None  # the docker CLI (None only for the classic builder without any CLI)
    buildx_builder: str | None = None
    driver: str | None = None  # a buildx builder's driver (docker, docker-container, remote, ...): layer_cache.py

    @property
    def buildkit(self) -> bool:
        return self.kind != "classic"

    @property
    def limitations(self) -> str | None:
        return None if self.buildkit else CLASSIC_LIMITATIONS

    def build_command(self) -> list[str]:
        if self.kind == "buildx":
            return [self.path, "buildx", "build", "--load"] + (["--builder", self.buildx_builder]
                                                                if self.buildx_builder else [])
        return [self.path, "build"]

    def environment(self) -> dict:
        """The CLI's environment: pointed at the current engine, with BuildKit switched on where that takes a flag."""
        env = cli_environment()
        if self.kind == "buildkit":
            env["DOCKER_BUILDKIT"] = "1"
        return env


def _probe(path: str) -> Builder | None:
    env = cli_environment()
    try:
        if subprocess.run([path, "buildx", "version"], capture_output=True, timeout=20, env=env).returncode == 0:
            named = os.environ.get("ENVBUILD_BUILDX_BUILDER") or None
            return Builder("buildx", path, named, _buildx_driver(path, named, env))
        version = subprocess.run([path, "version", "--format", "{{.Client.Version}}"], capture_output=True,
                                 text=True, timeout=20, env=env).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"(\d+)\.", version)
    # Clients before 23 carry BuildKit themselves; later ones delegate to the buildx plugin.
    if match and int(match.group(1)) < 23:
        return Builder("buildkit", path)
    return None


def _buildx_driver(path: str, named: str | None, env: dict) -> str | None:
    """The driver of the buildx builder `named` (None: the current one), from `docker buildx inspect`."""
    try:
        shown = subprocess.run([path, "buildx", "inspect", *([named] if named else [])], capture_output=True,
                               text=True, timeout=20, env=env).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"^Driver:\s*(\S+)", shown, re.MULTILINE)
    return found.group(1) if found else None


_DETECTED: dict[str | None, Builder] = {}


def find_builder(kind: str | None = None) -> Builder:
    """The best builder on this machine, or the `kind` asked for (argument, else ENVBUILD_BUILDER)."""
    kind = kind or os.environ.get("ENVBUILD_BUILDER") or None
    if kind not in (None, *KINDS):
        raise BuildError(f"unknown builder {kind!r}", fix=f"use one of {', '.join(KINDS)} (ENVBUILD_BUILDER)")
    if kind not in _DETECTED:
        _DETECTED[kind] = _detect(kind)
    return _DETECTED[kind]


def _detect(kind: str | None) -> Builder:
    candidates = docker_clis()
    if kind != "classic":
        for path in candidates:
            builder = _probe(path)
            if builder and kind in (None, builder.kind):
                log.debug("building with %s (%s)", builder.path, builder.kind)
                return builder
        if kind is not None:
            raise BuildError(f"no docker CLI offers the {kind} builder (looked at {', '.join(candidates) or 'PATH'})",
                             fix="install the buildx plugin or a docker CLI before 23, point ENVBUILD_DOCKER at it, "
                                 "or unset ENVBUILD_BUILDER")
    try:
        import docker  # noqa: F401  (the classic builder talks through the SDK)
    except ImportError:
        raise BuildError("no docker CLI that can build with BuildKit, and no docker SDK for the classic builder",
                         fix="install the buildx plugin, or a docker CLI before 23, or `pip install docker`") from None
    log.warning("%s the classic builder: %s", "using" if kind else "no BuildKit found, falling back to",
                CLASSIC_LIMITATIONS)
    return Builder("classic", candidates[0] if candidates else None)


def build_image(context: Path, tag: str, *, dockerfile: str = "Dockerfile", labels: dict[str, str] | None = None,
                build_args: dict[str, str] | None = None, secrets: dict[str, Path] | None = None,
                on_log: LogCallback | None = None, extra_args: list[str] | None = None,
                cache_from: list[str] | None = None, builder: Builder | None = None) -> tuple[str, str]:
    """Build `context` into `tag`. Returns (image id, full build log). Raises BuildError on failure.

    `cache_from` names images (usually in the shared registry) whose inline cache metadata lets BuildKit reuse
    their layers; every BuildKit image built here carries that metadata itself.
    """
    builder = builder or find_builder()
    if not builder.buildkit:
        return _build_classic(context, tag, dockerfile, labels, build_args, secrets, on_log)
    with tempfile.TemporaryDirectory(prefix="envbuild-iid-") as tmp:
        iidfile = Path(tmp, "iid")
        cmd = builder.build_command() + ["--progress=plain", "-f", str(context / dockerfile), "-t", tag,
                                         "--iidfile", str(iidfile)]
        for k, v in sorted((labels or {}).items()):
            cmd += ["--label", f"{k}={v}"]
        for k, v in sorted({"BUILDKIT_INLINE_CACHE": "1", **(build_args or {})}.items()):
            cmd += ["--build-arg", f"{k}={v}"]
        for secret_id, src in sorted((secrets or {}).items()):
            cmd += ["--secret", f"id={secret_id},src={src}"]
        for ref in cache_from or []:
            cmd += ["--cache-from", ref]
        cmd += list(extra_args or []) + [str(context)]
        log.debug("running %s", " ".join(cmd))
        lines: list[str] = []
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=builder.environment(), errors="replace", preexec_fn=_die_with_parent)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip("\n")
                lines.append(line)
                if on_log:
                    on_log(line)
            returncode = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if returncode != 0 or not iidfile.exists():
            raise _failure(tag, lines)
        return iidfile.read_text().strip(), "\n".join(lines)


def _die_with_parent() -> None:
    """In the docker CLI child: be killed when envbuild dies, even by SIGKILL, so BuildKit cancels the build and
    no image appears behind the back of a process that can no longer record it."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: an interrupted build may still finish, and is then found by its tag


def _build_classic(context: Path, tag: str, dockerfile: str, labels, build_args, secrets,
                   on_log: LogCallback | None) -> tuple[str, str]:
    from docker.errors import APIError, DockerException

    if secrets:
        log.warning("classic builder: secrets %s are not passed to the build", ", ".join(sorted(secrets)))
    lines: list[str] = []
    image_id = None
    try:
        client = current_endpoint().sdk_client()
        for chunk in client.build(path=str(context), dockerfile=dockerfile, tag=tag, labels=labels or {},
                                  buildargs=build_args or {}, rm=True, forcerm=True, decode=True):
            if "error" in chunk:
                lines.append(chunk["error"].rstrip("\n"))
                if on_log:
                    on_log(lines[-1])
                raise _failure(tag, lines)
            image_id = (chunk.get("aux") or {}).get("ID") or image_id
            for line in _ANSI.sub("", chunk.get("stream") or "").splitlines():
                lines.append(line)
                if on_log:
                    on_log(line)
    except (APIError, DockerException) as exc:
        lines.append(str(exc))
        raise _failure(tag, lines) from None
    if not image_id:
        raise _failure(tag, lines)
    return image_id, "\n".join(lines)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the classic builder colours stderr lines


def _failure(tag: str, lines: list[str]) -> BuildError:
    tail = deque(lines, maxlen=25)
    return BuildError(f"docker build of {tag} failed{_failing_step(lines)}:\n" + "\n".join("  " + l for l in tail),
                      fix="read the failing step above; `envbuild render` shows the Dockerfile")


def _failing_step(lines: list[str]) -> str:
    # BuildKit plain progress prints "#12 [installer 3/5] RUN ..." before a step and "#12 ERROR: ..." on failure;
    # the classic builder prints "Step 3/7 : RUN ..." before each step.
    failed = {m.group(1) for line in lines if (m := re.match(r"#(\d+) ERROR", line))}
    for line in lines:
        m = re.match(r"#(\d+) (\[.*)", line)
        if m and m.group(1) in failed:
            return f" at step {m.group(2)}"
    classic_steps = [line for line in lines if re.match(r"Step \d+/\d+ : ", line)]
    return f" at {classic_steps[-1]}" if classic_steps and not failed else ""


def step_of(line: str) -> str | None:
    """The step a log line starts ("[pip-installer 2/3] RUN ..."), for progress displays; None otherwise."""
    m = re.match(r"#\d+ (\[[^\]]+\] .*)", line) or re.match(r"(Step \d+/\d+ : .*)", line)
    return m.group(1) if m else None
