"""The catalog's tables, one schema for SQLite and PostgreSQL, and the migrations that bring a catalog to it.

`schema_version` holds one row: the SCHEMA_VERSION the tables are at. A catalog without that table but with a
`versions` table is one written before it existed (schema 0: integer versions, builds without their own spec
key, files by path); `migrate` copies it into the current tables in one transaction, so a failed migration
leaves the old catalog as it was.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    insert,
    inspect,
    select,
    text,
)

from ..errors import CatalogError

SCHEMA_VERSION = 1

metadata = MetaData()

# One row (id 1): two processes preparing an empty catalog at once cannot both record it; the second retries.
schema_version = Table("schema_version", metadata, Column("id", Integer, primary_key=True, autoincrement=False),
                       Column("version", Integer, nullable=False), CheckConstraint("id = 1"))

# One row per version. `position` is the order versions of a name were registered in (what `latest` and every
# listing follow, whatever the versions are called); `number` the version's place in the integer sequence.
# (name, version) and (name, position) are unique: two registrations racing for one version or one position
# cannot both commit, and the loser retries (Catalog._write).
versions = Table(
    "versions", metadata,
    Column("name", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Column("number", Integer),
    Column("key", Text, nullable=False),
    Column("canonical", Text),
    Column("definition", Text, nullable=False),
    Column("files", Text, nullable=False, server_default="{}"),
    Column("description", Text),
    Column("tags", Text, nullable=False, server_default="{}"),
    Column("created_by", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("archived", Boolean, nullable=False, server_default=text("false")),
    PrimaryKeyConstraint("name", "version"),
    UniqueConstraint("name", "position"),
)

builds = Table(
    "builds", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("image", Text, nullable=False),
    Column("image_id", Text, nullable=False),
    Column("build_key", Text, nullable=False),
    Column("spec_key", Text, nullable=False),
    Column("image_spec_key", Text, nullable=False),
    Column("lock_key", Text),
    Column("lock", Text),
    Column("built_by", Text, nullable=False),
    Column("built_at", Float, nullable=False),
    ForeignKeyConstraint(["name", "version"], ["versions.name", "versions.version"]),
    UniqueConstraint("name", "version", "image_id", "build_key"),
)

events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("detail", Text, nullable=False, server_default="{}"),
    Column("by", Text, nullable=False),
    Column("at", Float, nullable=False),
)

# Content-addressed files (sha256 of the bytes): build contexts, Dockerfiles, lock files, wheels. In the
# database, so that every machine that reaches the catalog reaches them.
blobs = Table(
    "blobs", metadata,
    Column("digest", Text, primary_key=True),
    Column("size", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
)


def current_version(conn) -> int | None:
    """The schema version of the catalog on `conn`: None when it is empty, 0 when it predates schema_version."""
    tables = set(inspect(conn).get_table_names())
    if "schema_version" in tables:
        return conn.execute(select(schema_version.c.version)).scalar_one()
    return 0 if "versions" in tables else None


def prepare(conn, where: str) -> None:
    """Create the tables on an empty catalog, or migrate an older one, inside the caller's transaction."""
    found = current_version(conn)
    if found == SCHEMA_VERSION:
        return
    if found is not None and found > SCHEMA_VERSION:
        raise CatalogError(f"the catalog {where} has schema version {found}, newer than this envbuild's "
                           f"({SCHEMA_VERSION})", fix="upgrade envbuild on this machine")
    if found == 0:
        _migrate_from_0(conn)
    else:
        metadata.create_all(conn)
        conn.execute(insert(schema_version).values(id=1, version=SCHEMA_VERSION))


def _migrate_from_0(conn) -> None:
    """Schema 0 (envbuild's first catalog): integer versions; a build's spec_key was its image's; no files, no
    canonical forms. Every row is kept: versions in their number order (their registration order, since they
    were numbered consecutively), builds and events in the order they were written."""
    for old in ("versions", "builds", "events"):
        conn.execute(text(f"ALTER TABLE {old} RENAME TO legacy_{old}"))
    metadata.create_all(conn)
    keys = {}
    rows = conn.execute(text("SELECT * FROM legacy_versions ORDER BY name, version")).mappings().all()
    position = {}
    for row in rows:
        position[row["name"]] = position.get(row["name"], 0) + 1
        keys[(row["name"], row["version"])] = row["key"]
        conn.execute(insert(versions).values(
            name=row["name"], version=str(row["version"]), position=position[row["name"]], number=row["version"],
            key=row["key"], canonical=None, definition=row["definition"], files="{}",
            description=row["description"], tags=row["tags"], created_by=row["created_by"],
            created_at=row["created_at"], archived=bool(row["archived"])))
    for row in conn.execute(text("SELECT * FROM legacy_builds ORDER BY built_at")).mappings():
        conn.execute(insert(builds).values(
            name=row["name"], version=str(row["version"]), image=row["image"], image_id=row["image_id"],
            build_key=row["build_key"], spec_key=keys[(row["name"], row["version"])],
            image_spec_key=row["spec_key"], lock_key=row["lock_key"], lock=row["lock"], built_by=row["built_by"],
            built_at=row["built_at"]))
    for row in conn.execute(text("SELECT * FROM legacy_events ORDER BY at")).mappings():
        conn.execute(insert(events).values(name=row["name"], version=str(row["version"]), action=row["action"],
                                           detail=row["detail"], by=row["by"], at=row["at"]))
    for old in ("events", "builds", "versions"):
        conn.execute(text(f"DROP TABLE legacy_{old}"))
    conn.execute(insert(schema_version).values(id=1, version=SCHEMA_VERSION))
