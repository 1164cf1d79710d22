"""Base images: which one an environment starts from, its identity (id / digest) and its Python.

The default base is envbuild's own `envbuild/python:3.11-bookworm`, built from dockerfiles/python.Dockerfile on
top of a Debian bookworm root image. The root comes from a registry (`debian:bookworm-slim`) where one is
reachable, else it is made locally with debootstrap, so the default works offline too.

envbuild's other bases are built from dockerfiles/ the same way, by `build_base` (`envbuild base build`):
CPU + OpenMPI (cpu.Dockerfile), GPU from PyPI wheels (gpu.Dockerfile) or from the vendor's CUDA image
(gpu-vendor.Dockerfile). Their tags name every version they contain, so a tag is built once per engine; keys use
the image id, never the tag. A user's own Dockerfile or build context is built the same way into a tag derived
from its content, and the managed environment is then rendered on top of it (`base_for_env`).

Every base envbuild makes has a recipe key (keys.base_recipe_key: its Dockerfile, parent, context, build arguments):
with a shared registry, a base is pulled from it under that key rather than made here, and a base made here is
pushed under it, so that every machine stands on the same bytes and keys built on the base's id agree across
machines (shared_bases.py).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .engine import Engine
from .errors import BuildError, EngineError, SpecError
from .keys import tag_of
from .limits import check_image_reference

if TYPE_CHECKING:
    from .gpu import GpuStack
    from .keys import CanonicalSpec
    from .registry import Registry

log = logging.getLogger(__name__)

DEFAULT_BASE = "envbuild/python:3.11-bookworm"
ROOT_IMAGE = "envbuild/debian:bookworm"
UPSTREAM_ROOT = "debian:bookworm-slim"
DOCKERFILES = Path(__file__).resolve().parent / "dockerfiles"
CPU_MPI_BASE = "envbuild/cpu:openmpi-bookworm"
GPU_REPOSITORY = "envbuild/gpu"
USER_BASE_REPOSITORY = "envbuild/user-base"


@dataclass(frozen=True)
class BaseImage:
    ref: str  # what the environment asked for (tag)
    id: str  # the engine's image id: what keys are made of
    python_version: str | None
    glibc: str | None
    from_ref: str  # what a Dockerfile FROM should name: a repo digest when there is one, else the tag
    cuda: str | None = None  # the CUDA runtime the image carries (envbuild's GPU bases say so in a label)
    # What a user should know about how it was obtained (replaced by the shared registry's): the result's warnings.
    warnings: tuple[str, ...] = ()


def describe(ref: str, record: dict) -> BaseImage:
    config = record.get("Config") or {}
    labels = config.get("Labels") or {}
    env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
    python = labels.get("org.envbuild.python.version") or env.get("PYTHON_VERSION")
    digests = [d for d in record.get("RepoDigests") or [] if d.split("@")[0] == ref.rsplit(":", 1)[0]]
    return BaseImage(ref=ref, id=record["Id"], python_version=python, glibc=labels.get("org.envbuild.glibc.version"),
                     from_ref=digests[0] if digests else ref, cuda=labels.get("org.envbuild.cuda.version"))


def resolve_base(ref: str | None, engine: Engine, *, ensure: bool = True,
                 on_log: Callable[[str], None] | None = None, shared: "Registry | None" = None) -> BaseImage | None:
    """The base image `ref` (None: the default) as the engine has it; the default base is made if missing, or with
    a `shared` registry taken from it (see ensure_default_base); another missing one is pulled."""
    ref = check_image_reference(ref or DEFAULT_BASE, None)  # before the engine sees it (its 400 body is no message)
    warning = None
    if ref == DEFAULT_BASE and ensure:
        warning = ensure_default_base(engine, on_log=on_log, shared=shared)
    record = engine.inspect_image(ref)
    if record is None and ensure and ref != DEFAULT_BASE:
        _pull(ref)
        record = engine.inspect_image(ref)
    if record is None:
        return None
    base = describe(ref, record)
    if base.python_version is None:
        base = BaseImage(base.ref, base.id, _probe_python(ref), base.glibc, base.from_ref, base.cuda)
    return replace(base, warnings=(warning,)) if warning else base


def root_recipe() -> str:
    """The recipe key of ROOT_IMAGE: a Debian bookworm root, however this machine makes it (pulled, or debootstrap:
    neither gives the same bytes twice, which is why it is shared)."""
    from .keys import base_recipe_key

    return base_recipe_key(dockerfile=None, parent=None, made_by=f"debian bookworm root ({UPSTREAM_ROOT}, "
                                                                 f"else debootstrap --variant=minbase bookworm)")


def _dockerfile_recipe(dockerfile: str, args: dict[str, str], parent: str) -> str:
    """The recipe key of one of envbuild's bases: its Dockerfile in dockerfiles/, its build arguments, its parent."""
    from .keys import base_recipe_key

    return base_recipe_key(dockerfile=(DOCKERFILES / dockerfile).read_text(encoding="utf-8"), parent=parent,
                           build_args=args)


def ensure_default_base(engine: Engine, on_log: Callable[[str], None] | None = None,
                        shared: "Registry | None" = None) -> str | None:
    """DEFAULT_BASE on the engine: the shared registry's (by recipe key) when there is one, else made here from
    ROOT_IMAGE and python.Dockerfile (and then shared). Returns a warning when this engine's own was replaced."""
    from .shared_bases import obtain

    def make() -> None:
        from .builder import build_image

        ensure_root_image(engine, shared=shared)
        log.info("building the default base image %s", DEFAULT_BASE)
        build_image(DOCKERFILES, DEFAULT_BASE, dockerfile="python.Dockerfile", build_args={"ROOT": ROOT_IMAGE},
                    on_log=on_log)

    recipe = _dockerfile_recipe("python.Dockerfile", {"ROOT": ROOT_IMAGE}, root_recipe())
    return obtain(DEFAULT_BASE, recipe, make, engine, shared, on_log=on_log)


def ensure_root_image(engine: Engine, shared: "Registry | None" = None) -> None:
    """A Debian bookworm root image under ROOT_IMAGE: the shared registry's, else pulled where a registry answers,
    else debootstrapped."""
    from .shared_bases import obtain

    obtain(ROOT_IMAGE, root_recipe(), lambda: _make_root(engine), engine, shared)


def _make_root(engine: Engine) -> None:
    from .engine import cli

    try:
        cli.pull(UPSTREAM_ROOT)
    except EngineError:
        pass
    else:
        engine.tag(UPSTREAM_ROOT, ROOT_IMAGE)
        return
    log.info("no registry answered for %s; making %s with debootstrap", UPSTREAM_ROOT, ROOT_IMAGE)
    debootstrap_root(ROOT_IMAGE)


def debootstrap_root(tag: str, suite: str = "bookworm") -> None:
    debootstrap = shutil.which("debootstrap") or ("/usr/sbin/debootstrap" if os.path.exists("/usr/sbin/debootstrap") else None)
    if debootstrap is None or os.geteuid() != 0:
        raise BuildError(
            f"no base image: {UPSTREAM_ROOT} cannot be pulled and debootstrap cannot run here",
            fix="make a registry reachable, or install debootstrap and run as root, "
                "or pass a local base image with --base-image",
        )
    with tempfile.TemporaryDirectory(prefix="envbuild-rootfs-") as tmp:
        root = Path(tmp, suite)
        done = subprocess.run([debootstrap, "--variant=minbase", suite, str(root)], capture_output=True, text=True)
        if done.returncode != 0:
            raise BuildError(f"debootstrap {suite} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}",
                             fix="check that the Debian mirror is reachable")
        from .engine import cli

        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        try:
            cli.import_root(tar.stdout, tag)
        finally:
            tar.wait()


def _pull(ref: str) -> None:
    from .engine import cli

    try:
        cli.pull(ref)
    except EngineError as exc:
        raise BuildError(f"base image {ref} is not on this engine and cannot be pulled: {exc.what}",
                         fix="build or load the image locally, or check the registry and the image name") from None


def _probe_python(ref: str) -> str | None:
    from .engine import cli

    version = cli.docker(["run", "--rm", "--entrypoint", "", ref, "sh", "-c",
                          "python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])' 2>/dev/null || true"],
                         what=f"run python3 in {ref}", check=False).strip()
    return version or None


def gpu_base_tag(stack: "GpuStack", source: str = "pypi") -> str:
    """The tag of envbuild's GPU base for `stack`: every version in it, so one tag is one content."""
    if source == "vendor":
        return f"{GPU_REPOSITORY}:vendor-cuda{stack.cuda}-nccl{stack.nccl}"
    return f"{GPU_REPOSITORY}:cuda{stack.cuda_runtime}-cudnn{stack.cudnn}-nccl{stack.nccl}-bookworm"


def build_base(kind: str, engine: Engine, *, stack: "GpuStack | None" = None, source: str = "pypi",
               rebuild: bool = False, on_log: Callable[[str], None] | None = None,
               shared: "Registry | None" = None) -> BaseImage:
    """Build (once) one of envbuild's bases from dockerfiles/: kind "cpu" (Debian + OpenMPI) or "gpu"; with a
    `shared` registry, pulled from it by recipe key when another machine made it (`rebuild`: made here, anyway)."""
    from .shared_bases import obtain

    if kind == "cpu":
        tag, dockerfile, args, parent = CPU_MPI_BASE, "cpu.Dockerfile", {"ROOT": ROOT_IMAGE}, root_recipe()
    elif kind == "gpu":
        if stack is None:
            from .gpu import stack_for_cuda

            stack = stack_for_cuda(None)
        tag = gpu_base_tag(stack, source)
        if source == "vendor":
            dockerfile, args, parent = "gpu-vendor.Dockerfile", {"CUDA_IMAGE": stack.vendor_image}, stack.vendor_image
        else:
            dockerfile, args, parent = "gpu.Dockerfile", {"ROOT": ROOT_IMAGE, **stack.build_args()}, root_recipe()
    else:
        raise SpecError(f"unknown base kind {kind!r}", fix="use cpu or gpu")

    def make() -> None:
        from .builder import build_image
        from .config import host_ca_bundle

        if source != "vendor":
            ensure_root_image(engine, shared=shared)
        log.info("building base image %s from %s", tag, dockerfile)
        ca = host_ca_bundle()
        build_image(DOCKERFILES, tag, dockerfile=dockerfile, build_args=args, secrets={"ca": ca} if ca else None,
                    on_log=on_log)

    if rebuild:
        make()
        warning = None
    else:
        warning = obtain(tag, _dockerfile_recipe(dockerfile, args, parent), make, engine, shared, on_log=on_log)
    base = resolve_base(tag, engine, ensure=False)
    return replace(base, warnings=(warning,)) if warning else base


def build_user_base(spec: "CanonicalSpec", engine: Engine, *, on_log: Callable[[str], None] | None = None,
                    shared: "Registry | None" = None) -> BaseImage:
    """The image of the user's own Dockerfile (its text) or build context (a directory holding
    spec.dockerfile_path), built as given, once: its tag is keys.user_base_recipe_key, derived from the Dockerfile
    and every file of the context, so an edit builds a new one and anything else reuses it (or, with a `shared`
    registry, pulls the one another machine built).
    """
    import tempfile

    from .keys import user_base_recipe_key
    from .shared_bases import obtain

    if spec.build_context is not None:
        context = Path(spec.build_context)
        if not (context / spec.dockerfile_path).is_file():
            raise SpecError(f"build context {context} has no {spec.dockerfile_path}",
                            fix="put the Dockerfile in the build context, or set docker.dockerfile_path")
    recipe = user_base_recipe_key(spec)
    tag = f"{USER_BASE_REPOSITORY}:{tag_of(recipe)}"

    def make() -> None:
        from .builder import build_image
        from .config import host_ca_bundle

        ca = host_ca_bundle()
        secrets = {"ca": ca} if ca else None
        log.info("building the user's base image %s", tag)
        if spec.build_context is not None:
            from .buildcontext import staged

            with staged(context, spec.dockerfile_path) as sent:  # without what .amlignore names, as keyed
                build_image(sent, tag, dockerfile=spec.dockerfile_path, secrets=secrets, on_log=on_log)
        else:
            with tempfile.TemporaryDirectory(prefix="envbuild-user-base-") as tmp:
                Path(tmp, "Dockerfile").write_text(spec.base_dockerfile, encoding="utf-8")
                build_image(Path(tmp), tag, secrets=secrets, on_log=on_log)

    warning = obtain(tag, recipe, make, engine, shared, on_log=on_log)
    base = resolve_base(tag, engine, ensure=False)
    return replace(base, warnings=(warning,)) if warning else base


def base_for_env(spec: "CanonicalSpec", engine: Engine, *, on_log: Callable[[str], None] | None = None,
                 shared: "Registry | None" = None) -> BaseImage:
    """The base image `spec` starts from: the user's Dockerfile/context built as given, the image it names,
    envbuild's GPU base for its stack (built once when missing), or the default base.

    A GPU environment on a base without the GPU stack gets the stack's libraries copied from envbuild's GPU base
    (the template's gpu_stack block), so that base is built here too; a base carrying another CUDA is an error.
    With a `shared` registry, envbuild's bases and the user's are taken from it (shared_bases.py).
    """
    stack = spec.gpu
    if spec.base_dockerfile is not None or spec.build_context is not None:
        base = build_user_base(spec, engine, on_log=on_log, shared=shared)
    elif spec.base_image is None and stack is not None:
        if spec.gpu_source == "conda":
            return build_base("cpu", engine, on_log=on_log, shared=shared)
        return build_base("gpu", engine, stack=stack, on_log=on_log, shared=shared)
    else:
        base = resolve_base(spec.base_image, engine, on_log=on_log, shared=shared)
        if base is None:
            raise BuildError(f"base image {spec.base_image} not found", fix="build, load or pull it first")
    if stack is not None and spec.gpu_source == "pypi":
        if base.cuda is None:
            build_base("gpu", engine, stack=stack, on_log=on_log, shared=shared)
        elif not base.cuda.startswith(stack.cuda + "."):
            raise SpecError(f"base image {base.ref} carries CUDA {base.cuda}, the environment needs CUDA {stack.cuda}",
                            fix=f"use a CUDA {stack.cuda} base (envbuild base build --cuda {stack.cuda}), or ask for "
                                f"docker.cuda {'.'.join(base.cuda.split('.')[:2])}")
    return base
