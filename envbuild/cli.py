"""`python -m envbuild` / `envbuild`: a thin dispatcher over the public API.

Each group of commands lives in its own module under envbuild/commands/ and registers its sub-parsers there. Only
the module of the command being run is imported (all of them for `--help`). `build` on a spec file seen before is
answered before argparse is imported (commands.build.cached_build), so a cache hit stays close to a bare
interpreter start. Errors from envbuild print as one message (no traceback; `--debug` shows it), exit non-zero.
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
    if argv[:1] == ["build"]:
        from .commands.build import cached_build

        try:
            answered = cached_build(argv[1:])
        except EnvbuildError as exc:
            return _fail(exc)
        if answered is not None:
            return answered
    args = build_parser(argv).parse_args(argv)
    if getattr(args, "debug", False):
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return args.func(args)
    except EnvbuildError as exc:
        if getattr(args, "debug", False):
            raise
        return _fail(exc)
    except KeyboardInterrupt:
        print("envbuild: interrupted", file=sys.stderr, flush=True)
        return 130


def _fail(error: EnvbuildError) -> int:
    print(f"envbuild: error: {error}", file=sys.stderr, flush=True)
    return error.exit_code
