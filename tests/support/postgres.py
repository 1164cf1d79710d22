"""A real PostgreSQL server for the tests: Debian's postgresql, started on a private directory and a loopback port.

`initdb` and `pg_ctl` run as the `postgres` user when the tests run as root (PostgreSQL refuses to run as root),
with trust authentication on 127.0.0.1 only. A throw-away server (stopped without a checkpoint): one per test session; every test that wants a catalog of
its own gets a fresh database on it (`PostgresServer.new_database`). Stopped and deleted at the end.
"""

from __future__ import annotations

import glob
import itertools
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

USER = "envbuild"
PASSWORD = "not-a-secret"  # in URLs only: the server trusts loopback connections, a password must never be shown


def _bin(tool: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}")) or [shutil.which(tool)]
    if not found[-1]:
        pytest.fail(f"no {tool}: run scripts/setup.sh (installs postgresql)")
    return found[-1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_postgres(command: list[str]) -> subprocess.CompletedProcess:
    line = " ".join(shlex.quote(part) for part in command)
    argv = ["su", "postgres", "-s", "/bin/sh", "-c", line] if os.getuid() == 0 else ["sh", "-c", line]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{line} failed:\n{done.stdout}\n{done.stderr}")
    return done


class PostgresServer:
    def __init__(self, port: int):
        self.port = port
        self._names = itertools.count(1)

    def url(self, database: str = "postgres", password: bool = True) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{USER}{secret}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """The URL of a new, empty database on this server."""
        import psycopg

        name = f"catalog_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(password=False), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


@contextmanager
def running_postgres():
    directory = Path(tempfile.mkdtemp(prefix="envbuild-pg-"))
    if os.getuid() == 0:
        shutil.chown(directory, "postgres")
    port = _free_port()
    data = directory / "data"
    _as_postgres([_bin("initdb"), "-D", str(data), "-A", "trust", "-U", USER])
    _as_postgres([_bin("pg_ctl"), "-D", str(data), "-o", f"-k {directory} -p {port} -h 127.0.0.1",
                  "-l", str(directory / "log"), "-w", "start"])
    try:
        yield PostgresServer(port)
    finally:
        _as_postgres([_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    """One real PostgreSQL server for the session."""
    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_home(request, home, monkeypatch) -> Path:
    """An empty envbuild home whose catalog is SQLite in the home, or a fresh PostgreSQL database
    ($ENVBUILD_CATALOG, which the processes a test starts inherit): one catalog suite runs on both."""
    if request.param == "postgresql":
        monkeypatch.setenv("ENVBUILD_CATALOG", request.getfixturevalue("postgres").new_database())
    else:
        monkeypatch.delenv("ENVBUILD_CATALOG", raising=False)
    return home
