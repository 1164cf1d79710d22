"""P5 — solve time: a 20-spec environment against a generated channel of ~200k records, cold and warm, and the
lock-cache hit that makes a second lock of the same spec free.

The channel is written as repodata.json directly (the real schema: name, version, build, depends, hashes, size,
timestamp), not as 200k package files: the solver reads only repodata. Packages depend on lower-numbered ones
with version ranges (some excluding the newest version), so a solve has a real dependency graph to walk. Measured:
- cold: `resolver.resolve` in a fresh process (no repodata read yet; the OS page cache is warm), solve and
  conda-lock writing included, interpreter start and imports not;
- warm: the same call again in that process (rattler's gateway keeps the parsed repodata);
- lock-cache hit: `envbuild.lock(env)` on a spec locked before (open the index, key the spec, stat the
  channel, unpickle the Lock).
Run as a script: prints a table and saves JSON under benchmarks/results/.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IDS = ("P5",)
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPECS = 20


def make_channel(directory: Path, records: int, seed: int = 5) -> list[str]:
    """Write a linux-64 + noarch channel of `records` records; return the 20 package names the benchmark asks for."""
    rng = random.Random(seed)
    versions_per_name = 8
    names = [f"pkg{i:05d}" for i in range(max(records // versions_per_name, SPECS * 2))]
    packages = {}
    for index, name in enumerate(names):
        for v in range(versions_per_name):
            # Dependencies lean towards low-numbered "core" packages, as real ones lean towards python, libc,
            # openssl...: a 20-spec environment then locks ~200 packages, like a real one.
            targets = sorted({int(index * rng.random() ** 4) for _ in range(min(index, rng.randint(0, 4)))})
            depends = []
            for dep in targets:
                low = rng.randint(0, 3)
                depends.append(f"{names[dep]} >={low}.0,<{low + 6}")
            filename = f"{name}-{v}.0-h{v:07x}_0.conda"
            packages[filename] = {
                "name": name, "version": f"{v}.0", "build": f"h{v:07x}_0", "build_number": 0,
                "depends": depends, "license": "MIT", "md5": f"{rng.getrandbits(128):032x}",
                "sha256": f"{rng.getrandbits(256):064x}", "size": rng.randint(10_000, 5_000_000),
                "subdir": "linux-64", "timestamp": 1_700_000_000_000 + index,
            }
    for subdir, content in (("linux-64", packages), ("noarch", {})):
        (directory / subdir).mkdir(parents=True, exist_ok=True)
        repodata = {"info": {"subdir": subdir}, "packages": {}, "packages.conda": content, "repodata_version": 1}
        (directory / subdir / "repodata.json").write_text(json.dumps(repodata, separators=(",", ":")))
    # Ask for packages high in the graph: they pull in the most dependencies.
    return names[-SPECS:]


_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import envbuild.resolver as resolver
from envbuild.spec import Environment
env = Environment.from_file(sys.argv[2])
import rattler, conda_lock.lockfile  # imports are not the solve: pay them before the clock starts
times = []
for _ in range(int(sys.argv[3])):
    started = time.perf_counter()
    lock = resolver.resolve(env)
    times.append(time.perf_counter() - started)
print(json.dumps({"times": times, "packages": len(lock.packages)}))
"""


def _solve_in_fresh_process(spec: Path, repeats: int) -> dict:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT), str(spec), str(repeats)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _lock_cache_hits(spec: Path, home: Path, repeats: int) -> list[float]:
    from envbuild.api import lock
    from envbuild.spec import Environment

    env = Environment.from_file(spec)
    lock(env, cache_dir=home)  # the solve that fills the cache
    times = []
    for _ in range(repeats):
        env = Environment.from_file(spec)  # a fresh object each time: nothing memoized on it
        started = time.perf_counter()
        lock(env, cache_dir=home)
        times.append(time.perf_counter() - started)
    return times


def run(quick: bool = False) -> list[dict]:
    records = 5_000 if quick else 200_000
    cold_runs = 2 if quick else 3
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-solve-") as tmp:
        channel = Path(tmp, "channel")
        wanted = make_channel(channel, records)
        spec = Path(tmp, "environment.yml")
        spec.write_text(f"channels: [{channel.as_uri()}]\ndependencies:\n" + "".join(f"  - {n}\n" for n in wanted))
        size = (channel / "linux-64" / "repodata.json").stat().st_size
        cold, warm = [], []
        packages = 0
        for _ in range(cold_runs):
            result = _solve_in_fresh_process(spec, repeats=4)
            cold.append(result["times"][0])
            warm.extend(result["times"][1:])
            packages = result["packages"]
        hits = _lock_cache_hits(spec, Path(tmp, "home"), repeats=20 if quick else 50)
    details = {"records": records, "repodata_mb": round(size / 2**20, 1), "specs": SPECS,
               "packages_in_lock": packages, "cold_runs_s": [round(t, 4) for t in cold],
               "warm_runs_s": [round(t, 4) for t in warm], "quick": quick}
    cold_s, warm_s, hit_s = statistics.median(cold), statistics.median(warm), statistics.median(hits)
    return [
        {"id": "P5", "name": f"solve cold ({records} records, {SPECS} specs)", "value": cold_s, "unit": "s",
         "baseline": None, "baseline_name": None, "ratio": None, "target": "<= 0.2 s", "details": details},
        {"id": "P5", "name": f"solve warm ({records} records, {SPECS} specs)", "value": warm_s, "unit": "s",
         "baseline": cold_s, "baseline_name": "cold solve", "ratio": warm_s / cold_s, "target": "< cold",
         "details": details},
        {"id": "P5", "name": "lock-cache hit", "value": hit_s * 1000, "unit": "ms",
         "baseline": warm_s * 1000, "baseline_name": "warm solve", "ratio": hit_s / warm_s, "target": "<= 5 ms",
         "details": {"runs_ms": [round(t * 1000, 3) for t in hits], "records": records}},
    ]


def main() -> None:
    quick = "--quick" in sys.argv
    entries = run(quick)
    for e in entries:
        baseline = f"{e['baseline']:.4g} ({e['baseline_name']})" if e["baseline"] is not None else "-"
        print(f"{e['id']:4} {e['name']:48} {e['value']:10.4g} {e['unit']:3} target {e['target']:10} baseline {baseline}")
    out = HERE / "results" / ("quick-bench_solve.json" if quick else "bench_solve.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(entries, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
