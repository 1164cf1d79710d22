"""ui — `envbuild ui`'s environments page with 1,000 environments: milliseconds per request over real HTTP.

A scratch home gets 1,000 registered environments (100 with --quick), every other one with a recorded build and
its index entry (what the page shows as last build and image size). The UI's app is served by uvicorn on a
loopback port, as `envbuild ui` serves it, and requested with one keep-alive HTTP client; the value is the median
of the page's response times (target: under 100 ms). Measured side by side in the same run, interleaved: the same
data as JSON (`/api/environments`, what `env list --json` prints), and a bare Starlette "hello" on an identical
uvicorn server (the floor of the stack). The ratio is the JSON API's time over the page's (how much the HTML adds).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

IDS = ("ui",)
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run(quick: bool) -> list[dict]:
    import httpx

    environments, repeat = (100, 30) if quick else (1000, 60)
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-ui-") as scratch:
        home = Path(scratch) / "home"
        started = time.perf_counter()
        populate(home, environments)
        populate_seconds = time.perf_counter() - started
        with serving(_ui_app(home)) as ui_url, serving(_hello_app()) as hello_url, httpx.Client() as client:
            targets = {"page": ui_url + "/", "json": ui_url + "/api/environments", "hello": hello_url + "/"}
            shown = client.get(targets["page"])
            assert shown.status_code == 200 and shown.text.count('<td><a href="/env/') == environments
            times: dict[str, list[float]] = {name: [] for name in targets}
            for _ in range(repeat):
                for name, url in targets.items():
                    begun = time.perf_counter()
                    client.get(url).raise_for_status()
                    times[name].append(time.perf_counter() - begun)
    page, json_api, hello = (statistics.median(times[name]) * 1000 for name in ("page", "json", "hello"))
    return [{
        "id": "ui", "name": f"envbuild ui environments page, {environments} environments (ms)", "value": page,
        "unit": "ms", "baseline": json_api, "baseline_name": "the same list as JSON (/api/environments)",
        "ratio": json_api / page if page else None, "target": "< 100 ms",
        "details": {"environments": environments, "requests": repeat, "bare_starlette_hello_ms": hello,
                    "page_bytes": len(shown.content), "populate_seconds": populate_seconds,
                    "page_p90_ms": _p90(times["page"]), "json_p90_ms": _p90(times["json"])},
    }]


def populate(home: Path, count: int) -> None:
    """`count` registered environments with tags and descriptions, every other one with a build in the catalog
    and its image in the cache index."""
    from envbuild.cache import Image, Index, new_entry
    from envbuild.catalog import Catalog
    from envbuild.spec import Environment

    with Catalog(home) as catalog, Index(home) as index:
        for number in range(count):
            env = Environment(name=f"env-{number:04d}", description=f"environment number {number}",
                              tags={"team": f"team-{number % 7}"})
            env.python.conda_dependencies.add_pip_package(f"package-{number}")
            version = catalog.register(env)
            if number % 2:
                continue
            key = f"v1:{number:032x}"
            image = Image(image=f"envbuild/env:v1-{number:032x}", id=f"sha256:{number:064x}", key=key,
                          spec_key=env.key, lock_key=key, cached=False, source="built", seconds=1.0)
            catalog.record_build(env.name, version, image, lock=None)
            index.put(key, new_entry(image=image.image, image_id=image.id, name=env.name, spec_key=env.key,
                                     lock_key=key, base_id="sha256:0", build_seconds=30.0, size=250_000_000,
                                     source="built"))


@contextmanager
def serving(app):
    """`app` on a free loopback port under uvicorn (as `envbuild ui` runs it), in a thread; yields its URL."""
    import socket

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _ui_app(home: Path):
    from envbuild.ui.app import create_app
    from envbuild.ui.workspace import Workspace

    return create_app(Workspace(home))


def _hello_app():
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    return Starlette(routes=[Route("/", lambda request: PlainTextResponse("hello"))])


def _p90(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.9)] * 1000


if __name__ == "__main__":
    import json

    print(json.dumps(run("--quick" in sys.argv), indent=2))
