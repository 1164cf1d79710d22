"""build: the pipeline's steps from the command line."""

from __future__ import annotations

import json

from . import add_common, add_spec, err, load_spec


def register(sub) -> None:
    p = sub.add_parser("build", help="build (or find in the cache) the image of an environment")
    add_spec(p)
    add_common(p)
    p.add_argument("--template", help="a Jinja2 template extending environment.Dockerfile.j2")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--rebuild", action="store_true", help="build even if the cache has the image")
    p.add_argument("--refresh-lock", action="store_true", help="re-solve even if the lock cache has the spec")
    p.add_argument("-q", "--quiet", action="store_true", help="do not stream the build log")
    p.add_argument("--registry", help="shared cache HOST/REPO: pull from it instead of building, push after "
                                      "(default: $ENVBUILD_REGISTRY)")
    p.add_argument("--builder", choices=("buildx", "buildkit", "classic"),
                   help="force a builder (default: buildx, else a BuildKit docker CLI, else classic; $ENVBUILD_BUILDER)")
    p.set_defaults(func=cmd_build)


def cmd_build(args) -> int:
    if not (args.rebuild or args.refresh_lock):
        from ..api import cached_build_for_file

        image = cached_build_for_file(args.spec, base_image=args.base_image, cache_dir=args.cache_dir,
                                      template=args.template)
        if image is not None:
            _print_image(image, args.json)
            return 0
    from ..api import build
    from .progress import BuildDisplay

    with BuildDisplay(quiet=args.quiet, json_output=args.json, debug=args.debug) as display:
        image = build(load_spec(args), cache_dir=args.cache_dir, template=args.template,
                      refresh_lock=args.refresh_lock, rebuild=args.rebuild, registry=args.registry,
                      builder=args.builder, on_progress=display.progress, on_log=display.log)
    _print_image(image, args.json)
    return 0


def _print_image(image, as_json: bool) -> None:
    if as_json:
        print(json.dumps(image.to_dict(), sort_keys=True))
    else:
        for warning in image.warnings:
            err(f"envbuild: warning: {warning}")
        print(f"{image.source} {image.image} ({image.id[:19]}) in {image.seconds:.2f}s")
