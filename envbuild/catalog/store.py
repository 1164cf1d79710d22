"""The catalog: named, versioned environments in one database (SQLite or PostgreSQL, envbuild.catalog.database).

`register(env)` gives a version: a definition whose key differs from the name's latest version becomes the next
version, an unchanged one (reordered, recased, commented) gets the existing version back, with the description
and tags it was given now set on it. Versions are immutable but for their description and tags; `delete`
archives (hidden from `list` and from `latest`, still resolvable by exact version). Every version keeps who
registered it, when, its key, its canonical form, its definition and the files it reads (envbuild.catalog.blobs),
and every image built from it with its lock, so a version can be audited, compared and built again anywhere.

Concurrency: every write is one transaction. (name, version) and (name, position) are unique, so of two
registrations racing for the same next version one commits and the other fails on the constraint and runs again,
seeing the first: many processes on many machines get consecutive, distinct versions, and an unchanged definition
registered by all of them at once gets one version.
"""

from __future__ import annotations

import builtins
import json
import random
import time
from pathlib import Path

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import (
    DatabaseError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
)

from ..errors import CatalogError
from ..spec import Environment
from .blobs import capture, load_blob, materialise, store_blob
from .database import catalog_url, open_engine, shown, take_turns, unreachable
from .names import check_name, check_version, current_user, iso, sequence_number
from .records import MUTABLE_FIELDS, Build, Entry, from_dict, to_dict
from .schema import builds, events, prepare, versions

_ATTEMPTS = 50  # of a write that lost a race (a unique constraint): each retry sees the winner's row


class Catalog:
    """The catalog at `url` (default: $ENVBUILD_CATALOG, else catalog.sqlite in the envbuild home `home`, whose
    catalog-files/ holds this machine's copies of versions' files). A context manager, or call `close()`."""

    def __init__(self, home=None, url: str | None = None):
        self.home = home
        self.url = catalog_url(home, url)
        self.where = shown(self.url)
        self._engine = open_engine(self.url)
        try:
            self._write(lambda conn: prepare(conn, self.where), retry_on=(IntegrityError, ProgrammingError))
        except CatalogError:
            self.close()
            raise

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write(self, work, retry_on=(IntegrityError,)):
        """`work(conn)` in one write transaction, run again when it lost a race to a concurrent writer."""
        for attempt in range(_ATTEMPTS):
            try:
                with self._engine.connect() as conn:
                    conn.execution_options(catalog_write=True)
                    with conn.begin():
                        return work(conn)
            except retry_on as exc:
                if attempt == _ATTEMPTS - 1:
                    raise CatalogError(f"a write to the catalog {self.where} kept conflicting with other writers: "
                                       f"{str(exc.orig).strip().splitlines()[0]}",
                                       fix="try again; if it persists, check the catalog database") from None
                time.sleep(random.uniform(0.005, 0.05) * (1 + attempt))
            except (OperationalError, DatabaseError) as exc:
                raise unreachable(self.url, exc) from None

    def _read(self, work):
        try:
            with self._engine.connect() as conn:
                return work(conn)
        except (OperationalError, DatabaseError) as exc:
            raise unreachable(self.url, exc) from None

    # -- register ----------------------------------------------------------------------------------------------
    def register(self, env: Environment, *, name: str | None = None) -> str:
        """The version of `env` under its name: the latest one if the definition is unchanged, else a new one.

        An explicit `env.version` that exists must hold the same definition (versions are immutable); one that
        does not exist yet is created as given ("1.0.3" stays "1.0.3"). Without one, the next number of the
        name's integer sequence. A description or tags given on an unchanged definition are set on its version.
        """
        from ..keys import canonical_spec

        name = check_name(name or env.name)
        spec = canonical_spec(env)
        stored = to_dict(env, metadata=False)
        if env.docker.build_context:  # where it was registered from; the content travels as blobs
            stored["docker"]["build_context"] = str(Path(env.docker.build_context).resolve())
        found, files = capture(env)
        wanted = check_version(env.version, f"{name}:{env.version}") if env.version not in (None, "") else None
        user = current_user()

        def work(conn) -> str:
            take_turns(conn, name)
            if wanted is not None:
                row = self._row(conn, name, wanted)
                if row is not None:
                    if row["key"] != spec.key:
                        raise CatalogError(
                            f"{name}:{wanted} already exists with a different definition",
                            fix=f"versions are immutable: register without a version (drop `version:` from the "
                                f"file) to create {name}:{self._next_number(conn, name)}, or give another version")
                    return self._set_given_metadata(conn, row, env, user)
                version = wanted
            else:
                latest = self._latest_row(conn, name)
                if latest is not None and latest["key"] == spec.key:
                    return self._set_given_metadata(conn, latest, env, user)
                version = str(self._next_number(conn, name))
            for data in found.values():
                store_blob(conn, data)
            position = conn.execute(select(func.coalesce(func.max(versions.c.position), 0) + 1)
                                    .where(versions.c.name == name)).scalar_one()
            conn.execute(insert(versions).values(
                name=name, version=version, position=position, number=sequence_number(version), key=spec.key,
                canonical=json.dumps(spec.form, sort_keys=True), definition=json.dumps(stored, sort_keys=True),
                files=json.dumps(files, sort_keys=True), description=env.description,
                tags=json.dumps(env.tags, sort_keys=True), created_by=user, created_at=time.time(), archived=False))
            _event(conn, name, version, "register", {"key": spec.key}, user)
            return version

        return self._write(work)

    def _set_given_metadata(self, conn, row, env: Environment, user: str) -> str:
        """An unchanged definition registered again with a description or tags: they are what may change."""
        changes = {}
        if env.description is not None and env.description != row["description"]:
            changes["description"] = env.description
        tags = {**json.loads(row["tags"]), **{k: str(v) for k, v in env.tags.items()}}
        if tags != json.loads(row["tags"]):
            changes["tags"] = tags
        if changes:
            self._apply(conn, row["name"], row["version"], changes, user)
        return row["version"]

    # -- read ----------------------------------------------------------------------------------------------------
    def entry(self, name: str, version: str | int | None = None) -> Entry:
        """The record of `name` at `version` (None or "latest": the newest not archived; else exactly it)."""
        check_name(name)

        def work(conn) -> Entry:
            if version in (None, "latest"):
                row = self._latest_row(conn, name)
                if row is None:
                    raise CatalogError(f"no environment named {name!r} in the catalog ({self.where})",
                                       fix="`envbuild env list` shows the registered names; "
                                           "`envbuild env create --file SPEC --name NAME` registers one")
            else:
                exact = check_version(version, f"{name}:{version}")
                row = self._row(conn, name, exact)
                if row is None:
                    raise CatalogError(f"no version {exact} of environment {name!r} in the catalog ({self.where})",
                                       fix=f"`envbuild history {name}` lists its versions")
            return self._entry(conn, row)

        return self._read(work)

    def environment(self, entry: Entry) -> Environment:
        """The Environment of a version, equal to the one registered, with its files (build context, Dockerfile,
        lock file) written into this envbuild home from the catalog's blobs if they are not there yet."""
        env = from_dict(entry.definition)
        env.name, env.version = entry.name, entry.version
        env.description, env.tags = entry.description, dict(entry.tags)
        self._read(lambda conn: materialise(env, entry.files, lambda digest: load_blob(conn, digest),
                                                  self.home))
        return env

    def get(self, name: str, version: str | int | None = None) -> Environment:
        """The Environment registered as `name` at `version`, equal to the one registered (version filled in)."""
        return self.environment(self.entry(name, version))

    def list(self, name: str | None = None, *, include_archived: bool = False) -> builtins.list[Entry]:
        """Without a name: the latest version of every name. With one: its versions, newest first."""
        visible = True if include_archived else versions.c.archived.is_(False)

        def work(conn) -> builtins.list[Entry]:
            if name is None:
                latest = (select(versions.c.name, func.max(versions.c.position).label("position"))
                          .where(visible).group_by(versions.c.name).subquery())
                query = (select(versions).join(latest, and_(versions.c.name == latest.c.name,
                                                            versions.c.position == latest.c.position))
                         .order_by(versions.c.name))
            else:
                query = (select(versions).where(versions.c.name == check_name(name), visible)
                         .order_by(versions.c.position.desc()))
            return self._entries(conn, conn.execute(query).mappings())

        return self._read(work)

    def history(self, name: str) -> tuple[builtins.list[Entry], builtins.list[dict]]:
        """Every version of `name` (archived included, oldest first) and every recorded action on it."""
        check_name(name)

        def work(conn):
            rows = conn.execute(select(versions).where(versions.c.name == name)
                                .order_by(versions.c.position)).mappings().all()
            if not rows:
                raise CatalogError(f"no environment named {name!r} in the catalog ({self.where})",
                                   fix="`envbuild env list` shows the registered names")
            actions = [{"version": e["version"], "action": e["action"], "detail": json.loads(e["detail"]),
                        "by": e["by"], "at": iso(e["at"])}
                       for e in conn.execute(select(events).where(events.c.name == name).order_by(events.c.id))
                       .mappings()]
            return self._entries(conn, rows), actions

        return self._read(work)

    @staticmethod
    def _row(conn, name: str, version: str):
        return conn.execute(select(versions).where(versions.c.name == name, versions.c.version == version)) \
            .mappings().first()

    @staticmethod
    def _latest_row(conn, name: str):
        return conn.execute(select(versions).where(versions.c.name == name, versions.c.archived.is_(False))
                            .order_by(versions.c.position.desc()).limit(1)).mappings().first()

    @staticmethod
    def _next_number(conn, name: str) -> int:
        return conn.execute(select(func.coalesce(func.max(versions.c.number), 0) + 1)
                            .where(versions.c.name == name)).scalar_one()

    @classmethod
    def _entry(cls, conn, row) -> Entry:
        return cls._entries(conn, [row])[0]

    @staticmethod
    def _entries(conn, rows) -> builtins.list[Entry]:
        """The entries of version `rows` with their builds, read in one query for all of them: a list of a
        thousand names is two round trips, not a thousand and one."""
        rows = builtins.list(rows)
        recorded: dict[tuple[str, str], builtins.list] = {}
        names = {row["name"] for row in rows}
        if names:
            for b in conn.execute(select(builds).where(builds.c.name.in_(names)).order_by(builds.c.id)).mappings():
                recorded.setdefault((b["name"], b["version"]), []).append(b)
        return [Entry(name=row["name"], version=row["version"], key=row["key"], description=row["description"],
                      tags=json.loads(row["tags"]), created_by=row["created_by"], created_at=row["created_at"],
                      archived=bool(row["archived"]), definition_json=row["definition"],
                      files=json.loads(row["files"]), canonical_json=row["canonical"] or None,
                      builds=tuple(_build(b) for b in recorded.get((row["name"], row["version"]), ())))
                for row in rows]

    # -- change what may change ----------------------------------------------------------------------------------
    def update(self, name: str, version: str | int, /, **changes) -> Entry:
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
        if changes:
            self._write(lambda conn: self._apply(conn, entry.name, entry.version, changes, current_user()))
        return self.entry(entry.name, entry.version)

    @staticmethod
    def _apply(conn, name: str, version: str, changes: dict, user: str) -> None:
        stored = {field: json.dumps(value, sort_keys=True) if field == "tags" else value
                  for field, value in changes.items()}
        conn.execute(update(versions).where(versions.c.name == name, versions.c.version == version).values(**stored))
        _event(conn, name, version, "update", changes, user)

    def delete(self, name: str, version: str | int) -> Entry:
        """Archive one version: hidden from `list` and from "latest", still resolvable by its exact version."""
        return self._set_archived(name, version, True)

    def restore(self, name: str, version: str | int) -> Entry:
        """Undo `delete`."""
        return self._set_archived(name, version, False)

    def _set_archived(self, name: str, version, archived: bool) -> Entry:
        if version in (None, "latest"):
            raise CatalogError(f"{'delete' if archived else 'restore'} needs an exact version of {name}",
                               fix=f"`envbuild history {name}` lists its versions")
        entry = self.entry(name, version)

        def work(conn) -> None:
            conn.execute(update(versions).where(versions.c.name == entry.name, versions.c.version == entry.version)
                         .values(archived=archived))
            _event(conn, entry.name, entry.version, "archive" if archived else "restore", {}, current_user())

        self._write(work)
        return self.entry(entry.name, entry.version)

    def record_build(self, name: str, version: str | int, image, lock=None) -> Build:
        """Remember that `image` (an api.Image) was built for `name:version`, with the lock it installed.

        `lock` is a resolver.Lock or the text of a conda-lock.yml. Recording the same image again is a no-op.
        """
        entry = self.entry(name, version)
        build = Build(image=image.image, image_id=image.id, build_key=image.key, spec_key=entry.key,
                      image_spec_key=image.spec_key, lock_key=image.lock_key, lock=getattr(lock, "text", lock),
                      built_by=current_user(), built_at=time.time())

        def work(conn) -> Build:
            same = conn.execute(select(builds).where(builds.c.name == entry.name, builds.c.version == entry.version,
                                                     builds.c.image_id == image.id, builds.c.build_key == image.key)
                                ).mappings().first()
            if same is not None:
                return _build(same)
            conn.execute(insert(builds).values(name=entry.name, version=entry.version, **_columns(build)))
            _event(conn, entry.name, entry.version, "build", {"image": image.image, "id": image.id}, build.built_by)
            return build

        return self._write(work)

    # -- blobs -----------------------------------------------------------------------------------------------------
    def put_blob(self, data: bytes) -> str:
        """Store `data` in the catalog (where every machine on it reaches it); its sha256, hex."""
        return self._write(lambda conn: store_blob(conn, bytes(data)))

    def get_blob(self, digest: str) -> bytes:
        """The bytes stored as `digest` by `put_blob` (a CatalogError when the catalog has none)."""
        return self._read(lambda conn: load_blob(conn, digest))


def _event(conn, name: str, version: str, action: str, detail: dict, user: str) -> None:
    conn.execute(insert(events).values(name=name, version=version, action=action,
                                       detail=json.dumps(detail, sort_keys=True), by=user, at=time.time()))


def _build(row) -> Build:
    return Build(**{field: row[field] for field in Build.__dataclass_fields__})


def _columns(build: Build) -> dict:
    return {field: getattr(build, field) for field in Build.__dataclass_fields__}

