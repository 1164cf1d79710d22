"""Builds the UI shows live: those it started itself, and those any other process on the same home is running.

A build started from the page runs `api.build` in a thread of the server; its events (the same records a build
journal holds: start, progress, log, then end with the image or error) are kept in memory and recorded in the
catalog history when it ends, as `env create --build` does. Builds of other processes are followed through the
journals `api.build` writes (envbuild.journal). Both are read the same way, `read(offset) -> (events, offset)`,
which is what the server-sent-event stream resumes from (its event ids are offsets).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from .. import journal
from ..errors import EnvbuildError

ENDS = ("end", "error")


class PageBuild:
    """A build started from the page: events in memory, appended by the build thread, read by any request."""

    def __init__(self, build_id: str, name: str, version: str):
        self.id, self.name, self.version = build_id, name, version
        self._events: list[dict] = [{"event": "start", "name": name, "version": version, "pid": os.getpid(),
                                     "at": time.time()}]
        self._lock = threading.Lock()

    def add(self, event: dict) -> None:
        with self._lock:
            self._events.append(event)

    def read(self, offset: int = 0) -> tuple[list[dict], int]:
        with self._lock:
            return self._events[offset:], len(self._events)


class JournalBuild:
    """A build another process runs, followed through its journal file."""

    def __init__(self, path: str):
        self.path = path
        self.id = Path(path).stem

    def read(self, offset: int = 0) -> tuple[list[dict], int]:
        events, following = journal.read(self.path, offset)
        if not (events and events[-1]["event"] in ENDS) and self._abandoned():
            events.append({"event": "error", "message": "the process running this build is gone (killed?)"})
        return events, following

    def _abandoned(self) -> bool:
        """Whether the build never ended and its process is gone (a killed build writes no end)."""
        events, _ = journal.read(self.path, 0)
        return bool(events) and events[-1]["event"] not in ENDS and not journal.writer_alive(events[0].get("pid", 0))


class Builds:
    """Every build the UI knows: its own (by id) and the journals of the home."""

    def __init__(self, workspace):
        self.workspace = workspace
        self._own: dict[str, PageBuild] = {}
        self._lock = threading.Lock()

    def start(self, name: str, version: str | None) -> PageBuild:
        """Build the catalog version `name:version` in a thread; the PageBuild to follow."""
        with self.workspace.catalog() as cat:
            entry = cat.entry(name, version)  # fails now, on the request, for a version that does not exist
        with self._lock:
            build = PageBuild(f"ui-{len(self._own) + 1}-{os.getpid()}", entry.name, entry.version)
            self._own[build.id] = build
        threading.Thread(target=self._run, args=(build, entry), name=f"envbuild-ui-{build.id}", daemon=True).start()
        return build

    def _run(self, build: PageBuild, entry) -> None:
        from ..api import build as build_image
        from ..catalog import check_unchanged
        from ..runner import lock_text

        try:
            with self.workspace.catalog() as cat:
                env = cat.environment(entry)  # with its files (build context, lock file) from the catalog
            check_unchanged(env, entry)
            image = build_image(env, cache_dir=self.workspace.home,
                                on_progress=lambda stage, message: build.add(
                                    {"event": "progress", "stage": stage, "message": message}),
                                on_log=lambda line: build.add({"event": "log", "line": line}))
            with self.workspace.catalog() as cat:
                if not any(b.image_id == image.id and b.build_key == image.key for b in entry.builds):
                    cat.record_build(entry.name, entry.version, image, lock_text(image, self.workspace.home))
            build.add({"event": "end", "image": image.to_dict()})
        except EnvbuildError as exc:
            build.add({"event": "error", "message": f"envbuild: error: {exc}"})
        except Exception as exc:  # noqa: BLE001 -- a bug: shown on the page, not a build that never ends
            build.add({"event": "error", "message": f"{type(exc).__name__}: {exc}"})

    def get(self, build_id: str):
        """The build `build_id` names (a page build, or the stem of a journal file), or None."""
        if build_id in self._own:
            return self._own[build_id]
        for path in journal.journals(self.workspace.home, limit=1000):
            if Path(path).stem == build_id:
                return JournalBuild(path)
        return None

    def recent(self) -> list[dict]:
        """Newest first: each build's id, environment, start time, state and (when over) image or error."""
        rows = []
        for own in self._own.values():
            rows.append(_summary(own.id, own.read()[0], "page"))
        for path in journal.journals(self.workspace.home):
            events, _ = JournalBuild(path).read()
            if events and events[0].get("pid") == os.getpid():
                continue  # a page build's own journal: it is listed above
            rows.append(_summary(Path(path).stem, events, "journal"))
        return sorted(rows, key=lambda row: -(row["at"] or 0))


def _summary(build_id: str, events: list[dict], started_by: str) -> dict:
    start = events[0] if events and events[0].get("event") == "start" else {}
    last = events[-1] if events else {}
    state = {"end": "done", "error": "failed"}.get(last.get("event"), "running")
    return {"id": build_id, "name": start.get("name"), "version": start.get("version"), "at": start.get("at"),
            "pid": start.get("pid"), "started_from": started_by, "state": state,
            "image": last.get("image"), "error": last.get("message") if state == "failed" else None}
