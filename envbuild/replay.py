"""Replay a build trace against a cache of a given size and eviction policy, with simulated builds.

Users pick a cache size and policy from their own history: `envbuild bench replay TRACE --size 10GB,50GB
--policy lru,lfu,cost`. Each request of the trace (envbuild.trace) is a hit when its key is cached, else a
simulated build that adds an entry shaped like the ones `api.build` writes (created, build_seconds, size, hits,
last_hit); whenever the cache holds more than its size, entries leave in the order envbuild.policies gives —
the same order `envbuild gc` applies to the real index.

The per-request work stays in memory so that a trace of millions of requests replays in seconds: entries live in
a dict and the eviction order in a heap holding each entry's current rank; items left stale by a hit or an eviction
are recognised (by identity) and skipped when popped, so each eviction costs O(log n). The cache that survives is
then written to a real `envbuild.cache.Index` in a scratch directory and read back: the replay checks that the
index holds exactly the simulated entries and that the policy, run on the index as gc would, evicts nothing more.
"""

from __future__ import annotations

import heapq
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from . import policies
from .cache import Index
from .errors import CacheError
from .trace import Request


@dataclass(frozen=True)
class ReplayResult:
    policy: str
    capacity: int  # bytes
    requests: int
    hits: int
    builds: int
    evictions: int
    seconds_built: float  # simulated build time paid
    seconds_saved: float  # build time the hits did not pay
    bytes_stored: int  # bytes in the cache at the end of the trace
    peak_bytes: int
    replay_seconds: float  # the in-memory replay
    persist_seconds: float  # writing and checking the surviving cache in a real Index

    @property
    def hit_rate(self) -> float:
        return self.hits / self.requests if self.requests else 0.0

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.replay_seconds if self.replay_seconds else float("inf")

    def to_dict(self) -> dict:
        return {**asdict(self), "hit_rate": self.hit_rate, "requests_per_second": self.requests_per_second}


def replay(requests: Sequence[Request], capacity: int, policy: str, *, home: str | Path | None = None) -> ReplayResult:
    """Replay `requests` against a cache of `capacity` bytes evicting by `policy`; persist it under `home`.

    An image larger than the whole cache is built and not kept (gc would evict it at once). Without `home` the
    index goes to a temporary directory, removed afterwards.
    """
    if policy not in policies.POLICIES:
        raise ValueError(f"unknown eviction policy {policy!r}: use one of {', '.join(policies.POLICIES)}")
    rank_of = policies.eviction_rank  # the one definition of each policy's order, shared with gc
    entries: dict[str, dict] = {}
    ranks: dict[str, tuple] = {}
    heap: list[tuple] = []
    hits = builds = evictions = 0
    seconds_built = seconds_saved = 0.0
    stored = peak = 0
    started = time.perf_counter()
    for request in requests:
        key = request.key
        entry = entries.get(key)
        if entry is not None:
            hits += 1
            seconds_saved += entry["build_seconds"]
            entry["hits"] += 1
            entry["last_hit"] = request.t
            rank = rank_of(policy, key, entry)
            ranks[key] = rank
            heapq.heappush(heap, (rank, key))
            continue
        builds += 1
        seconds_built += request.build_seconds
        if request.size > capacity:
            continue
        entry = {"created": request.t, "build_seconds": request.build_seconds, "size": request.size, "hits": 0,
                 "last_hit": None}
        stored += request.size
        while stored > capacity:
            # The image just built is being handed to the request that built it: room is made among the others
            # (it enters the heap below, after this loop), else lfu and cost would evict every new image at once.
            rank, victim = heapq.heappop(heap)
            if ranks.get(victim) is not rank:
                continue  # stale: the entry was hit (re-ranked) or already evicted
            del ranks[victim]
            stored -= entries.pop(victim)["size"]
            evictions += 1
        entries[key] = entry
        rank = rank_of(policy, key, entry)
        ranks[key] = rank
        heapq.heappush(heap, (rank, key))
        peak = max(peak, stored)
        if len(heap) > 4 * len(entries) + 1024:
            heap = [(rank, key) for key, rank in ranks.items()]
            heapq.heapify(heap)
    replay_seconds = time.perf_counter() - started

    started = time.perf_counter()
    if home is None:
        with tempfile.TemporaryDirectory(prefix="envbuild-replay-") as scratch:
            _persist_and_check(entries, capacity, policy, Path(scratch))
    else:
        _persist_and_check(entries, capacity, policy, Path(home))
    persist_seconds = time.perf_counter() - started
    return ReplayResult(policy=policy, capacity=capacity, requests=len(requests), hits=hits, builds=builds,
                        evictions=evictions, seconds_built=seconds_built, seconds_saved=seconds_saved,
                        bytes_stored=stored, peak_bytes=peak, replay_seconds=replay_seconds,
                        persist_seconds=persist_seconds)


def _persist_and_check(entries: dict[str, dict], capacity: int, policy: str, home: Path) -> None:
    index = Index(home)
    try:
        for key, entry in entries.items():
            index.put(key, entry)
        persisted = dict(index.entries())
    finally:
        index.close()
    if persisted.keys() != entries.keys():
        raise CacheError(f"the replay index in {home} holds {len(persisted)} entries, the simulation {len(entries)}",
                         fix="replay into an empty scratch directory (--scratch) or none at all")
    extra = policies.choose_evictions(persisted, policy, max_size=capacity)
    if extra:
        raise CacheError(f"gc with policy {policy} would still evict {len(extra)} entries from the replayed cache",
                         fix="report this as a bug in envbuild.replay")


def sweep(requests: Sequence[Request], sizes: Sequence[int], policy_names: Sequence[str], *,
          scratch: str | Path | None = None, on_result=None) -> list[ReplayResult]:
    """Replay every (policy, size) pair, each into its own fresh index (under `scratch` when given)."""
    results = []
    for policy in policy_names:
        for size in sizes:
            home = Path(scratch) / f"{policy}-{size}" if scratch else None
            result = replay(requests, size, policy, home=home)
            results.append(result)
            if on_result:
                on_result(result)
    return results


def plot(results: Sequence[ReplayResult], path: str | Path, *, title: str = "Cache replay") -> None:
    """Hit rate and build hours saved against cache size, one line per policy (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (hit_axis, saved_axis) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for policy in dict.fromkeys(r.policy for r in results):
        mine = sorted((r for r in results if r.policy == policy), key=lambda r: r.capacity)
        sizes = [r.capacity / 1e9 for r in mine]
        hit_axis.plot(sizes, [100 * r.hit_rate for r in mine], marker="o", label=policy)
        saved_axis.plot(sizes, [r.seconds_saved / 3600 for r in mine], marker="o", label=policy)
    hit_axis.set(xlabel="cache size (GB)", ylabel="hit rate (%)", title="hit rate")
    saved_axis.set(xlabel="cache size (GB)", ylabel="build hours saved", title="build time saved")
    for axis in (hit_axis, saved_axis):
        axis.grid(True, alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.savefig(path, dpi=110)
    plt.close(figure)
