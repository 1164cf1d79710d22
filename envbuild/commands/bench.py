"""bench replay / trace / export: choose a cache size and eviction policy from a build history."""

from __future__ import annotations

import json

from . import add_common, err


def register(sub) -> None:
    p = sub.add_parser("bench", help="cache tuning: replay build traces against cache sizes and policies")
    commands = p.add_subparsers(dest="bench_command", required=True, metavar="BENCH_COMMAND")

    q = commands.add_parser("replay", help="replay a trace against each cache size and policy (simulated builds)")
    q.add_argument("trace", help="JSON-lines trace (from `bench trace`, `bench export`, or by hand)")
    q.add_argument("--size", default="10GB,50GB,100GB",
                   help="comma-separated cache sizes, e.g. 10GB,50GB,2TiB (default: %(default)s)")
    q.add_argument("--policy", default="lru,lfu,cost", help="comma-separated policies (default: %(default)s)")
    q.add_argument("--out", help="write the results as JSON here")
    q.add_argument("--plot", help="write a PNG of hit rate and build time saved against cache size")
    q.add_argument("--scratch", help="keep the replayed indexes in this directory (default: a temporary one)")
    add_common(q)
    q.set_defaults(func=cmd_replay)

    q = commands.add_parser("trace", help="generate a synthetic trace (Zipf popularity, drift, bursts)")
    q.add_argument("--requests", type=int, default=100_000, help="number of requests (default: %(default)s)")
    q.add_argument("--environments", type=int, default=1000, help="popularity ranks (default: %(default)s)")
    q.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent of popularity (default: %(default)s)")
    q.add_argument("--drift", type=float, default=0.5,
                   help="new environments displacing old ones, per 1000 requests (default: %(default)s)")
    q.add_argument("--burst", type=float, default=0.02,
                   help="probability that a request starts a burst (default: %(default)s)")
    q.add_argument("--burst-size", type=int, default=20, help="requests in a burst (default: %(default)s)")
    q.add_argument("--rate", type=float, default=1.0, help="requests per second on average (default: %(default)s)")
    q.add_argument("--seed", type=int, default=0, help="random seed: same arguments, same trace")
    q.add_argument("-o", "--output", required=True, help="write the trace here (JSON lines)")
    add_common(q)
    q.set_defaults(func=cmd_trace)

    q = commands.add_parser("export", help="export the build history of a cache index as a trace")
    q.add_argument("-o", "--output", required=True, help="write the trace here (JSON lines)")
    add_common(q)
    q.set_defaults(func=cmd_export)


def _parse_list(text: str, parse, what: str) -> list:
    from ..errors import EnvbuildError

    try:
        return [parse(item.strip()) for item in text.split(",") if item.strip()]
    except ValueError as exc:
        raise EnvbuildError(f"--{what}: {exc}", fix=f"pass a comma-separated list to --{what}") from None


def _policy(name: str) -> str:
    from ..policies import POLICIES

    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}: use one of {', '.join(POLICIES)}")
    return name


def cmd_replay(args) -> int:
    from .. import replay, trace
    from ..policies import parse_size

    sizes = _parse_list(args.size, parse_size, "size")
    policy_names = _parse_list(args.policy, _policy, "policy")
    requests = trace.read(args.trace)
    print(f"{'policy':<6} {'size':>10} {'hit rate':>9} {'hours saved':>12} {'hours built':>12} {'stored':>10} "
          f"{'evictions':>10} {'req/s':>10}")

    def show(result) -> None:
        print(f"{result.policy:<6} {_gb(result.capacity):>10} {100 * result.hit_rate:>8.1f}% "
              f"{result.seconds_saved / 3600:>12.1f} {result.seconds_built / 3600:>12.1f} "
              f"{_gb(result.bytes_stored):>10} {result.evictions:>10} {result.requests_per_second:>10,.0f}",
              flush=True)

    results = replay.sweep(requests, sizes, policy_names, scratch=args.scratch, on_result=show)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            json.dump({"trace": args.trace, "requests": len(requests), "unique": len({r.key for r in requests}),
                       "results": [r.to_dict() for r in results]}, out, indent=2)
        err(f"envbuild: wrote {args.out}")
    if args.plot:
        replay.plot(results, args.plot, title=f"Cache replay of {args.trace} ({len(requests):,} requests)")
        err(f"envbuild: wrote {args.plot}")
    return 0


def _gb(size: int) -> str:
    return f"{size / 1e9:.1f}GB"


def cmd_trace(args) -> int:
    from .. import trace

    requests = trace.synthetic(args.requests, environments=args.environments, zipf=args.zipf, drift=args.drift,
                               burst=args.burst, burst_size=args.burst_size, rate=args.rate, seed=args.seed)
    count = trace.write(requests, args.output)
    err(f"envbuild: wrote {args.output} ({count} requests, {len({r.key for r in requests})} environments)")
    return 0


def cmd_export(args) -> int:
    from .. import config, trace
    from ..cache import Index

    home = config.home(args.cache_dir)
    if not (home / "index").exists():
        from ..errors import CacheError

        raise CacheError(f"no cache index in {home}", fix="build something first, or pass --cache-dir")
    index = Index(home)
    try:
        requests = trace.export_index(index)
    finally:
        index.close()
    count = trace.write(requests, args.output)
    err(f"envbuild: wrote {args.output} ({count} requests from {home}; hits spread evenly between build and "
        "last hit: the index keeps no per-hit times)")
    return 0
