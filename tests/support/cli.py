"""The command line as tests use it: `python -m envbuild` in its own process, or `envbuild.cli.main` in this one.

The subprocess gets the envbuild this test process imported first on its path, so both always run the same code
(a checkout under test, not whatever an editable install points at).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import envbuild

SOURCE_ROOT = Path(envbuild.__file__).resolve().parent.parent


def command(*args: str) -> list[str]:
    """The argv of `python -m envbuild ARGS` (for tests that start processes themselves, e.g. concurrently)."""
    return [sys.executable, "-m", "envbuild", *args]


def environment(extra: dict | None = None) -> dict[str, str]:
    """This process's environment, `extra` on top, with the envbuild under test first on PYTHONPATH."""
    merged = {**os.environ, **(extra or {})}
    merged["PYTHONPATH"] = os.pathsep.join(p for p in (str(SOURCE_ROOT), merged.get("PYTHONPATH")) if p)
    return merged


def cli(*args: str, check: bool = True, env: dict | None = None, cwd: Path | str | None = None,
        input: str | None = None) -> subprocess.CompletedProcess:
    """Run `python -m envbuild ARGS`; with `check`, a non-zero exit fails the test and shows both streams."""
    done = subprocess.run(command(*args), capture_output=True, text=True, env=environment(env), cwd=cwd,
                          input=input)
    if check and done.returncode != 0:
        raise AssertionError(f"envbuild {' '.join(map(str, args))} failed ({done.returncode}):\n"
                             f"{done.stdout}\n{done.stderr}")
    return done


def cli_json(*args: str, env: dict | None = None):
    """The parsed output of `python -m envbuild ARGS --json`."""
    return json.loads(cli(*args, "--json", env=env).stdout)


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """`envbuild ARGS` in this process (no interpreter start-up): exit code, stdout, stderr."""
    from envbuild.cli import main

    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err
