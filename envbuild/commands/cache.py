"""ls, show, stats, logs, gc: looking into the cache index and trimming it. All with --json for tools.

Sizes: `size` is an image's own size; `unique` what removing it alone frees and `shared` what it shares with other
images on the engine (envbuild.disk_usage: layers counted once); gc plans by the bytes a removal frees.
"""

from __future__ import annotations

import json
import time

from . import add_common, err


def register(sub) -> None:
    p = sub.add_parser("ls", help="list cached images: key, name, size, built, hits, last hit")
    _common(p)
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("show", help="a cached image: entry, labels, lock, Dockerfile, build log")
    p.add_argument("key", help="build key (or a prefix, its tag, or the image reference)")
    _common(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("stats", help="cache hits, misses, builds and seconds saved")
    _common(p)
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("logs", help="the build log kept with a cached image, or of a failed build")
    p.add_argument("key", nargs="?", help="build key (or a prefix, its tag, or the image reference)")
    p.add_argument("--last-failed", action="store_true", help="the log of the last build that failed")
    _common(p)
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("gc", help="remove cached images and their entries to fit a size, by policy")
    p.add_argument("--max-size", help="keep at most this much, e.g. 50GB, 500MB, 2GiB")
    p.add_argument("--policy", choices=("lru", "lfu", "cost"), default="lru",
                   help="what goes first: least recently used, least often used, or cheapest to rebuild per byte")
    p.add_argument("--older-than", help="also remove what was not used for this long, e.g. 30d, 12h")
    p.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    _common(p)
    p.set_defaults(func=cmd_gc)


def _common(p) -> None:
    add_common(p)
    p.add_argument("--json", action="store_true", help="print JSON")


def _index(args):
    from .. import config
    from ..cache import Index

    return Index(config.home(args.cache_dir))


def listing(index) -> list[dict]:
    """What `ls --json` prints (and `envbuild ui` shows): every index entry with its key, newest first."""
    return sorted(({"key": key, **entry} for key, entry in index.entries()), key=lambda e: -e["created"])


def cmd_ls(args) -> int:
    with _index(args) as index:
        rows = listing(index)
    for row, sizes in zip(rows, _sizes([row["id"] for row in rows])):
        row.update(sizes)
    if args.json:
        print(json.dumps(rows, sort_keys=True))
        return 0
    table = [("KEY", "NAME", "SIZE", "UNIQUE", "SHARED", "BUILT", "HITS", "LAST HIT", "SOURCE")]
    table += [(row["key"], row.get("name") or "-", human_size(row.get("size") or 0), _size_or_dash(row["unique_size"]),
               _size_or_dash(row["shared_size"]), ago(row["created"]), str(row.get("hits", 0)),
               ago(row.get("last_hit")), row.get("source") or "built") for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def detail(index, key: str) -> dict:
    """What `show --json` prints of the image `key` names: its entry, labels, lock, Dockerfile and build log."""
    key = index.find(key)
    return {"key": key, "entry": index.get(key), **(index.detail_get(key) or {}), "log": index.log_get(key)}


def cmd_show(args) -> int:
    with _index(args) as index:
        shown = detail(index, args.key)
        key = shown["key"]
    shown.update(_sizes([shown["entry"]["id"]])[0])
    if args.json:
        print(json.dumps(shown, sort_keys=True, default=str))
        return 0
    entry = shown["entry"]
    built_in = f" in {entry['build_seconds']:.1f}s" if entry.get("build_seconds") else ""
    fields = {"key": key, **{name: entry.get(name) for name in ("image", "id", "name", "digest", "spec_key",
                                                                 "lock_key", "source", "envbuild_version")},
              "built": f"{ago(entry['created'])}{built_in}", "size": human_size(entry.get("size") or 0),
              "unique": _size_or_dash(shown["unique_size"]), "shared": _size_or_dash(shown["shared_size"]),
              "hits": f"{entry.get('hits', 0)} (last {ago(entry.get('last_hit'))})"}
    for name, value in fields.items():
        print(f"{name + ':':<18}{value or '-'}")
    for title, name in (("labels", "labels"), ("lock", "lock"), ("Dockerfile", "dockerfile"), ("build log", "log")):
        value = shown.get(name)
        if isinstance(value, dict):
            value = "\n".join(f"{k}={v}" for k, v in sorted(value.items()))
        print(f"\n--- {title} ---\n{(value or '(not recorded)').rstrip()}")
    return 0


def summary(index) -> dict:
    """What `stats --json` prints: the index's counters, its images and their size, the hit rate."""
    stats = index.stats()
    entries = [entry for _, entry in index.entries()]
    asked = stats["hits"] + stats["misses"]
    stats.update(images=len(entries), size=sum(e.get("size") or 0 for e in entries),
                 hit_rate=stats["hits"] / asked if asked else None)
    return stats


def cmd_stats(args) -> int:
    with _index(args) as index:
        stats = summary(index)
    if args.json:
        print(json.dumps(stats, sort_keys=True))
        return 0
    rate = f"{stats['hit_rate']:.0%}" if stats["hit_rate"] is not None else "-"
    print(f"images:        {stats['images']} ({human_size(stats['size'])})\n"
          f"hits:          {stats['hits']}\nmisses:        {stats['misses']} ({stats['builds']} built here)\n"
          f"hit rate:      {rate}\nbuild time:    {stats['build_seconds']:.1f}s\n"
          f"seconds saved: {stats['seconds_saved']:.1f}s")
    return 0


def cmd_logs(args) -> int:
    from ..errors import CacheError

    if bool(args.key) == bool(args.last_failed):
        raise CacheError("name a build key or pass --last-failed", fix="envbuild logs KEY, or envbuild logs --last-failed")
    with _index(args) as index:
        try:
            key = None if args.last_failed else index.find(args.key)
        except CacheError:
            key = None
        failed = index.failed_get(None if args.last_failed else args.key) if key is None else None
        if key is None and failed is None:
            if args.last_failed:
                raise CacheError("no build has failed here", fix="`envbuild ls` lists the cached images")
            index.find(args.key)  # raises its own message: no image and no failed build has this key
        key, text = failed if failed is not None else (key, index.log_get(key))
    if args.json:
        print(json.dumps({"key": key, "log": text}))
    elif text is None:
        err(f"envbuild: no build log for {key} (it was not built on this machine)")
        return 1
    else:
        print(text)
    return 0


def garbage(index, *, policy: str, max_size: str | None, older_than: str | None, dry_run: bool) -> dict:
    """What `gc --json` prints: the images gc removes (or, on a dry run, would remove) for limits written as on
    the command line (`50GB`, `30d`)."""
    from ..cache import collect_garbage
    from ..engine import Engine
    from ..errors import CacheError
    from ..policies import parse_age, parse_size

    if not max_size and not older_than:
        raise CacheError("gc needs a limit", fix="pass --max-size (e.g. 50GB) and/or --older-than (e.g. 30d)")
    try:
        max_bytes = parse_size(max_size) if max_size else None
        max_age = parse_age(older_than) if older_than else None
    except ValueError as exc:
        raise CacheError(str(exc)) from None
    engine = Engine()
    try:
        evicted = collect_garbage(index, engine, policy=policy, max_size=max_bytes, older_than=max_age,
                                  dry_run=dry_run)
    finally:
        engine.close()
    freed = sum(r["frees"] for r in evicted if r["removed"] or dry_run)
    return {"dry_run": dry_run, "policy": policy, "evicted": evicted, "frees": freed}


def cmd_gc(args) -> int:
    with _index(args) as index:
        result = garbage(index, policy=args.policy, max_size=args.max_size, older_than=args.older_than,
                         dry_run=args.dry_run)
    evicted, freed = result["evicted"], result["frees"]
    if args.json:
        print(json.dumps(result, sort_keys=True))
        return 0
    verb = "would remove" if args.dry_run else "removed"
    for record in evicted:
        state = verb if args.dry_run or record["removed"] else f"kept ({record['reason']})"
        print(f"{state} {record['image']} ({human_size(record['size'])}, frees {human_size(record['frees'])}, "
              f"{record['name'] or '-'})")
    err(f"envbuild: gc ({args.policy}): {verb} {sum(1 for r in evicted if r['removed'] or args.dry_run)} images, "
        f"{'would free' if args.dry_run else 'freed'} {human_size(freed)}")
    return 0


def _sizes(image_ids: list[str]) -> list[dict]:
    """unique_size and shared_size of each image (None when the engine does not answer or lacks the image)."""
    from ..disk_usage import measure
    from ..engine import Engine
    from ..errors import EngineError

    engine = Engine()
    try:
        footprint = measure(engine, image_ids)
    except EngineError:
        return [{"unique_size": None, "shared_size": None} for _ in image_ids]
    finally:
        engine.close()
    sized = []
    for image_id in image_ids:
        if image_id not in footprint.layers:
            sized.append({"unique_size": None, "shared_size": None})
            continue
        unique = footprint.unique(image_id)
        sized.append({"unique_size": unique, "shared_size": footprint.size(image_id) - unique})
    return sized


def _size_or_dash(size: int | None) -> str:
    return "-" if size is None else human_size(size)


def human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1000
    return f"{size:.1f}TB"


def ago(when: float | None) -> str:
    if not when:
        return "never"
    seconds = max(time.time() - when, 0)
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{seconds / length:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"
