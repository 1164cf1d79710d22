"""Cache eviction policies: which cached images go first when the cache must shrink.

Pure functions over cache entries (dicts with at least ``size`` in bytes, ``build_seconds``, ``hits``,
``last_hit`` and ``created`` as UNIX times; ``last_hit`` is None for an image never hit). `envbuild gc` applies
them to the real index and the replay harness (envbuild/replay.py) to recorded traces, so both see the same order.

- ``lru``  evicts the least recently used first (an image never hit counts as used when it was built).
- ``lfu``  evicts the least often hit first; among equals, the least recently used.
- ``cost`` keeps what is expensive to rebuild per byte of disk: it evicts the lowest
  ``build_seconds * (1 + hits) / size`` first (GreedyDual-Size-Frequency without aging: a rebuild costs
  ``build_seconds``, an entry hit often is likely to be asked for again, and a big image frees more room).
Every order ends in the build key, so equal entries are evicted in a stable, reproducible order.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable, Mapping

POLICIES = ("lru", "lfu", "cost")

_SIZE_UNITS = {"": 1, "B": 1, "K": 10**3, "KB": 10**3, "M": 10**6, "MB": 10**6, "G": 10**9, "GB": 10**9,
               "T": 10**12, "TB": 10**12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def last_used(entry: Mapping) -> float:
    """When the entry was last of use: its last hit, else its creation."""
    return entry.get("last_hit") or entry.get("created") or 0.0


def rebuild_value_per_byte(entry: Mapping) -> float:
    """Seconds of building an entry is expected to save, per byte it occupies (the ``cost`` policy's score)."""
    return (entry.get("build_seconds") or 0.0) * (1 + (entry.get("hits") or 0)) / max(entry.get("size") or 0, 1)


def eviction_rank(policy: str, key: str, entry: Mapping) -> tuple:
    if policy == "lru":
        return (last_used(entry), key)
    if policy == "lfu":
        return (entry.get("hits") or 0, last_used(entry), key)
    if policy == "cost":
        return (rebuild_value_per_byte(entry), last_used(entry), key)
    raise ValueError(f"unknown eviction policy {policy!r}: use one of {', '.join(POLICIES)}")


def eviction_order(entries: Mapping[str, Mapping], policy: str) -> list[str]:
    """Build keys of `entries` (build key → entry), the first to evict first."""
    return sorted(entries, key=lambda key: eviction_rank(policy, key, entries[key]))


def choose_evictions(entries: Mapping[str, Mapping], policy: str, *, max_size: int | None = None,
                     older_than: float | None = None, now: float | None = None,
                     occupied: Callable[[set[str]], int] | None = None) -> list[str]:
    """Build keys to evict, in eviction order, so that what stays fits `max_size` bytes.

    `occupied(keys)` is the bytes the entries of `keys` occupy together: on an engine, their layers counted once
    (disk_usage.Footprint.total), so that a removal is counted by what it frees; by default the sum of their
    ``size`` (a recorded trace has no layers). With `older_than` (seconds), entries unused for longer than that
    go as well, whatever the size. With neither limit nothing is evicted.
    """
    occupied = occupied or (lambda keys: total_size(entries[key] for key in keys))
    order = eviction_order(entries, policy)
    chosen: set[str] = set()
    if older_than is not None:
        import time

        cutoff = (time.time() if now is None else now) - older_than
        chosen = {key for key in order if last_used(entries[key]) < cutoff}
    if max_size is not None:
        kept = {key for key in order if key not in chosen}
        for key in order:
            if occupied(kept) <= max_size:
                break
            if key in kept:
                kept.discard(key)
                chosen.add(key)
    return [key for key in order if key in chosen]


def total_size(entries: Iterable[Mapping]) -> int:
    return sum(entry.get("size") or 0 for entry in entries)


def parse_size(text: str) -> int:
    """``50GB`` → bytes. Decimal units (KB, MB, GB, TB) and binary ones (KiB, MiB, GiB, TiB); a bare number is bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).upper() if match else None
    if unit not in _SIZE_UNITS:
        raise ValueError(f"cannot read size {text!r}: write e.g. 50GB, 500MB, 2GiB or a number of bytes")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def parse_age(text: str) -> float:
    """``30d`` → seconds. Units: s, m, h, d, w."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not match:
        raise ValueError(f"cannot read age {text!r}: write e.g. 30d, 12h, 2w")
    return float(match.group(1)) * _AGE_UNITS[match.group(2)]
