"""Named, versioned environments: an embedded catalog in one SQLite file in the envbuild home (no server).

It mirrors Azure ML's workspace environments. `register(env)` gives a version: a definition whose canonical key
differs from the name's latest version becomes the next version, an unchanged one (reordered, recased, commented)
gets the existing version back. Versions are immutable but for their description and tags; `delete` archives
(hidden from `list`, still resolvable by exact version). Every version keeps who registered it, when, its key and
its full definition, and every image built from it with its lock, so a version can be audited and rebuilt.

Concurrency: each write is one `BEGIN IMMEDIATE` transaction (SQLite's write lock, waited for), and
(name, version) is the primary key, so two processes registering under one name get consecutive versions.

Curated environments (envbuild.curated) ship with envbuild and need no catalog; envbuild.references resolves every
kind of reference, catalog versions included.
"""

from __future__ import annotations

import builtins
import copy
import dataclasses
import getpass
import json
import os
import re
import sqlite3
import time
import typing
from dataclasses import dataclass
from pathlib import Path

from . import config
from .errors import CatalogError, SpecError
from .spec import Environment

CATALOG_FILE = "catalog.sqlite"
# Azure ML: "For environments, only description and tags can be updated."
MUTABLE_FIELDS = ("description", "tags")
# Stored in their own columns (mutable or given by the catalog), never in the immutable definition.
METADATA_FIELDS = ("name", "version", "description", "tags")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL CHECK (version > 0),
    key         TEXT    NOT NULL,
    definition  TEXT    NOT NULL,
    description TEXT,
    tags        TEXT    NOT NULL DEFAULT '{}',
    created_by  TEXT    NOT NULL,
    created_at  REAL    NOT NULL,
    archived    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS builds (
    name      TEXT NOT NULL,
    version   INTEGER NOT NULL,
    image     TEXT NOT NULL,
    image_id  TEXT NOT NULL,
    build_key TEXT NOT NULL,
    spec_key  TEXT NOT NULL,
    lock_key  TEXT,
    lock      TEXT,
    built_by  TEXT NOT NULL,
    built_at  REAL NOT NULL,
    FOREIGN KEY (name, version) REFERENCES versions (name, version)
);
CREATE TABLE IF NOT EXISTS events (
    name    TEXT NOT NULL,
    version INTEGER NOT NULL,
    action  TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT '{}',
    by      TEXT NOT NULL,
    at      REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Build:
    """An image built from a catalog version, with the lock it was built from."""

    image: str
    image_id: str
    build_key: str
    spec_key: str  # differs from the version's key where the build completed the spec (a GPU request's CUDA)
    lock_key: str | None
    lock: str | None
    built_by: str
    built_at: float

    def to_dict(self, with_lock: bool = False) -> dict:
        data = dataclasses.asdict(self)
        data["built_at"] = _iso(self.built_at)
        if not with_lock:
            data.pop("lock")
        return data


@dataclass(frozen=True)
class Entry:
    """One version of a named environment as the catalog records it (the definition itself: `environment`)."""

    name: str
    version: int
    key: str
    description: str | None
    tags: dict[str, str]
    created_by: str
    created_at: float
    archived: bool
    definition: dict = dataclasses.field(repr=False)
    builds: tuple[Build, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def created(self) -> str:
        """When it was registered, ISO 8601 UTC."""
        return _iso(self.created_at)

    @property
    def latest_build(self) -> Build | None:
        return self.builds[-1] if self.builds else None

    @property
    def environment(self) -> Environment:
        env = from_dict(self.definition)
        env.name, env.version = self.name, str(self.version)
        env.description, env.tags = self.description, dict(self.tags)
        return env

    def to_dict(self, with_definition: bool = True) -> dict:
        data = {
            "name": self.name, "version": self.version, "key": self.key, "description": self.description,
            "tags": dict(self.tags), "created_by": self.created_by, "created_at": self.created,
            "archived": self.archived, "builds": [b.to_dict() for b in self.builds],
        }
        if with_definition:
            data["definition"] = self.definition
        return data


# ---------------------------------------------------------------------------------------------------------------
# The definition: every field of an Environment that `Environment.__eq__` compares, as JSON-ready data.


def to_dict(env: Environment, *, metadata: bool = True) -> dict:
    """`env` as plain data (all sections, variables, pip options, docker settings); `from_dict` inverts it."""
    data = _plain(env)
    if not metadata:
        for name in METADATA_FIELDS:
            data.pop(name, None)
    return data


def from_dict(data: dict, cls: type = Environment):
    """The Environment (or section) written by `to_dict`; an unknown field is an error, a missing one a default."""
    if not isinstance(data, dict):
        raise SpecError(f"{cls.__name__} definition must be a mapping, not {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.compare}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise SpecError(f"unknown {cls.__name__} field {unknown[0]!r}",
                        fix=f"use only {', '.join(sorted(known))} (written by a newer envbuild?)")
    values = {}
    for name, value in data.items():
        hint = hints[name]
        values[name] = from_dict(value, hint) if dataclasses.is_dataclass(hint) else copy.deepcopy(value)
    return cls(**values)


def _plain(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.compare}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (builtins.list, tuple)):  # `list` is this module's function
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------------------------
# Versions of a name: NAME, NAME:VERSION, NAME@latest (curated environments name theirs the same way)


def parse_ref(ref: str) -> tuple[str, int | None]:
    """`name:3` → ("name", 3); `name`, `name@latest`, `name:latest` → ("name", None)."""
    text = ref.strip()
    if text.endswith("@latest"):
        name, version = text[: -len("@latest")], None
    elif ":" in text:
        name, raw = text.rsplit(":", 1)
        version = None if raw == "latest" else _version_number(raw, ref)
    else:
        name, version = text, None
    check_name(name)
    return name, version


def _version_number(raw, ref) -> int:
    try:
        number = int(str(raw))
    except ValueError:
        number = 0
    if number < 1:
        raise CatalogError(f"invalid version {raw!r} in {ref!r}", fix="versions are whole numbers from 1 (or `latest`)")
    return number


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise CatalogError(f"invalid environment name {name!r}",
                           fix="use letters, digits, '.', '_' and '-' (starting with a letter or digit)")
    return name


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def current_user() -> str:
    """Who is registering: ENVBUILD_USER, else the login name, else the uid."""
    if os.environ.get("ENVBUILD_USER"):
        return os.environ["ENVBUILD_USER"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


# ---------------------------------------------------------------------------------------------------------------
# The catalog


class Catalog:
    """The catalog file of one envbuild home. Use as a context manager, or call `close()`."""

    def __init__(self, home: str | os.PathLike | None = None):
        root = config.home(home)
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / CATALOG_FILE
        # Autocommit mode: every write opens its own BEGIN IMMEDIATE; `timeout` waits for another writer's lock.
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute("PRAGMA busy_timeout = 60000")
            self._db.execute("PRAGMA foreign_keys = ON")
            if self._db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self._db.execute("PRAGMA journal_mode = WAL")  # readers never wait for a writer
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise CatalogError(
                f"{self.path} is not a usable catalog: {exc}",
                fix="move the file away (envbuild starts a new catalog) or fix its permissions") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    class _Write:
        def __init__(self, db: sqlite3.Connection):
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type, exc, tb) -> None:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def _write(self) -> "_Write":
        return self._Write(self._db)

    # -- register ----------------------------------------------------------------------------------------------
    def register(self, env: Environment, *, name: str | None = None) -> int:
        """The version of `env` under its name: the latest one if the definition is unchanged, else a new one.

        An explicit `env.version` that exists must hold the same definition (versions are immutable); one that
        does not exist yet is created as given. A relative build context is stored as an absolute path.
        """
        name = check_name(name or env.name)
        key = env.key
        stored = to_dict(env, metadata=False)
        if env.docker.build_context:  # keyed by content, found by path: a version must work from any directory
            stored["docker"]["build_context"] = str(Path(env.docker.build_context).resolve())
        definition = json.dumps(stored, sort_keys=True)
        wanted = _version_number(env.version, f"{name}:{env.version}") if env.version not in (None, "") else None
        user = current_user()
        with self._write() as db:
            if wanted is not None:
                row = db.execute("SELECT key FROM versions WHERE name = ? AND version = ?", (name, wanted)).fetchone()
                if row is not None:
                    if row["key"] != key:
                        following = db.execute("SELECT MAX(version) + 1 FROM versions WHERE name = ?",
                                               (name,)).fetchone()[0]
                        raise CatalogError(
                            f"{name}:{wanted} already exists with a different definition",
                            fix=f"versions are immutable: register without a version (drop `version:` from the "
                                f"file) to create {name}:{following}, or give that version")
                    return wanted
                version = wanted
            else:
                latest = db.execute("SELECT version, key FROM versions WHERE name = ? AND NOT archived "
                                    "ORDER BY version DESC LIMIT 1", (name,)).fetchone()
                if latest is not None and latest["key"] == key:
                    return latest["version"]
                version = db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE name = ?",
                                     (name,)).fetchone()[0]
            db.execute("INSERT INTO versions (name, version, key, definition, description, tags, created_by, "
                       "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (name, version, key, definition, env.description, json.dumps(env.tags, sort_keys=True),
                        user, time.time()))
            self._event(db, name, version, "register", {"key": key}, user)
        return version

    # -- read ----------------------------------------------------------------------------------------------------
    def entry(self, name: str, version: int | str | None = None) -> Entry:
        """The record of `name` at `version` (None or "latest": the newest not archived; a number: exactly it)."""
        check_name(name)
        if version in (None, "latest"):
            row = self._db.execute("SELECT * FROM versions WHERE name = ? AND NOT archived "
                                   "ORDER BY version DESC LIMIT 1", (name,)).fetchone()
            if row is None:
                raise CatalogError(f"no environment named {name!r} in the catalog ({self.path})",
                                   fix="`envbuild env list` shows the registered names; "
                                       "`envbuild env create --file SPEC --name NAME` registers one")
        else:
            number = _version_number(version, f"{name}:{version}")
            row = self._db.execute("SELECT * FROM versions WHERE name = ? AND version = ?", (name, number)).fetchone()
            if row is None:
                raise CatalogError(f"no version {number} of environment {name!r} in the catalog ({self.path})",
                                   fix=f"`envbuild history {name}` lists its versions")
        return self._entry(row)

    def get(self, name: str, version: int | str | None = None) -> Environment:
        """The Environment registered as `name` at `version`, equal to the one registered (version filled in)."""
        return self.entry(name, version).environment

    def list(self, name: str | None = None, *, include_archived: bool = False) -> list[Entry]:
        """Without a name: the latest version of every name. With one: its versions, newest first."""
        hidden = "" if include_archived else "AND NOT archived"
        if name is None:
            rows = self._db.execute(
                f"SELECT * FROM versions v WHERE version = (SELECT MAX(version) FROM versions w "
                f"WHERE w.name = v.name {hidden}) ORDER BY name").fetchall()
        else:
            rows = self._db.execute(f"SELECT * FROM versions WHERE name = ? {hidden} ORDER BY version DESC",
                                    (check_name(name),)).fetchall()
        return [self._entry(row) for row in rows]

    def history(self, name: str) -> tuple[list[Entry], list[dict]]:
        """Every version of `name` (archived included, oldest first) and every recorded action on it."""
        rows = self._db.execute("SELECT * FROM versions WHERE name = ? ORDER BY version",
                                (check_name(name),)).fetchall()
        if not rows:
            raise CatalogError(f"no environment named {name!r} in the catalog ({self.path})",
                               fix="`envbuild env list` shows the registered names")
        events = [{"version": e["version"], "action": e["action"], "detail": json.loads(e["detail"]), "by": e["by"],
                   "at": _iso(e["at"])}
                  for e in self._db.execute("SELECT * FROM events WHERE name = ? ORDER BY at, rowid", (name,))]
        return [self._entry(row) for row in rows], events

    def _entry(self, row: sqlite3.Row) -> Entry:
        builds = tuple(
            Build(image=b["image"], image_id=b["image_id"], build_key=b["build_key"], spec_key=b["spec_key"],
                  lock_key=b["lock_key"],
                  lock=b["lock"], built_by=b["built_by"], built_at=b["built_at"])
            for b in self._db.execute("SELECT * FROM builds WHERE name = ? AND version = ? ORDER BY built_at, rowid",
                                      (row["name"], row["version"])))
        return Entry(name=row["name"], version=row["version"], key=row["key"], description=row["description"],
                     tags=json.loads(row["tags"]), created_by=row["created_by"], created_at=row["created_at"],
                     archived=bool(row["archived"]), definition=json.loads(row["definition"]), builds=builds)

    # -- change what may change ----------------------------------------------------------------------------------
    def update(self, name: str, version: int | str, /, **changes) -> Entry:
        """Set the description and/or tags of one version. Anything else needs a new version."""
        immutable = sorted(set(changes) - set(MUTABLE_FIELDS))
        if immutable:
            raise CatalogError(
                f"{immutable[0]!r} of {name}:{version} cannot be updated: only description and tags are mutable",
                fix="change the definition and register it again: it becomes a new version "
                    "(`envbuild env create --file SPEC --name NAME`)")
        if "tags" in changes:
            tags = changes["tags"]
            if not isinstance(tags, dict) or not all(isinstance(k, str) for k in tags):
                raise CatalogError("tags must be a mapping of names to values", fix="pass tags={'name': 'value'}")
            changes["tags"] = {k: "" if v is None else str(v) for k, v in tags.items()}
        entry = self.entry(name, version)
        if not changes:
            return entry
        user = current_user()
        with self._write() as db:
            if "description" in changes:
                db.execute("UPDATE versions SET description = ? WHERE name = ? AND version = ?",
                           (changes["description"], entry.name, entry.version))
            if "tags" in changes:
                db.execute("UPDATE versions SET tags = ? WHERE name = ? AND version = ?",
                           (json.dumps(changes["tags"], sort_keys=True), entry.name, entry.version))
            self._event(db, entry.name, entry.version, "update", changes, user)
        return self.entry(entry.name, entry.version)

    def delete(self, name: str, version: int | str) -> Entry:
        """Archive one version: hidden from `list` and from "latest", still resolvable by its exact number."""
        return self._set_archived(name, version, True)

    def restore(self, name: str, version: int | str) -> Entry:
        """Undo `delete`."""
        return self._set_archived(name, version, False)

    def _set_archived(self, name: str, version: int | str, archived: bool) -> Entry:
        if version in (None, "latest"):
            raise CatalogError(f"{'delete' if archived else 'restore'} needs an exact version of {name}",
                               fix=f"`envbuild history {name}` lists its versions")
        entry = self.entry(name, version)
        with self._write() as db:
            db.execute("UPDATE versions SET archived = ? WHERE name = ? AND version = ?",
                       (int(archived), entry.name, entry.version))
            self._event(db, entry.name, entry.version, "archive" if archived else "restore", {}, current_user())
        return self.entry(entry.name, entry.version)

    def record_build(self, name: str, version: int | str, image, lock=None) -> Build:
        """Remember that `image` (an api.Image) was built from `name:version`, with the lock it installed.

        `lock` is a resolver.Lock or the text of a conda-lock.yml. Recording the same image again is a no-op.
        """
        entry = self.entry(name, version)
        build = Build(image=image.image, image_id=image.id, build_key=image.key, spec_key=image.spec_key,
                      lock_key=image.lock_key, lock=getattr(lock, "text", lock), built_by=current_user(),
                      built_at=time.time())
        with self._write() as db:  # checked inside the write lock: two runs of one new image record it once
            if db.execute("SELECT 1 FROM builds WHERE name = ? AND version = ? AND image_id = ? AND build_key = ?",
                          (entry.name, entry.version, image.id, image.key)).fetchone():
                return next(b for b in self.entry(entry.name, entry.version).builds
                            if b.image_id == image.id and b.build_key == image.key)
            db.execute("INSERT INTO builds (name, version, image, image_id, build_key, spec_key, lock_key, lock, "
                       "built_by, built_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (entry.name, entry.version, build.image, build.image_id, build.build_key, build.spec_key,
                        build.lock_key, build.lock, build.built_by, build.built_at))
            self._event(db, entry.name, entry.version, "build", {"image": image.image, "id": image.id}, build.built_by)
        return build

    @staticmethod
    def _event(db: sqlite3.Connection, name: str, version: int, action: str, detail: dict, user: str) -> None:
        db.execute("INSERT INTO events (name, version, action, detail, by, at) VALUES (?, ?, ?, ?, ?, ?)",
                   (name, version, action, json.dumps(detail, sort_keys=True), user, time.time()))


# ---------------------------------------------------------------------------------------------------------------
# Module-level shortcuts on the default home (ENVBUILD_HOME / --cache-dir).


def register(env: Environment, *, name: str | None = None, home=None) -> int:
    with Catalog(home) as catalog:
        return catalog.register(env, name=name)


def get(name: str, version: int | str | None = None, *, home=None) -> Environment:
    with Catalog(home) as catalog:
        return catalog.get(name, version)


def list(name: str | None = None, *, include_archived: bool = False, home=None) -> "list[Entry]":  # noqa: A001
    with Catalog(home) as catalog:
        return catalog.list(name, include_archived=include_archived)


def update(name: str, version: int | str, /, *, home=None, **changes) -> Entry:
    with Catalog(home) as catalog:
        return catalog.update(name, version, **changes)


def delete(name: str, version: int | str, *, home=None) -> Entry:
    with Catalog(home) as catalog:
        return catalog.delete(name, version)


def record_build(name: str, version: int | str, image, lock=None, *, home=None) -> Build:
    with Catalog(home) as catalog:
        return catalog.record_build(name, version, image, lock)


# ---------------------------------------------------------------------------------------------------------------
# Building a registered version


def check_unchanged(env: Environment, entry: Entry) -> None:
    """Refuse to build a version whose files (build context, lock file) changed since it was registered: the
    image would not be the one its key and history describe."""
    if env.key != entry.key:
        raise CatalogError(
            f"{entry.ref} no longer has the definition it was registered with: its key is now {env.key}, "
            f"not {entry.key}", where=env.docker.build_context or env.lock_file,
            fix="a file it reads changed since: restore it, or register the new content as a new version "
                "(`envbuild env create --file ...`)")
