"""`python -m envbuild` / `envbuild`: a thin dispatcher over the public API.

Each group of commands lives in its own module under envbuild/commands/ and registers its sub-parsers there. Only
the module of the command being run is imported (all of them for `--help`). `build` on a spec file seen before is
answered before argparse is imported (commands.build.cached_build), so a cache hit stays close to a bare
interpreter start. Errors from envbuild print as one message (no traceback; `--debug` shows it), exit non-zero;
anything else is a bug, and prints as one line too (exit 70). A closed stdout (`| head`) ends quietly.
"""

from __future__ import annotations

import sys

from .errors import EnvbuildError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (the cache-hit path imports this module)
if TYPE_CHECKING:
    import argparse

# command → module in envbuild.commands that registers it. Add new commands here.
COMMANDS = {
    "build": "build",
    "render": "render",
    "base": "render",
    "lock": "lock",
    "key": "spec",
    "canonical": "spec",
    "explain": "spec",
    "ls": "cache",
    "show": "cache",
    "stats": "cache",
    "logs": "cache",
    "gc": "cache",
    "bench": "bench",
    "env": "catalog",
    "history": "catalog",
    "diff": "catalog",
    "run": "catalog",
    "shell": "catalog",
    "ui": "ui",
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    import argparse
    import importlib

    from . import __version__

    parser = argparse.ArgumentParser(prog="envbuild",
                                     description="Build environment specs into container images, once.")
    parser.add_argument("--version", action="version", version=f"envbuild {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    first = next((a for a in argv if not a.startswith("-")), None)
    modules = [COMMANDS[first]] if first in COMMANDS else sorted(set(COMMANDS.values()))
    for name in dict.fromkeys(modules):
        importlib.import_module(f"envbuild.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        code = _run(argv)
        sys.stdout.flush()  # here, not at exit: a closed pipe is answered below, not by the interpreter
        return code
    except EnvbuildError as exc:
        if debug:
            raise
        return _fail(exc)
    except BrokenPipeError:
        # `envbuild logs KEY | head -5`: the reader has what it wanted. Later writes (and the interpreter's own
        # flush at exit) go to /dev/null instead of raising again.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("envbuild: interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception as exc:  # a bug: one line for the user, the traceback with --debug
        if debug:
            raise
        print(f"envbuild: internal error: {type(exc).__name__}: {exc}\n  fix: this is a bug in envbuild: rerun "
              "with --debug for the traceback and report it", file=sys.stderr, flush=True)
        return 70


def _run(argv: list[str]) -> int:
    if argv[:1] == ["build"]:
        from .commands.build import cached_build

        answered = cached_build(argv[1:])
        if answered is not None:
            return answered
    args = build_parser(argv).parse_args(argv)
    if getattr(args, "debug", False):
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return args.func(args)


def _fail(error: EnvbuildError) -> int:
    print(f"envbuild: error: {error}", file=sys.stderr, flush=True)
    return error.exit_code
