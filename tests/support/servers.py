"""Servers the tests start (a registry, a package index): run one until the test is done, once it answers."""

from __future__ import annotations

import contextlib
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator


def wait_until_answering(url: str, process: subprocess.Popen, log: Path, name: str) -> None:
    """Return once `url` answers 200 or 401; fail with the end of `log` if `process` exits, or after ~10 s."""
    for _ in range(100):
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as answer:
            if answer.code == 401:  # up, and asking for the credentials it was configured with
                return
            raise
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited: {log.read_text()[-2000:]}")
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer at {url}")


@contextlib.contextmanager
def serving(command: list[str], url: str, log: Path, name: str) -> Iterator[None]:
    """Run `command` (its output to `log`) until the block ends, entering once `url` answers."""
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_until_answering(url, process, log, name)
            yield
        finally:
            process.terminate()
            process.wait(timeout=10)
