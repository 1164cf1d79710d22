"""`python -m envbuild` / `envbuild`: a thin layer over the public API.

Errors from envbuild print as one message (no traceback; `--debug` shows it) and exit non-zero. Heavy modules are
imported inside the commands that need them, so a cache hit stays close to a bare interpreter start.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from .errors import EnvbuildError


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", help="envbuild home (default: $ENVBUILD_HOME or ~/.cache/envbuild)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")


def _spec_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="environment.yml, requirements.txt, ...")
    parser.add_argument("--name", help="environment name (default: from the file)")
    parser.add_argument("--base-image", help="start from this image instead of envbuild's default base")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="envbuild", description="Build environment specs into container images, once.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"envbuild {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("build", help="build (or find in the cache) the image of an environment")
    _spec_args(p)
    _common(p)
    p.add_argument("--template", help="a Jinja2 template extending environment.Dockerfile.j2")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--rebuild", action="store_true", help="build even if the cache has the image")
    p.add_argument("--refresh-lock", action="store_true", help="re-solve even if the lock cache has the spec")
    p.add_argument("-q", "--quiet", action="store_true", help="do not stream the build log")

    p = sub.add_parser("render", help="print the Dockerfile envbuild would build")
    _spec_args(p)
    _common(p)
    p.add_argument("--template", help="a Jinja2 template extending environment.Dockerfile.j2")

    p = sub.add_parser("lock", help="resolve an environment to a conda-lock.yml")
    _spec_args(p)
    _common(p)
    p.add_argument("-o", "--output", help="write the lock here (default: stdout)")
    p.add_argument("-p", "--platform", help="target platform (default: linux-64)")
    p.add_argument("--python", help="Python version for pip-only environments (default: the base image's)")
    p.add_argument("--refresh", action="store_true", help="re-solve even if the lock cache has the spec")

    p = sub.add_parser("key", help="print the environment's key")
    _spec_args(p)
    _common(p)

    p = sub.add_parser("canonical", help="print the environment's canonical form as JSON")
    _spec_args(p)
    _common(p)
    return parser


def _load(args):
    from .spec import Environment

    env = Environment.from_file(args.spec, name=args.name)
    if args.base_image:
        env.docker.base_image = args.base_image
    return env


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_build(args) -> int:
    if not (args.rebuild or args.refresh_lock):
        from .api import cached_build_for_file

        image = cached_build_for_file(args.spec, base_image=args.base_image, cache_dir=args.cache_dir,
                                      template=args.template)
        if image is not None:
            _print_image(image, args.json)
            return 0
    from .api import build

    def progress(stage: str, message: str) -> None:
        if not args.json or args.debug:
            _err(f"envbuild: {stage}: {message}")

    def stream(line: str) -> None:
        if not args.quiet:
            _err(f"  | {line}")

    image = build(_load(args), cache_dir=args.cache_dir, template=args.template, refresh_lock=args.refresh_lock,
                  rebuild=args.rebuild, on_progress=progress, on_log=stream)
    _print_image(image, args.json)
    return 0


def _print_image(image, as_json: bool) -> None:
    if as_json:
        print(json.dumps(image.to_dict(), sort_keys=True))
    else:
        state = "cached" if image.cached else "built"
        print(f"{state} {image.image} ({image.id[:19]}) in {image.seconds:.2f}s")


def cmd_render(args) -> int:
    from .api import render

    plan = render(_load(args), cache_dir=args.cache_dir, template=args.template,
                  on_progress=lambda stage, message: _err(f"envbuild: {stage}: {message}") if args.debug else None)
    sys.stdout.write(plan.dockerfile)
    return 0


def cmd_lock(args) -> int:
    from .api import lock

    env = _load(args)
    python = args.python
    glibc = None
    if python is None and not env.python.conda_dependencies.conda_packages:
        from .api import _base_for
        from .engine import Engine

        base = _base_for(env, Engine())
        python, glibc = base.python_version, base.glibc
    result = lock(env, platform=args.platform, python_version=python, glibc=glibc, cache_dir=args.cache_dir,
                  refresh=args.refresh)
    if args.output:
        result.write(args.output)
        _err(f"envbuild: wrote {args.output} ({len(result.packages)} packages, lock {result.key})")
    else:
        sys.stdout.write(result.text)
    return 0


def cmd_key(args) -> int:
    print(_load(args).key)
    return 0


def cmd_canonical(args) -> int:
    print(json.dumps(_load(args).canonical(), indent=2, sort_keys=True))
    return 0


COMMANDS = {"build": cmd_build, "render": cmd_render, "lock": cmd_lock, "key": cmd_key, "canonical": cmd_canonical}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return COMMANDS[args.command](args)
    except EnvbuildError as exc:
        if args.debug:
            raise
        _err(f"envbuild: error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        _err("envbuild: interrupted")
        return 130
