"""What a solve is asked: the target platforms, the cut-off date, and a user's lock file taken as it is."""

from __future__ import annotations

import datetime as dt
import os
from typing import Iterable

from ..errors import SpecError
from ..keys import CanonicalSpec, lock_key, lock_set_key
from ..lockfile import FIX, MAIN, Lock, LockSet, read_lock_file
from ..platforms import PLATFORMS


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


def target_platforms(spec: CanonicalSpec, platforms: Iterable[str] | None) -> list[str]:
    """The platforms to lock for (default: the spec's own), each one the solvers know."""
    wanted = list(dict.fromkeys(platforms or [spec.platform]))
    unknown = [p for p in wanted if p not in PLATFORMS]
    if unknown:
        raise SpecError(f"unknown platform {unknown[0]!r}", fix=f"use one of {', '.join(PLATFORMS)}")
    return wanted


def read_lock(path: str | os.PathLike, platform: str | None = None) -> Lock:
    """A user-supplied conda-lock.yml (any version conda-lock reads) as the Lock of one platform, unsolved."""
    return read_lock_set(path, [platform] if platform else None).locks[0]


def read_lock_set(path: str | os.PathLike, platforms: list[str] | None = None, categories=MAIN) -> LockSet:
    """A user-supplied conda-lock.yml as it is (no solve), validated: known version, platforms, hashes; the
    packages of `categories` (main, and the extras chosen)."""
    given = read_lock_file(path, categories)
    available = list(given.platforms)
    if platforms is None:
        platforms = ["linux-64"] if "linux-64" in available else available[:1]
    missing = [p for p in platforms if p not in available]
    if missing:
        raise SpecError(f"the lock file has no packages for {', '.join(missing)} (it locks {', '.join(available)})",
                        where=str(given.path), fix=f"lock it for {missing[0]} too (`conda-lock -p {missing[0]}`), "
                        "or build for a platform it has")
    locks = []
    for platform in platforms:
        packages = given.packages.get(platform, ())
        for p in packages:
            if p.manager == "pip" and not p.url.startswith(("https://", "http://", "file://")):
                # conda-lock pins a VCS requirement to a commit, and writes the commit where the hash goes.
                raise SpecError(f"pip package {p.name} is locked to a VCS checkout ({p.url}), which cannot be "
                                "installed hash-checked", where=str(given.path),
                                fix=f"require a released {p.name} (or a wheel URL) in the environment file and lock "
                                    "it again (`envbuild lock environment.yml -o conda-lock.yml`)")
            if not (p.sha256 or (p.manager == "conda" and p.md5)):
                raise SpecError(f"package {p.name} {p.version} ({platform}) has no sha256 or md5 hash",
                                where=str(given.path), fix=FIX)
        python = next((p.version for p in packages if p.manager == "conda" and p.name == "python"), None)
        locks.append(Lock(platform=platform, spec_key=f"lockfile:{given.content_hash.get(platform, '')}",
                          python_version=python, channels=given.channels, packages=packages,
                          key=lock_key(packages), text=given.text))
    return LockSet(locks=tuple(locks), key=lock_set_key(locks), text=given.text)
