"""Builds in flight as files any process can follow: one JSON-lines journal per build, in `HOME/builds/`.

`api.build` opens a journal once its first lookup misses (a cache hit is over in milliseconds and writes none) and
tees its progress messages and build log into it, ending with the image or the error. `envbuild ui` follows these
files, so a build started from the command line, a script or another UI on the same home shows up live in the
browser. Each event is one `os.write` on an O_APPEND descriptor: lines from a writer are never torn for a reader,
which only ever consumes complete lines. Only os, json and time are imported: api.build stays light.

Events: {"event": "start", "name", "pid", "at"}, {"event": "progress", "stage", "message"},
{"event": "log", "line"}, then {"event": "end", "image": Image.to_dict()} or {"event": "error", "message"}.
"""

from __future__ import annotations

import json
import os
import sys
import time

DIRECTORY = "builds"
KEEP_SECONDS = 7 * 86400  # finished journals older than this are removed when a new build starts
KEEP_COUNT = 200


class BuildJournal:
    """The journal one build writes. `start` opens it; `finish` records the image; `close` records an error when
    the build ended without `finish` (called from a `finally`, it reads the exception in flight)."""

    def __init__(self, path: str, descriptor: int):
        self.path = path
        self._descriptor = descriptor
        self._finished = False

    @classmethod
    def start(cls, home: str | os.PathLike, name: str | None) -> BuildJournal:
        directory = os.path.join(home, DIRECTORY)
        os.makedirs(directory, exist_ok=True)
        _prune(directory)
        path = os.path.join(directory, f"{time.time_ns()}-{os.getpid()}.jsonl")
        journal = cls(path, os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644))
        journal._write({"event": "start", "name": name, "pid": os.getpid(), "at": time.time()})
        return journal

    def tee(self, on_progress, on_log):
        """The callbacks a build calls, writing each event here before passing it on."""

        def progress(stage: str, message: str) -> None:
            self._write({"event": "progress", "stage": stage, "message": message})
            if on_progress:
                on_progress(stage, message)

        def log(line: str) -> None:
            self._write({"event": "log", "line": line})
            if on_log:
                on_log(line)

        return progress, log

    def finish(self, image) -> None:
        self._write({"event": "end", "image": image.to_dict()})
        self._finished = True

    def close(self) -> None:
        if not self._finished:
            error = sys.exc_info()[1]
            self._write({"event": "error", "message": str(error) if error else "the build stopped"})
        os.close(self._descriptor)

    def _write(self, event: dict) -> None:
        try:
            os.write(self._descriptor, (json.dumps(event) + "\n").encode())
        except OSError:
            pass  # a full disk must not fail a build that is otherwise fine: the journal is for watching only


def _prune(directory: str) -> None:
    """Drop old journals (best effort: another process may prune the same files at the same time)."""
    try:
        names = sorted(os.listdir(directory), reverse=True)
    except OSError:
        return
    now = time.time()
    for position, name in enumerate(names):
        path = os.path.join(directory, name)
        try:
            if position >= KEEP_COUNT or now - os.path.getmtime(path) > KEEP_SECONDS:
                os.unlink(path)
        except OSError:
            continue


# -- following ------------------------------------------------------------------------------------------------------


def journals(home: str | os.PathLike, limit: int = 50) -> list[str]:
    """Paths of the newest journals of `home`, newest first."""
    directory = os.path.join(home, DIRECTORY)
    try:
        names = sorted((n for n in os.listdir(directory) if n.endswith(".jsonl")), reverse=True)
    except OSError:
        return []
    return [os.path.join(directory, name) for name in names[:limit]]


def read(path: str, offset: int = 0) -> tuple[list[dict], int]:
    """The complete events written after byte `offset`, and the offset to read from next."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except OSError:
        return [], offset
    end = data.rfind(b"\n") + 1  # a line still being written waits for the next read
    events = []
    for line in data[:end].splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events, offset + end


def writer_alive(pid: int) -> bool:
    """Whether the process that writes a journal still runs (a killed build never writes its end)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
