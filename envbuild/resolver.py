"""Resolver: canonical spec → Lock (conda-lock.yml, version 1 file format).

The conda part is solved with py-rattler against the environment's channels in priority order; the pip part with
uv against the Python the conda part chose (or the base image's Python for pip-only environments), pinned to one
file per package (URL + sha256) for the target platform. The result is written with conda-lock's own models and
writer, so `conda-lock render` / `conda-lock install` read it. The lock key hashes only what gets installed
(url + sha256 of every package): two specs that resolve to the same packages share one image.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ResolveError, SpecError
from .keys import canonical_form, key_of, normalize_channel

if TYPE_CHECKING:
    from .spec import Environment

_ARCH = {"linux-64": "x86_64", "linux-aarch64": "aarch64", "linux-ppc64le": "ppc64le"}
# glibc the pip side targets when the base image does not say (manylinux_2_28 covers current wheels).
DEFAULT_GLIBC = "2.28"


@dataclass(frozen=True)
class LockedPackage:
    """One package to install, exactly: what the lock key and the build are made of."""

    manager: str  # "conda" | "pip"
    name: str
    version: str
    url: str
    sha256: str
    build: str | None = None
    md5: str | None = None
    depends: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1].split("#")[0]


@dataclass(frozen=True)
class Lock:
    """A resolved environment for one platform."""

    platform: str
    spec_key: str
    python_version: str | None
    channels: tuple[str, ...]
    packages: tuple[LockedPackage, ...]
    text: str = field(repr=False)  # the conda-lock.yml file

    @property
    def key(self) -> str:
        return key_of(sorted([p.manager, p.url.split("#")[0], p.sha256] for p in self.packages))

    @property
    def conda(self) -> list[LockedPackage]:
        return [p for p in self.packages if p.manager == "conda"]

    @property
    def pip(self) -> list[LockedPackage]:
        return [p for p in self.packages if p.manager == "pip"]

    def write(self, path: str | os.PathLike) -> Path:
        """Write atomically: a reader never sees a half-written lock file."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(self.text)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target


def resolve(env: "Environment", *, platform: str | None = None, python_version: str | None = None,
            glibc: str | None = None) -> Lock:
    """Solve `env` for `platform`. `python_version` is the base image's Python, used when conda brings none."""
    platform = platform or env.docker.platform
    deps = env.python.conda_dependencies
    canonical = canonical_form(env)
    spec_key = key_of(canonical)
    packages: list[LockedPackage] = []
    if env.python.user_managed_dependencies:
        conda_records = []
    else:
        conda_records = _solve_conda(canonical["conda"], canonical["channels"], platform, env) if deps.conda_packages else []
    packages.extend(conda_records)
    conda_python = next((p.version for p in conda_records if p.name == "python"), None)
    if deps.conda_packages and deps.pip_packages and not conda_python:
        raise ResolveError("pip packages need a Python, and the conda packages bring none",
                           where=_first_origin(env), fix="add `python=3.11` (or another version) to the conda dependencies")
    target_python = conda_python or python_version
    if deps.pip_packages and not env.python.user_managed_dependencies:
        if not target_python:
            raise ResolveError("cannot tell which Python the pip packages are for",
                               fix="add a `python` conda dependency or use a base image that has Python")
        packages.extend(_solve_pip(canonical["pip"], canonical["pip_options"], target_python, platform,
                                   glibc or DEFAULT_GLIBC))
    text = _write_conda_lock(packages, canonical["channels"], platform, spec_key, env)
    return Lock(platform=platform, spec_key=spec_key, python_version=target_python,
                channels=tuple(canonical["channels"]), packages=tuple(packages), text=text)


def _first_origin(env: "Environment") -> str | None:
    return env.source_files[0] if env.source_files else None


# ---------------------------------------------------------------------------------------------------------------
# conda side


def virtual_packages_for(env: "Environment", platform: str) -> list:
    """Virtual packages of the target, not of this machine: GPU builds solve on machines without a GPU."""
    import rattler

    overrides = []
    if platform.startswith("linux"):
        overrides.append(rattler.GenericVirtualPackage(rattler.PackageName("__linux"), rattler.Version("6.1"), rattler.BuildString("0")))
        overrides.append(rattler.GenericVirtualPackage(rattler.PackageName("__glibc"), rattler.Version("2.36"), rattler.BuildString("0")))
        overrides.append(rattler.GenericVirtualPackage(rattler.PackageName("__unix"), rattler.Version("0"), rattler.BuildString("0")))
        arch = _ARCH.get(platform)
        if arch:
            overrides.append(rattler.GenericVirtualPackage(rattler.PackageName("__archspec"), rattler.Version("1"), rattler.BuildString(arch)))
    cuda = env.docker.cuda or os.environ.get("CONDA_OVERRIDE_CUDA")
    if cuda:
        overrides.append(rattler.GenericVirtualPackage(rattler.PackageName("__cuda"), rattler.Version(cuda), rattler.BuildString("0")))
    return overrides


def _solve_conda(specs: list[str], channels: list[str], platform: str, env: "Environment") -> list[LockedPackage]:
    import rattler

    if not channels:
        raise SpecError("conda packages are listed but no channel is", where=_first_origin(env),
                        fix="add a `channels:` list (e.g. conda-forge, or a file:// URL of a local channel)")
    channel_objs = [rattler.Channel(_channel_url(c)) for c in channels]
    try:
        records = asyncio.run(rattler.solve(
            sources=channel_objs, specs=specs, platforms=[platform, "noarch"],
            virtual_packages=virtual_packages_for(env, platform),
            channel_priority=rattler.ChannelPriority.Strict,
        ))
    except Exception as exc:  # rattler.exceptions.SolverError, FetchRepoDataError, ...
        raise _solve_error(exc, specs, channels, env) from None
    out = []
    for r in records:
        out.append(LockedPackage(
            manager="conda", name=r.name.normalized, version=str(r.version), url=str(r.url),
            sha256=r.sha256.hex() if r.sha256 else "", md5=r.md5.hex() if r.md5 else None,
            build=str(r.build), depends=tuple(r.depends),
        ))
    return sorted(out, key=lambda p: p.name)


def _channel_url(channel: str) -> str:
    # A plain directory path is a local channel too.
    if os.path.isabs(channel) and "://" not in channel:
        return Path(channel).as_uri()
    return channel


def _solve_error(exc: Exception, specs: list[str], channels: list[str], env: "Environment") -> ResolveError:
    text = str(exc).strip()
    name = type(exc).__name__
    where = _first_origin(env)
    searched = ", ".join(channels)
    if "Fetch" in name or "No such file" in text or "404" in text:
        return ResolveError(f"cannot read channel repodata: {text}", where=where,
                            fix=f"check the channels ({searched}) are reachable and indexed")
    missing = re.findall(r"No candidates were found for ([^\s.]+)", text)
    if missing:
        return ResolveError(f"package {missing[0]} not found in channels {searched}", where=where,
                            fix="check the name and version, or add the channel that has it")
    return ResolveError(f"the conda packages cannot be installed together:\n{text}", where=where,
                        fix="relax one of the conflicting constraints named above")


# ---------------------------------------------------------------------------------------------------------------
# pip side


def _uv_binary() -> str:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except Exception:
        return "uv"


def _solve_pip(requirements: list[str], options: list[str], python_version: str, platform: str,
               glibc: str) -> list[LockedPackage]:
    arch = _ARCH.get(platform)
    if not arch:
        raise ResolveError(f"pip packages for platform {platform} are not supported yet",
                           fix=f"use one of {', '.join(_ARCH)}")
    py = ".".join(python_version.split(".")[:2])
    uv_platform = f"{arch}-manylinux_{glibc.replace('.', '_')}"
    with tempfile.TemporaryDirectory(prefix="envbuild-pip-") as tmp:
        req_in = Path(tmp, "requirements.in")
        req_in.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        out = Path(tmp, "pylock.toml")
        cmd = [_uv_binary(), "pip", "compile", str(req_in), "--format", "pylock.toml", "-o", str(out),
               "--python-version", py, "--python-platform", uv_platform, "--quiet", "--no-header",
               "--no-annotate", "--emit-index-url"]
        for number, option in enumerate(options):
            flag, _, value = option.partition(" ")
            if flag == "--pre":
                cmd += ["--prerelease", "allow"]
            elif flag in ("--index-url", "--extra-index-url", "--find-links"):
                cmd += [flag, value]
            elif flag == "--no-index":
                cmd += ["--no-index"]
            elif flag == "--constraint":
                constraint = Path(tmp, f"constraints-{number}.txt")
                constraint.write_text(value + "\n", encoding="utf-8")
                cmd += ["--constraint", str(constraint)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=_uv_env())
        if proc.returncode != 0:
            raise ResolveError(f"pip requirements cannot be resolved for Python {py} on {platform}:\n"
                               f"{_uv_message(proc.stderr)}",
                               fix="check the package names and versions (the message above names the conflict)")
        data = tomllib.loads(out.read_text(encoding="utf-8"))
    tags = _target_tags(py, arch, glibc)
    return [_pick_file(pkg, tags, py, platform) for pkg in data.get("packages", [])]


def _uv_env() -> dict:
    env = dict(os.environ)
    env.setdefault("UV_NO_PROGRESS", "1")
    # uv reads the system trust store only when asked; corporate proxies need it.
    env.setdefault("UV_NATIVE_TLS", "1")
    return env


def _uv_message(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return "\n".join("  " + line for line in lines[-15:])


def _target_tags(py: str, arch: str, glibc: str) -> list[str]:
    from packaging import tags

    major, minor = (int(x) for x in py.split("."))
    glibc_minor = int(glibc.split(".")[1])
    platforms = [f"manylinux_2_{m}_{arch}" for m in range(glibc_minor, 4, -1)]
    platforms += [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}", f"linux_{arch}"]
    interpreter = f"cp{major}{minor}"
    ordered = list(tags.cpython_tags((major, minor), platforms=platforms))
    ordered += list(tags.compatible_tags((major, minor), interpreter=interpreter, platforms=platforms))
    return [str(t) for t in ordered]


def _pick_file(pkg: dict, target_tags: list[str], py: str, platform: str) -> LockedPackage:
    from packaging.utils import parse_wheel_filename

    rank = {tag: i for i, tag in enumerate(target_tags)}
    best = None
    for wheel in pkg.get("wheels", []):
        filename = wheel["url"].rsplit("/", 1)[-1]
        try:
            _, _, _, wheel_tags = parse_wheel_filename(filename)
        except Exception:
            continue
        score = min((rank[str(t)] for t in wheel_tags if str(t) in rank), default=None)
        if score is not None and (best is None or score < best[0]):
            best = (score, wheel)
    chosen = best[1] if best else pkg.get("sdist")
    if chosen is None:
        raise ResolveError(f"{pkg['name']} {pkg.get('version')} has no file for Python {py} on {platform}",
                           fix="pin a version that publishes a compatible wheel or an sdist")
    return LockedPackage(manager="pip", name=pkg["name"], version=str(pkg.get("version", "")),
                         url=chosen["url"], sha256=chosen["hashes"]["sha256"])


# ---------------------------------------------------------------------------------------------------------------
# conda-lock.yml


def _write_conda_lock(packages: list[LockedPackage], channels: list[str], platform: str, spec_key: str,
                      env: "Environment") -> str:
    from conda_lock.lockfile import write_conda_lock_file
    from conda_lock.lockfile.v2prelim.models import HashModel, LockedDependency, Lockfile, LockMeta
    from conda_lock.models.channel import Channel

    locked = []
    for p in packages:
        deps = {}
        for dep in p.depends:
            name, _, constraint = dep.partition(" ")
            deps[name] = constraint.strip() or "*"
        locked.append(LockedDependency(
            name=p.name, version=p.version, manager=p.manager, platform=platform, dependencies=deps,
            url=p.url, hash=HashModel(md5=p.md5, sha256=p.sha256), categories={"main"}, build=p.build,
        ))
    meta = LockMeta(
        content_hash={platform: spec_key},
        channels=[Channel(url=_channel_url(c), used_env_vars=()) for c in channels],
        platforms=[platform],
        sources=[os.path.basename(f) for f in env.source_files[:1]],
    )
    with tempfile.TemporaryDirectory(prefix="envbuild-lock-") as tmp:
        path = Path(tmp, "conda-lock.yml")
        write_conda_lock_file(Lockfile(package=locked, metadata=meta), path, metadata_choices=None)
        return path.read_text(encoding="utf-8")


def read_lock(path: str | os.PathLike) -> Lock:
    """Read a user-supplied conda-lock.yml (any version conda-lock reads) as a Lock, without solving."""
    from conda_lock.lockfile import parse_conda_lock_file

    p = Path(path)
    try:
        parsed = parse_conda_lock_file(p)
    except Exception as exc:
        raise SpecError(f"not a valid conda-lock file: {exc}", where=str(p),
                        fix="regenerate it with `conda-lock lock` or `envbuild lock`") from None
    platforms = parsed.metadata.platforms
    platform = "linux-64" if "linux-64" in platforms else platforms[0]
    packages = []
    for d in parsed.package:
        if d.platform != platform or "main" not in d.categories:
            continue
        packages.append(LockedPackage(manager=d.manager, name=d.name, version=d.version, url=d.url,
                                      sha256=d.hash.sha256 or "", md5=d.hash.md5, build=d.build))
    python = next((p.version for p in packages if p.manager == "conda" and p.name == "python"), None)
    channels = tuple(normalize_channel(c.url) for c in parsed.metadata.channels)
    content_hash = parsed.metadata.content_hash.get(platform, "")
    return Lock(platform=platform, spec_key=f"lockfile:{content_hash}", python_version=python, channels=channels,
                packages=tuple(packages), text=p.read_text(encoding="utf-8"))

