"""The envbuild home on disk: made for the user alone, its index opened or healed, its faults told plainly.

A home holds build logs, Dockerfiles and locks, which can name private indexes: it is created 0700 and its index
files 0600. A damaged index (garbage, truncated, flipped bytes: `PRAGMA quick_check` or the open itself fails) is
moved aside, kept for whoever wants to look, named in one warning, and a new one is started; envbuild.cache then
finds the images already on the engine again by their labels, so no cached image is lost. A home that cannot be
written (a full disk, a read-only directory, a path that is a file) is one CacheError naming the path and the fix,
before anything is half-written.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

from .errors import CacheError

INDEX_DIR = "index"
DAMAGED_PREFIX = "index.damaged-"


def prepare(home: Path) -> Path:
    """`home` as a directory only this user can enter (created 0700); CacheError when it cannot be one."""
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        (home / INDEX_DIR).mkdir(mode=0o700, exist_ok=True)
        os.chmod(home / INDEX_DIR, 0o700)  # an index made by an older envbuild was world-readable
    except (FileExistsError, NotADirectoryError):
        raise CacheError(f"the envbuild home {home} is not a directory (a file is in the way)", where=str(home),
                         fix="move that file, or point --cache-dir / ENVBUILD_HOME at a directory") from None
    except OSError as exc:
        raise storage_error(exc, home) from None
    if not os.access(home / INDEX_DIR, os.W_OK | os.X_OK):
        raise CacheError(f"the envbuild home {home} is read-only", where=str(home),
                         fix="make it writable, or point --cache-dir / ENVBUILD_HOME at a writable directory")
    return home


def storage_error(exc: BaseException, home: Path) -> CacheError:
    """What a failed write to `home` means to the user: full disk, read-only, or the system's own words."""
    import errno

    text = str(exc)
    if getattr(exc, "errno", None) == errno.ENOSPC or "disk is full" in text:
        return CacheError(f"no space left for the envbuild home {home}", where=str(home),
                          fix="free some space there (`envbuild gc --max-size ...` removes old images), or point "
                              "--cache-dir / ENVBUILD_HOME at a disk with room; nothing was half-written")
    if getattr(exc, "errno", None) in (errno.EROFS, errno.EACCES, errno.EPERM) or "readonly" in text:
        return CacheError(f"the envbuild home {home} cannot be written ({text})", where=str(home),
                          fix="make it writable, or point --cache-dir / ENVBUILD_HOME at a writable directory")
    return CacheError(f"the envbuild home {home} cannot be used: {text}", where=str(home),
                      fix="check the path and its permissions, or point --cache-dir / ENVBUILD_HOME elsewhere")


def open_index(home: Path):
    """The diskcache of `home`'s index, and the path its damaged predecessor was moved to (None when it was sound).

    Damage is checked under a lock on the home, so that of several processes finding it one moves it aside and
    the others open the new index.
    """
    import sqlite3

    from filelock import FileLock

    directory = home / INDEX_DIR
    try:
        return _open_checked(directory), None
    except _Damaged:
        pass
    except (sqlite3.Error, OSError) as exc:
        raise storage_error(exc, home) from None
    with FileLock(str(home / ".index.heal.lock")):
        try:
            return _open_checked(directory), None  # another process healed it meanwhile
        except _Damaged as damage:
            moved = home / f"{DAMAGED_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
            os.rename(directory, moved)
            import logging

            logging.getLogger(__name__).warning(
                "envbuild: the cache index in %s was damaged (%s): moved it to %s and started a new one; images "
                "already built are found again on the engine", home, damage, moved)
            prepare(home)
            try:
                return _open_checked(directory), moved
            except (_Damaged, sqlite3.Error, OSError) as exc:
                raise storage_error(exc, home) from None


class _Damaged(Exception):
    """The index file is not a sound SQLite database (its cause is the message)."""


def _open_checked(directory: Path):
    import pickle
    import sqlite3

    import diskcache

    try:
        cache = diskcache.Cache(str(directory), eviction_policy="none", size_limit=2**40, disk=_disk_class())
    except sqlite3.OperationalError as exc:
        if "malformed" in str(exc) or "not a database" in str(exc):
            raise _Damaged(str(exc)) from None
        raise  # full, read-only, locked: not damage
    except (sqlite3.DatabaseError, UnicodeDecodeError, pickle.UnpicklingError, ValueError, EOFError) as exc:
        raise _Damaged(f"{type(exc).__name__}: {exc}") from None
    try:
        verdict = [row[0] for row in cache._sql("PRAGMA quick_check").fetchall()]
        if verdict != ["ok"]:
            raise _Damaged("; ".join(map(str, verdict[:3])))
    except sqlite3.DatabaseError as exc:
        cache.close()
        if isinstance(exc, sqlite3.OperationalError) and "malformed" not in str(exc):
            raise
        raise _Damaged(str(exc)) from None
    except _Damaged:
        cache.close()
        raise
    for name in ("cache.db", "cache.db-wal", "cache.db-shm"):
        try:
            os.chmod(directory / name, 0o600)
        except FileNotFoundError:
            pass
    return cache


_DISK = []


def _disk_class():
    if _DISK:
        return _DISK[0]
    import diskcache

    class CheckedDisk(diskcache.Disk):
        """diskcache's Disk, a record that no longer decodes read as missing (diskcache's own answer to a
        record that vanished: it catches OSError) rather than raising from every command."""

        def fetch(self, mode, filename, value, read):
            try:
                return super().fetch(mode, filename, value, read)
            except OSError:
                raise
            except Exception as exc:  # pickle and unicode errors of a damaged record
                raise OSError(f"damaged index record: {exc}") from None

    _DISK.append(CheckedDisk)
    return CheckedDisk


class GuardedCache:
    """The index's diskcache, its storage faults raised as CacheError (`storage_error`) by every call, so that
    a disk filling up mid-build is one message and, SQLite rolling the transaction back, nothing half-written."""

    def __init__(self, cache, home: Path):
        self._cache, self._home = cache, home

    def __getattr__(self, name: str):
        attribute = getattr(self._cache, name)
        if not callable(attribute):
            return attribute

        def guarded(*args, **kwargs):
            with self._faults():
                return attribute(*args, **kwargs)

        return guarded

    def transact(self):
        import contextlib

        @contextlib.contextmanager
        def transaction():
            with self._faults(), self._cache.transact():
                yield

        return transaction()

    def _faults(self):
        import contextlib
        import sqlite3

        home = self._home

        @contextlib.contextmanager
        def faults():
            try:
                yield
            except sqlite3.OperationalError as exc:
                raise storage_error(exc, home) from None
            except sqlite3.DatabaseError as exc:
                raise CacheError(f"the cache index in {home} is damaged ({exc})", where=str(home),
                                 fix="run the command again: a damaged index is moved aside and rebuilt, and the "
                                     "images on the engine are found again") from None

        return faults()
