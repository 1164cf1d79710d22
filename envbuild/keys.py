"""Canonical form and content keys: what makes two environments "the same".

Rules (see the design notes): metadata never enters a key; order is dropped where it means nothing (packages)
and kept where it means priority (channels, index URLs); names are canonicalized (PEP 503 for pip, lowercase for
conda); version constraints are parsed and re-printed in one order. The key format is versioned so that a change
of these rules invalidates old keys instead of silently reusing them.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import xxhash

from .errors import SpecError

if TYPE_CHECKING:
    from .spec import Environment

# Bump when the canonical form or hashing changes: every key starts with it.
KEY_FORMAT = "v1"
# Bump when a template change alters what an image contains for the same lock.
TEMPLATE_VERSION = "1"


def digest(data: bytes | str) -> str:
    """The content hash used for every key (xxh3-128, hex)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return xxhash.xxh3_128_hexdigest(data)


def key_of(value) -> str:
    """Versioned key of any JSON-serializable value (sorted keys, no whitespace)."""
    return f"{KEY_FORMAT}:{digest(json.dumps(value, sort_keys=True, separators=(',', ':')))}"


def tag_of(key: str) -> str:
    """A Docker tag for a key (tags cannot contain ':')."""
    return key.replace(":", "-")


def spec_key(env: "Environment") -> str:
    return key_of(canonical_form(env))


def canonical_form(env: "Environment") -> dict:
    """The canonical, JSON-ready form of everything in `env` that changes the image it builds."""
    deps = env.python.conda_dependencies
    docker = env.docker
    return {
        "key_format": KEY_FORMAT,
        "template": TEMPLATE_VERSION,
        "platform": docker.platform,
        "channels": _dedupe([normalize_channel(c) for c in deps.channels]),
        "conda": sorted({canonical_conda_spec(s, deps.origins.get(s)) for s in deps.conda_packages},
                        key=_conda_sort_key),
        "pip": sorted({canonical_pip_requirement(r, deps.origins.get(r)) for r in deps.pip_packages}),
        "pip_options": _dedupe([_canonical_pip_option(o) for o in deps.pip_options]),
        "user_managed": env.python.user_managed_dependencies,
        "variables": dict(sorted(env.environment_variables.items())),
        "docker": {
            "base_image": docker.base_image,
            "base_dockerfile": digest(docker.base_dockerfile) if docker.base_dockerfile else None,
            "build_context": directory_digest(docker.build_context) if docker.build_context else None,
            "gpu": bool(docker.gpu or docker.cuda),
            "cuda": docker.cuda,
        },
    }


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def normalize_channel(channel: str) -> str:
    return channel.strip().rstrip("/")


def _canonical_pip_option(option: str) -> str:
    flag, _, value = option.partition(" ")
    return f"{flag} {value.strip().rstrip('/')}".strip()


def _conda_sort_key(spec: str) -> tuple[str, str]:
    return (spec.split("::")[-1].split(" ")[0], spec)


def canonical_conda_spec(spec: str, origin=None) -> str:
    """`NumPy <2,>=1.20` and `numpy >=1.20,<2` both become `numpy >=1.20,<2`."""
    from rattler import MatchSpec

    try:
        match = MatchSpec(spec.strip())
    except Exception as exc:  # rattler raises its own InvalidMatchSpecError
        raise SpecError(f"invalid conda match spec {spec!r}: {exc}", where=str(origin) if origin else None,
                        fix="write a conda match spec such as `numpy>=1.24,<2` or `conda-forge::numpy=1.26`") from None
    text = str(match)
    name = match.name.normalized if hasattr(match.name, "normalized") else str(match.name)
    head, _, rest = text.partition(" ")
    channel, _, _ = head.rpartition("::")
    bracket = ""
    if "[" in rest or "[" in head:
        bracket = text[text.index("["):]
    parts = [f"{channel}::{name.lower()}" if channel else name.lower()]
    if match.version is not None:
        parts.append(_sorted_constraints(str(match.version)))
    if match.build is not None:
        parts.append(str(match.build))
    out = " ".join(parts)
    if bracket and match.build is None:
        out += bracket
    return out


def _sorted_constraints(version: str) -> str:
    # Only a plain AND-list is order-free; leave OR-expressions (with '|') and groupings as written.
    if "|" in version or "(" in version:
        return version.replace(" ", "")
    return ",".join(sorted(p.strip() for p in version.split(",")))


def canonical_pip_requirement(requirement: str, origin=None) -> str:
    """`Scikit_Learn[b,a]<2,>=1 ; python_version>"3"` → `scikit-learn[a,b]<2,>=1; python_version > "3"`."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    text = requirement.strip()
    if re.match(r"^(git|hg|svn|bzr)\+|^https?://", text):
        egg = re.search(r"[#&]egg=([A-Za-z0-9_.\-]+)", text)
        name = canonicalize_name(egg.group(1)) if egg else "unnamed"
        return f"{name} @ {text}"
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise SpecError(f"invalid requirement {text!r}: {exc}", where=str(origin) if origin else None,
                        fix="write a PEP 508 requirement, e.g. `numpy>=1.24,<2`") from None
    out = canonicalize_name(req.name)
    if req.extras:
        out += "[" + ",".join(sorted(canonicalize_name(e) for e in req.extras)) + "]"
    if req.url:
        out += f" @ {req.url}"
    elif req.specifier:
        out += ",".join(sorted(str(s) for s in req.specifier))
    if req.marker:
        out += f"; {req.marker}"
    return out


def directory_digest(path: str | Path) -> str:
    """Content digest of a build context: relative paths and bytes of every file, in sorted order."""
    root = Path(path)
    if not root.is_dir():
        raise SpecError(f"build context {root} is not a directory", fix="point docker.build_context at a directory")
    h = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(file.relative_to(root)).encode() + b"\0")
        h.update(hashlib.sha256(file.read_bytes()).digest())
    return h.hexdigest()
