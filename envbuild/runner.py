"""Run a command in an environment's image: build it if needed (through the cache), then `docker run`.

The docker CLI runs the container (not the SDK) so that the command's stdin, stdout, stderr, signals and exit
code pass straight through, exactly as if it ran on the host; the Docker adapter (engine/) names the CLI and points
it at the engine the image was built on. The working directory is mounted into the
container (at the same path, so absolute paths in arguments keep working; at /workspace when the host path would
shadow the image's own system directories) and is the container's working directory. GPU environments get
`--gpus all` when the host has GPUs and a container runtime for them (GPU images are known by the CUDA label the
renderer gives them).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from .errors import BuildError

if TYPE_CHECKING:
    from .cache import Image
    from .spec import Environment

log = logging.getLogger(__name__)

DEFAULT_SHM_SIZE = "1g"  # Docker's 64 MB default breaks PyTorch DataLoader workers and NCCL
FALLBACK_MOUNT = "/workspace"
GPU_LABEL = "org.envbuild.cuda.version"  # set by the renderer on images with a GPU stack
# Mounting the working directory at one of these would hide the image's own files.
_SYSTEM_DIRECTORIES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/opt", "/proc", "/run",
                       "/sbin", "/sys", "/usr", "/var")


@dataclass(frozen=True)
class RunResult:
    """What a command run in an environment did. stdout/stderr are None when they went to the terminal."""

    returncode: int
    stdout: str | None
    stderr: str | None
    image: "Image"
    command: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def check(self) -> "RunResult":
        if self.returncode != 0:
            from .errors import EnvbuildError

            raise EnvbuildError(f"command {' '.join(self.command)} exited with {self.returncode} in {self.image.image}",
                                fix=f"read its output:\n{(self.stderr or '')[-2000:]}")
        return self


def host_has_gpus() -> bool:
    """True when `--gpus` can work here: nvidia-smi lists a GPU and the engine has an NVIDIA runtime or hook."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    if listed.returncode != 0 or "GPU" not in listed.stdout:
        return False
    if shutil.which("nvidia-container-cli") or shutil.which("nvidia-container-runtime-hook"):
        return True
    return "nvidia" in _engine_runtimes()


def _engine_runtimes() -> set[str]:
    import json

    from .engine import Engine

    engine = Engine()
    try:
        status, body = engine.request("GET", "/info")
    except BuildError:
        return set()
    finally:
        engine.close()
    return set((json.loads(body).get("Runtimes") or {}) if status == 200 else ())


def _csv_field(*fields: str) -> str:
    """docker's --mount value is one CSV record: quote each field, so a comma in a path stays in the path."""
    import csv
    import io

    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="").writerow(fields)
    return out.getvalue()


def mount_point(workdir: Path, mount_at: str | None = None) -> str:
    """Where the working directory appears in the container."""
    if mount_at:
        if not mount_at.startswith("/"):
            from .errors import SpecError

            raise SpecError(f"mount point {mount_at!r} is not an absolute path", fix="pass e.g. --mount-at /workspace")
        return mount_at
    path = str(workdir)
    if path == "/" or any(path == d or path.startswith(d + "/") for d in _SYSTEM_DIRECTORIES):
        return FALLBACK_MOUNT
    return path


def docker_command(image: str, command: Sequence[str], *, workdir: Path, mount_at: str | None = None,
                   shm_size: str | None = DEFAULT_SHM_SIZE, gpus: bool = False, environment: dict | None = None,
                   interactive: bool = False, tty: bool = False, user: str | None = None,
                   docker: str | None = None) -> list[str]:
    """The `docker run` command line for `command` in `image` (pure: no engine needed to compute it)."""
    target = mount_point(workdir, mount_at)
    from .engine.cli import docker_cli

    cmd = [docker or docker_cli(), "run", "--rm", "--label", "org.envbuild.run=1",
           "--mount", _csv_field("type=bind", f"source={workdir}", f"target={target}"), "-w", target]
    if shm_size:
        cmd += ["--shm-size", shm_size]
    if gpus:
        cmd += ["--gpus", "all"]
    if user:
        cmd += ["--user", user]
        # A uid with no account in the image gets HOME=/, which it cannot write: caches and configs would fail.
        environment = {"HOME": "/tmp", **(environment or {})}
    if interactive:
        cmd.append("-i")
    if tty:
        cmd.append("-t")
    for name, value in sorted((environment or {}).items()):
        cmd += ["-e", f"{name}={value}"]
    return cmd + [image, *command]


def host_user() -> str | None:
    """Run as the caller (uid:gid) so files written into the mounted directory belong to them; root stays root."""
    uid = os.getuid()
    return None if uid == 0 else f"{uid}:{os.getgid()}"


def run(env: "Environment", command: Sequence[str] | str, *, cache_dir=None,
        on_progress: Callable[[str, str], None] | None = None, on_log: Callable[[str], None] | None = None,
        on_image: Callable[["Image"], None] | None = None, **options) -> RunResult:
    """Run `command` (a list, or a string for `sh -c`) in the image of `env`, building it first if needed.

    `on_image` is called with the image before the command starts (e.g. to record it in the catalog); the other
    options are `run_image`'s.
    """
    from .api import build

    argv = _argv(command)
    image = build(env, cache_dir=cache_dir, on_progress=on_progress, on_log=on_log)
    if on_image:
        on_image(image)
    return run_image(image, argv, **options)


def run_image(image: "Image", command: Sequence[str] | str, *, workdir: str | os.PathLike | None = None,
              mount_at: str | None = None, shm_size: str | None = DEFAULT_SHM_SIZE, gpus: str = "auto",
              environment: dict[str, str] | None = None, capture: bool = True, interactive: bool = False,
              user: str | None = None) -> RunResult:
    """Run `command` in a built environment image.

    capture=True returns the command's stdout/stderr as text; capture=False lets them (and stdin, with
    interactive=True) go to the caller's terminal. gpus: "auto" (a GPU image on a host with GPUs), "all", "none".
    `environment` adds variables for this run only (the environment's own are in the image already).
    """
    argv = _argv(command)
    if gpus not in ("auto", "all", "none"):
        from .errors import SpecError

        raise SpecError(f"gpus must be auto, all or none, not {gpus!r}", fix="pass gpus='auto'")
    gpu_image = gpus == "auto" and is_gpu_image(image.image)
    use_gpus = gpus == "all" or (gpu_image and host_has_gpus())
    if gpu_image and not use_gpus:
        log.warning("%s is a GPU environment but this host has no usable GPU: running without one", image.image)
    tty = not capture and interactive and sys.stdin.isatty() and sys.stdout.isatty()
    cmd = docker_command(image.image, argv, workdir=Path(workdir or os.getcwd()).resolve(), mount_at=mount_at,
                         shm_size=shm_size, gpus=use_gpus, environment=environment, interactive=interactive,
                         tty=tty, user=user if user is not None else host_user())
    log.debug("running %s", " ".join(cmd))
    from .engine.cli import cli_environment

    if capture:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                              env=cli_environment())
        return RunResult(done.returncode, done.stdout, done.stderr, image, tuple(argv))
    done = subprocess.run(cmd, stdin=None if interactive else subprocess.DEVNULL, env=cli_environment())
    return RunResult(done.returncode, None, None, image, tuple(argv))


def _argv(command: Sequence[str] | str) -> list[str]:
    argv = ["sh", "-c", command] if isinstance(command, str) else [str(c) for c in command]
    if not argv:
        from .errors import SpecError

        raise SpecError("no command to run", fix="pass the command after `--`, e.g. `envbuild run SPEC -- python -V`")
    return argv


def is_gpu_image(ref: str) -> bool:
    """Whether an environment image was rendered with a GPU stack: the renderer labels it with its CUDA."""
    from .engine import Engine

    engine = Engine()
    try:
        record = engine.inspect_image(ref) or {}
    finally:
        engine.close()
    return GPU_LABEL in ((record.get("Config") or {}).get("Labels") or {})


def run_ref(ref: str, command: Sequence[str] | str, *, cache_dir=None, catalog_url: str | None = None,
            on_progress=None, on_log=None, **options) -> RunResult:
    """`run` for anything that names an environment: a spec file, `curated:NAME[:VERSION]` or a catalog
    `NAME[:VERSION]` (of the catalog at `catalog_url`, default $ENVBUILD_CATALOG or the home's). A spec file seen
    before takes the cache's fast path (no parsing); a catalog version records the image it ran in (and the
    image's lock) in its history."""
    from .hitpath import cached_build_for_file

    if Path(ref).is_file():  # before importing the catalog and the spec model: a hit costs no parsing
        image = cached_build_for_file(ref, cache_dir=cache_dir)
        if image is not None:
            return run_image(image, command, **options)
    from . import catalog, references

    env, entry = references.resolve(ref, home=cache_dir, catalog_url=catalog_url)
    if entry is None:
        return run(env, command, cache_dir=cache_dir, on_progress=on_progress, on_log=on_log, **options)
    catalog.check_unchanged(env, entry)

    return run(env, command, cache_dir=cache_dir, on_progress=on_progress, on_log=on_log,
               on_image=lambda image: record_image(entry, image, cache_dir, catalog_url), **options)


def record_image(entry, image: "Image", cache_dir=None, catalog_url: str | None = None) -> None:
    """Add `image` and its lock to the history of the catalog version `entry`, unless it is there already."""
    from . import catalog

    if not any(b.image_id == image.id and b.build_key == image.key for b in entry.builds):
        catalog.record_build(entry.name, entry.version, image, lock_text(image, cache_dir), home=cache_dir,
                             url=catalog_url)


def lock_text(image: "Image", cache_dir=None) -> str | None:
    """The conda-lock.yml an image was built from: kept by the index at build time, else read from the image
    (images pulled from a shared registry or found on the engine carry it at LOCK_PATH)."""
    from . import config
    from .cache import Index
    from .renderer import LOCK_PATH

    with Index(config.home(cache_dir)) as index:
        detail = index.detail_get(image.key) or {}
    if detail.get("lock"):
        return detail["lock"]
    from .engine import cli

    return cli.docker(["run", "--rm", "--entrypoint", "cat", image.image, LOCK_PATH], what="cat the lock",
                      check=False) or None
