"""Package records: one parsed, canonical record per conda match spec and per PEP 508 requirement.

A record holds what a package request is made of (manager, canonical name, version constraint, channel, build,
extras, URL, marker) and its one spelling, which is what enters the spec key and what the solvers receive.
Names are canonicalized (PEP 503 for pip, lowercase for conda); constraints are parsed (packaging for pip,
rattler's MatchSpec for conda) and re-printed in one spelling, merging only spellings that match exactly the same
versions (`numpy=1.21` and `numpy 1.21.*`; `==1.0` and `==1.0.0`, equal under both PEP 440 and conda's zero
padding). Every later stage (keys, GPU choice, explain) reads these fields instead of re-parsing the spelling.

Parsers (packaging, rattler) are imported inside the functions that need them: keys imports this module on the
cache-hit path. Records are memoized: embedders key many specs that share most packages.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from .channels import normalize_channel, public_url
from .errors import SpecError


@dataclass(frozen=True)
class PackageRecord:
    """One requested package, parsed. `spelling` is the canonical text: the key's and the solver's."""

    manager: str  # "conda" | "pip"
    name: str  # canonical name; a pip requirement that names no project (a bare VCS URL) is named by its URL
    spelling: str
    constraint: str = ""  # conda: its version spec ("*": any); pip: its specifiers, sorted ("": any)
    channel: str | None = None  # conda: the channel the spec pins it to
    build: str | None = None  # conda: the build string
    extras: tuple[str, ...] = ()  # pip
    url: str | None = None  # pip: a direct reference (`name @ URL`)
    marker: str | None = None  # pip: the environment marker


def conda_package(spec: str, origin=None) -> PackageRecord:
    """The record of a conda match spec; a SpecError names `origin` (file:line) when it is invalid."""
    try:
        return _conda_package(spec.strip())
    except SpecError as exc:
        raise _located(exc, origin) from None


def pip_package(requirement: str, origin=None) -> PackageRecord:
    """The record of a PEP 508 requirement (or a pip URL form); a SpecError names `origin` when it is invalid."""
    try:
        return _pip_package(requirement.strip())
    except SpecError as exc:
        raise _located(exc, origin) from None


def canonical_conda_spec(spec: str, origin=None) -> str:
    """One spelling per conda match spec."""
    return conda_package(spec, origin).spelling


def canonical_pip_requirement(requirement: str, origin=None) -> str:
    """One spelling per PEP 508 requirement."""
    return pip_package(requirement, origin).spelling


def _located(error: SpecError, origin) -> SpecError:
    return SpecError(error.what, where=str(origin) if origin else error.where, fix=error.fix)


# ---------------------------------------------------------------------------------------------------------------
# conda


# key="value" | key=[a, b] | key=value inside rattler's canonical `name[...]` string
_BRACKET_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\[[^\]]*\]|[^,\]]*)')


@functools.lru_cache(maxsize=1 << 16)
def _conda_package(spec: str) -> PackageRecord:
    """One record per conda match spec.

    `NumPy <2,>=1.20` and `numpy>=1.20,<2` → `numpy <2,>=1.20`; `numpy=1.21` → `numpy 1.21.*`;
    `https://conda.anaconda.org/conda-forge::numpy` → `conda-forge::numpy`; `numpy[build=py39*]` →
    `numpy * py39*`. Other bracket fields (build_number, subdir, md5, ...) stay in rattler's canonical order.
    """
    from rattler import MatchSpec

    try:
        match = MatchSpec(spec)
        canonical = match.to_canonical_string()
    except (KeyboardInterrupt, SystemExit):
        raise
    # rattler's own errors, and pyo3's PanicException (a BaseException) on odd input
    except BaseException as exc:  # noqa: BLE001
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError(f"invalid conda match spec {spec!r}: {reason}",
                        fix="write a conda match spec such as `numpy>=1.24,<2`, `numpy=1.26` or "
                            "`conda-forge::numpy 1.26.* py311*`") from None
    if match.name is None:
        raise SpecError(f"conda match spec {spec!r} names no package", fix="start the spec with the package name")
    fields = {}
    if "[" in canonical:
        fields = {k: v for k, v in _BRACKET_FIELD.findall(canonical[canonical.index("["):])}
    version = canonical_conda_version(_unquote(fields.pop("version", '"*"')))
    build = _unquote(fields.pop("build", '""')) or None
    channel = fields.pop("channel", None)
    channel = normalize_channel(_unquote(channel)) if channel else None
    name = match.name.normalized
    out = f"{channel}::{name}" if channel else name
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
        raise SpecError(f"conda match spec {spec!r} cannot be written back in conda's syntax (as {out!r})",
                        fix="remove quotes and unusual characters from the version and build parts") from None
    return PackageRecord("conda", name, out, constraint=version, channel=channel, build=build)


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
def _pip_package(requirement: str) -> PackageRecord:
    """One record per PEP 508 requirement.

    `Scikit_Learn[B,a]<2.0,>=1 ; python_version>"3"` → `scikit-learn[a,b]<2,>=1; python_version > "3"`;
    `git+https://host/x.git#egg=X` → `x @ git+https://host/x.git`.
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    text = _named_url_requirement(requirement)
    if _VCS_OR_URL.match(text):
        return _nameless_url_requirement(text)
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise SpecError(f"invalid requirement {requirement!r}: {exc}",
                        fix="write a PEP 508 requirement, e.g. `numpy>=1.24,<2` or `name @ https://...`") from None
    name = canonicalize_name(req.name)
    extras = tuple(sorted({canonicalize_name(e) for e in req.extras}))
    url = _without_egg(req.url) if req.url else None
    constraint = "" if url else ",".join(sorted({_canonical_specifier(s) for s in req.specifier}))
    marker = str(req.marker) if req.marker else None
    out = name + ("[" + ",".join(extras) + "]" if extras else "")
    out += f" @ {url}" if url else constraint
    if marker:
        out += f"; {marker}"
    try:
        Requirement(out)  # the resolver receives this spelling: it must parse back
    except InvalidRequirement:
        raise SpecError(f"requirement {requirement!r} cannot be written back as PEP 508 (as {out!r})",
                        fix="write it as `name`, `name<spec>` or `name @ URL` with a valid project name") from None
    return PackageRecord("pip", name, out, constraint=constraint, extras=extras, url=url, marker=marker)


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


def _nameless_url_requirement(text: str) -> PackageRecord:
    """`git+https://host/repo.git` with no name anywhere: keyed by its URL (the URL says what gets built)."""
    from packaging.markers import InvalidMarker, Marker

    url, _, marker = text.partition(";")
    url = _without_egg(url.strip())
    if re.search(r"\s", url):
        raise SpecError(f"invalid URL requirement {text!r}",
                        fix="write it as `name @ URL` with a URL without spaces")
    if not marker.strip():
        return PackageRecord("pip", url, url, url=url)
    try:
        parsed = str(Marker(marker.strip()))
    except InvalidMarker as exc:
        raise SpecError(f"invalid environment marker in {text!r}: {exc}",
                        fix='write a PEP 508 marker, e.g. `; python_version >= "3.10"`') from None
    return PackageRecord("pip", url, f"{url}; {parsed}", url=url, marker=parsed)


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
