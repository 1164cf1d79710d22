"""A team: two machines and one registry. Machine A is the main engine; machine B a second dockerd with its own
empty data root and an empty envbuild home (tests/support/second_engine.py), both pointed at one real registry.

The scenario runs in order, each step on what the one before left (B's engine starts empty once per module):
A builds, B answers from the registry without making a base, B's one-package change reuses A's installer layers,
same-named environments leave each other's cache sources alone, gc counts shared layers once.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
import urllib.request

import pytest

from envbuild.bases import DEFAULT_BASE, ROOT_IMAGE
from tests.conftest import docker, write
from tests.support.cache_helpers import remove_images, unique_template
from tests.support.cli import cli, cli_json
from tests.support.registry import running_registry
from tests.support.second_engine import second_engine

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def team(tmp_path_factory, engine):
    """The registry, machine B, and the two machines' environments (for `cli`)."""
    root = tmp_path_factory.mktemp("team")
    with running_registry(root / "registry") as address, second_engine(root / "machine-b", tls=False) as b:
        registry = f"{address}/team"
        template = unique_template(root)
        team = {"registry": registry, "b": b, "root": root, "template": str(template),
                "on_a": {"ENVBUILD_HOME": str(root / "home-a"), "ENVBUILD_REGISTRY": registry},
                "on_b": {"ENVBUILD_HOME": str(root / "home-b"), "ENVBUILD_REGISTRY": registry,
                         "DOCKER_HOST": b.socket}}
        try:
            yield team
        finally:
            remove_images(root / "home-a")


def _tags(registry: str) -> dict[str, str]:
    """Every tag of the registry's repository → its manifest digest."""
    host, _, repository = registry.partition("/")
    with urllib.request.urlopen(f"http://{host}/v2/{repository}/tags/list", timeout=10) as answer:
        tags = json.load(answer).get("tags") or []
    digests = {}
    for tag in tags:
        request = urllib.request.Request(f"http://{host}/v2/{repository}/manifests/{tag}", method="HEAD", headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            digests[tag] = answer.headers["Docker-Content-Digest"]
    return digests


def _cached_steps(log: str, stage: str) -> tuple[set[str], set[str]]:
    """(steps of `stage` BuildKit ran, steps of it that were CACHED), by the step numbers of its plain log."""
    steps = {m.group(1) for m in re.finditer(rf"^#(\d+) \[{re.escape(stage)} \d+/\d+\] (?:RUN|COPY)", log, re.M)}
    cached = {m.group(1) for m in re.finditer(r"^#(\d+) CACHED", log, re.M)}
    return steps, steps & cached


def test_a_team_builds_once(team, tmp_path):
    b = team["b"]
    spec = write(team["root"] / "one" / "requirements.txt", "six\n")
    built = cli_json("build", str(spec), "--template", team["template"], "-q", env=team["on_a"])
    assert built["source"] in ("built", "engine") and built["push_seconds"] is not None
    tags = _tags(team["registry"])
    assert any(tag.startswith("base-") for tag in tags) and any(tag.startswith("stage-") for tag in tags)
    assert not any(tag.startswith("name-") for tag in tags)

    # B: empty engine, empty home. It answers from the registry and makes no base of its own.
    answered = cli_json("build", str(spec), "--template", team["template"], "-q", env=team["on_b"])
    assert answered["source"] == "registry"
    assert (answered["key"], answered["id"]) == (built["key"], built["id"])
    assert b.docker("image", "inspect", ROOT_IMAGE, check=False).returncode != 0  # no debootstrap ran on B
    base_on_b = b.docker("image", "inspect", "-f", "{{.Id}}", DEFAULT_BASE).stdout.strip()
    assert base_on_b == docker("image", "inspect", "-f", "{{.Id}}", DEFAULT_BASE).stdout.strip()
    assert cli_json("stats", env=team["on_b"])["builds"] == 0

    # B changes one pip package: A's installer stage comes from the registry, only the pip step runs.
    before = _tags(team["registry"])
    changed = write(team["root"] / "two" / "requirements.txt", "six\nidna\n")
    rebuilt = cli_json("build", str(changed), "--template", team["template"], "-q", env=team["on_b"])
    assert rebuilt["source"] == "built" and not rebuilt["warnings"]
    log = cli_json("logs", rebuilt["key"], env=team["on_b"])["log"]
    installer, cached = _cached_steps(log, "env-installer")
    assert installer and cached == installer, log
    pip_steps, pip_cached = _cached_steps(log, "pip-installer")
    assert pip_steps and not pip_cached  # the changed step really ran

    # Two environments named "requirements", one from each machine: B's build added its own sources and replaced
    # none of A's (every tag A's build left still names the same manifest).
    after = _tags(team["registry"])
    assert {tag: after[tag] for tag in before} == before
    assert set(after) - set(before)
    assert cli_json("show", rebuilt["key"], env=team["on_b"])["entry"]["name"] == "requirements"


def test_gc_counts_shared_layers_once(team):
    # On B: the pulled image and its one-package change share the base and the installer's layers.
    env = team["on_b"]
    rows = {row["key"]: row for row in cli_json("ls", env=env)}
    assert len(rows) == 2, rows
    for row in rows.values():
        assert row["unique_size"] + row["shared_size"] == row["size"]
        assert row["shared_size"] > row["unique_size"] > 0  # mostly the base
    everything = sum(row["size"] for row in rows.values())
    # What the two occupy together, layers counted once, is far less than the sum of their sizes: a limit between
    # the two removes nothing.
    plan = cli_json("gc", "--max-size", str(everything - 1), "--dry-run", env=env)
    assert plan["evicted"] == [] and plan["frees"] == 0
    # A limit that needs one removal: it frees that image's unique bytes, not its size.
    oldest = min(rows.values(), key=lambda row: row["created"])
    plan = cli_json("gc", "--max-size", "1MB", "--policy", "lru", "--dry-run", env=env)
    assert [record["key"] for record in plan["evicted"]][0] == oldest["key"]
    assert plan["evicted"][0]["frees"] == oldest["unique_size"] < oldest["size"]
    assert plan["frees"] == sum(record["frees"] for record in plan["evicted"])
    # Removing them really frees what was planned: the engine's own count of layer bytes drops by that much.
    df = lambda: json.loads(team["b"].docker("system", "df", "--format", "{{json .}}").stdout.splitlines()[0])
    layers_before = _bytes(df()["Size"])
    done = cli_json("gc", "--max-size", "1MB", env=env)
    assert all(record["removed"] for record in done["evicted"])
    assert abs((layers_before - _bytes(df()["Size"])) - done["frees"]) <= 0.02 * done["frees"] + 1e6


def _bytes(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)\s*([kMGT]?B)", text.strip()).groups()
    return float(number) * {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}[unit]


class _Refusing(http.server.BaseHTTPRequestHandler):
    """A registry that answers 500 to everything (or only to what is not its API root), counting requests."""

    root_ok = False
    requests: list[str] = []

    def _answer(self) -> None:
        type(self).requests.append(f"{self.command} {self.path}")
        ok = self.root_ok and self.path == "/v2/"
        self.send_response(200 if ok else 500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize("root_ok", [False, True], ids=["refuses-everything", "refuses-layers"])
def test_a_refusing_registry_costs_one_line_not_a_minute(engine, home, tmp_path, root_ok):
    handler = type("Handler", (_Refusing,), {"root_ok": root_ok, "requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        spec = write(tmp_path / "requirements.txt", "six\n")
        result = cli_json("build", str(spec), "-q", "--registry", f"127.0.0.1:{server.server_port}/team")
    finally:
        server.shutdown()
    assert result["source"] in ("built", "engine", "cache")  # served locally
    assert len(result["warnings"]) == 1 and result["warnings"][0].startswith("not shared:"), result["warnings"]
    assert "\n" not in result["warnings"][0] and len(result["warnings"][0]) < 400
    assert ("500" if not root_ok else "refused") in result["warnings"][0]
    # No retry loop: a refusing registry saw a handful of requests, not docker's five tries of every layer.
    assert len(handler.requests) < 12, handler.requests
    assert not any(r.startswith(("PUT", "PATCH")) for r in handler.requests)
    remove_images(home)


def test_a_machine_with_its_own_base_converges_on_the_registrys(team):
    # B made "its own" default base before it knew the registry (here: the shared one plus a layer, another id).
    b, env = team["b"], dict(team["on_b"], ENVBUILD_HOME=str(team["root"] / "home-b2"))
    shared_id = b.docker("image", "inspect", "-f", "{{.Id}}", DEFAULT_BASE).stdout.strip()
    b.docker("tag", DEFAULT_BASE, "envbuild-test/shared-base")
    own = team["root"] / "own-base"
    write(own / "Dockerfile", "FROM envbuild-test/shared-base\nLABEL made.on=machine-b\n")
    cli_env = {k: v for k, v in env.items() if k != "ENVBUILD_REGISTRY"}
    assert b.docker("build", "-q", "-t", DEFAULT_BASE, str(own)).returncode == 0
    assert b.docker("image", "inspect", "-f", "{{.Id}}", DEFAULT_BASE).stdout.strip() != shared_id
    spec = team["root"] / "one" / "requirements.txt"
    answered = cli_json("build", str(spec), "--template", team["template"], "-q", env=env)
    assert answered["source"] == "registry"
    assert any("replaced by the registry's" in warning for warning in answered["warnings"])
    assert b.docker("image", "inspect", "-f", "{{.Id}}", DEFAULT_BASE).stdout.strip() == shared_id
    assert cli("ls", env=cli_env).returncode == 0
