"""Canonical form and content keys: what makes two environments "the same".

Rules (see the design notes): metadata never enters a key; order is dropped where it means nothing (packages,
the constraints of one version range) and kept where it means priority (channels, index URLs); names are
canonicalized (PEP 503 for pip, lowercase for conda); version constraints are parsed (packaging for pip, rattler's
MatchSpec for conda) and re-printed in one spelling, merging only spellings that match exactly the same versions
(`numpy=1.21` and `numpy 1.21.*`; `==1.0` and `==1.0.0`, equal under both PEP 440 and conda's zero padding). The
key format is versioned so that a change of these rules invalidates old keys instead of silently reusing them.

Heavy parsers (packaging.requirements, rattler, yaml) are imported inside the functions that need them: this
module is imported on the cache-hit path.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import posixpath
import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

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


def spec_key(env: Environment) -> str:
    return key_of(canonical_form(env))


def canonical_form(env: Environment) -> dict:
    """The canonical, JSON-ready form of everything in `env` that changes the image it builds."""
    deps = env.python.conda_dependencies
    docker = env.docker
    return {
        "key_format": KEY_FORMAT,
        "template": TEMPLATE_VERSION,
        "platform": normalize_platform(docker.platform),
        "channels": _dedupe([_keyed_channel(url, env) for c in deps.channels for url in expand_channel(c)]),
        "conda": sorted({canonical_conda_spec(s, deps.origins.get(s)) for s in deps.conda_packages},
                        key=_conda_sort_key),
        "pip": sorted({canonical_pip_requirement(r, deps.origins.get(r)) for r in deps.pip_packages}),
        "pip_options": _dedupe([canonical_pip_option(o) for o in deps.pip_options]),
        "user_managed": env.python.user_managed_dependencies,
        "variables": {str(k): str(v) for k, v in sorted(env.environment_variables.items())},
        "lock_file": lock_file_digest(env.lock_file, docker.platform) if env.lock_file else None,
        "docker": {
            "base_image": normalize_image_reference(docker.base_image) if docker.base_image else None,
            "base_dockerfile": digest(docker.base_dockerfile_text()) if docker.base_dockerfile else None,
            "build_context": _build_context_key(docker.build_context, docker.dockerfile_path)
            if docker.build_context else None,
            "gpu": bool(docker.gpu or docker.cuda),
            "cuda": normalize_cuda(docker.cuda) if docker.cuda else None,
        },
    }


def _build_context_key(directory: str, dockerfile_path: str) -> str:
    dockerfile = posixpath.normpath(dockerfile_path)
    return f"{directory_digest(directory, dockerfile)}:{dockerfile}"


def _keyed_channel(channel: str, env: Environment) -> str:
    """A channel as it enters the key: a relative directory by where it is (two specs saying `./chan` beside
    different files are different environments), and never a credential (a rotated token is the same channel)."""
    if "://" not in channel and "${" not in channel:
        from .resolver import channel_url

        resolved = channel_url(channel, env)
        if resolved.startswith("file://"):
            return resolved
        return re.sub(r"^t/[^/]+/", "", channel)  # an anaconda.org token: `t/<token>/name` is `name`
    return public_url(channel)


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# ---------------------------------------------------------------------------------------------------------------
# channels, platforms, images


_ANACONDA_ORG = ("https://conda.anaconda.org/", "http://conda.anaconda.org/")
_PLATFORM_ALIASES = {"linux/amd64": "linux-64", "linux/x86_64": "linux-64", "linux/arm64": "linux-aarch64",
                     "linux/aarch64": "linux-aarch64", "linux/ppc64le": "linux-ppc64le", "linux/s390x": "linux-s390x"}


def normalize_channel(channel: str) -> str:
    """`https://conda.anaconda.org/conda-forge/` → `conda-forge`; `/srv/chan` → `file:///srv/chan`."""
    text = channel.strip().rstrip("/")
    for prefix in _ANACONDA_ORG:
        if text.startswith(prefix) and len(text) > len(prefix):
            return text[len(prefix):]
    if os.path.isabs(text) and "://" not in text:
        return Path(text).as_uri()
    return text


# What conda's `defaults` means on Linux (without a .condarc that redefines it): two channels, in this order.
DEFAULT_CHANNELS = ("https://repo.anaconda.com/pkgs/main", "https://repo.anaconda.com/pkgs/r")


def expand_channel(channel: str) -> list[str]:
    """The channels one entry of `channels:` stands for: `defaults` is two, `nodefaults` none (envbuild never
    adds defaults on its own), `pkgs/main` is Anaconda's URL; others are one, normalized."""
    text = normalize_channel(channel)
    if text == "defaults":
        return list(DEFAULT_CHANNELS)
    if text == "nodefaults":
        return []
    if text in ("pkgs/main", "pkgs/r"):
        return [f"https://repo.anaconda.com/{text}"]
    return [text]

def public_url(url: str) -> str:
    """`url` without credentials: no user:password@, no anaconda.org `/t/<token>/` segment."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    path = re.sub(r"/t/[^/]+/", "/", parts.path)
    return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))


def channel_identity(url: str, platforms: list[str]) -> list:
    """A local channel by the size and mtime of its repodata files (re-indexing it is a change); a remote one
    by its URL without credentials (a rotated token is the same channel)."""
    if not url.startswith("file://"):
        return [public_url(url)]
    root = Path(unquote(urlsplit(url).path))
    stamps = []
    for subdir in [*platforms, "noarch"]:
        try:
            st = (root / subdir / "repodata.json").stat()
            stamps.append([subdir, st.st_size, st.st_mtime_ns])
        except OSError:
            stamps.append([subdir, None])
    return [url, stamps]


def normalize_platform(platform: str) -> str:
    text = platform.strip().lower()
    return _PLATFORM_ALIASES.get(text, text)


def normalize_cuda(version: str) -> str:
    """`12.1.0` and `12.1` are the same CUDA request (conda's `__cuda` pads with zeros too)."""
    parts = str(version).strip().split(".")
    while len(parts) > 2 and parts[-1] == "0":
        parts.pop()
    return ".".join(parts)


def normalize_image_reference(reference: str) -> str:
    """Docker's own normalization: `python` → `docker.io/library/python:latest`; a digest wins over a tag.

    Only the reference is keyed here; the base image's id (its digest where it was resolved) enters the request
    key when building (api.request_key), so a moved tag does not reuse an image built on the old one.
    """
    text = reference.strip()
    name, at, image_digest = text.partition("@")
    first, slash, rest = name.partition("/")
    if not slash:
        name = f"docker.io/library/{name}"
    elif not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}"
    elif first == "index.docker.io":
        name = f"docker.io/{rest}"
    if at:
        return f"{name.rsplit(':', 1)[0] if ':' in name.rpartition('/')[2] else name}@{image_digest.lower()}"
    if ":" not in name.rpartition("/")[2]:
        name += ":latest"
    return name


# ---------------------------------------------------------------------------------------------------------------
# conda


def _conda_sort_key(spec: str) -> tuple[str, str]:
    return (spec.split("::")[-1].split("[")[0].split(" ")[0], spec)


# key="value" | key=[a, b] | key=value inside rattler's canonical `name[...]` string
_BRACKET_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\[[^\]]*\]|[^,\]]*)')


def canonical_conda_spec(spec: str, origin=None) -> str:
    """One spelling per conda match spec (memoized: embedders key many specs that share most packages)."""
    try:
        return _canonical_conda_spec(spec.strip())
    except SpecError as exc:
        raise _located(exc, origin) from None


def canonical_pip_requirement(requirement: str, origin=None) -> str:
    """One spelling per PEP 508 requirement (memoized like canonical_conda_spec)."""
    try:
        return _canonical_pip_requirement(requirement.strip())
    except SpecError as exc:
        raise _located(exc, origin) from None


def _located(error: SpecError, origin) -> SpecError:
    return SpecError(error.what, where=str(origin) if origin else error.where, fix=error.fix)


@functools.lru_cache(maxsize=1 << 16)
def _canonical_conda_spec(spec: str) -> str:
    """One spelling per conda match spec.

    `NumPy <2,>=1.20` and `numpy>=1.20,<2` → `numpy <2,>=1.20`; `numpy=1.21` → `numpy 1.21.*`;
    `https://conda.anaconda.org/conda-forge::numpy` → `conda-forge::numpy`; `numpy[build=py39*]` →
    `numpy * py39*`. Other bracket fields (build_number, subdir, md5, ...) stay in rattler's canonical order.
    """
    from rattler import MatchSpec

    try:
        match = MatchSpec(spec.strip())
        canonical = match.to_canonical_string()
    except (KeyboardInterrupt, SystemExit):
        raise
    # rattler's own errors, and pyo3's PanicException (a BaseException) on odd input
    except BaseException as exc:  # noqa: BLE001
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError(f"invalid conda match spec {spec.strip()!r}: {reason}",
                        fix="write a conda match spec such as `numpy>=1.24,<2`, `numpy=1.26` or "
                            "`conda-forge::numpy 1.26.* py311*`") from None
    if match.name is None:
        raise SpecError(f"conda match spec {spec.strip()!r} names no package",
                        fix="start the spec with the package name")
    fields = {}
    if "[" in canonical:
        fields = {k: v for k, v in _BRACKET_FIELD.findall(canonical[canonical.index("["):])}
    version = canonical_conda_version(_unquote(fields.pop("version", '"*"')))
    build = _unquote(fields.pop("build", '""')) or None
    channel = fields.pop("channel", None)
    out = match.name.normalized
    if channel:
        out = f"{normalize_channel(_unquote(channel))}::{out}"
    if build:
        out += f" {version} {build}"
    elif version != "*":
        out += f" {version}"
    if fields:
        out += "[" + ",".join(f"{k}={v}" for k, v in fields.items()) + "]"
    try:
        MatchSpec(out)  # the resolver receives this spelling: it must parse back
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001  (as above)
        raise SpecError(f"conda match spec {spec.strip()!r} cannot be written back in conda's syntax (as {out!r})",
                        fix="remove quotes and unusual characters from the version and build parts") from None
    return out


def _unquote(value: str) -> str:
    return value[1:-1] if value.startswith('"') else value


_PLAIN_VERSION_CONSTRAINT = re.compile(r"^(==|!=|>=|<=|>|<)(\d+(?:\.\d+)*)$")


def canonical_conda_version(version: str) -> str:
    """Sort the AND-ed constraints of each OR branch and the branches; drop padding zeros where it is exact.

    conda compares `1.20` and `1.20.0` as equal, so `>=1.20.0` is `>=1.20`; globs (`1.20.0.*`) and `~=` keep
    every component because there the number of components changes the meaning.
    """
    text = version.replace(" ", "")
    if not text or "(" in text:
        return text or "*"
    branches = set()
    for branch in text.split("|"):
        constraints = {_conda_constraint(c) for c in branch.split(",") if c}
        if constraints - {"*"}:
            constraints.discard("*")
        branches.add(",".join(sorted(constraints)))
    if "*" in branches or "" in branches:
        return "*"
    return "|".join(sorted(branches))


def _conda_constraint(constraint: str) -> str:
    match = _PLAIN_VERSION_CONSTRAINT.match(constraint)
    if not match:
        return constraint
    op, number = match.groups()
    parts = number.split(".")
    while len(parts) > 1 and int(parts[-1]) == 0:
        parts.pop()
    return op + ".".join(str(int(p)) for p in parts)


# ---------------------------------------------------------------------------------------------------------------
# pip


def canonical_pip_option(option: str, *, keep_credentials: bool = False) -> str:
    """`--index-url "https://u:tok@x/simple/"` → `--index-url https://x/simple` (credentials kept only for the
    solver, which needs them; a key never holds them, and a rotated token is the same index).

    Naming PyPI's own index is kept: it is not the same as naming none when PIP_INDEX_URL points elsewhere.
    """
    flag, _, value = option.partition(" ")
    value = value.strip().strip("'\"").strip()
    if flag in ("--index-url", "--extra-index-url", "--find-links"):
        value = value.rstrip("/") if keep_credentials else public_url(value.rstrip("/"))
    return f"{flag} {value}".strip()


@functools.lru_cache(maxsize=1 << 16)
def _canonical_pip_requirement(requirement: str) -> str:
    """One spelling per PEP 508 requirement.

    `Scikit_Learn[B,a]<2.0,>=1 ; python_version>"3"` → `scikit-learn[a,b]<2,>=1; python_version > "3"`;
    `git+https://host/x.git#egg=X` → `x @ git+https://host/x.git`.
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    text = _named_url_requirement(requirement.strip())
    if _VCS_OR_URL.match(text):
        return _nameless_url_requirement(text)
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise SpecError(f"invalid requirement {requirement.strip()!r}: {exc}",
                        fix="write a PEP 508 requirement, e.g. `numpy>=1.24,<2` or `name @ https://...`") from None
    out = canonicalize_name(req.name)
    if req.extras:
        out += "[" + ",".join(sorted({canonicalize_name(e) for e in req.extras})) + "]"
    if req.url:
        out += f" @ {_without_egg(req.url)}"
    elif req.specifier:
        out += ",".join(sorted({_canonical_specifier(s) for s in req.specifier}))
    if req.marker:
        out += f"; {req.marker}"
    try:
        Requirement(out)  # the resolver receives this spelling: it must parse back
    except InvalidRequirement:
        raise SpecError(f"requirement {requirement.strip()!r} cannot be written back as PEP 508 (as {out!r})",
                        fix="write it as `name`, `name<spec>` or `name @ URL` with a valid project name") from None
    return out


_VCS_OR_URL = re.compile(r"^(git|hg|svn|bzr)\+|^(https?|file)://")


def _named_url_requirement(text: str) -> str:
    """pip's name-less URL forms (`git+URL#egg=name`, `https://.../name-1.0-py3-none-any.whl`) → `name @ URL`."""
    if not _VCS_OR_URL.match(text):
        return text
    url, _, marker = text.partition(";")
    url = url.strip()
    egg = re.search(r"[#&]egg=([A-Za-z0-9_.\-]+(?:\[[^\]]*\])?)", url)
    if egg:
        name = egg.group(1)
    else:
        from packaging.utils import InvalidWheelFilename, parse_wheel_filename

        try:
            name = parse_wheel_filename(url.split("#")[0].rsplit("/", 1)[-1])[0]
        except InvalidWheelFilename:
            return text  # only building it tells its name: pip and uv accept it so
    return f"{name} @ {url}" + (f"; {marker.strip()}" if marker.strip() else "")


def _nameless_url_requirement(text: str) -> str:
    """`git+https://host/repo.git` with no name anywhere: keyed by its URL (the URL says what gets built)."""
    from packaging.markers import InvalidMarker, Marker

    url, _, marker = text.partition(";")
    url = _without_egg(url.strip())
    if re.search(r"\s", url):
        raise SpecError(f"invalid URL requirement {text!r}",
                        fix="write it as `name @ URL` with a URL without spaces")
    if not marker.strip():
        return url
    try:
        return f"{url}; {Marker(marker.strip())}"
    except InvalidMarker as exc:
        raise SpecError(f"invalid environment marker in {text!r}: {exc}",
                        fix='write a PEP 508 marker, e.g. `; python_version >= "3.10"`') from None


def _without_egg(url: str) -> str:
    # `#egg=` only names the project, which the requirement now carries; other fragments (subdirectory) stay.
    base, _, fragment = url.partition("#")
    kept = [p for p in fragment.split("&") if p and not p.startswith("egg=")]
    return base + ("#" + "&".join(kept) if kept else "")


def _canonical_specifier(specifier) -> str:
    """`==1.0.0` → `==1`: PEP 440 pads release segments with zeros when comparing, so both match the same set.

    `~=` (its component count sets the upper bound), wildcards' prefixes and `===` (string equality) keep every
    component.
    """
    from packaging.utils import canonicalize_version

    op, version = specifier.operator, specifier.version
    if op == "===":
        return f"{op}{version}"
    if version.endswith(".*"):
        return f"{op}{canonicalize_version(version[:-2], strip_trailing_zero=False)}.*"
    return f"{op}{canonicalize_version(version, strip_trailing_zero=op != '~=')}"


# ---------------------------------------------------------------------------------------------------------------
# files


def directory_digest(path: str | Path, dockerfile_path: str = "Dockerfile") -> str:
    """Content digest of a build context: every file's relative path, executable bit and bytes, and every
    directory (COPY creates empty ones too), in sorted order; what .dockerignore keeps out of the build (a .git
    directory, caches) does not count."""
    root = Path(path)
    if not root.is_dir():
        raise SpecError(f"build context {root} is not a directory", fix="point docker.build_context at a directory")
    h = hashlib.sha256()
    for relative in sorted(context_entries(root, dockerfile_path)):
        entry = root / relative
        if entry.is_dir():
            h.update(f"{relative}/\0".encode())
        elif entry.is_file():
            executable = b"x" if entry.stat().st_mode & 0o111 else b"-"
            h.update(relative.encode() + b"\0" + executable)
            h.update(hashlib.sha256(entry.read_bytes()).digest())
    return h.hexdigest()


def context_entries(root: Path, dockerfile_path: str) -> list[str]:
    """Relative paths of what a build sees of `root`: all of it, or what its .dockerignore lets through."""
    ignore = root / ".dockerignore"
    if not ignore.is_file():
        return [p.relative_to(root).as_posix() for p in root.rglob("*")]
    from docker.utils.build import exclude_paths  # the docker SDK's implementation of .dockerignore rules

    patterns = [line.strip() for line in ignore.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.strip().startswith("#")]
    return [Path(p).as_posix() for p in exclude_paths(str(root), patterns, dockerfile=dockerfile_path)]


def lock_file_digest(path: str | Path, platform: str) -> str:
    """Digest of what a conda-lock file installs on `platform`: each package's manager, name, url, hash, category.

    Comments, ordering, metadata and other platforms' packages do not change the image, so they do not count.
    """
    from .spec import read_lock_file

    packages = read_lock_file(Path(path), platform)
    return digest(json.dumps(packages, sort_keys=True, separators=(",", ":")))


# Build-request keys
def request_key(spec_key: str, base_id: str, template_digest: str | None, local_channels=(),
                platform: str = "linux-64") -> str:
    """What a build request is keyed by before locking: the spec, the exact base image, the template, and the
    current content of its local channels (re-indexing one must not serve the image of its old packages)."""
    value = {"spec": spec_key, "base": base_id, "template": template_digest}
    if local_channels:
        value["channels"] = [channel_identity(url, [platform]) for url in local_channels]
    return key_of(value)


def template_digest(template) -> str | None:
    return digest(Path(template).read_bytes()) if template else None


def file_memo_key(file: Path, base_image: str | None) -> str:
    return key_of({"path": str(file.resolve()), "bytes": digest(file.read_bytes()), "base": base_image})
