"""P5 — solve time: a 20-spec environment against a generated channel of ~200k records, cold and warm, and the
lock-cache hit that makes a second lock of the same spec free.

The channel is written as repodata.json directly (the real schema: name, version, build, depends, hashes, size,
timestamp), not as 200k package files: the solver reads only repodata. Packages depend on lower-numbered ones
with version ranges (newer versions need newer dependencies; some ranges exclude the newest version), so a solve
has a real dependency graph to walk. Measured:
- conda solve: reading the channel's repodata and solving with rattler (what the target is about), from the
  file:// channel (rattler scans the whole repodata.json) and from the same channel served over HTTP as sharded
  repodata (CEP-16: it fetches only the shards of the names the solve touches; an empty rattler cache), and
- lock: the whole `resolver.resolve` (spec key, solve, conda-lock.yml text through conda-lock's models),
  each cold (first call in a fresh process: no repodata read yet, the OS page cache warm; interpreter start and
  imports not counted) and warm (later calls in that process: rattler's gateway keeps the parsed repodata);
- lock-cache hit: `envbuild.lock(env)` on a spec locked before, in a process that has used the lock cache
  (key the spec, stat the local channel's repodata, read and unpickle the Lock), and the whole
  `python -m envbuild lock SPEC` command on a hit, next to a bare interpreter start measured alongside.
Run as a script: prints a table and saves JSON under benchmarks/results/.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from functools import partial
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
        # Dependencies lean towards low-numbered "core" packages, as real ones lean towards python, libc,
        # openssl...; like real packages, the versions of one package share their dependencies, newer versions
        # asking for newer ones. A 20-spec environment then locks ~200 packages, like a real one.
        targets = sorted({int(index * rng.random() ** 4) for _ in range(min(index, rng.randint(0, 4)))})
        for v in range(versions_per_name):
            depends = [f"{names[dep]} >={v // 3}.0,<{v // 3 + 6}" for dep in targets]
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
        _write_shards(directory / subdir, subdir, content)
    # Ask for packages high in the graph: they pull in the most dependencies.
    return names[-SPECS:]


def _write_shards(directory: Path, subdir: str, packages: dict) -> None:
    """The same records as sharded repodata (CEP-16): one zstd msgpack file per package name, named by its
    sha256, and an index of them; a client fetches only the shards of the names it needs."""
    import hashlib

    import msgpack
    import zstandard

    compress = zstandard.ZstdCompressor(level=3).compress
    by_name: dict[str, dict] = {}
    for filename, record in packages.items():
        binary = {**record, "md5": bytes.fromhex(record["md5"]), "sha256": bytes.fromhex(record["sha256"])}
        by_name.setdefault(record["name"], {})[filename] = binary
    (directory / "shards").mkdir(exist_ok=True)
    index = {}
    for name, records in by_name.items():
        shard = compress(msgpack.packb({"packages": {}, "packages.conda": records, "removed": []}))
        index[name] = hashlib.sha256(shard).digest()
        (directory / "shards" / f"{index[name].hex()}.msgpack.zst").write_bytes(shard)
    info = {"subdir": subdir, "base_url": "", "shards_base_url": "./shards/"}
    (directory / "repodata_shards.msgpack.zst").write_bytes(compress(msgpack.packb({"info": info, "shards": index})))


@contextmanager
def _served(directory: Path):
    """The channel over HTTP on 127.0.0.1, where rattler reads sharded repodata (it reads only repodata.json
    from file:// channels)."""
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        # Keep-alive, and no Nagle: otherwise each small shard waits ~40 ms for a delayed ACK, which measures
        # this test server, not the solve.
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import envbuild.resolver as resolver
from envbuild.keys import canonical_spec
from envbuild.resolver.conda import solve_conda
from envbuild.spec import Environment
env = Environment.from_file(sys.argv[2])
import rattler, conda_lock.lockfile  # imports are not the solve: pay them before the clock starts
spec = canonical_spec(env)
if sys.argv[4] == "solve":  # the conda solve alone: read repodata, solve, records out
    call = lambda: solve_conda(spec, "linux-64", None, None)
else:  # the whole lock: spec key, solve, conda-lock.yml text
    call = lambda: resolver.resolve(canonical_spec(env))
times = []
for _ in range(int(sys.argv[3])):
    started = time.perf_counter()
    result = call()
    times.append(time.perf_counter() - started)
print(json.dumps({"times": times, "packages": len(getattr(result, "packages", result))}))
"""


def _in_fresh_processes(spec: Path, what: str, processes: int, repeats: int = 4) -> tuple[list[float], list[float], int]:
    """(first call of each fresh process, later calls, packages locked) for `what` = solve | lock."""
    cold, warm, packages = [], [], 0
    for _ in range(processes):
        with tempfile.TemporaryDirectory(prefix="envbuild-bench-cache-") as cache:
            done = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT), str(spec), str(repeats), what],
                                  capture_output=True, text=True, check=True,
                                  env={**os.environ, "XDG_CACHE_HOME": cache})
        result = json.loads(done.stdout.strip().splitlines()[-1])
        cold.append(result["times"][0])
        warm.extend(result["times"][1:])
        packages = result["packages"]
    return cold, warm, packages


def _wall(arguments: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, *arguments], capture_output=True, check=True, cwd=ROOT)
        times.append(time.perf_counter() - started)
    return times


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


def _entry(name: str, value: float, unit: str, target: str, details: dict, baseline: float | None = None,
           baseline_name: str | None = None) -> dict:
    return {"id": "P5", "name": name, "value": value, "unit": unit, "baseline": baseline,
            "baseline_name": baseline_name, "ratio": value / baseline if baseline else None, "target": target,
            "details": details}


def run(quick: bool = False) -> list[dict]:
    records = 5_000 if quick else 200_000
    processes = 2 if quick else 3
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-solve-") as tmp:
        channel = Path(tmp, "channel")
        wanted = make_channel(channel, records)
        spec = Path(tmp, "environment.yml")
        spec.write_text(f"channels: [{channel.as_uri()}]\ndependencies:\n" + "".join(f"  - {n}\n" for n in wanted))
        size = (channel / "linux-64" / "repodata.json").stat().st_size
        solve_cold, solve_warm, packages = _in_fresh_processes(spec, "solve", processes)
        with _served(channel) as url:
            sharded = Path(tmp, "sharded.yml")
            sharded.write_text(spec.read_text().replace(channel.as_uri(), url))
            shard_cold, shard_warm, _ = _in_fresh_processes(sharded, "solve", processes)
        lock_cold, lock_warm, _ = _in_fresh_processes(spec, "lock", processes)
        hits = _lock_cache_hits(spec, Path(tmp, "home"), repeats=20 if quick else 50)
        command = _wall(["-m", "envbuild", "lock", str(spec), "--cache-dir", str(Path(tmp, "home"))], 5)
        bare = _wall(["-c", "pass"], 5)
    ms = lambda values: [round(v * 1000, 2) for v in values]  # noqa: E731
    # Other work on the machine inflates every figure: say how busy it was (1-minute load average, per core).
    details = {"records": records, "repodata_mb": round(size / 2**20, 1), "specs": SPECS, "packages_locked": packages,
               "processes": processes, "quick": quick, "cores": os.cpu_count(),
               "load_average_at_end": round(os.getloadavg()[0], 2)}
    med = statistics.median
    scale = f"{records} records, {SPECS} specs"
    return [
        _entry(f"conda solve cold ({scale})", med(solve_cold), "s", "<= 0.2 s",
               {**details, "runs_ms": ms(solve_cold)}),
        _entry(f"conda solve warm ({scale})", med(solve_warm), "s", "< cold", {**details, "runs_ms": ms(solve_warm)},
               med(solve_cold), "conda solve cold"),
        _entry(f"conda solve cold, sharded repodata over HTTP ({scale})", med(shard_cold), "s", "<= 0.2 s",
               {**details, "runs_ms": ms(shard_cold)}, med(solve_cold), "conda solve cold (file://, repodata.json)"),
        _entry(f"conda solve warm, sharded repodata over HTTP ({scale})", med(shard_warm), "s", "< cold",
               {**details, "runs_ms": ms(shard_warm)}, med(shard_cold), "sharded solve cold"),
        _entry(f"lock cold: solve + conda-lock.yml ({scale})", med(lock_cold), "s", "<= 0.2 s",
               {**details, "runs_ms": ms(lock_cold)}),
        _entry(f"lock warm: solve + conda-lock.yml ({scale})", med(lock_warm), "s", "< cold",
               {**details, "runs_ms": ms(lock_warm)}, med(lock_cold), "lock cold"),
        _entry("lock-cache hit (envbuild.lock, in process)", med(hits) * 1000, "ms", "<= 5 ms",
               {**details, "runs_ms": ms(hits)}, med(lock_warm) * 1000, "lock warm"),
        _entry("lock-cache hit (`python -m envbuild lock`, whole process)", med(command) * 1000, "ms", "-",
               {**details, "runs_ms": ms(command)}, med(bare) * 1000, "bare `python -c pass`"),
    ]


def main() -> None:
    quick = "--quick" in sys.argv
    entries = run(quick)
    for e in entries:
        baseline = f"{e['baseline']:.4g} ({e['baseline_name']})" if e["baseline"] is not None else "-"
        print(f"{e['id']:4} {e['name']:62} {e['value']:10.4g} {e['unit']:3} target {e['target']:9} baseline {baseline}")
    out = HERE / "results" / ("quick-bench_solve.json" if quick else "bench_solve.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(entries, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
