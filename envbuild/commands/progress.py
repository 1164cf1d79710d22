"""How a build looks at the terminal: a live view (rich) when stderr is a terminal, plain lines otherwise.

The live view shows the step BuildKit is on, the time spent and the last lines of its output; the stages'
messages (lock, cache, registry, build) scroll above it. Plain mode prints every log line prefixed with "  | ",
which is what CI logs and pipes want. Either way stdout stays free for the result.
"""

from __future__ import annotations

import sys
import time
from collections import deque

from . import err

TAIL_LINES = 8


class BuildDisplay:
    def __init__(self, *, quiet: bool = False, json_output: bool = False, debug: bool = False):
        self.quiet = quiet
        self.show_progress = not json_output or debug
        self.live = None
        self.step = "preparing"
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.started = time.monotonic()

    def __enter__(self) -> "BuildDisplay":
        if not self.quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.live import Live

            self.live = Live(console=Console(stderr=True), get_renderable=self._render, transient=True,
                             refresh_per_second=8)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def progress(self, stage: str, message: str) -> None:
        if not self.show_progress:
            return
        if self.live is not None:
            from rich.text import Text

            self.live.console.print(Text.assemble(("envbuild", "bold"), f": {stage}: {message}"))
        else:
            err(f"envbuild: {stage}: {message}")

    def log(self, line: str) -> None:
        if self.quiet:
            return
        if self.live is None:
            err(f"  | {line}")
            return
        from ..builder import step_of

        self.step = step_of(line) or self.step
        self.tail.append(line)

    def _render(self):
        from rich.console import Group
        from rich.spinner import Spinner
        from rich.text import Text

        elapsed = time.monotonic() - self.started
        return Group(*(Text(line[:200], style="dim", overflow="ellipsis", no_wrap=True) for line in self.tail),
                     Spinner("dots", text=Text(f"{self.step[:120]}  {elapsed:5.1f}s", style="bold")))
