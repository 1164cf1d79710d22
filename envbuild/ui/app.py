"""The Starlette application: pages rendered from Jinja2 templates (files in templates/), their JSON twins under
/api/, and the live build streams. `create_app` builds it for one workspace; `serve` runs it with uvicorn.

Routes are plain functions (Starlette runs them in its thread pool: the catalog and the index are blocking
SQLite), except the event stream, which polls a build's events and sends each as a server-sent event.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ..commands.cache import ago, human_size
from ..errors import CatalogError, EnvbuildError
from ..hosts import is_loopback
from . import charts
from . import workspace as data
from .builds import ENDS, Builds
from .guard import Guard
from .intake import parse_tags, register_text

HERE = Path(__file__).resolve().parent
POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0
POLICIES = ("lru", "lfu", "cost")


def create_app(ws: data.Workspace, *, token: str | None = None, loopback: bool = True) -> Starlette:
    templates = _templates(ws)
    builds = Builds(ws)

    def page(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context, status_code=status)

    # -- environments ------------------------------------------------------------------------------------------
    def environments(request: Request):
        query = request.query_params
        entries = data.environments(ws, name=query.get("name", ""), tag=query.get("tag", ""),
                                    archived=bool(query.get("archived")))
        return page(request, "environments.html", entries=entries, indexed=data.image_sizes(ws, entries),
                    curated=data.curated(), query=query)

    def api_environments(request: Request):
        query = request.query_params
        entries = data.environments(ws, name=query.get("name", ""), tag=query.get("tag", ""),
                                    archived=bool(query.get("archived")))
        return JSONResponse([e.to_dict(with_definition=False) for e in entries])

    def api_curated(request: Request):
        return JSONResponse(data.curated())

    # -- a version ---------------------------------------------------------------------------------------------
    def version(request: Request):
        shown = data.version(ws, request.path_params["name"], request.path_params["version"])
        return page(request, "version.html", **shown)

    def api_version(request: Request):
        with ws.catalog() as cat:
            entry = cat.entry(request.path_params["name"], _number(request.path_params["version"]))
        return JSONResponse(entry.to_dict())

    def api_history(request: Request):
        name = request.path_params["name"]
        with ws.catalog() as cat:
            entries, events = cat.history(name)
        return JSONResponse({"name": name, "versions": [e.to_dict(with_definition=False) for e in entries],
                             "events": events})

    # -- diff --------------------------------------------------------------------------------------------------
    def diff(request: Request):
        old, new = request.query_params.get("old", ""), request.query_params.get("new", "")
        result = data.diff(ws, old, new) if old and new else None
        refs = [e.ref for e in data.environments(ws)]  # the latest of each name; any NAME:VERSION is accepted
        return page(request, "diff.html", old=old, new=new, result=result, refs=refs,
                    curated=[row["ref"] for row in data.curated()])

    def api_diff(request: Request):
        query = request.query_params
        if not query.get("old") or not query.get("new"):
            raise HTTPException(400, "give old= and new= (NAME:VERSION or curated:NAME)")
        return JSONResponse(data.diff(ws, query["old"], query["new"]))

    # -- cache -------------------------------------------------------------------------------------------------
    def cache(request: Request):
        shown = data.cache(ws)
        periods = charts.periods(shown["requests"])
        max_size, policy = request.query_params.get("max_size", ""), request.query_params.get("policy", "lru")
        preview = data.gc_preview(ws, max_size, _policy(policy)) if max_size else None
        return page(request, "cache.html", entries=shown["entries"], stats=shown["stats"],
                    hits_chart=charts.hits_and_misses(periods), saved_chart=charts.seconds_saved(periods),
                    preview=preview, max_size=max_size, policy=policy, policies=POLICIES,
                    sizes=data.engine_image_sizes())

    def api_cache(request: Request):
        shown = data.cache(ws)
        return JSONResponse({"entries": shown["entries"], "stats": shown["stats"]})

    def api_cache_image(request: Request):
        from ..commands.cache import detail

        with ws.index() as index:
            return JSONResponse(json.loads(json.dumps(detail(index, request.path_params["key"]), default=str)))

    def api_gc(request: Request):
        query = request.query_params
        return JSONResponse(data.gc_preview(ws, query.get("max_size", ""), _policy(query.get("policy", "lru"))))

    # -- create and build --------------------------------------------------------------------------------------
    def create_form(request: Request):
        return page(request, "create.html", error=None, form={})

    async def create(request: Request):
        form = await request.form()
        fields = {name: form.get(name) or "" for name in ("text", "filename", "name", "description", "tags")}
        upload = form.get("file")
        if upload is not None and getattr(upload, "filename", ""):
            fields["text"] = (await upload.read()).decode("utf-8", errors="replace")
            fields["filename"] = fields["filename"] or upload.filename
        try:
            entry = await run_in_threadpool(
                register_text, ws, fields["text"], fields["filename"], name=fields["name"] or None,
                description=fields["description"] or None, tags=parse_tags(fields["tags"]))
        except EnvbuildError as exc:
            if request.url.path.startswith("/api/"):
                return JSONResponse({"error": f"envbuild: error: {exc}"}, status_code=400)
            return page(request, "create.html", status=400, error=f"envbuild: error: {exc}", form=fields)
        build = builds.start(entry.name, entry.version) if form.get("build") else None
        if request.url.path.startswith("/api/"):
            return JSONResponse({**entry.to_dict(), "build": build and build.id}, status_code=201)
        target = f"/builds/{build.id}" if build else f"/env/{entry.name}/{entry.version}"
        return RedirectResponse(target, status_code=303)

    def start_build(request: Request):
        build = builds.start(request.path_params["name"], _number(request.path_params["version"]))
        if request.url.path.startswith("/api/"):
            return JSONResponse({"build": build.id, "events": f"/builds/{build.id}/events"}, status_code=202)
        return RedirectResponse(f"/builds/{build.id}", status_code=303)

    def builds_page(request: Request):
        return page(request, "builds.html", builds=builds.recent())

    def api_builds(request: Request):
        return JSONResponse(builds.recent())

    def build_page(request: Request):
        build = _found(builds.get(request.path_params["id"]))
        return page(request, "build.html", build_id=build.id)

    async def build_events(request: Request):
        build = _found(builds.get(request.path_params["id"]))
        offset = int(request.headers.get("last-event-id") or 0)
        return StreamingResponse(_stream(request, build, offset), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    routes = [
        Route("/", environments), Route("/api/environments", api_environments),
        Route("/api/environments", create, methods=["POST"]), Route("/api/curated", api_curated),
        Route("/env/{name}/{version}", version), Route("/api/environments/{name}/{version}", api_version),
        Route("/api/history/{name}", api_history),
        Route("/env/{name}/{version}/build", start_build, methods=["POST"]),
        Route("/api/environments/{name}/{version}/build", start_build, methods=["POST"]),
        Route("/diff", diff), Route("/api/diff", api_diff),
        Route("/cache", cache), Route("/api/cache", api_cache), Route("/api/cache/{key}", api_cache_image),
        Route("/api/gc", api_gc),
        Route("/create", create_form), Route("/create", create, methods=["POST"]),
        Route("/builds", builds_page), Route("/api/builds", api_builds), Route("/builds/{id}", build_page),
        Route("/builds/{id}/events", build_events),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    async def failed(request: Request, exc: EnvbuildError):
        status = 404 if isinstance(exc, CatalogError) and exc.what.startswith("no ") else 400
        message = f"envbuild: error: {exc}"
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status)
        return page(request, "error.html", status=status, message=message)

    app = Starlette(routes=routes, exception_handlers={EnvbuildError: failed})
    app.state.builds = builds
    return Guard(app, token=token, loopback=loopback)


def _templates(ws: data.Workspace) -> Jinja2Templates:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                                     undefined=jinja2.StrictUndefined)
    environment.filters.update(size=lambda n: "-" if n is None else human_size(n), ago=ago,
                               when=lambda t: time.strftime("%Y-%m-%d %H:%M", time.gmtime(t)) if t else "-")
    user_home = os.path.expanduser("~")
    shown_home = "~" + str(ws.home)[len(user_home):] if str(ws.home).startswith(user_home + "/") else str(ws.home)
    environment.globals.update(home=shown_home,
                               catalog=data.catalog_label(ws))
    return Jinja2Templates(env=environment)


async def _stream(request: Request, build, offset: int):
    """Server-sent events of `build` from `offset` (a reconnecting EventSource resumes from its Last-Event-ID),
    ending with a `done` event once the build has ended."""
    quiet = 0.0
    while not await request.is_disconnected():
        events, offset = await run_in_threadpool(build.read, offset)
        for position, event in enumerate(events):
            label = f"id: {offset}\n" if position == len(events) - 1 else ""
            yield f"{label}data: {json.dumps(event)}\n\n"
            if event["event"] in ENDS:
                yield "event: done\ndata: {}\n\n"
                return
        quiet = 0.0 if events else quiet + POLL_SECONDS
        if quiet >= KEEPALIVE_SECONDS:
            quiet = 0.0
            yield ": keep-alive\n\n"
        await asyncio.sleep(POLL_SECONDS)


def _number(text: str) -> int | str | None:
    return None if text == "latest" else text


def _policy(name: str) -> str:
    if name not in POLICIES:
        raise HTTPException(400, f"policy must be one of {', '.join(POLICIES)}")
    return name


def _found(build):
    if build is None:
        raise HTTPException(404, "no such build")
    return build


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token: the UI registers environments and starts builds."""
    if not token and not is_loopback(host):
        raise EnvbuildError(f"refusing to listen on {host} without a token",
                            fix="pass --token TOKEN (or set ENVBUILD_UI_TOKEN), or bind to 127.0.0.1")


def serve(ws: data.Workspace, *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
          open_browser: bool = False, on_ready=None) -> None:
    """Run the UI until interrupted. `on_ready(url)` is called once it answers (the CLI prints the address)."""
    import threading

    import uvicorn

    check_bind(host, token)
    ws.catalog().close()  # a catalog that cannot be opened fails here, before anything listens
    app = create_app(ws, token=token, loopback=is_loopback(host))
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           timeout_graceful_shutdown=2))
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown_host}:{port}/" + (f"?token={token}" if token and open_browser else "")

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            if on_ready:
                on_ready(f"http://{shown_host}:{port}/")
            if open_browser:
                import webbrowser

                webbrowser.open(url)

    threading.Thread(target=announce, daemon=True).start()
    server.run()
