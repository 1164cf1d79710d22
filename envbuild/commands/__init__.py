"""Command-line commands, one module per group; each module has `register(subparsers)`."""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: `build` on a seen spec imports this package
if TYPE_CHECKING:
    import argparse


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", help="envbuild home (default: $ENVBUILD_HOME or ~/.cache/envbuild)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")


def add_catalog(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", metavar="URL",
                        help="the catalog: postgresql://USER:PASSWORD@HOST:PORT/DB for a team's, sqlite:///PATH "
                             "(default: $ENVBUILD_CATALOG, else catalog.sqlite in the envbuild home)")


def add_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="environment.yml, requirements.txt, ..., or a catalog NAME:VERSION")
    parser.add_argument("--name", help="environment name (default: from the file)")
    parser.add_argument("--base-image", help="start from this image instead of envbuild's default base")
    add_catalog(parser)


def load_spec(args):
    from ..references import resolve

    env, _ = resolve(args.spec, name=args.name, home=args.cache_dir, catalog_url=args.catalog)
    if args.base_image:
        env.docker.base_image = args.base_image
    return env


def err(message: str) -> None:
    """Messages for the person at the terminal go to stderr; stdout carries results (text or JSON)."""
    print(message, file=sys.stderr, flush=True)
