"""The conda side of a solve: py-rattler against the channels in strict priority order, for the target's
virtual packages (so a CUDA environment solves on a machine without a GPU)."""

from __future__ import annotations

import datetime as dt
import os
import re

from ..channels import channel_identity, public_text, public_url
from ..errors import ResolveError, SpecError
from ..keys import CanonicalSpec
from ..lockfile import LockedPackage
from ..platforms import PLATFORMS

# glibc the target is assumed to have when the base image does not say (manylinux_2_28 covers current wheels).
DEFAULT_GLIBC = "2.28"


def virtual_packages_for(spec: CanonicalSpec, platform: str, glibc: str | None = None) -> list:
    """Virtual packages of the target, not of this machine: GPU builds solve on machines without a GPU.

    The CUDA is the spec's GPU stack's; CONDA_OVERRIDE_CUDA / _GLIBC / _OSX set them the way conda users know.
    """
    import rattler

    target = PLATFORMS[platform]

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
    cuda = spec.cuda or os.environ.get("CONDA_OVERRIDE_CUDA")
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


def solve_conda(spec: CanonicalSpec, platform: str, glibc: str | None,
                cutoff: dt.datetime | None) -> list[LockedPackage]:
    """The conda packages of `spec` for `platform`, each pinned to one file (url + sha256), sorted by name."""
    import asyncio

    import rattler

    if not spec.solver_channels:
        raise SpecError("conda packages are listed but no channel is", where=spec.origin,
                        fix="add a `channels:` list (e.g. conda-forge, or a file:// URL of a local channel)")
    urls = list(spec.solver_channels)
    subdirs = [platform, "noarch"]
    try:
        records = asyncio.run(rattler.solve(
            sources=[rattler.Channel(u) for u in urls], specs=[r.spelling for r in spec.conda], platforms=subdirs,
            gateway=_shared_gateway(urls, subdirs), virtual_packages=virtual_packages_for(spec, platform, glibc),
            channel_priority=rattler.ChannelPriority.Strict, exclude_newer=cutoff,
        ))
    except Exception as exc:  # rattler.exceptions.SolverError, FetchRepoDataError, ...
        raise _solve_error(exc, [public_url(u) for u in urls], platform, spec) from None
    out = [LockedPackage(manager="conda", name=r.name.normalized, version=str(r.version), url=public_url(str(r.url)),
                         sha256=r.sha256.hex() if r.sha256 else "", md5=r.md5.hex() if r.md5 else None,
                         build=str(r.build), depends=tuple(r.depends))
           for r in records]
    return sorted(out, key=lambda p: p.name)


def _solve_error(exc: Exception, channels: list[str], platform: str, spec: CanonicalSpec) -> ResolveError:
    from rattler.exceptions import SolverError

    where = spec.origin
    text = str(exc).strip()
    text = re.sub(r"^Cannot solve the request because of:\s*", "", text)
    searched = ", ".join(channels)
    # Only a SolverError is about the packages; anything else (fetch, gateway, I/O) is about reaching the channels.
    if not isinstance(exc, SolverError) or "No such file" in text or "when fetching" in text:
        first = public_text(" ".join(text.split()))
        return ResolveError(f"cannot read the repodata of channel(s) {searched} for {platform}: {first}", where=where,
                            fix="check the channels are reachable and indexed (`rattler index`, `conda index`)")
    missing = re.match(r"No candidates were found for (.+?)\.?$", text)
    if missing:
        # The package asked for (its line), or, for a dependency of one, the spec file.
        name = re.split(r"[\s=<>!~\[]", missing.group(1).split("::")[-1], maxsplit=1)[0].lower()
        return ResolveError(f"no package matches {missing.group(1)} for {platform} in channel(s) {searched}",
                            where=spec.origin_of("conda", name),
                            fix="check the name and version, or add the channel that has it")
    lines = text.splitlines()
    explanation = "\n".join("  " + line for line in lines[:30]) + ("\n  ..." if len(lines) > 30 else "")
    return ResolveError(f"the conda packages cannot be installed together on {platform}:\n{explanation}",
                        where=where, fix="relax one of the conflicting constraints named above")
