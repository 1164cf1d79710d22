"""Lock + base image + options → BuildPlan (Dockerfile text + context files + build key).

Templates are Jinja2 files rendered with StrictUndefined (templates/environment.Dockerfile.j2; users extend it
and override its blocks). Nothing from a spec reaches the Dockerfile unchecked: image references and variable
names are validated, values are quoted for the Dockerfile parser (ENV/LABEL never run a shell), and package lists
travel as context files (conda/packages.json, pip/requirements.txt), never as instruction text. Output is
deterministic: same inputs, same bytes, same key.

Labels: what the image *is* (keys, lock, base, GPU stack, envbuild's version) is written into the Dockerfile and
so into the build key; what people *call* it (name, version, description: metadata) is not, or cosmetically
different specs would build different images. Metadata goes to `BuildPlan.metadata_labels`, which the builder
applies with `--label` at build time, like the build key itself.

Context layout: conda/ (installer script, manifest, local packages) and pip/ (hashed requirements) are bind-mounted
separately into the steps that use them, so that a change of pip packages leaves the conda layer cached, and a
change of environment variables (the Dockerfile) leaves both cached.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .errors import RenderError
from .keys import TEMPLATE_VERSION, CanonicalSpec, build_plan_key, tag_of
from .lockfile import Lock

if TYPE_CHECKING:
    from .bases import BaseImage

TEMPLATES = Path(__file__).resolve().parent / "templates"
DATA = Path(__file__).resolve().parent / "data"
DEFAULT_TEMPLATE = "environment.Dockerfile.j2"
PREFIX = "/opt/env"
PIP_PREFIX = "/opt/envbuild-pip"  # installer-side prefix of the pip packages, merged into PREFIX in the image
CONTEXT_DIR = "/tmp/envbuild"
LOCK_PATH = "/opt/envbuild/conda-lock.yml"
IMAGE_REPOSITORY = "envbuild/env"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
# Docker's reference grammar, simplified: [host[:port]/]path[:tag][@digest], or a bare image id.
_IMAGE_REF = re.compile(r"^(?:sha256:[0-9a-f]{64}|(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
                        r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
                        r"(?:@sha256:[0-9a-f]{64})?)$")
_PIP_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
# `!` is a version epoch (x264-1!164.3095-...): conda-forge's file names carry it.
_CONDA_FILENAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+!-]*\.(?:conda|tar\.bz2)$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ContextFile:
    """A file of the build context: inline bytes, or a local file copied in (large packages)."""

    data: bytes | None = None
    source: Path | None = None
    sha256: str | None = None

    def digest(self) -> str:
        if self.sha256:
            return self.sha256
        import hashlib

        return hashlib.sha256(self.data if self.data is not None else self.source.read_bytes()).hexdigest()


@dataclass(frozen=True)
class BuildPlan:
    """What one image is built from: the Dockerfile and its context on a base, and the build key over them
    (keys.build_plan_key), computed once by `plan`."""

    dockerfile: str
    context: dict[str, ContextFile] = field(repr=False)
    base_id: str
    spec_key: str
    lock_key: str
    key: str
    # Labels that describe without defining (name, version, description): applied at build time, outside the key.
    metadata_labels: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def image(self) -> str:
        """The image reference this plan builds: derived from the build key."""
        return f"{IMAGE_REPOSITORY}:{tag_of(self.key)}"

    def write_context(self, directory: str | os.PathLike) -> Path:
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        (root / "Dockerfile").write_text(self.dockerfile, encoding="utf-8")
        for name, item in self.context.items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if item.data is not None:
                target.write_bytes(item.data)
            else:
                try:
                    os.link(item.source, target)
                except OSError:
                    shutil.copyfile(item.source, target)
        return root


def quote(value: str, what: str) -> str:
    """Quote a value for ENV/LABEL: double quotes, with the parser's escapes for \\, " and $ (no expansion)."""
    if any(ord(ch) < 32 and ch != "\t" for ch in value):
        raise RenderError(f"{what} contains a control character (newline?): {value!r}",
                          fix="use a single-line value without control characters")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def _check_name(name: str, pattern: re.Pattern, what: str) -> str:
    if not pattern.match(name):
        raise RenderError(f"invalid {what} {name!r}", fix=f"use only letters, digits and _ (must match {pattern.pattern})")
    return name


def check_image_ref(ref: str, what: str = "base image") -> str:
    """An image reference that a FROM line can name and nothing more (no spaces, flags or newlines)."""
    if not isinstance(ref, str) or not _IMAGE_REF.match(ref):
        raise RenderError(f"invalid {what} reference {ref!r}",
                          fix="name an image as [registry/]repository[:tag][@sha256:digest]")
    return ref


def _installer_requirements(*dists: str) -> str:
    """The installer stage's tools, pinned to the versions envbuild runs with (they read what it wrote)."""
    pins = []
    for dist in dists:
        try:
            pins.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pins.append(dist)
    return " ".join(pins)


def _pip_context(pip: list) -> ContextFile:
    lines = []
    for p in sorted(pip, key=lambda p: p.name.lower()):
        if not _PIP_NAME.match(p.name):
            raise RenderError(f"locked pip package name {p.name!r} is not a package name", fix="re-lock with --refresh")
        if re.search(r"\s", p.url) or not p.url.startswith(("https://", "http://", "file://")) \
                or not _SHA256.match(p.sha256):
            raise RenderError(f"locked pip package {p.name} has an unusable url/hash", fix="re-lock with --refresh")
        lines.append(f"{p.name} @ {p.url} --hash=sha256:{p.sha256}")
    return ContextFile(data=("\n".join(lines) + "\n").encode())


def _conda_context(conda: list) -> dict[str, ContextFile]:
    context: dict[str, ContextFile] = {}
    manifest = []
    for p in sorted(conda, key=lambda p: p.filename):
        # Older conda-lock files carry md5 only: the installer checks the hash the lock has, as conda does.
        hashed = {"sha256": p.sha256} if _SHA256.match(p.sha256 or "") else \
            {"md5": p.md5} if re.fullmatch(r"[0-9a-f]{32}", p.md5 or "") else None
        if not _CONDA_FILENAME.match(p.filename) or hashed is None:
            raise RenderError(f"locked conda package {p.filename!r} has an unusable file name or hash",
                              fix="re-lock with --refresh (a lock file given as input: regenerate it with "
                                  "`conda-lock lock`)")
        manifest.append({"filename": p.filename, "url": p.url, **hashed})
        if p.url.startswith("file://"):
            source = Path(p.url[len("file://"):])
            if not source.is_file():
                raise RenderError(f"locked package file {source} is gone", fix="rebuild the local channel or re-lock")
            context[f"conda/packages/{p.filename}"] = ContextFile(source=source, sha256=hashed.get("sha256"))
    context["conda/packages.json"] = ContextFile(data=json.dumps(manifest, indent=1, sort_keys=True).encode())
    context["conda/install_conda.py"] = ContextFile(data=(DATA / "install_conda.py").read_bytes())
    return context


def _image_labels(lock: "Lock", base: "BaseImage", gpu) -> dict[str, str]:
    """Labels that follow from the content: they belong in the Dockerfile and so in the build key."""
    labels = {
        "org.opencontainers.image.base.name": base.ref,
        "org.envbuild.lock-key": lock.key,
        "org.envbuild.template": TEMPLATE_VERSION,
        "org.envbuild.version": __version__,
        "org.envbuild.lock-path": LOCK_PATH,
    }
    if base.id.startswith("sha256:"):
        labels["org.opencontainers.image.base.digest"] = base.id
    if gpu is not None:
        labels.update({"org.envbuild.cuda.version": gpu.cuda, "org.envbuild.cudnn.version": gpu.cudnn,
                       "org.envbuild.nccl.version": gpu.nccl, "org.envbuild.gpu.min-driver": gpu.min_driver})
    return labels


def metadata_labels(spec: CanonicalSpec) -> dict[str, str]:
    """OCI labels of what people call the environment: applied at build time, never part of the build key."""
    labels = {"org.opencontainers.image.title": spec.name, "org.opencontainers.image.vendor": "envbuild"}
    if spec.description:
        labels["org.opencontainers.image.description"] = spec.description
    if spec.version is not None:
        labels["org.opencontainers.image.version"] = spec.version
    return labels


def _template_environment(template: str | os.PathLike | None):
    import jinja2

    loader_paths = [str(TEMPLATES)]
    template_name = DEFAULT_TEMPLATE
    if template:
        user_template = Path(template)
        if not user_template.is_file():
            raise RenderError(f"template {user_template} does not exist", fix="pass an existing Jinja2 template file")
        if user_template.name == DEFAULT_TEMPLATE:
            raise RenderError(f"template {user_template} has the name of envbuild's own template",
                              fix="rename it: it extends environment.Dockerfile.j2 and cannot also be called that")
        loader_paths.insert(0, str(user_template.resolve().parent))
        template_name = user_template.name
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(loader_paths), undefined=jinja2.StrictUndefined,
                                     keep_trailing_newline=True, trim_blocks=False, autoescape=False)
    return environment, template_name


def render(spec: CanonicalSpec, lock: Lock, base: "BaseImage", *, template: str | os.PathLike | None = None,
           installer_from: str | None = None, buildkit: bool = True) -> BuildPlan:
    """Render the Dockerfile and context of `spec` locked as `lock` on `base`, with the GPU stack `spec` was
    given (keys.canonical_spec decides it).

    `buildkit=False` renders for the classic builder (no cache mounts, no secrets).
    """
    import jinja2

    user_managed = spec.user_managed
    conda = [] if user_managed else lock.conda
    pip = [] if user_managed else lock.pip
    # Every managed environment has a `python` (a lock of no packages, all excluded by markers, too): a venv on
    # the base's Python, as a pip-only one gets. A user-managed one is the base as it is.
    python_venv = not (conda or pip or user_managed) and base.python_version is not None
    # The lock file enters the build key by what it installs (lock.key), not by its text, whose metadata names the
    # spec it was solved for: two specs that lock to the same packages share one image.
    context: dict[str, ContextFile] = {"conda-lock.yml": ContextFile(data=lock.text.encode("utf-8"), sha256=lock.key)}
    if pip:
        context["pip/requirements.txt"] = _pip_context(pip)
    if conda:
        context.update(_conda_context(conda))

    stack = spec.gpu
    gpu = None
    if stack is not None:
        from .bases import gpu_base_tag

        source = spec.gpu_source
        # A base without the stack gets its libraries from envbuild's GPU base of the same versions.
        libraries_from = gpu_base_tag(stack) if source == "pypi" and base.cuda is None else None
        gpu = {"describe": stack.describe(), "source": source,
               "require": quote(f"cuda>={stack.cuda}", "NVIDIA_REQUIRE_CUDA"),
               "libraries_from": libraries_from and check_image_ref(libraries_from, "GPU base")}
    variables = [(_check_name(k, _ENV_NAME, "environment variable name"), quote(v, f"environment variable {k}"))
                 for k, v in spec.variables]
    labels = [f"{_check_name(k, _LABEL_NAME, 'label name')}={quote(v, f'label {k}')}"
              for k, v in sorted(_image_labels(lock, base, stack).items())]

    environment, template_name = _template_environment(template)
    try:
        text = environment.get_template(template_name).render(
            envbuild_version=__version__, template_version=TEMPLATE_VERSION,
            lock_key=lock.key, base_from=check_image_ref(base.from_ref),
            installer_from=check_image_ref(installer_from or base.from_ref, "installer image"),
            installer_requirements=_installer_requirements(*(("py-rattler", "uv") if conda else ("uv",))), prefix=PREFIX, pip_prefix=PIP_PREFIX,
            context_dir=CONTEXT_DIR, lock_path=LOCK_PATH, buildkit=buildkit, conda_packages=bool(conda),
            pip_packages=bool(pip), python_venv=python_venv, gpu=gpu,
            environment_variables=variables, labels=labels,
        )
    except jinja2.TemplateError as exc:
        where = f"{getattr(exc, 'filename', None) or template_name}:{getattr(exc, 'lineno', '') or ''}".rstrip(":")
        raise RenderError(f"template error: {exc}", where=where, fix="fix the template (blocks: see envbuild/templates)") from None
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    return BuildPlan(dockerfile=text, context=context, base_id=base.id, spec_key=lock.spec_key, lock_key=lock.key,
                     key=build_plan_key(text, base.id, context), metadata_labels=metadata_labels(spec))
