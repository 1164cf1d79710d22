"""The content-addressed index: what has been built, under which key, and what it cost.

One diskcache (SQLite, WAL) under the envbuild home, safe for many threads and processes. Records, by prefix:
- ``build:<build key>``    → the image entry (`new_entry`; `image_of` turns it into the `Image` a call returns)
- ``detail:<build key>``   → what `envbuild show` prints: Dockerfile, lock text, labels
- ``log:<build key>``      → the build log
- ``request:<request key>`` → build key  (spec key + base image id + template: skips lock and render on a hit)
- ``canonical:<spec key>`` → the canonical form of a spec that was built (envbuild explain)
- ``lock:<lock request>``  → the Lock (skips the solve)
- ``stat:<name>``          → counters: hits, misses, seconds saved (atomic increments)
An entry is written only after its image exists: a failed or interrupted build leaves nothing behind.

The CLI's cache-hit path does not open the index at all (diskcache's setup runs ~70 SQL statements and
checkpoints on close, tens of milliseconds): it reads the small memo and answer files envbuild.hitpath writes
beside it, and appends the hit to ``<home>/hits.log`` (`record_hit`), which the next `Index` opened folds into the
entry's counters and the stats.

Identical builds in flight are merged with one lock file per engine and build key, shared by every envbuild home
on the machine (``$ENVBUILD_LOCK_DIR``, default ``<tmp>/envbuild-locks-<uid>``): users with their own homes who
ask one engine for the same image get one build too (the others find it on the engine), and the engine's BuildKit
never runs two copies of one build (BuildKit 20.10 can panic merging identical builds in flight, moby#42414).
The lock is an fcntl lock (filelock), which the kernel releases when its process dies: a crashed builder never
blocks the others, who then find no entry and build themselves.
"""

from __future__ import annotations

import os
import time
from collections import namedtuple  # not typing.NamedTuple: `typing` costs the hit path milliseconds

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (the hit path imports this module)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

STATS = ("hits", "misses", "builds", "seconds_saved", "build_seconds")
HIT_JOURNAL = "hits.log"
SOURCES = ("built", "cache", "engine", "registry", "joined")


class Image(namedtuple("Image", "image id key spec_key lock_key cached source seconds digest builder warnings "
                                "push_seconds", defaults=(None, None, (), None))):
    """An environment's image and how this call obtained it (`source`, one of SOURCES):
    built here; from the cache index; from the engine (its key tag was there without an index entry); pulled from
    the shared registry; or joined (an identical build in flight elsewhere finished it while this call waited).

    Fields: image (reference repository:tag, tag derived from the build key), id (the engine's image id), key (build
    key), spec_key, lock_key, cached (False only when this call ran the build), source, seconds, digest (manifest
    digest in the shared registry, when pushed or pulled), builder (buildx | buildkit | classic, when built),
    warnings, push_seconds (time spent pushing the image and its cache sources to the shared registry after
    `seconds`; None when nothing was pushed). Immutable; a named tuple rather than a dataclass because `dataclasses` (and `inspect` behind it)
    would cost the cache-hit path milliseconds of imports. Made only by `image_of`, from an index entry."""

    __slots__ = ()

    def to_dict(self) -> dict:
        return self._asdict()


def new_entry(*, image: str, image_id: str, name: str | None, spec_key: str, lock_key: str, base_id: str,
              build_seconds: float | None, size: int, source: str, digest: str | None = None) -> dict:
    """The index record of one image; `source` says how this machine got it (built, registry, engine)."""
    from . import __version__

    return {"image": image, "id": image_id, "digest": digest, "name": name, "spec_key": spec_key,
            "lock_key": lock_key, "base_id": base_id, "created": time.time(), "build_seconds": build_seconds,
            "size": size, "hits": 0, "last_hit": None, "source": source, "envbuild_version": __version__}


def image_of(entry: dict, build_key: str, *, source: str, started: float, builder: str | None = None,
             warnings: tuple[str, ...] = ()) -> Image:
    """The `Image` a call returns for the index entry of `build_key`, obtained from `source` (see SOURCES), the
    call having started at `started` (perf_counter). The one place an Image is made: every way of obtaining an
    image writes its index entry first, so what a call returns is what the next call will find."""
    return Image(image=entry["image"], id=entry["id"], key=build_key, spec_key=entry["spec_key"],
                 lock_key=entry["lock_key"], cached=source != "built", source=source,
                 seconds=time.perf_counter() - started, digest=entry.get("digest"), builder=builder,
                 warnings=warnings)


class Index:
    def __init__(self, home: Path):
        """Open (or create, 0700/0600) the index of `home`; a damaged one is moved aside and the images on the
        engine are indexed again (envbuild.home); a home that cannot be written is one CacheError."""
        from .home import GuardedCache, open_index, prepare

        self.home = prepare(home)
        cache, moved = open_index(home)
        self._cache = GuardedCache(cache, home)
        if moved is not None:
            self.reindex_from_engine()
        self._fold_hit_journal()

    def reindex_from_engine(self) -> int:
        """Index the images the engine holds with envbuild's build-key label (and the key tag it names): what a
        new or healed index starts from, so no image built before is lost. Returns how many were indexed."""
        import json
        import urllib.parse

        from .engine import Engine
        from .errors import EngineError
        from .keys import tag_of

        query = urllib.parse.quote(json.dumps({"label": ["org.envbuild.build-key"]}))
        engine = Engine()
        try:
            status, body = engine.request("GET", f"/images/json?filters={query}")
        except EngineError:
            return 0  # no engine now: the images are found again by key tag when next asked for
        finally:
            engine.close()
        found = 0
        for record in json.loads(body) if status == 200 else []:
            labels = record.get("Labels") or {}
            build_key = labels.get("org.envbuild.build-key", "")
            image = next((t for t in record.get("RepoTags") or [] if t.endswith(f":{tag_of(build_key)}")), None)
            if image is None or self.get(build_key) is not None:
                continue
            entry = new_entry(image=image, image_id=record["Id"], name=labels.get("org.opencontainers.image.title"),
                              spec_key=labels.get("org.envbuild.spec-key", ""),
                              lock_key=labels.get("org.envbuild.lock-key", ""),
                              base_id=labels.get("org.opencontainers.image.base.digest", ""), build_seconds=None,
                              size=record.get("Size", 0), source="engine")
            self.put(build_key, {**entry, "created": record.get("Created") or entry["created"]},
                     detail={"labels": labels})
            found += 1
        return found

    def close(self) -> None:
        self._cache.close()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- images --------------------------------------------------------------------------------------------------
    def get(self, build_key: str) -> dict | None:
        return self._cache.get(f"build:{build_key}")

    def put(self, build_key: str, entry: dict, *, log: str | None = None, detail: dict | None = None) -> None:
        """Write an entry with its log and details in one transaction: readers see all of it or none."""
        with self._cache.transact():
            if log is not None:
                self._cache.set(f"log:{build_key}", log)
            if detail is not None:
                self._cache.set(f"detail:{build_key}", detail)
            self._cache.set(f"build:{build_key}", entry)

    def update(self, build_key: str, **fields) -> None:
        with self._cache.transact():
            entry = self.get(build_key)
            if entry is not None:
                self._cache.set(f"build:{build_key}", {**entry, **fields})

    def delete(self, build_key: str) -> None:
        with self._cache.transact():
            for prefix in ("build", "log", "detail"):
                self._cache.delete(f"{prefix}:{build_key}")
            for key in list(self._cache.iterkeys()):
                if isinstance(key, str) and key.startswith("request:") and self._cache.get(key) == build_key:
                    self._cache.delete(key)

    def record_hit(self, build_key: str, when: float | None = None) -> dict | None:
        """Count a hit on `build_key` (entry counters and global stats); returns the updated entry."""
        with self._cache.transact():
            entry = self.get(build_key)
            if entry is None:
                return None
            entry["hits"] = entry.get("hits", 0) + 1
            entry["last_hit"] = max(entry.get("last_hit") or 0.0, when or time.time())
            self._cache.set(f"build:{build_key}", entry)
            self._cache.incr("stat:hits")
            self._cache.incr("stat:seconds_saved", entry.get("build_seconds") or 0.0)
        return entry

    def _fold_hit_journal(self) -> None:
        """Apply the hits the fast path appended to hits.log. Renaming the journal first gives each line to exactly
        one folding process."""
        journal = self.home / HIT_JOURNAL
        if not journal.exists():
            return
        taken = journal.with_name(f"{HIT_JOURNAL}.{os.getpid()}.{time.time_ns()}")
        try:
            os.rename(journal, taken)
        except OSError:
            return  # another process took it (or this home is read-only: the counts wait)
        for line in taken.read_text(encoding="utf-8", errors="replace").splitlines():
            build_key, _, when = line.partition("\t")
            try:
                self.record_hit(build_key, float(when))
            except ValueError:
                continue  # a line torn by a crash mid-write
        taken.unlink()

    def record_miss(self, build_seconds: float | None = None) -> None:
        """Count a request the index could not answer; `build_seconds` when it was built here."""
        with self._cache.transact():
            self._cache.incr("stat:misses")
            if build_seconds is not None:
                self._cache.incr("stat:builds")
                self._cache.incr("stat:build_seconds", build_seconds)

    def stats(self) -> dict:
        return {name: self._cache.get(f"stat:{name}", 0) for name in STATS}

    def entries(self) -> Iterator[tuple[str, dict]]:
        for key in self._cache.iterkeys():
            if isinstance(key, str) and key.startswith("build:"):
                entry = self._cache.get(key)
                if entry is not None:
                    yield key[len("build:"):], entry

    def find(self, prefix: str) -> str:
        """The one build key `prefix` names: a key or its start, its tag form, the bare hash, or the image reference."""
        from .errors import CacheError
        from .keys import tag_of

        matches = [key for key, entry in self.entries()
                   if entry.get("image") == prefix or key.startswith(prefix) or tag_of(key).startswith(prefix)
                   or key.split(":", 1)[-1].startswith(prefix)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise CacheError(f"no cached image has key {prefix!r}", fix="`envbuild ls` lists the cached keys")
        raise CacheError(f"key prefix {prefix!r} matches {len(matches)} images", fix="give more of the key")

    # -- shortcuts to a build key ------------------------------------------------------------------------------------
    def resolve_request(self, request_key: str) -> str | None:
        return self._cache.get(f"request:{request_key}")

    def remember_request(self, request_key: str, build_key: str) -> None:
        self._cache.set(f"request:{request_key}", build_key)

    # -- canonical forms of built specs: what `envbuild explain` compares a missed spec with ----------------------------
    def canonical_put(self, spec_key: str, canonical: dict) -> None:
        self._cache.set(f"canonical:{spec_key}", canonical)

    def canonicals(self) -> Iterator[tuple[str, dict]]:
        for key in self._cache.iterkeys():
            if isinstance(key, str) and key.startswith("canonical:"):
                value = self._cache.get(key)
                if value is not None:
                    yield key[len("canonical:"):], value

    # -- locks, logs, details ---------------------------------------------------------------------------------------
    def lock_get(self, lock_request: str):
        return self._cache.get(f"lock:{lock_request}")

    def lock_put(self, lock_request: str, lock) -> None:
        self._cache.set(f"lock:{lock_request}", lock)

    def log_get(self, build_key: str) -> str | None:
        return self._cache.get(f"log:{build_key}")

    def detail_get(self, build_key: str) -> dict | None:
        return self._cache.get(f"detail:{build_key}")

    def failed_put(self, build_key: str, text: str) -> None:
        """Keep the log of a failed build of `build_key` (no image, so no entry): `envbuild logs` reads it."""
        with self._cache.transact():
            self._cache.set(f"failed:{build_key}", text)
            self._cache.set("failed-last", build_key)

    def failed_get(self, prefix: str | None = None) -> tuple[str, str] | None:
        """(build key, log) of the failed build `prefix` names (a key or its start), or of the last one."""
        key = self._cache.get("failed-last") if prefix is None else next(
            (k[len("failed:"):] for k in self._cache.iterkeys() if str(k).startswith("failed:")
             and (k[len("failed:"):].startswith(prefix) or k.split(":", 2)[-1].startswith(prefix))), None)
        text = self._cache.get(f"failed:{key}") if key else None
        return (key, text) if text is not None else None

    # -- merging identical builds in flight --------------------------------------------------------------------------
    def build_lock(self, build_key: str, engine_host: str):
        """An inter-process lock for building `build_key` on `engine_host` (released by the kernel if its holder
        dies)."""
        import tempfile
        from pathlib import Path

        from filelock import FileLock

        from .keys import digest, tag_of

        root = os.environ.get("ENVBUILD_LOCK_DIR") or os.path.join(tempfile.gettempdir(),
                                                                   f"envbuild-locks-{os.getuid()}")
        directory = Path(root) / digest(engine_host)[:16]
        directory.mkdir(parents=True, exist_ok=True)
        return FileLock(str(directory / f"{tag_of(build_key)}.lock"))


def record_hit(home: str | os.PathLike, build_key: str) -> None:
    """Append a hit on `build_key` to the home's hit journal, which the next `Index` opened folds into the entry's
    counters and the stats (one short O_APPEND write: lines from many processes never interleave). The cache-hit
    path calls this without opening the index. Counting is best effort: a home that cannot be written still serves
    hits."""
    try:
        descriptor = os.open(os.path.join(home, HIT_JOURNAL), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError:
        return
    try:
        os.write(descriptor, f"{build_key}\t{time.time()}\n".encode())
    finally:
        os.close(descriptor)


def collect_garbage(index: Index, engine, *, policy: str = "lru", max_size: int | None = None,
                    older_than: float | None = None, dry_run: bool = False) -> list[dict]:
    """Evict cached images (image and index entry together) until the rest fits `max_size` bytes and nothing
    is unused for more than `older_than` seconds; the order is the policy's (envbuild.policies), sizes are what the
    images occupy on the engine with shared layers counted once (envbuild.disk_usage).

    Returns one record per chosen image: key, image, size, `frees` (the bytes its removal frees, after the images
    chosen before it: the records' sum is what the plan frees) and `removed` (False on a dry run, or when the engine
    refused because a container still uses the image: its entry is then kept, so the index never lies).
    """
    import urllib.parse

    from .disk_usage import measure
    from .policies import choose_evictions

    entries = dict(index.entries())
    footprint = measure(engine, [entry["id"] for entry in entries.values()])
    chosen = choose_evictions(entries, policy, max_size=max_size, older_than=older_than,
                              occupied=lambda keys: footprint.total(entries[key]["id"] for key in keys))
    evicted = []
    for number, build_key in enumerate(chosen):
        entry = entries[build_key]
        before = footprint.frees(entries[key]["id"] for key in chosen[:number])
        record = {"key": build_key, "image": entry["image"], "name": entry.get("name"), "size": entry.get("size", 0),
                  "frees": footprint.frees(entries[key]["id"] for key in chosen[:number + 1]) - before,
                  "removed": False, "reason": None}
        if not dry_run:
            status, body = engine.request("DELETE", f"/images/{urllib.parse.quote(entry['image'], safe='')}")
            if status in (200, 404):
                index.delete(build_key)
                record["removed"] = True
            else:
                record["reason"] = body.decode(errors="replace").strip()[:300]
        evicted.append(record)
    return evicted
