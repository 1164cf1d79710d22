"""Builders: turn a build context (Dockerfile + files) into an image on a real engine.

BuildKit is required for what the templates rely on (cache mounts for downloads, secrets for CA bundles and
index tokens), so the builder looks for a docker CLI that can use it: `docker buildx` where the plugin exists,
else a CLI whose built-in builder honours DOCKER_BUILDKIT=1 (docker < 23). ENVBUILD_DOCKER names one explicitly.
Logs are streamed line by line to a callback and kept for the cache entry.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import BuildError

log = logging.getLogger(__name__)

LogCallback = Callable[[str], None]


@dataclass(frozen=True)
class DockerCLI:
    path: str
    mode: str  # "buildx" | "buildkit"

    def build_command(self) -> list[str]:
        return [self.path, "buildx", "build", "--load"] if self.mode == "buildx" else [self.path, "build"]

    def environment(self) -> dict:
        env = dict(os.environ)
        if self.mode == "buildkit":
            env["DOCKER_BUILDKIT"] = "1"
        return env


def _candidates() -> list[str]:
    named = os.environ.get("ENVBUILD_DOCKER")
    if named:
        return [named]
    found = []
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = shutil.which("docker", path=directory)
        if candidate and os.path.realpath(candidate) not in {os.path.realpath(f) for f in found}:
            found.append(candidate)
    return found


def _probe(path: str) -> DockerCLI | None:
    try:
        if subprocess.run([path, "buildx", "version"], capture_output=True, timeout=20).returncode == 0:
            return DockerCLI(path, "buildx")
        version = subprocess.run([path, "version", "--format", "{{.Client.Version}}"], capture_output=True,
                                 text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"(\d+)\.", version)
    # Clients before 23 carry BuildKit themselves; later ones delegate to the buildx plugin.
    if match and int(match.group(1)) < 23:
        return DockerCLI(path, "buildkit")
    return None


_DETECTED: DockerCLI | None = None


def find_docker_cli() -> DockerCLI:
    global _DETECTED
    if _DETECTED is None:
        for path in _candidates():
            cli = _probe(path)
            if cli:
                log.debug("building with %s (%s)", cli.path, cli.mode)
                _DETECTED = cli
                break
        else:
            raise BuildError(
                "no docker CLI that can build with BuildKit was found",
                fix="install the buildx plugin, or a docker CLI before 23 (Debian: apt-get install docker.io), "
                    "or point ENVBUILD_DOCKER at one",
            )
    return _DETECTED


def build_image(context: Path, tag: str, *, dockerfile: str = "Dockerfile", labels: dict[str, str] | None = None,
                build_args: dict[str, str] | None = None, secrets: dict[str, Path] | None = None,
                on_log: LogCallback | None = None, extra_args: list[str] | None = None) -> tuple[str, str]:
    """Build `context` into `tag`. Returns (image id, full build log). Raises BuildError on failure."""
    cli = find_docker_cli()
    with tempfile.TemporaryDirectory(prefix="envbuild-iid-") as tmp:
        iidfile = Path(tmp, "iid")
        cmd = cli.build_command() + ["--progress=plain", "-f", str(context / dockerfile), "-t", tag,
                                     "--iidfile", str(iidfile)]
        for k, v in sorted((labels or {}).items()):
            cmd += ["--label", f"{k}={v}"]
        for k, v in sorted((build_args or {}).items()):
            cmd += ["--build-arg", f"{k}={v}"]
        for secret_id, src in sorted((secrets or {}).items()):
            cmd += ["--secret", f"id={secret_id},src={src}"]
        cmd += list(extra_args or []) + [str(context)]
        log.debug("running %s", " ".join(cmd))
        lines: list[str] = []
        tail: deque[str] = deque(maxlen=25)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=cli.environment(), errors="replace")
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip("\n")
                lines.append(line)
                tail.append(line)
                if on_log:
                    on_log(line)
            returncode = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        full_log = "\n".join(lines)
        if returncode != 0 or not iidfile.exists():
            raise BuildError(f"docker build of {tag} failed{_failing_step(lines)}:\n" + "\n".join("  " + l for l in tail),
                             fix="read the failing step above; `envbuild render` shows the Dockerfile")
        return iidfile.read_text().strip(), full_log


def _failing_step(lines: list[str]) -> str:
    # BuildKit plain progress prints "#12 [installer 3/5] RUN ..." before a step and "#12 ERROR: ..." on failure.
    failed = {m.group(1) for line in lines if (m := re.match(r"#(\d+) ERROR", line))}
    for line in lines:
        m = re.match(r"#(\d+) (\[.*)", line)
        if m and m.group(1) in failed:
            return f" at step {m.group(2)}"
    return ""
