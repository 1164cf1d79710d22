"""Resolver: CanonicalSpec → Lock (conda-lock.yml, version 1 file format).

The conda part is solved with py-rattler (resolver.conda) against the environment's channels in strict priority
order, with the virtual packages of the *target*; the pip part with uv (resolver.pip) against the Python the conda
part chose (or the base image's Python for pip-only environments), pinned to one file per package (URL + sha256)
for the target platform. The result is written with conda-lock's models (envbuild.lockfile), so
`conda-lock render` / `conda-lock install` read it. A user's lock file is taken as it is (resolver.request).

Nothing here imports rattler, conda-lock, packaging or asyncio at module level: the lock-cache hit path imports
this package for `target_platforms` and `parse_exclude_newer`, and must stay a few milliseconds.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Iterable

from ..channels import public_url
from ..errors import ResolveError
from ..keys import CanonicalSpec, key_of, lock_key, lock_set_key
from ..lockfile import Lock, LockedPackage, LockSet, conda_lock_text
from .isolated import SdistPolicy
from .request import parse_exclude_newer, read_lock, read_lock_set, target_platforms

__all__ = ["SdistPolicy", "resolve", "resolve_platforms", "read_lock", "read_lock_set", "parse_exclude_newer", "target_platforms"]


def resolve(spec: CanonicalSpec, *, platform: str | None = None, python_version: str | None = None,
            glibc: str | None = None, exclude_newer=None, sdists: SdistPolicy | None = None) -> Lock:
    """Solve `spec` for one platform. `python_version` is the base image's Python, used when conda brings none;
    `sdists` says where an sdist may be built to read its metadata (default: in a container, never the host)."""
    return resolve_platforms(spec, [platform or spec.platform], python_version=python_version, glibc=glibc,
                             exclude_newer=exclude_newer, sdists=sdists).locks[0]


def resolve_platforms(spec: CanonicalSpec, platforms: Iterable[str] | None = None, *,
                      python_version: str | None = None, glibc: str | None = None, exclude_newer=None,
                      sdists: SdistPolicy | None = None) -> LockSet:
    """Solve `spec` for every platform into one conda-lock.yml (or take the user's lock file as it is)."""
    wanted = target_platforms(spec, platforms)
    if spec.lock_file:
        return read_lock_set(spec.lock_file, wanted, spec.lock_categories)
    cutoff = parse_exclude_newer(exclude_newer)
    per_platform = {p: _solve_platform(spec, p, python_version, glibc, cutoff, sdists) for p in wanted}
    channels = list(spec.solver_channels)
    # conda-lock's content hash: what the lock was solved for (the spec key), per platform.
    content_hash = {p: key_of({"spec": spec.key, "platform": p}) for p in wanted}
    sources = [os.path.basename(spec.origin)] if spec.origin else []
    locks = []
    for p, (packages, python) in per_platform.items():
        text = conda_lock_text({p: packages}, channels, {p: content_hash[p]}, sources)
        locks.append(Lock(platform=p, spec_key=spec.key, python_version=python,
                          channels=tuple(public_url(c) for c in channels), packages=tuple(packages),
                          key=lock_key(packages), text=text))
    if len(locks) == 1:
        return LockSet(locks=tuple(locks), key=lock_set_key(locks), text=locks[0].text)
    text = conda_lock_text({p: packages for p, (packages, _) in per_platform.items()}, channels, content_hash,
                           sources)
    return LockSet(locks=tuple(locks), key=lock_set_key(locks), text=text)


def _solve_platform(spec: CanonicalSpec, platform: str, python_version: str | None, glibc: str | None,
                    cutoff: dt.datetime | None, sdists: SdistPolicy | None = None
                    ) -> tuple[list[LockedPackage], str | None]:
    from ..pins import check_pins
    from .conda import DEFAULT_GLIBC, solve_conda
    from .pip import solve_pip

    if spec.user_managed:
        return [], python_version
    packages: list[LockedPackage] = []
    if spec.conda:
        packages = solve_conda(spec, platform, glibc, cutoff)
    conda_python = next((p.version for p in packages if p.name == "python"), None)
    if spec.conda and spec.pip and not conda_python:
        raise ResolveError("pip packages need a Python, and the conda packages bring none", where=spec.origin,
                           fix="add `python=3.11` (or another version) to the conda dependencies")
    target_python = conda_python or python_version
    if spec.pip:
        if not target_python:
            raise ResolveError("cannot tell which Python the pip packages are for",
                               fix="add a `python` conda dependency or use a base image that has Python")
        packages += solve_pip([r.spelling for r in spec.pip], list(spec.solver_pip_options), target_python, platform,
                              glibc or DEFAULT_GLIBC, cutoff, sdists)
        check_pins(spec.pip_pins, packages)
    return packages, target_python
