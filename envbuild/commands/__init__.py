"""Command-line commands, one module per group; each module has `register(subparsers)`."""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: `build` on a seen spec imports this package
if TYPE_CHECKING:
    import argparse


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", help="envbuild home (default: $ENVBUILD_HOME or ~/.cache/envbuild)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")


def add_allow_host_builds(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-host-builds", action="store_true",
                        help="let the solve build sdists on this machine to read their metadata (runs their setup.py here; "
                        "default: in a throwaway container of the base image)")


def add_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="environment.yml, requirements.txt, ...")
    parser.add_argument("--name", help="environment name (default: from the file)")
    parser.add_argument("--base-image", help="start from this image instead of envbuild's default base")


def load_spec(args):
    from ..references import load

    env = load(args.spec, name=args.name)
    if args.base_image:
        env.docker.base_image = args.base_image
    return env


def err(message: str) -> None:
    """Messages for the person at the terminal go to stderr; stdout carries results (text or JSON)."""
    print(message, file=sys.stderr, flush=True)
