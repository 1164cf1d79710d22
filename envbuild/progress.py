"""How library code reports: progress to `on_progress(stage, message)` and the logging module; it never prints."""

from __future__ import annotations

from typing import Callable

ProgressCallback = Callable[[str, str], None]


def log():
    """envbuild's logger, imported when there is something to log: the cache-hit path does without logging."""
    import logging

    return logging.getLogger("envbuild")


def notify(on_progress: ProgressCallback | None, stage: str, message: str) -> None:
    log().info("%s: %s", stage, message)
    if on_progress:
        on_progress(stage, message)
