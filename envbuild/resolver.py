"""Resolver: canonical spec → Lock (conda-lock.yml, version 1 file format).

The conda part is solved with py-rattler against the environment's channels in strict priority order, with the
virtual packages of the *target* (so a CUDA environment solves on a machine without a GPU); the pip part with uv
against the Python the conda part chose (or the base image's Python for pip-only environments), pinned to one
file per package (URL + sha256) for the target platform. The result is written with conda-lock's own models and
writer, so `conda-lock render` / `conda-lock install` read it. The lock key hashes only what gets installed
(url + sha256 of every package): two specs that resolve to the same packages share one image.

Nothing here imports rattler, conda-lock, packaging or even asyncio at module level: `lock_request_key` runs on
the lock-cache hit path, which must stay a few milliseconds.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from .errors import ResolveError, SpecError
from .keys import channel_identity, digest, key_of, normalize_channel, public_url

if TYPE_CHECKING:
    from .spec import Environment


@dataclass(frozen=True)
class Target:
    """What a platform means to each solver: rattler's virtual packages and uv's --python-platform."""

    arch: str  # __archspec build string, and the wheel-tag architecture
    os: str  # "linux" | "osx" | "win"
    os_version: str | None = None  # macOS version the wheels and __osx target

    def uv_platform(self, glibc: str) -> str:
        """uv's --python-platform; uv knows manylinux_2_17 and 2_28 onwards, so an older glibc falls back."""
        arch = {"arm64": "aarch64"}.get(self.arch, self.arch)
        if self.os == "linux":
            if arch not in ("x86_64", "aarch64"):
                raise ResolveError(f"uv cannot lock pip packages for linux on {arch}",
                                   fix="lock the pip packages for linux-64 or linux-aarch64")
            minor = int(glibc.split(".")[1])
            minor = minor if minor >= 31 else (28 if minor >= 28 else 17)
            return f"{arch}-manylinux_2_{minor}"
        if self.os == "osx":
            return f"{arch}-apple-darwin"
        return f"{arch}-pc-windows-msvc"


TARGETS = {
    "linux-64": Target("x86_64", "linux"),
    "linux-aarch64": Target("aarch64", "linux"),
    "linux-ppc64le": Target("ppc64le", "linux"),
    "osx-64": Target("x86_64", "osx", "12.0"),
    "osx-arm64": Target("arm64", "osx", "12.0"),
    "win-64": Target("x86_64", "win"),
}
# glibc the target is assumed to have when the base image does not say (manylinux_2_28 covers current wheels).
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


def _write_atomically(path: str | os.PathLike, text: str) -> Path:
    """A reader never sees a half-written lock file, and a failure leaves the old one (or none)."""
    import tempfile

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


@dataclass(frozen=True)
class Lock:
    """A resolved environment for one platform: what one image is built from."""

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
        return _write_atomically(path, self.text)


@dataclass(frozen=True)
class LockSet:
    """One conda-lock.yml for several platforms, and the per-platform Lock a build of each platform uses."""

    locks: tuple[Lock, ...]
    text: str = field(repr=False)

    @property
    def platforms(self) -> list[str]:
        return [lock.platform for lock in self.locks]

    @property
    def spec_key(self) -> str:
        return self.locks[0].spec_key

    @property
    def key(self) -> str:
        return key_of({lock.platform: lock.key for lock in self.locks})

    @property
    def packages(self) -> tuple[LockedPackage, ...]:
        return tuple(p for lock in self.locks for p in lock.packages)

    def __getitem__(self, platform: str) -> Lock:
        for lock in self.locks:
            if lock.platform == platform:
                return lock
        raise KeyError(f"{platform} is not locked (platforms: {', '.join(self.platforms)})")

    def write(self, path: str | os.PathLike) -> Path:
        return _write_atomically(path, self.text)


# ---------------------------------------------------------------------------------------------------------------
# requests and their cache key


def parse_exclude_newer(value: "str | dt.datetime | dt.date | None") -> dt.datetime | None:
    """`2024-06-01`, an ISO timestamp or a datetime → an aware UTC datetime (None stays None)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise SpecError(f"--exclude-newer {value!r} is not a date", fix="write a date like 2024-06-01 or "
                            "an ISO timestamp like 2024-06-01T12:00:00Z") from None
    elif not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _platform_list(env: "Environment", platforms: Iterable[str] | None) -> list[str]:
    wanted = list(dict.fromkeys(platforms or [env.docker.platform]))
    unknown = [p for p in wanted if p not in TARGETS]
    if unknown:
        raise SpecError(f"unknown platform {unknown[0]!r}", fix=f"use one of {', '.join(TARGETS)}")
    return wanted


def lock_request_key(env: "Environment", platforms: Iterable[str] | None = None, *, python_version: str | None = None,
                     glibc: str | None = None, exclude_newer=None) -> str:
    """What a lock is cached under: the spec, the channels' current content, the targets and the cut-off.

    Channel identity: a local channel (file:// or a directory) is identified by the size and modification time
    of each repodata file the solve reads, so re-indexing it invalidates the lock; a remote channel by its URL
    alone (asking it for an ETag would cost a round trip on every hit): a lock is meant to stay put until
    `--refresh`, and `--exclude-newer` makes a remote solve repeatable anyway.
    """
    wanted = _platform_list(env, platforms)
    lock_file = getattr(env, "lock_file", None)
    return key_of({
        "spec": env.key,
        "lock_file": digest(Path(lock_file).read_bytes()) if lock_file else None,
        "channels": [channel_identity(channel_url(c, env), wanted) for c in env.python.conda_dependencies.channels],
        "platforms": wanted,
        "exclude_newer": (parse_exclude_newer(exclude_newer).isoformat() if exclude_newer else None),
        "python": python_version,
        "glibc": glibc,
        # What else in the environment changes a solve: virtual-package overrides and pip's index variables.
        "overrides": {name: os.environ[name] for name in sorted(_SOLVE_VARIABLES) if name in os.environ},
    })


_SOLVE_VARIABLES = {"CONDA_OVERRIDE_CUDA", "CONDA_OVERRIDE_GLIBC", "CONDA_OVERRIDE_OSX", "PIP_INDEX_URL",
                    "PIP_EXTRA_INDEX_URL"}


def solver_channels(env: "Environment") -> list[str]:
    """The channels as written (credentials and `${VAR}`s included), in priority order: the key sees them without
    credentials, the solver needs them whole."""
    from .keys import expand_channel

    return list(dict.fromkeys(url for c in env.python.conda_dependencies.channels for url in expand_channel(c)))


def solver_pip_options(env: "Environment") -> list[str]:
    """pip options as written, credentials included (the key strips them), normalized and without duplicates."""
    from .keys import canonical_pip_option

    options = env.python.conda_dependencies.pip_options
    return list(dict.fromkeys(canonical_pip_option(o, keep_credentials=True) for o in options))


def channel_url(channel: str, env: "Environment | None" = None) -> str:
    """A channel as the solver reaches it: URLs as written, directories as file:// URLs, names on anaconda.org."""
    # `${TOKEN}` in a channel URL comes from the environment, as in conda-lock; the lock never records it.
    channel = os.path.expandvars(normalize_channel(channel))
    if "://" in channel:
        return channel
    path = Path(channel).expanduser()
    if not path.is_absolute() and env is not None and env.source_files:
        beside_spec = Path(env.source_files[0]).parent / path
        if beside_spec.is_dir():
            path = beside_spec
    # As in conda, a bare word is a channel name even if a directory has that name; `a/b` is a path only if it
    # exists (else it is a label channel such as conda-forge/label/dev).
    if channel.startswith(("/", ".", "~")) or ("/" in channel and path.is_dir()):
        return path.resolve().as_uri()
    return f"https://conda.anaconda.org/{channel}"






# ---------------------------------------------------------------------------------------------------------------
# resolve


def resolve(env: "Environment", *, platform: str | None = None, python_version: str | None = None,
            glibc: str | None = None, exclude_newer=None) -> Lock:
    """Solve `env` for one platform. `python_version` is the base image's Python, used when conda brings none."""
    return resolve_platforms(env, [platform or env.docker.platform], python_version=python_version, glibc=glibc,
                             exclude_newer=exclude_newer).locks[0]


def resolve_platforms(env: "Environment", platforms: Iterable[str] | None = None, *,
                      python_version: str | None = None, glibc: str | None = None, exclude_newer=None) -> LockSet:
    """Solve `env` for every platform into one conda-lock.yml (or take the user's lock file as it is)."""
    wanted = _platform_list(env, platforms)
    lock_file = getattr(env, "lock_file", None)
    if lock_file:
        return read_lock_set(lock_file, wanted)
    cutoff = parse_exclude_newer(exclude_newer)
    canonical = env.canonical()
    spec_key = env.key
    per_platform = {p: _solve_platform(env, canonical, p, python_version, glibc, cutoff) for p in wanted}
    channels = [channel_url(c, env) for c in solver_channels(env)]
    content_hash = {p: key_of({"spec": spec_key, "platform": p}) for p in wanted}
    locks = []
    for p, (packages, python) in per_platform.items():
        text = _write_conda_lock({p: packages}, channels, {p: content_hash[p]}, env)
        locks.append(Lock(platform=p, spec_key=spec_key, python_version=python,
                          channels=tuple(public_url(c) for c in channels), packages=tuple(packages), text=text))
    if len(locks) == 1:
        return LockSet(locks=tuple(locks), text=locks[0].text)
    text = _write_conda_lock({p: packages for p, (packages, _) in per_platform.items()}, channels, content_hash, env)
    return LockSet(locks=tuple(locks), text=text)


def _solve_platform(env: "Environment", canonical: dict, platform: str, python_version: str | None,
                    glibc: str | None, cutoff: dt.datetime | None) -> tuple[list[LockedPackage], str | None]:
    deps = env.python.conda_dependencies
    if env.python.user_managed_dependencies:
        return [], python_version
    packages: list[LockedPackage] = []
    if deps.conda_packages:
        packages = _solve_conda(canonical["conda"], solver_channels(env), platform, env, glibc, cutoff)
    conda_python = next((p.version for p in packages if p.name == "python"), None)
    if deps.conda_packages and deps.pip_packages and not conda_python:
        raise ResolveError("pip packages need a Python, and the conda packages bring none",
                           where=_first_origin(env),
                           fix="add `python=3.11` (or another version) to the conda dependencies")
    target_python = conda_python or python_version
    if deps.pip_packages:
        if not target_python:
            raise ResolveError("cannot tell which Python the pip packages are for",
                               fix="add a `python` conda dependency or use a base image that has Python")
        packages += _solve_pip(canonical["pip"], solver_pip_options(env), target_python, platform,
                               glibc or DEFAULT_GLIBC, cutoff)
    return packages, target_python


def _first_origin(env: "Environment") -> str | None:
    return env.source_files[0] if env.source_files else None


# ---------------------------------------------------------------------------------------------------------------
# conda side


def virtual_packages_for(env: "Environment", platform: str, glibc: str | None = None) -> list:
    """Virtual packages of the target, not of this machine: GPU builds solve on machines without a GPU.

    CONDA_OVERRIDE_CUDA / _GLIBC / _OSX set them the way conda users already know.
    """
    import rattler

    target = TARGETS[platform]

    def virtual(name: str, version: str, build: str = "0"):
        return rattler.GenericVirtualPackage(rattler.PackageName(name), rattler.Version(version),
                                             rattler.BuildString(build))

    packages = [virtual("__archspec", "1", target.arch)]
    if target.os in ("linux", "osx"):
        packages.append(virtual("__unix", "0"))
    if target.os == "linux":
        packages.append(virtual("__linux", "6.1"))
        packages.append(virtual("__glibc", os.environ.get("CONDA_OVERRIDE_GLIBC") or glibc or DEFAULT_GLIBC))
    elif target.os == "osx":
        packages.append(virtual("__osx", os.environ.get("CONDA_OVERRIDE_OSX") or target.os_version))
    else:
        packages.append(virtual("__win", "0"))
    cuda = env.docker.cuda or os.environ.get("CONDA_OVERRIDE_CUDA")
    if cuda and target.os != "osx":
        packages.append(virtual("__cuda", cuda))
    return packages


# One gateway per process: a second solve against the same channels reuses the repodata it already parsed.
_gateway = None
_gateway_channels: dict[str, list] = {}


def _shared_gateway(channels: list[str], platforms: list[str]):
    """The process's rattler Gateway, with any local channel whose repodata changed on disk dropped from memory.

    A remote channel stays as first read for the life of the process (each `envbuild lock` is a new one). Not
    dropped per solve on purpose: rattler (0.28) then revalidates sharded repodata and fails on the server's
    `304 Not Modified`."""
    import atexit
    import time

    import rattler

    global _gateway
    if _gateway is None:
        _gateway = rattler.Gateway()
        # rattler's runtime threads may still be dropping Python objects just after a solve returns; if the
        # interpreter finalizes right then, the process dies (SIGSEGV/abort, ~5% of short `envbuild lock` runs
        # here). A short pause at exit lets them finish: 0 crashes in 200 runs with it.
        atexit.register(time.sleep, 0.05)
    for url in channels:
        identity = channel_identity(url, platforms)
        if url in _gateway_channels and _gateway_channels[url] != identity:
            _gateway.clear_repodata_cache(rattler.Channel(url))
        _gateway_channels[url] = identity
    return _gateway


def _solve_conda(specs: list[str], channels: list[str], platform: str, env: "Environment", glibc: str | None,
                 cutoff: dt.datetime | None) -> list[LockedPackage]:
    import asyncio

    import rattler

    if not channels:
        raise SpecError("conda packages are listed but no channel is", where=_first_origin(env),
                        fix="add a `channels:` list (e.g. conda-forge, or a file:// URL of a local channel)")
    urls = [channel_url(c, env) for c in channels]
    subdirs = [platform, "noarch"]
    try:
        records = asyncio.run(rattler.solve(
            sources=[rattler.Channel(u) for u in urls], specs=specs, platforms=subdirs,
            gateway=_shared_gateway(urls, subdirs), virtual_packages=virtual_packages_for(env, platform, glibc),
            channel_priority=rattler.ChannelPriority.Strict, exclude_newer=cutoff,
        ))
    except Exception as exc:  # rattler.exceptions.SolverError, FetchRepoDataError, ...
        raise _solve_error(exc, [public_url(u) for u in urls], platform, env) from None
    out = [LockedPackage(manager="conda", name=r.name.normalized, version=str(r.version), url=public_url(str(r.url)),
                         sha256=r.sha256.hex() if r.sha256 else "", md5=r.md5.hex() if r.md5 else None,
                         build=str(r.build), depends=tuple(r.depends))
           for r in records]
    return sorted(out, key=lambda p: p.name)


def _solve_error(exc: Exception, channels: list[str], platform: str, env: "Environment") -> ResolveError:
    from rattler.exceptions import SolverError

    text = str(exc).strip()
    text = re.sub(r"^Cannot solve the request because of:\s*", "", text)
    where = _first_origin(env)
    searched = ", ".join(channels)
    # Only a SolverError is about the packages; anything else (fetch, gateway, I/O) is about reaching the channels.
    if not isinstance(exc, SolverError) or "No such file" in text or "when fetching" in text:
        first = _strip_userinfo(" ".join(text.split()))
        return ResolveError(f"cannot read the repodata of channel(s) {searched} for {platform}: {first}", where=where,
                            fix="check the channels are reachable and indexed (`rattler index`, `conda index`)")
    missing = re.match(r"No candidates were found for (.+?)\.?$", text)
    if missing:
        return ResolveError(f"no package matches {missing.group(1)} for {platform} in channel(s) {searched}",
                            where=where, fix="check the name and version, or add the channel that has it")
    lines = text.splitlines()
    explanation = "\n".join("  " + line for line in lines[:30]) + ("\n  ..." if len(lines) > 30 else "")
    return ResolveError(f"the conda packages cannot be installed together on {platform}:\n{explanation}",
                        where=where, fix="relax one of the conflicting constraints named above")


# ---------------------------------------------------------------------------------------------------------------
# pip side


def _uv_binary() -> str:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except Exception:
        return "uv"


def _solve_pip(requirements: list[str], options: list[str], python_version: str, platform: str, glibc: str,
               cutoff: dt.datetime | None) -> list[LockedPackage]:
    import subprocess
    import tempfile
    import tomllib

    target = TARGETS[platform]
    py = ".".join(python_version.split(".")[:2])
    with tempfile.TemporaryDirectory(prefix="envbuild-pip-") as tmp:
        req_in = Path(tmp, "requirements.in")
        req_in.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        out = Path(tmp, "pylock.toml")
        cmd = [_uv_binary(), "pip", "compile", str(req_in), "--format", "pylock.toml", "-o", str(out),
               "--python-version", py, "--python-platform", target.uv_platform(glibc), "--quiet", "--no-header",
               "--no-annotate",
               # pip takes the best version across every index; uv by default stops at the first index that has
               # the name, which silently picks e.g. PyPI's CUDA torch over the `+cpu` build of an extra index.
               # requirements files are written for pip's behaviour.
               "--index-strategy", "unsafe-best-match"]
        if cutoff:
            cmd += ["--exclude-newer", cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")]
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
    tags = _target_tags(py, target, glibc)
    return [_pick_file(pkg, tags, py, platform) for pkg in data.get("packages", [])]


def _uv_env() -> dict:
    """The caller's environment for uv, with pip's index variables translated: private indexes just work."""
    env = dict(os.environ)
    env.setdefault("UV_NO_PROGRESS", "1")
    # uv reads the system trust store only when asked; corporate proxies need it.
    env.setdefault("UV_NATIVE_TLS", "1")
    if env.get("PIP_INDEX_URL") and not (env.get("UV_DEFAULT_INDEX") or env.get("UV_INDEX_URL")):
        env["UV_DEFAULT_INDEX"] = env["PIP_INDEX_URL"]
    if env.get("PIP_EXTRA_INDEX_URL") and not (env.get("UV_INDEX") or env.get("UV_EXTRA_INDEX_URL")):
        env["UV_INDEX"] = env["PIP_EXTRA_INDEX_URL"]
    return env


def _uv_message(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    # uv echoes index URLs in some messages: never show credentials either.
    return "\n".join("  " + _strip_userinfo(line) for line in lines[-15:])


def _strip_userinfo(text: str) -> str:
    """Credentials out of every URL in a message."""
    return re.sub(r"(\w+://)[^/@\s]+@", r"\1", text)


def _target_tags(py: str, target: Target, glibc: str) -> list[str]:
    """Wheel tags the target interpreter accepts, most specific first (the order pip would prefer)."""
    from packaging import tags

    major, minor = (int(x) for x in py.split("."))
    if target.os == "linux":
        glibc_minor = int(glibc.split(".")[1])
        arch = target.arch
        platforms = [f"manylinux_2_{m}_{arch}" for m in range(glibc_minor, 4, -1)]
        platforms += [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}", f"linux_{arch}"]
    elif target.os == "osx":
        macos = tuple(int(x) for x in target.os_version.split("."))
        platforms = list(tags.mac_platforms(macos, target.arch))
    else:
        platforms = ["win_amd64"]
    ordered = list(tags.cpython_tags((major, minor), platforms=platforms))
    ordered += list(tags.compatible_tags((major, minor), interpreter=f"cp{major}{minor}", platforms=platforms))
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
    if "vcs" in pkg or "archive" in pkg or "directory" in pkg:
        raise ResolveError(f"{pkg['name']} comes from a VCS URL, archive or directory, which envbuild cannot lock "
                           "to a file and a sha256 yet",
                           fix="publish it to an index, or pin a wheel URL: "
                               "`name @ https://.../name-1.0-py3-none-any.whl`")
    chosen = best[1] if best else pkg.get("sdist")
    if chosen is None:
        raise ResolveError(f"{pkg['name']} {pkg.get('version')} has no file for Python {py} on {platform}",
                           fix="pin a version that publishes a compatible wheel or an sdist")
    sha256 = (chosen.get("hashes") or {}).get("sha256")
    if not sha256:
        raise ResolveError(f"the index gives no sha256 for {public_url(chosen['url'])}",
                           fix="use an index that publishes hashes (PEP 503 #sha256= fragments)")
    return LockedPackage(manager="pip", name=pkg["name"], version=str(pkg.get("version", "")),
                         url=public_url(chosen["url"]), sha256=sha256)


# ---------------------------------------------------------------------------------------------------------------
# conda-lock.yml


def _write_conda_lock(packages: dict[str, list[LockedPackage]], channels: list[str], content_hash: dict[str, str],
                      env: "Environment") -> str:
    from conda_lock.lockfile.v2prelim.models import HashModel, LockedDependency, Lockfile, LockMeta
    from conda_lock.models.channel import Channel

    locked = []
    for platform, platform_packages in packages.items():
        for p in platform_packages:
            deps = {}
            for dep in p.depends:
                name, _, constraint = dep.partition(" ")
                deps[name] = constraint.strip() or "*"
            locked.append(LockedDependency(
                name=p.name, version=p.version, manager=p.manager, platform=platform, dependencies=deps,
                url=p.url, hash=HashModel(md5=p.md5, sha256=p.sha256), categories={"main"}, build=p.build,
            ))
    meta = LockMeta(
        content_hash=content_hash,
        channels=[Channel(url=public_url(c), used_env_vars=()) for c in channels],
        platforms=list(packages),
        sources=[os.path.basename(f) for f in env.source_files[:1]],
    )
    return _conda_lock_text(Lockfile(package=locked, metadata=meta))


_HEADER = """\
# conda-lock file (format version 1), written by envbuild with conda-lock's models. Install it with
#     conda-lock install -n YOURENV conda-lock.yml
# and re-solve it with `envbuild lock SPEC -o conda-lock.yml --refresh`.
"""


def _conda_lock_text(lockfile) -> str:
    """What conda-lock's `write_conda_lock_file` writes, in its own steps (sort, drop virtual packages, its v1
    dict), but emitted by libyaml: the same YAML bytes, several times faster than its pure-Python `yaml.dump`
    (the largest cost of a warm lock). Only the help comment at the top is envbuild's."""
    import yaml

    lockfile.alphasort_inplace()
    lockfile.filter_virtual_packages_inplace()
    dumper = getattr(yaml, "CDumper", yaml.Dumper)
    return _HEADER + yaml.dump(lockfile.to_v1().dict_for_output(), Dumper=dumper, sort_keys=False)


def read_lock(path: str | os.PathLike, platform: str | None = None) -> Lock:
    """A user-supplied conda-lock.yml (any version conda-lock reads) as the Lock of one platform, unsolved."""
    return read_lock_set(path, [platform] if platform else None).locks[0]


def read_lock_set(path: str | os.PathLike, platforms: list[str] | None = None) -> LockSet:
    """A user-supplied conda-lock.yml as it is (no solve), validated: known version, platforms, hashes."""
    from conda_lock.lockfile import UnknownLockfileVersion, parse_conda_lock_file

    file = Path(path)
    fix = "regenerate it with `conda-lock lock` or `envbuild lock`"
    try:
        text = file.read_text(encoding="utf-8")
        parsed = parse_conda_lock_file(file)
    except OSError as exc:
        raise SpecError(f"cannot read the lock file: {exc.strerror}", where=str(file), fix="check the path") from None
    except UnknownLockfileVersion as exc:
        raise SpecError(f"unsupported conda-lock file version: {exc}", where=str(file), fix=fix) from None
    except Exception as exc:  # yaml and pydantic errors: show only their first lines
        first = "\n".join(str(exc).strip().splitlines()[:3])
        raise SpecError(f"not a valid conda-lock file: {first}", where=str(file), fix=fix) from None
    available = list(parsed.metadata.platforms)
    if platforms is None:
        platforms = ["linux-64"] if "linux-64" in available else available[:1]
    missing = [p for p in platforms if p not in available]
    if missing:
        raise SpecError(f"the lock file has no packages for {', '.join(missing)} (it locks {', '.join(available)})",
                        where=str(file), fix=f"lock it for {missing[0]} too (`conda-lock -p {missing[0]}`), or "
                        "build for a platform it has")
    channels = tuple(public_url(normalize_channel(c.url)) for c in parsed.metadata.channels)
    locks = []
    for platform in platforms:
        packages = []
        for d in parsed.package:
            if d.platform != platform or "main" not in d.categories:
                continue
            if not (d.hash.sha256 or (d.manager == "conda" and d.hash.md5)):
                raise SpecError(f"package {d.name} {d.version} ({platform}) has no sha256 or md5 hash",
                                where=str(file), fix=fix)
            packages.append(LockedPackage(manager=d.manager, name=d.name, version=d.version, url=public_url(d.url),
                                          sha256=d.hash.sha256 or "", md5=d.hash.md5, build=d.build))
        python = next((p.version for p in packages if p.manager == "conda" and p.name == "python"), None)
        content_hash = parsed.metadata.content_hash.get(platform, "")
        locks.append(Lock(platform=platform, spec_key=f"lockfile:{content_hash}", python_version=python,
                          channels=channels, packages=tuple(packages), text=text))
    return LockSet(locks=tuple(locks), text=text)
