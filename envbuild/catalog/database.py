"""Where the catalog lives and how it is reached: the URL, the engine, and what a failure to reach it says.

SQLite in the envbuild home is the default (no server). A team points every machine at one PostgreSQL database:
``ENVBUILD_CATALOG=postgresql://USER:PASSWORD@HOST:PORT/DB`` or ``--catalog URL``. Plain ``postgresql://`` and
``postgres://`` URLs are given to SQLAlchemy as ``postgresql+psycopg://`` (psycopg 3, the maintained driver);
``sqlite:///PATH`` names another SQLite file.

Writes on SQLite take the database's write lock when their transaction starts (``BEGIN IMMEDIATE``, waited for
up to a minute), so writers queue instead of failing when one upgrades a read to a write; PostgreSQL needs no
such thing: its unique constraints make a racing writer fail, and it retries (Catalog._write). Reads on SQLite
never wait for a writer (WAL).
"""

from __future__ import annotations

import os
import re

from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from .. import config
from ..errors import CatalogError

CATALOG_FILE = "catalog.sqlite"
CATALOG_VARIABLE = "ENVBUILD_CATALOG"
_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg",
            "postgresql+psycopg": "postgresql+psycopg", "sqlite": "sqlite"}
_FIX = (f"point --catalog or ${CATALOG_VARIABLE} at a reachable catalog: postgresql://USER:PASSWORD@HOST:PORT/DB "
        "(the database must exist) or sqlite:///PATH; unset it for the catalog in the envbuild home")


def catalog_url(home=None, url: str | None = None) -> str:
    """The catalog's URL: `url` (``--catalog``), else $ENVBUILD_CATALOG, else catalog.sqlite in the home."""
    chosen = url or os.environ.get(CATALOG_VARIABLE)
    if chosen:
        return chosen
    root = config.home(home)
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / CATALOG_FILE}"


def shown(url: str) -> str:
    """The URL as messages show it: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"(//[^/:@]*):[^/@]*@", r"\1:***@", url)


def open_engine(url: str):
    """An SQLAlchemy engine for the catalog at `url`, refused with one message when the URL names no catalog."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise CatalogError(f"{shown(url)} is not a catalog URL", fix=_FIX) from None
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise CatalogError(f"unsupported catalog URL {shown(url)}", fix=_FIX)
    parsed = parsed.set(drivername=driver)
    if driver == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": 60})
        event.listen(engine, "connect", _sqlite_connected)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    try:
        return create_engine(parsed, connect_args={"connect_timeout": 10}, pool_pre_ping=True)
    except NoSuchModuleError:
        raise CatalogError(f"no driver for {shown(url)}", fix="install psycopg: pip install 'psycopg[binary]'") \
            from None


def unreachable(url: str, error: Exception) -> CatalogError:
    """The one message for a catalog that cannot be opened: the URL without its password, and why."""
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()
    text = " ".join(line.strip() for line in reason[:2]) or type(error).__name__
    password = _password(url)
    if password:
        text = text.replace(password, "***")
    if url.startswith("sqlite:"):
        return CatalogError(f"{shown(url)} is not a usable catalog: {text}",
                            fix="move the file away (envbuild starts a new catalog) or fix its permissions")
    return CatalogError(f"cannot open the catalog {shown(url)}: {text}", fix=_FIX)


def _password(url: str) -> str | None:
    try:
        return make_url(url).password
    except ArgumentError:
        return None


def _sqlite_connected(dbapi_connection, _record) -> None:
    # SQLAlchemy begins transactions itself (the "begin" listener): the sqlite3 module must not.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 60000")
    cursor.execute("PRAGMA foreign_keys = ON")
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        cursor.execute("PRAGMA journal_mode = WAL")  # readers never wait for a writer
    cursor.close()


def _sqlite_begin(conn) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("catalog_write") else "BEGIN")


def take_turns(conn, name: str) -> None:
    """Writers of one name take turns for the rest of this transaction, so that "is this definition the latest
    version?" and "insert the next version" are one step: on PostgreSQL a transaction-scoped advisory lock on the
    name (its READ COMMITTED statements would otherwise each see other writers' commits in between); SQLite's
    BEGIN IMMEDIATE already lets one writer in at a time."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy import text

        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})
