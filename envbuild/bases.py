"""Base images: which one an environment starts from, its identity (id / digest) and its Python.

The default base is envbuild's own `envbuild/python:3.11-bookworm`, built from dockerfiles/python.Dockerfile on
top of a Debian bookworm root image. The root comes from a registry (`debian:bookworm-slim`) where one is
reachable, else it is made locally with debootstrap, so the default works offline too.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .engine import Engine
from .errors import BuildError

log = logging.getLogger(__name__)

DEFAULT_BASE = "envbuild/python:3.11-bookworm"
ROOT_IMAGE = "envbuild/debian:bookworm"
UPSTREAM_ROOT = "debian:bookworm-slim"
DOCKERFILES = Path(__file__).resolve().parent / "dockerfiles"


@dataclass(frozen=True)
class BaseImage:
    ref: str  # what the environment asked for (tag)
    id: str  # the engine's image id: what keys are made of
    python_version: str | None
    glibc: str | None
    from_ref: str  # what a Dockerfile FROM should name: a repo digest when there is one, else the tag


def describe(ref: str, record: dict) -> BaseImage:
    config = record.get("Config") or {}
    labels = config.get("Labels") or {}
    env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
    python = labels.get("org.envbuild.python.version") or env.get("PYTHON_VERSION")
    digests = [d for d in record.get("RepoDigests") or [] if d.split("@")[0] == ref.rsplit(":", 1)[0]]
    return BaseImage(ref=ref, id=record["Id"], python_version=python, glibc=labels.get("org.envbuild.glibc.version"),
                     from_ref=digests[0] if digests else ref)


def resolve_base(ref: str | None, engine: Engine, *, ensure: bool = True,
                 on_log: Callable[[str], None] | None = None) -> BaseImage | None:
    """The base image `ref` (None: the default) as the engine has it; builds the default base if missing."""
    ref = ref or DEFAULT_BASE
    record = engine.inspect_image(ref)
    if record is None and ensure:
        if ref == DEFAULT_BASE:
            ensure_default_base(engine, on_log=on_log)
        else:
            _pull(ref)
        record = engine.inspect_image(ref)
    if record is None:
        return None
    base = describe(ref, record)
    if base.python_version is None:
        base = BaseImage(base.ref, base.id, _probe_python(ref), base.glibc, base.from_ref)
    return base


def ensure_default_base(engine: Engine, on_log: Callable[[str], None] | None = None) -> None:
    from .builder import build_image

    if engine.inspect_image(DEFAULT_BASE) is not None:
        return
    ensure_root_image(engine)
    log.info("building the default base image %s", DEFAULT_BASE)
    build_image(DOCKERFILES, DEFAULT_BASE, dockerfile="python.Dockerfile", build_args={"ROOT": ROOT_IMAGE},
                on_log=on_log)


def ensure_root_image(engine: Engine) -> None:
    """A Debian bookworm root image under ROOT_IMAGE: pulled where a registry answers, else debootstrapped."""
    if engine.inspect_image(ROOT_IMAGE) is not None:
        return
    docker = shutil.which("docker") or "docker"
    pulled = subprocess.run([docker, "pull", UPSTREAM_ROOT], capture_output=True, text=True)
    if pulled.returncode == 0:
        subprocess.run([docker, "tag", UPSTREAM_ROOT, ROOT_IMAGE], check=True)
        return
    log.info("no registry answered for %s; making %s with debootstrap", UPSTREAM_ROOT, ROOT_IMAGE)
    debootstrap_root(ROOT_IMAGE)


def debootstrap_root(tag: str, suite: str = "bookworm") -> None:
    debootstrap = shutil.which("debootstrap") or ("/usr/sbin/debootstrap" if os.path.exists("/usr/sbin/debootstrap") else None)
    if debootstrap is None or os.geteuid() != 0:
        raise BuildError(
            f"no base image: {UPSTREAM_ROOT} cannot be pulled and debootstrap cannot run here",
            fix="make a registry reachable, or install debootstrap and run as root, "
                f"or pass a local base image with --base-image",
        )
    with tempfile.TemporaryDirectory(prefix="envbuild-rootfs-") as tmp:
        root = Path(tmp, suite)
        done = subprocess.run([debootstrap, "--variant=minbase", suite, str(root)], capture_output=True, text=True)
        if done.returncode != 0:
            raise BuildError(f"debootstrap {suite} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}",
                             fix="check that the Debian mirror is reachable")
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run([shutil.which("docker") or "docker", "import", "-", tag], stdin=tar.stdout,
                                  capture_output=True, text=True)
        tar.wait()
        if imported.returncode != 0:
            raise BuildError(f"docker import of the {suite} root failed: {imported.stderr.strip()}")


def _pull(ref: str) -> None:
    done = subprocess.run([shutil.which("docker") or "docker", "pull", ref], capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"base image {ref} is not on this engine and cannot be pulled: {done.stderr.strip()}",
                         fix="build or load the image locally, or check the registry and the image name")


def _probe_python(ref: str) -> str | None:
    done = subprocess.run(
        [shutil.which("docker") or "docker", "run", "--rm", "--entrypoint", "", ref, "sh", "-c",
         "python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])' 2>/dev/null || true"],
        capture_output=True, text=True)
    version = done.stdout.strip()
    return version or None
