"""Build-request traces for the cache-tuning harness: read, write, generate, export.

A trace is a JSON-lines file, one request per line, in time order::

    {"t": 1700000000.0, "key": "v1:…", "build_seconds": 184.2, "size": 2147483648}
    {"t": 1700000042.5, "spec": "envs/train.yml", "build_seconds": 95.0, "size": 1200000000}

``t`` is a UNIX time, ``build_seconds`` what building the environment costs (or cost), ``size`` the image's bytes.
A request names its environment by ``key`` (a build or spec key) or by ``spec`` (a spec file, relative to the
trace file; envbuild keys it the way `build` would), so users can replay both exported history and spec files.

Two sources besides hand-written traces:
- `synthetic()`: Zipf popularity, drift (new environments displace old ones) and bursts (CI fan-out), seeded so
  the same arguments give the same trace byte for byte.
- `export_index()`: a user's real history from their cache index. The index keeps, per image, when it was built,
  how often and when it was last hit, its build time and size — not the time of every hit. The export therefore
  places one request at ``created`` (the build) and the ``hits`` later requests evenly between ``created`` and
  ``last_hit`` (the last one exactly at ``last_hit``): counts, sizes and costs are exact, the spacing of the hits
  in between is approximated.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .errors import EnvbuildError


class TraceError(EnvbuildError):
    """A trace file that cannot be read."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Request:
    t: float
    key: str
    build_seconds: float
    size: int


def read(path: str | Path) -> list[Request]:
    """The requests of a JSON-lines trace, with spec files keyed (each file once)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise TraceError(f"cannot read trace {path}: {exc.strerror}", fix="check the path") from None
    keys_of_specs: dict[str, str] = {}
    requests = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
            key = record.get("key") or _key_of_spec(path.parent / record["spec"], keys_of_specs)
            requests.append(Request(float(record["t"]), str(key), float(record["build_seconds"]),
                                    int(record["size"])))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TraceError(f"not a trace record ({type(exc).__name__}: {exc})", where=where,
                             fix='write one JSON object per line: {"t": …, "key" or "spec": …, '
                                 '"build_seconds": …, "size": …}') from None
    return requests


def _key_of_spec(spec: Path, seen: dict[str, str]) -> str:
    if str(spec) not in seen:
        from .references import load

        seen[str(spec)] = load(spec).key
    return seen[str(spec)]


def write(requests: Iterable[Request], path: str | Path) -> int:
    """Write `requests` as JSON lines; returns how many."""
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        for request in requests:
            out.write(json.dumps({"t": round(request.t, 3), "key": request.key,
                                  "build_seconds": round(request.build_seconds, 3), "size": request.size}) + "\n")
            count += 1
    return count


def synthetic(requests: int, *, environments: int = 1000, zipf: float = 1.0, drift: float = 0.5,
              burst: float = 0.02, burst_size: int = 20, start: float = 1.7e9, rate: float = 1.0,
              seed: int = 0) -> list[Request]:
    """A seeded synthetic trace of `requests` build requests.

    - popularity: the environment at rank r is asked for with weight 1/r**zipf among `environments` ranks;
    - drift: per 1000 requests, this many new environments (new versions) take a rank each, the top ranks
      likelier, displacing the environment there for good;
    - bursts: with probability `burst` a request starts a burst of `burst_size` requests for one environment
      (CI fan-out), spaced a second apart;
    - arrivals: Poisson, `rate` requests per second on average, from `start`;
    - cost: build seconds log-normal around 2 minutes, image size log-normal around 1.5 GB.
    """
    if requests < 0 or environments < 1:
        raise ValueError("requests must be >= 0 and environments >= 1")
    rng = random.Random(seed)
    cumulative = list(itertools.accumulate(1.0 / (rank ** zipf) for rank in range(1, environments + 1)))
    total = cumulative[-1]
    at_rank = list(range(environments))  # rank → environment number
    costs: list[tuple[float, int]] = []
    names: list[str] = []

    def new_environment() -> int:
        costs.append((min(rng.lognormvariate(math.log(120), 0.8), 4 * 3600.0),
                      int(min(rng.lognormvariate(math.log(1.5e9), 0.6), 30e9))))
        names.append(f"synthetic-{seed}-{len(names):08d}")
        return len(names) - 1

    for _ in range(environments):
        new_environment()
    drift_per_request = drift / 1000.0
    out: list[Request] = []
    now = start
    while len(out) < requests:
        if drift_per_request and rng.random() < drift_per_request:
            rank = min(int(rng.paretovariate(1.0)) - 1, environments - 1)
            at_rank[rank] = new_environment()
        environment = at_rank[bisect.bisect_left(cumulative, rng.random() * total)]
        repeat = burst_size if burst and rng.random() < burst else 1
        build_seconds, size = costs[environment]
        for _ in range(min(repeat, requests - len(out))):
            now += rng.expovariate(rate) if repeat == 1 else 1.0
            out.append(Request(now, names[environment], build_seconds, size))
    return out


def export_index(index) -> list[Request]:
    """The history recorded in a cache index (`envbuild.cache.Index`) as a trace, in time order.

    See the module docstring for what is exact and what is approximated.
    """
    out: list[Request] = []
    for build_key, entry in index.entries():
        created = float(entry.get("created") or 0.0)
        seconds = float(entry.get("build_seconds") or 0.0)
        size = int(entry.get("size") or 0)
        out.append(Request(created, build_key, seconds, size))
        hits = int(entry.get("hits") or 0)
        last = float(entry.get("last_hit") or created)
        for i in range(1, hits + 1):
            out.append(Request(created + (last - created) * i / hits, build_key, seconds, size))
    out.sort(key=lambda r: (r.t, r.key))
    return out

