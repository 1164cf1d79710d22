"""What the UI shows, gathered from the catalog and the cache index through their public functions.

Every page and its `/api/` twin are made from the same functions here, so the browser and the JSON agree; where
the command line prints the same facts with `--json`, these call the function the command uses
(envbuild.commands.cache, envbuild.commands.catalog.curated_rows, envbuild.explain). Nothing here writes but
`register_text` (intake) and the builds module: reading never changes the workspace.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from .. import catalog, config
from ..cache import Index
from ..curated import is_curated, load_curated
from ..errors import EnvbuildError

ENGINE_SIZES_SECONDS = 30.0  # how long the engine's per-image sizes are reused (one /system/df costs ~1 s)


def open_catalog(home: Path, url: str | None) -> catalog.Catalog:
    """The catalog the UI reads and writes: `url` (--catalog, else $ENVBUILD_CATALOG), else the home's own."""
    return catalog.Catalog(home, url)


def catalog_label(ws: Workspace) -> str:
    """Which catalog the pages are about: "home catalog", or the catalog's URL without its password."""
    with ws.catalog() as cat:
        where = cat.where
    return "home catalog" if where.startswith(f"sqlite:///{ws.home}/") else where


@dataclass(frozen=True)
class Workspace:
    """One envbuild home (cache index, kept logs and Dockerfiles) and the catalog it registers into."""

    home: Path
    catalog_url: str | None = None

    @classmethod
    def at(cls, cache_dir: str | os.PathLike | None, catalog_url: str | None = None) -> Workspace:
        return cls(config.home(cache_dir), catalog_url)

    def catalog(self) -> catalog.Catalog:
        # One per request: a SQLite connection belongs to the thread that opened it.
        return open_catalog(self.home, self.catalog_url)

    def index(self):
        """The home's cache index, opened once per server and shared by its threads (diskcache is thread- and
        process-safe); opening one costs more than a page's reads of it. A context manager that keeps it open."""
        return contextlib.nullcontext(self._index)

    @functools.cached_property
    def _index(self) -> Index:
        return Index(self.home)


# -- environments ---------------------------------------------------------------------------------------------------


def environments(ws: Workspace, *, name: str = "", tag: str = "", archived: bool = False) -> list[catalog.Entry]:
    """The latest version of every name, as `env list` lists them, filtered by a name part and a tag (`K` or
    `K=V`)."""
    with ws.catalog() as cat:
        entries = cat.list(include_archived=archived)
    wanted_tag, _, wanted_value = tag.partition("=")
    return [e for e in entries
            if name.lower() in e.name.lower()
            and (not wanted_tag or (wanted_tag in e.tags and (not wanted_value or e.tags[wanted_tag] == wanted_value)))]


def image_sizes(ws: Workspace, entries: list[catalog.Entry]) -> dict[str, dict]:
    """The index entry (size, hits, last hit) of each entry's latest build, by build key."""
    keys = {e.latest_build.build_key for e in entries if e.latest_build}
    if not keys:
        return {}
    with ws.index() as index:
        return {key: found for key in keys if (found := index.get(key)) is not None}


@functools.lru_cache(maxsize=1)
def curated() -> list[dict]:
    """The curated environments (they ship with envbuild: read once per server)."""
    from ..commands.catalog import curated_rows

    return curated_rows()


# -- one version ----------------------------------------------------------------------------------------------------


def version(ws: Workspace, name: str, number: str | None) -> dict:
    """Everything the version page shows: the entry, its definition as YAML, the Dockerfile, lock, labels and log
    kept with each image built from it (newest first), and the history of the name."""
    import yaml

    with ws.catalog() as cat:
        entry = cat.entry(name, None if number in (None, "latest") else number)
        versions, events = cat.history(entry.name)
    engine_sizes = engine_image_sizes()
    images = []
    with ws.index() as index:
        for build in reversed(entry.builds):
            indexed = index.get(build.build_key) or {}
            kept = index.detail_get(build.build_key) or {}
            images.append({"build": build, "indexed": indexed, "log": index.log_get(build.build_key),
                           "dockerfile": kept.get("dockerfile"), "labels": kept.get("labels") or {},
                           "lock": kept.get("lock") or build.lock, "sizes": engine_sizes.get(build.image_id)})
    latest = images[0] if images else None
    refs = [v.ref for v in versions]  # oldest first
    position = refs.index(entry.ref)
    return {"entry": entry, "previous": refs[position - 1] if position else None, "definition": yaml.safe_dump(entry.definition, sort_keys=False),
            "images": images, "dockerfile": latest and latest["dockerfile"],
            "labels": latest["labels"] if latest else {},
            "lock": lock_rows(latest["lock"]) if latest and latest["lock"] else None,
            "versions": versions, "events": events}


def lock_rows(text: str) -> list[dict]:
    """The lock as a table: package, version, manager, channel or index, platform, size (known for packages from
    a local channel only: a lock records url and hash, not size)."""
    rows = []
    for platform, packages in _locked(text).items():
        for package in packages:
            rows.append({"name": package.name, "version": package.version, "manager": package.manager,
                         "source": _source_of(package), "platform": platform, "size": _local_size(package.url)})
    return sorted(rows, key=lambda r: (r["platform"], r["manager"], r["name"]))


@functools.lru_cache(maxsize=64)
def _locked(text: str) -> dict:
    """Per platform, the packages of a conda-lock.yml text, read by envbuild's one lock reader."""
    from ..lockfile import read_lock_file

    with tempfile.TemporaryDirectory(prefix="envbuild-ui-") as tmp:
        path = Path(tmp) / "conda-lock.yml"
        path.write_text(text, encoding="utf-8")
        return read_lock_file(path).packages


def _source_of(package) -> str:
    """The conda channel (the URL without subdir and file) or the pip index host a package comes from."""
    if package.manager == "conda":
        return package.url.rsplit("/", 2)[0]
    parts = urllib.parse.urlsplit(package.url)
    return parts.netloc or parts.scheme


def _local_size(url: str) -> int | None:
    if not url.startswith("file://"):
        return None
    try:
        return os.path.getsize(urllib.parse.unquote(urllib.parse.urlsplit(url).path))
    except OSError:
        return None


_sizes_lock = threading.Lock()
_sizes: dict = {"at": 0.0, "by_id": {}}


def engine_image_sizes() -> dict[str, dict]:
    """Per image id, its size as the engine counts it: `unique` bytes only it holds and `shared` bytes in layers
    other images use too (`docker system df -v`). Empty when the engine cannot be reached."""
    from ..engine import Engine

    with _sizes_lock:
        if time.monotonic() - _sizes["at"] < ENGINE_SIZES_SECONDS:
            return _sizes["by_id"]
        by_id = {}
        engine = Engine()
        try:
            status, body = engine.request("GET", "/system/df")
            if status == 200:
                for image in json.loads(body).get("Images") or []:
                    shared = max(image.get("SharedSize") or 0, 0)
                    by_id[image["Id"]] = {"size": image["Size"], "shared": shared,
                                          "unique": image["Size"] - shared}
        except EnvbuildError:
            pass
        finally:
            engine.close()
        _sizes.update(at=time.monotonic(), by_id=by_id)
        return by_id


# -- diff -----------------------------------------------------------------------------------------------------------


def resolve(ws: Workspace, ref: str) -> tuple:
    """A catalog `NAME[:VERSION]` or a `curated:NAME[:VERSION]` → (Environment, catalog Entry or None). Spec files
    are not read from the server's disk on a web request."""
    if is_curated(ref):
        return load_curated(ref), None
    name, number = catalog.parse_ref(ref)
    with ws.catalog() as cat:
        entry = cat.entry(name, number)
        return cat.environment(entry), entry


def diff(ws: Workspace, old_ref: str, new_ref: str) -> dict:
    """What `envbuild diff OLD NEW --json` prints, plus the lock changes between their latest builds (packages
    added, removed, version moved), when both have been built."""
    from dataclasses import asdict

    from ..explain import compared_form, diff_environments, diff_locked

    old, old_entry = resolve(ws, old_ref)
    new, new_entry = resolve(ws, new_ref)
    (old_form, old_key), (new_form, new_key) = compared_form(old, old_entry), compared_form(new, new_entry)
    changes, metadata = diff_environments(old, new, old_form, new_form)
    locks = [_latest_lock(entry) for entry in (old_entry, new_entry)]
    lock_changes = None
    if all(locks):
        old_packages, new_packages = ([p for packages in _locked(text).values() for p in packages] for text in locks)
        lock_changes = [asdict(d) for d in diff_locked(old_packages, new_packages)]
    return {"old": old_ref, "new": new_ref, "old_key": old_key, "new_key": new_key, "same_key": old_key == new_key,
            "changes": [asdict(d) for d in changes], "metadata": [asdict(d) for d in metadata],
            "lock_changes": lock_changes}


def _latest_lock(entry) -> str | None:
    build = entry.latest_build if entry is not None else None
    return build.lock if build is not None else None


# -- cache ----------------------------------------------------------------------------------------------------------


def cache(ws: Workspace) -> dict:
    """`ls --json` and `stats --json` of the index, and its history as requests over time (trace.export_index)."""
    from ..commands.cache import listing, summary
    from ..trace import export_index

    with ws.index() as index:
        return {"entries": listing(index), "stats": summary(index), "requests": export_index(index)}


def gc_preview(ws: Workspace, max_size: str, policy: str) -> dict:
    """What `gc --max-size S --policy P --dry-run --json` prints, with the bytes it would free (shared layers
    counted once, as gc plans them)."""
    from ..commands.cache import garbage

    with ws.index() as index:
        return garbage(index, policy=policy, max_size=max_size, older_than=None, dry_run=True)
