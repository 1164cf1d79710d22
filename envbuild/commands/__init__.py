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


def add_allow_host_builds(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-host-builds", action="store_true",
                        help="let the solve build sdists on this machine to read their metadata (runs their setup.py here; "
                        "default: in a throwaway container of the base image)")


def add_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="environment.yml, requirements.txt, ..., or a catalog NAME:VERSION")
    parser.add_argument("--name", help="environment name (default: from the file)")
    parser.add_argument("--base-image", help="start from this image instead of envbuild's default base")
    add_catalog(parser)
    # conda-lock install's options for the categories of a conda-lock.yml (main is always installed).
    parser.add_argument("-e", "--extras", "--category", action="append", default=[], metavar="CATEGORY",
                        help="also install this category of a conda-lock.yml (repeat for several)")
    parser.add_argument("--dev", action="store_true", help="also install the dev category of a conda-lock.yml")


def load_spec(args):
    from ..references import resolve

    env, _ = resolve(args.spec, name=args.name, home=args.cache_dir, catalog_url=args.catalog)
    if args.base_image:
        env.docker.base_image = args.base_image
    extras = [*getattr(args, "extras", ()), *(["dev"] if getattr(args, "dev", False) else [])]
    if extras or env.lock_file:
        _choose_categories(env, extras)
    return env


def _choose_categories(env, extras: list[str]) -> None:
    """The lock file's categories to install, and what that leaves out said on stderr ("20 of 115 packages")."""
    from pathlib import Path

    from ..errors import SpecError
    from ..lockfile import category_summary

    if not env.lock_file:
        raise SpecError(f"--extras/--dev choose categories of a conda-lock.yml, and {env.name} is not one",
                        fix="drop --extras/--dev, or pass the conda-lock.yml")
    env.lock_categories = tuple(dict.fromkeys(["main", *extras]))
    summary = category_summary(Path(env.lock_file), env.docker.platform, env.lock_categories)
    if summary:
        err(f"envbuild: {Path(env.lock_file).name}: {summary}")


def with_python(env, version: str | None):
    """`--python X`, the same for lock, render and build: a conda environment gets `python=X` (as `conda create
    python=X` does); a pip-only one is locked for X (build and render check that its base has it:
    api.lock_python); a lock file has decided its Python already."""
    if not version:
        return env
    from ..errors import SpecError

    if env.lock_file:
        raise SpecError(f"--python {version}: a lock file's Python is the one it locked",
                        where=env.lock_file, fix="drop --python, or lock the environment.yml again for that Python")
    if env.python.conda_dependencies.conda_packages:
        env.python.conda_dependencies.set_python_version(version)
    return env


def err(message: str) -> None:
    """Messages for the person at the terminal go to stderr; stdout carries results (text or JSON)."""
    print(message, file=sys.stderr, flush=True)
