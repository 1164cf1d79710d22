"""replay — the cache-tuning harness: simulated requests per second, and what each policy and size would save.

A seeded synthetic trace (Zipf popularity, drift, bursts; envbuild.trace.synthetic) is replayed by
envbuild.replay against every (policy, size) pair; the value is the median replay throughput over the sweep
(target: 100k simulated requests/s). The baseline, measured in the same run, replays a slice of the same trace
through the real Index one request at a time (a read, then `record_hit` or `put` per request, evictions with
`policies.choose_evictions` over the index's entries) — what a harness without an in-memory working set would do.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

IDS = ("replay",)
SIZES_GB = (10, 25, 50, 100, 200)


def run(quick: bool) -> list[dict]:
    from envbuild import replay, trace

    requests = trace.synthetic(20_000 if quick else 500_000, environments=300 if quick else 2000, seed=8)
    sizes = [int(gb * 1e9) for gb in (SIZES_GB[::2] if quick else SIZES_GB)]
    repeats = 1 if quick else 3
    sweeps = [replay.sweep(requests, sizes, ("lru", "lfu", "cost")) for _ in range(repeats)]
    throughput = statistics.median(r.requests_per_second for sweep in sweeps for r in sweep)
    per_request = per_request_index_replay(requests[:300 if quick else 3000], sizes[0], "lru")
    last = sweeps[-1]
    best = {}
    for size in sizes:
        at_size = [r for r in last if r.capacity == size]
        best[f"{size / 1e9:g}GB"] = max(at_size, key=lambda r: r.seconds_saved).policy
    return [{
        "id": "replay", "name": "cache replay throughput (simulated requests/s)", "value": throughput,
        "unit": "requests/s", "baseline": per_request, "baseline_name": "per-request writes to the Index",
        "ratio": throughput / per_request if per_request else None, "target": ">= 100,000 requests/s",
        "details": {"requests": len(requests), "unique_environments": len({r.key for r in requests}),
                    "repeats": repeats, "best_policy_by_size": best,
                    "persist_seconds_median": statistics.median(r.persist_seconds for r in last),
                    "results": [r.to_dict() for r in last]},
    }]


def per_request_index_replay(requests, capacity: int, policy: str) -> float:
    """Requests/s when every request reads and writes the real Index (the baseline)."""
    from envbuild import policies
    from envbuild.cache import Index

    with tempfile.TemporaryDirectory(prefix="envbuild-replay-baseline-") as scratch:
        index = Index(Path(scratch))
        try:
            started = time.perf_counter()
            stored = 0
            for request in requests:
                if index.get(request.key) is not None:
                    index.record_hit(request.key)
                    continue
                if request.size > capacity:
                    continue
                index.put(request.key, {"created": request.t, "build_seconds": request.build_seconds,
                                        "size": request.size, "hits": 0, "last_hit": None})
                stored += request.size
                if stored > capacity:
                    for victim in policies.choose_evictions(dict(index.entries()), policy, max_size=capacity):
                        stored -= index.get(victim)["size"]
                        index.delete(victim)
            return len(requests) / (time.perf_counter() - started)
        finally:
            index.close()


def plot(entries: list[dict], directory: Path, stem: str) -> list[Path]:
    from envbuild import replay

    entry = entries[0]
    results = [replay.ReplayResult(**{k: v for k, v in r.items() if k not in ("hit_rate", "requests_per_second")})
               for r in entry["details"]["results"]]
    path = Path(directory) / f"{stem}-replay.png"
    replay.plot(results, path, title=f"Cache replay of a synthetic trace ({entry['details']['requests']:,} "
                                     "requests, Zipf + drift + bursts)")
    return [path]
