"""A catalog.sqlite written by envbuild's first catalog (schema 0) opens, migrates once, and loses nothing.

tests/data/catalog-schema0.sqlite was written by envbuild.catalog at commit 41062b9 (the schema every catalog had
before schema_version): alice registered web:1 (description, tags), bob web:2 and web:3, updated web:2, archived
web:3; pinned:5 was registered with an explicit version; ctx:1 from a build context at
/home/alice/project/context (not on this machine); an image was recorded for web:1 whose label named another
definition's spec key.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from envbuild import catalog
from envbuild.catalog import Catalog
from envbuild.catalog.schema import SCHEMA_VERSION
from envbuild.errors import CatalogError, SpecError
from tests.support.cli import cli_json

LEGACY = Path(__file__).parent / "data" / "catalog-schema0.sqlite"


@pytest.fixture
def legacy_home(home) -> Path:
    home.mkdir(parents=True)
    shutil.copy(LEGACY, home / catalog.CATALOG_FILE)
    return home


def _rows(path: Path, query: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(query).fetchall()


def test_the_first_catalog_migrates_without_loss(legacy_home):
    before = _rows(legacy_home / catalog.CATALOG_FILE, "SELECT name, version, key, definition, description, tags, "
                                                       "created_by, created_at, archived FROM versions")
    with Catalog() as cat:
        entries, events = cat.history("web")
        pinned, ctx = cat.entry("pinned", 5), cat.entry("ctx", 1)
    assert [(e.version, e.created_by, e.description, e.tags, e.archived) for e in entries] == [
        ("1", "alice", "first", {"team": "ml"}, False), ("2", "bob", "second", {"stage": "prod"}, False),
        ("3", "bob", None, {}, True)]
    assert [(e["version"], e["action"], e["by"]) for e in events] == [
        ("1", "register", "alice"), ("2", "register", "bob"), ("3", "register", "bob"), ("2", "update", "bob"),
        ("3", "archive", "bob"), ("1", "build", "bob")]
    after = {(e.name, int(e.version)): e for e in [*entries, pinned, ctx]}
    for name, version, key, definition, description, tags, by, at, archived in before:
        entry = after[(name, version)]
        assert (entry.key, entry.created_by, entry.created_at, entry.archived) == (key, by, at, bool(archived))
        assert entry.definition == json.loads(definition) and entry.files == {}
    # The build keeps its image and lock; its spec key is now the version's own, the image's label beside it.
    (build,) = entries[0].builds
    assert (build.image, build.lock, build.spec_key, build.image_spec_key) == (
        "envbuild/env:v1-aaa", "version: 1\npackage: []\n", entries[0].key, "v1:someone-elses-spec")
    assert _rows(legacy_home / catalog.CATALOG_FILE, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]


def test_a_migrated_catalog_goes_on_where_it_stopped(legacy_home):
    from envbuild.spec import Environment

    env = Environment(name="web")
    env.python.conda_dependencies.add_pip_package("six>=1.16")
    assert catalog.get("web").version == "2"  # web:3 is archived
    assert catalog.get("web", 1) == catalog.get("web", "1") and catalog.get("web", 1).key == env.key
    env.python.conda_dependencies.add_pip_package("packaging")
    assert catalog.register(env) == "4"
    assert [row["version"] for row in cli_json("env", "list", "--name", "web")] == ["4", "2", "1"]
    with Catalog() as cat:  # opened again: nothing left to migrate
        assert cat.entry("pinned").version == "5"


def test_a_version_registered_by_path_whose_files_are_gone_says_so(legacy_home):
    stored = catalog.get("ctx", 1)
    assert stored.docker.build_context == "/home/alice/project/context"
    with pytest.raises(SpecError, match="is not a directory"):
        _ = stored.key


def test_a_catalog_from_a_newer_envbuild_is_refused(legacy_home):
    with Catalog():
        pass
    with sqlite3.connect(legacy_home / catalog.CATALOG_FILE) as db:
        db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(CatalogError, match="newer than this envbuild") as raised:
        catalog.list()
    assert "upgrade envbuild" in raised.value.fix
