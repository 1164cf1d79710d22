"""The UI's logic without a browser or an engine: the build journal, the charts' periods, pasted specs, the lock
diff, and the guard in front of every route (through Starlette's test client, on a real catalog file)."""

from __future__ import annotations

import os

import pytest
from starlette.testclient import TestClient

from envbuild import journal
from envbuild.errors import EnvbuildError, SpecError
from envbuild.explain import diff_locked
from envbuild.lockfile import LockedPackage
from envbuild.trace import Request
from envbuild.ui import charts
from envbuild.ui.app import check_bind, create_app
from envbuild.ui.intake import load_text, register_text
from envbuild.ui.workspace import Workspace


class _Image:
    def to_dict(self):
        return {"image": "envbuild/env:v1-abc", "key": "v1:abc", "source": "built"}


def test_journal_records_a_build_for_readers_and_a_failure_from_the_exception_in_flight(tmp_path):
    seen = []
    done = journal.BuildJournal.start(tmp_path, "web")
    progress, log = done.tee(lambda stage, message: seen.append((stage, message)), None)
    progress("lock", "solving")
    log("#1 step")
    done.finish(_Image())
    done.close()
    assert seen == [("lock", "solving")]  # the caller's callback still gets everything

    with pytest.raises(SpecError):
        failed = journal.BuildJournal.start(tmp_path, "etl")
        try:
            raise SpecError("no such package")
        finally:
            failed.close()

    newest, oldest = journal.journals(tmp_path)
    events, _ = journal.read(oldest)
    assert [e["event"] for e in events] == ["start", "progress", "log", "end"]
    assert events[0]["pid"] == os.getpid() and events[-1]["image"]["key"] == "v1:abc"
    events, _ = journal.read(newest)
    assert events[-1] == {"event": "error", "message": "no such package"}


def test_a_reader_never_sees_half_a_line(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text('{"event": "start", "pid": 1}\n{"event": "log", "li')
    events, offset = journal.read(str(path))
    assert events == [{"event": "start", "pid": 1}]
    with open(path, "a") as handle:
        handle.write('ne": "x"}\n')
    events, _ = journal.read(str(path), offset)
    assert events == [{"event": "log", "line": "x"}]


def test_periods_count_the_first_request_of_a_key_as_its_miss_and_the_rest_as_hits():
    day = 86400.0
    requests = [Request(10 * day, "a", 60.0, 1), Request(10 * day + 60, "a", 60.0, 1),
                Request(10 * day + 120, "b", 30.0, 1), Request(12 * day + 5, "a", 60.0, 1)]
    periods = charts.periods(requests)
    assert len(periods) == 3  # days: two days apart is beyond 48 hourly bars
    assert [(p.hits, p.misses, p.seconds_saved) for p in periods] == [(1, 2, 60.0), (0, 0, 0.0), (1, 0, 60.0)]
    assert charts.hits_and_misses(periods).count('class="hit"') == 3 + 1  # three bars and the legend
    assert "120s" in charts.seconds_saved(periods)  # the top of the cumulative axis


def test_lock_diff_names_added_removed_and_moved_packages():
    def pkg(name, version, manager="pip"):
        return LockedPackage(manager, name, version, f"https://x/{name}-{version}.whl", "0" * 64)

    changes = diff_locked([pkg("six", "1.16.0"), pkg("idna", "3.6"), pkg("zlib", "1.3", "conda")],
                          [pkg("six", "1.17.0"), pkg("zlib", "1.3", "conda"), pkg("attrs", "24.2.0")])
    assert [(d.item, d.change, d.a, d.b) for d in changes] == [
        ("attrs", "added", None, "24.2.0"), ("idna", "removed", "3.6", None), ("six", "changed", "1.16.0", "1.17.0")]


def test_a_pasted_spec_is_read_as_the_file_it_names_and_a_broken_one_registers_nothing(tmp_path):
    ws = Workspace(tmp_path / "home")
    with pytest.raises(EnvbuildError) as caught:
        register_text(ws, "name: x\ndependencies: [six\n", "environment.yml")
    assert str(caught.value).startswith("environment.yml:3: not valid YAML")
    assert "envbuild-ui-" not in str(caught.value)  # the scratch directory is not the user's file
    with ws.catalog() as cat:
        assert cat.list() == []
    entry = register_text(ws, "six\n", "requirements.txt", name="web", tags={"team": "a"})
    assert (entry.ref, entry.tags) == ("web:1", {"team": "a"})
    assert load_text("six\n", "../../etc/requirements.txt").python.conda_dependencies.pip_packages == ["six"]


def test_no_token_is_needed_on_loopback_but_other_sites_cannot_drive_the_ui(tmp_path):
    client = TestClient(create_app(Workspace(tmp_path / "home")), base_url="http://127.0.0.1:8765")
    assert client.get("/api/environments").json() == []
    assert client.get("/api/environments", headers={"Host": "attacker.example"}).status_code == 403
    posted = client.post("/api/environments", data={"text": "six\n", "filename": "requirements.txt"},
                         headers={"Origin": "http://attacker.example"})
    assert posted.status_code == 403
    assert client.get("/api/environments").json() == []
    posted = client.post("/api/environments", data={"text": "six\n", "filename": "requirements.txt", "name": "a"},
                         headers={"Origin": "http://127.0.0.1:8765"})
    assert posted.status_code == 201


def test_with_a_token_every_request_needs_it_and_the_address_is_cleaned_of_it(tmp_path):
    with pytest.raises(EnvbuildError, match="refusing to listen on 0.0.0.0 without a token"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", "secret")
    check_bind("127.0.0.1", None)
    client = TestClient(create_app(Workspace(tmp_path / "home"), token="secret", loopback=False),
                        base_url="http://10.0.0.5:8765", follow_redirects=False)
    assert client.get("/").status_code == 401
    assert client.post("/api/environments", data={"text": "six\n"}).status_code == 401
    assert client.get("/", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/api/environments", headers={"Authorization": "Bearer secret"}).status_code == 200
    traded = client.get("/cache?token=secret&policy=lfu")
    assert traded.status_code == 303 and traded.headers["location"] == "/cache?policy=lfu"
    assert client.get("/api/environments").status_code == 200  # the cookie it set
