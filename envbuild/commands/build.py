"""build: the pipeline's steps from the command line.

`envbuild build SPEC` on a spec file seen before is answered by `cached_build` before argparse is even imported
(see cli.main): argparse and the modules of the other commands cost a cache hit more than the lookup itself.
"""

from __future__ import annotations

from . import add_allow_host_builds, add_common, add_spec, err, load_spec, with_python

# What `cached_build` reads of a command line, spelled exactly so; anything else goes to argparse.
_FAST_FLAGS = {"--json": "json", "-q": "quiet", "--quiet": "quiet"}
_FAST_OPTIONS = {"--cache-dir": "cache_dir", "--base-image": "base_image", "--template": "template"}


def register(sub) -> None:
    p = sub.add_parser("build", help="build (or find in the cache) the image of an environment")
    add_spec(p)
    add_common(p)
    p.add_argument("--template", help="a Jinja2 template extending environment.Dockerfile.j2")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--rebuild", action="store_true", help="build even if the cache has the image")
    p.add_argument("--refresh-lock", action="store_true", help="re-solve even if the lock cache has the spec")
    p.add_argument("--python", help="Python version: conda environments get python=VERSION; pip-only ones are "
                                    "locked for it (their base image must have it)")
    p.add_argument("-q", "--quiet", action="store_true", help="do not stream the build log")
    add_allow_host_builds(p)
    p.add_argument("--registry", help="shared cache HOST/REPO: pull from it instead of building, push after "
                                      "(default: $ENVBUILD_REGISTRY)")
    p.add_argument("--builder", choices=("buildx", "buildkit", "classic"),
                   help="force a builder (default: buildx, else a BuildKit docker CLI, else classic; $ENVBUILD_BUILDER)")
    p.set_defaults(func=cmd_build)


def cached_build(argv: list[str]) -> int | None:
    """`build SPEC [--json] [-q] [--cache-dir D] [--base-image B] [--template T]` (the arguments after `build`)
    answered by the byte-for-byte fast path (envbuild.hitpath): 0 once the image is printed, or None when the
    command line says anything more (argparse reads it then) or the spec file is not one seen before."""
    seen = {"spec": None, "json": False, "cache_dir": None, "base_image": None, "template": None}
    words = iter(argv)
    for word in words:
        if word in _FAST_FLAGS:
            seen[_FAST_FLAGS[word]] = True
        elif word in _FAST_OPTIONS:
            value = next(words, None)
            if value is None or value.startswith("-"):
                return None
            seen[_FAST_OPTIONS[word]] = value
        elif word.startswith("-") or seen["spec"] is not None:
            return None
        else:
            seen["spec"] = word
    if seen["spec"] is None:
        return None
    return 0 if _print_cached(seen["spec"], seen["base_image"], seen["cache_dir"], seen["template"],
                              seen["json"]) else None


def cmd_build(args) -> int:
    if not (args.rebuild or args.refresh_lock or args.python) and _print_cached(args.spec, args.base_image, args.cache_dir,
                                                                 args.template, args.json):
        return 0
    from ..api import build
    from .progress import BuildDisplay

    with BuildDisplay(quiet=args.quiet, json_output=args.json, debug=args.debug) as display:
        image = build(with_python(load_spec(args), args.python), cache_dir=args.cache_dir, template=args.template,
                      refresh_lock=args.refresh_lock, rebuild=args.rebuild, registry=args.registry,
                      builder=args.builder, python_version=args.python, on_progress=display.progress,
                      on_log=display.log, allow_host_builds=args.allow_host_builds)
    _print_image(image, args.json)
    return 0


def _print_cached(spec: str, base_image: str | None, cache_dir: str | None, template: str | None,
                  as_json: bool) -> bool:
    """Print the image of `spec` if the fast path knows it; whether it did."""
    from ..hitpath import cached_build_for_file

    image = cached_build_for_file(spec, base_image=base_image, cache_dir=cache_dir, template=template)
    if image is not None:
        _print_image(image, as_json)
    return image is not None


def _print_image(image, as_json: bool) -> None:
    if as_json:
        import json

        print(json.dumps(image.to_dict(), sort_keys=True))
    else:
        for warning in image.warnings:
            err(f"envbuild: warning: {warning}")
        print(f"{image.source} {image.image} ({image.id[:19]}) in {image.seconds:.2f}s")
