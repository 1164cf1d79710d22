"""Lock + base image + options → BuildPlan (Dockerfile text + context files + build key).

Templates are Jinja2 files rendered with StrictUndefined. Nothing from a spec reaches the Dockerfile unchecked:
names are validated, values are quoted for the Dockerfile parser, and package lists travel as context files
(pip-requirements.txt, conda-packages.json), never as instruction text. Output is deterministic: same inputs,
same bytes, same key.
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
from .keys import TEMPLATE_VERSION, key_of, tag_of

if TYPE_CHECKING:
    from .bases import BaseImage
    from .resolver import Lock
    from .spec import Environment

TEMPLATES = Path(__file__).resolve().parent / "templates"
DATA = Path(__file__).resolve().parent / "data"
DEFAULT_TEMPLATE = "environment.Dockerfile.j2"
PREFIX = "/opt/env"
LOCK_PATH = "/opt/envbuild/conda-lock.yml"
IMAGE_REPOSITORY = "envbuild/env"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


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
    dockerfile: str
    context: dict[str, ContextFile] = field(repr=False)
    base_id: str
    spec_key: str
    lock_key: str

    @property
    def key(self) -> str:
        return key_of({"dockerfile": self.dockerfile, "base": self.base_id,
                       "context": {name: f.digest() for name, f in sorted(self.context.items())}})

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


def _installer_requirements() -> str:
    pins = []
    for dist in ("py-rattler", "uv"):
        try:
            pins.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pins.append(dist)
    return " ".join(pins)


def render(env: "Environment", lock: "Lock", base: "BaseImage", *, template: str | os.PathLike | None = None,
           installer_from: str | None = None) -> BuildPlan:
    import jinja2

    conda = lock.conda
    pip = lock.pip
    context: dict[str, ContextFile] = {"conda-lock.yml": ContextFile(data=lock.text.encode("utf-8"))}
    if pip:
        lines = []
        for p in pip:
            if re.search(r"\s", p.url) or not re.fullmatch(r"[0-9a-f]{64}", p.sha256):
                raise RenderError(f"locked pip package {p.name} has an unusable url/hash", fix="re-lock with --refresh")
            lines.append(f"{p.name} @ {p.url} --hash=sha256:{p.sha256}")
        context["pip-requirements.txt"] = ContextFile(data=("\n".join(lines) + "\n").encode())
    if conda:
        manifest = []
        for p in conda:
            manifest.append({"filename": p.filename, "sha256": p.sha256, "url": p.url})
            if p.url.startswith("file://"):
                source = Path(p.url[len("file://"):])
                if not source.is_file():
                    raise RenderError(f"locked package file {source} is gone", fix="rebuild the local channel or re-lock")
                context[f"conda-packages/{p.filename}"] = ContextFile(source=source, sha256=p.sha256)
        context["conda-packages.json"] = ContextFile(data=json.dumps(manifest, indent=1, sort_keys=True).encode())
        context["install_conda.py"] = ContextFile(data=(DATA / "install_conda.py").read_bytes())

    variables = [(_check_name(k, _ENV_NAME, "environment variable name"), quote(v, f"environment variable {k}"))
                 for k, v in sorted(env.environment_variables.items())]
    labels = {
        "org.opencontainers.image.title": env.name,
        "org.opencontainers.image.description": env.description or "",
        "org.opencontainers.image.version": str(env.version or ""),
        "org.envbuild.spec-key": lock.spec_key,
        "org.envbuild.lock-key": lock.key,
        "org.envbuild.template": TEMPLATE_VERSION,
        "org.envbuild.version": __version__,
        "org.envbuild.lock-path": LOCK_PATH,
    }
    # Metadata labels (title, description) would make cosmetically different specs build different images.
    labels = {k: v for k, v in labels.items() if not k.startswith("org.opencontainers.image.")}
    quoted_labels = [(_check_name(k, _LABEL_NAME, "label name"), quote(v, f"label {k}")) for k, v in sorted(labels.items())]

    loader_paths = [str(TEMPLATES)]
    template_name = DEFAULT_TEMPLATE
    if template:
        user_template = Path(template)
        if not user_template.is_file():
            raise RenderError(f"template {user_template} does not exist", fix="pass an existing Jinja2 template file")
        loader_paths.insert(0, str(user_template.parent))
        template_name = user_template.name
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(loader_paths), undefined=jinja2.StrictUndefined,
                                     keep_trailing_newline=True, trim_blocks=False, autoescape=False)
    try:
        text = environment.get_template(template_name).render(
            envbuild_version=__version__, template_version=TEMPLATE_VERSION, spec_key=lock.spec_key,
            lock_key=lock.key, base_from=base.from_ref, installer_from=installer_from or base.from_ref,
            installer_requirements=_installer_requirements(), prefix=PREFIX, lock_path=LOCK_PATH,
            conda_packages=bool(conda), pip_packages=bool(pip), environment_variables=variables,
            labels=quoted_labels,
        )
    except jinja2.TemplateError as exc:
        where = f"{getattr(exc, 'filename', None) or template_name}:{getattr(exc, 'lineno', '') or ''}".rstrip(":")
        raise RenderError(f"template error: {exc}", where=where, fix="fix the template (blocks: see envbuild/templates)") from None
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    return BuildPlan(dockerfile=text, context=context, base_id=base.id, spec_key=lock.spec_key, lock_key=lock.key)
