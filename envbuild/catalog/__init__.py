"""Named, versioned environments (Azure ML's workspace environments): envbuild's catalog.

Modules, in the order a reader follows a registration: `names` (names, versions, references), `records` (the
frozen values read back and the definition as data), `database` (where the catalog lives: SQLite in the envbuild
home by default, PostgreSQL for a team), `schema` (the tables and their migrations), `blobs` (the files a version
needs, content-addressed), `store` (the `Catalog`).

One schema and one code path serve both databases: SQLAlchemy Core writes the tables and queries once, portably,
and leaves the SQL readable (no ORM: the catalog's values are frozen dataclasses built from rows, not mapped
objects). Hand-written SQL would need two dialects' placeholders, upserts, autoincrement and blob types, which is
what SQLAlchemy's dialects are for. Its import costs a fifth of a second, so it happens only when a catalog is
opened: this package loads its modules on first use (the cache-hit path and `envbuild.curated`, which names its
environments by the catalog's rules, never import SQLAlchemy).
"""

from __future__ import annotations

import builtins

_EXPORTS = {
    "Catalog": "store", "Entry": "records", "Build": "records", "to_dict": "records", "from_dict": "records",
    "MUTABLE_FIELDS": "records", "check_name": "names", "check_version": "names", "parse_ref": "names",
    "current_user": "names", "CATALOG_FILE": "database", "CATALOG_VARIABLE": "database",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'envbuild.catalog' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


# Shortcuts on the catalog of the default home ($ENVBUILD_HOME / --cache-dir) or of `url` ($ENVBUILD_CATALOG).


def _open(home, url):
    from .store import Catalog

    return Catalog(home, url)


def register(env, *, name: str | None = None, home=None, url: str | None = None) -> str:
    with _open(home, url) as catalog:
        return catalog.register(env, name=name)


def get(name: str, version=None, *, home=None, url: str | None = None):
    with _open(home, url) as catalog:
        return catalog.get(name, version)


def list(name: str | None = None, *, include_archived: bool = False, home=None,
         url: str | None = None) -> builtins.list:
    with _open(home, url) as catalog:
        return catalog.list(name, include_archived=include_archived)


def update(name: str, version, /, *, home=None, url: str | None = None, **changes):
    with _open(home, url) as catalog:
        return catalog.update(name, version, **changes)


def delete(name: str, version, *, home=None, url: str | None = None):
    with _open(home, url) as catalog:
        return catalog.delete(name, version)


def record_build(name: str, version, image, lock=None, *, home=None, url: str | None = None):
    with _open(home, url) as catalog:
        return catalog.record_build(name, version, image, lock)


def put_blob(data: bytes, *, home=None, url: str | None = None) -> str:
    """Keep `data` in the catalog, content-addressed: its sha256 (hex). With PostgreSQL every machine reaches it."""
    with _open(home, url) as catalog:
        return catalog.put_blob(data)


def get_blob(digest: str, *, home=None, url: str | None = None) -> bytes:
    """The bytes `put_blob` stored as `digest`."""
    with _open(home, url) as catalog:
        return catalog.get_blob(digest)


def check_unchanged(env, entry) -> None:
    """Refuse to build a version whose files no longer give the key it was registered with (a version from a
    catalog that kept files by path, whose files changed since): the image would not be the one its key and
    history describe."""
    if env.key != entry.key:
        from ..errors import CatalogError

        raise CatalogError(
            f"{entry.ref} no longer has the definition it was registered with: its key is now {env.key}, "
            f"not {entry.key}", where=env.docker.build_context or env.lock_file,
            fix="a file it reads changed since: restore it, or register the new content as a new version "
                "(`envbuild env create --file ...`)")
