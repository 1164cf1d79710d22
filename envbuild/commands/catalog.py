"""env create/list/show/update/delete/restore, history, diff, run, shell: the catalog and using environments.

The `env` group mirrors Azure ML CLI v2 (`az ml environment ...`): same verbs, same --name/--version/--set.
Every command that prints a result takes --json (stdout carries the result; messages go to stderr).
"""

from __future__ import annotations

import argparse
import json
import sys

from . import add_catalog, add_common, err


def register(sub) -> None:
    env = sub.add_parser("env", help="named, versioned environments (the catalog)")
    verbs = env.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = verbs.add_parser("create", help="register a spec file as a new version (unchanged definition: same version)")
    p.add_argument("--file", "-f", required=True,
                   help="spec file (environment.yml, requirements.txt, Azure ML YAML, ...) or curated:NAME")
    p.add_argument("--name", "-n", help="environment name (default: from the file)")
    p.add_argument("--version", "-v",
                   help="explicit version number (default: the next one when the definition changed)")
    p.add_argument("--description", help="description of this version")
    p.add_argument("--tag", action="append", default=[], metavar="K=V", help="a tag (repeatable)")
    p.add_argument("--build", action="store_true", help="also build its image now (and record it in the history)")
    _common(p, cmd_create)

    p = verbs.add_parser("list", help="latest version of every environment, or every version of one")
    p.add_argument("--name", "-n", help="list the versions of this environment")
    p.add_argument("--archived", action="store_true", help="include archived (deleted) versions")
    p.add_argument("--curated", action="store_true", help="list the curated environments shipped with envbuild")
    _common(p, cmd_list)

    p = verbs.add_parser("show", help="one version: metadata, definition, builds")
    p.add_argument("--name", "-n", required=True)
    p.add_argument("--version", "-v", help="version number or latest (default: latest)")
    p.add_argument("--lock", action="store_true", help="print the lock of the latest build instead")
    _common(p, cmd_show)

    p = verbs.add_parser("update", help="change the description or tags of a version (nothing else is mutable)")
    p.add_argument("--name", "-n", required=True)
    p.add_argument("--version", "-v", required=True)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", dest="assignments",
                   help="description=TEXT or tags.NAME=VALUE (repeatable)")
    p.add_argument("--remove", action="append", default=[], metavar="tags.NAME", help="remove a tag (repeatable)")
    _common(p, cmd_update)

    for verb, helptext in (("delete", "archive a version: hidden from list, still usable as NAME:VERSION"),
                           ("restore", "undo delete")):
        p = verbs.add_parser(verb, help=helptext)
        p.add_argument("--name", "-n", required=True)
        p.add_argument("--version", "-v", required=True)
        _common(p, cmd_archive)

    p = sub.add_parser("history", help="versions of an environment with who registered them, when, and their key")
    p.add_argument("name")
    _common(p, cmd_history)

    p = sub.add_parser("diff", help="what changed between two environments (NAME:1 NAME:2, spec files, curated:...)")
    p.add_argument("old")
    p.add_argument("new")
    _common(p, cmd_diff)

    for command, helptext in (("run", "run a command in an environment (built first if needed)"),
                              ("shell", "an interactive shell in an environment")):
        p = sub.add_parser(command, help=helptext)
        p.add_argument("ref", metavar="SPEC|NAME[:VERSION]", help="spec file, catalog NAME[:VERSION] or curated:NAME")
        _run_options(p)
        if command == "run":
            p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD",
                           help="the command and its arguments (options between SPEC and -- are envbuild's)")
        p.set_defaults(func=cmd_run, shell=command == "shell")


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shm-size", default=None, help="shared memory size, e.g. 2g (default: docker.shm_size, else 1g)")
    parser.add_argument("--gpus", choices=("auto", "all", "none"), default="auto",
                        help="auto: --gpus all for GPU environments on a host with GPUs")
    parser.add_argument("--mount-at", help="where the working directory appears (default: the same path)")
    parser.add_argument("-e", "--env", action="append", default=[], metavar="K=V", help="extra variable for this run")
    quiet = parser.add_mutually_exclusive_group()
    quiet.add_argument("-v", "--verbose", action="store_true", help="also stream the build log (stderr)")
    quiet.add_argument("-q", "--quiet", action="store_true", help="no envbuild progress on stderr, only the command's")
    add_common(parser)
    add_catalog(parser)


def _common(parser: argparse.ArgumentParser, func) -> None:
    add_common(parser)
    add_catalog(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=func)


def _print_json(value) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def _pairs(items: list[str], what: str) -> dict[str, str]:
    from ..errors import CatalogError

    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CatalogError(f"{what} {item!r} is not NAME=VALUE", fix="write it as NAME=VALUE")
        out[name] = value
    return out


# -- env ----------------------------------------------------------------------------------------------------------


def cmd_create(args) -> int:
    from ..catalog.store import Catalog
    from ..references import load

    env = load(args.file, name=args.name)
    if args.name:
        env.name = args.name
    if args.version:
        env.version = args.version
    if args.description is not None:
        env.description = args.description
    env.tags.update(_pairs(args.tag, "tag"))
    with Catalog(args.cache_dir, args.catalog) as cat:
        version = cat.register(env)
        entry = cat.entry(env.name, version)
    if args.build:
        from ..api import build
        from ..runner import record_image

        record_image(entry, build(env, cache_dir=args.cache_dir,
                                  on_progress=lambda stage, message: err(f"envbuild: {stage}: {message}")),
                     args.cache_dir, args.catalog)
        with Catalog(args.cache_dir, args.catalog) as cat:
            entry = cat.entry(entry.name, entry.version)
    if args.json:
        _print_json(entry.to_dict())
    else:
        print(f"{entry.ref} {entry.key}")
    return 0


def curated_rows() -> list[dict]:
    """What `env list --curated --json` prints (and `envbuild ui` shows): each curated environment's versions."""
    from .. import curated

    return [{"name": name, "versions": curated.curated_versions(name),
             "ref": f"curated:{name}:{curated.curated_versions(name)[-1]}",
             "description": curated.load_curated(f"curated:{name}").description}
            for name in curated.curated_names()]


def cmd_list(args) -> int:
    from .. import catalog

    if args.curated:
        rows = curated_rows()
        if args.json:
            _print_json(rows)
        else:
            for row in rows:
                print(f"{row['ref']:<40} {row['description'] or ''}")
        return 0
    entries = catalog.list(args.name, include_archived=args.archived, home=args.cache_dir, url=args.catalog)
    if args.json:
        _print_json([e.to_dict(with_definition=False) for e in entries])
        return 0
    if not entries:
        err("envbuild: the catalog is empty" if not args.name else f"envbuild: no versions of {args.name}")
        return 0
    print(f"{'NAME':<24} {'VERSION':>7}  {'KEY':<36}  {'CREATED':<20}  {'BY':<12} DESCRIPTION")
    for e in entries:
        archived = " (archived)" if e.archived else ""
        print(f"{e.name:<24} {e.version:>7}  {e.key:<36}  {e.created:<20}  {e.created_by:<12} "
              f"{e.description or ''}{archived}")
    return 0


def cmd_show(args) -> int:
    from ..catalog.store import Catalog

    with Catalog(args.cache_dir, args.catalog) as cat:
        entry = cat.entry(args.name, args.version)
    if args.lock:
        build = entry.latest_build
        if build is None or not build.lock:
            from ..errors import CatalogError

            raise CatalogError(f"{entry.ref} has not been built yet",
                               fix=f"`envbuild run {entry.ref} -- true` builds it")
        sys.stdout.write(build.lock)
        return 0
    data = entry.to_dict()
    if args.json:
        _print_json(data)
        return 0
    import yaml

    sys.stdout.write(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))
    return 0


def cmd_update(args) -> int:
    from ..catalog.store import Catalog
    from ..errors import CatalogError

    with Catalog(args.cache_dir, args.catalog) as cat:
        entry = cat.entry(args.name, args.version)
        changes: dict = {}
        tags = dict(entry.tags)
        for field, value in _pairs(args.assignments, "--set").items():
            if field.startswith("tags."):
                tags[field[len("tags."):]] = value
            else:
                changes[field] = value
        for field in args.remove:
            if not field.startswith("tags."):
                raise CatalogError(f"--remove {field}: only tags can be removed", fix="write --remove tags.NAME")
            tags.pop(field[len("tags."):], None)
        if tags != entry.tags:
            changes["tags"] = tags
        updated = cat.update(entry.name, entry.version, **changes)
    if args.json:
        _print_json(updated.to_dict(with_definition=False))
    else:
        print(f"updated {updated.ref}: description={updated.description!r} tags={updated.tags}")
    return 0


def cmd_archive(args) -> int:
    from ..catalog.store import Catalog

    with Catalog(args.cache_dir, args.catalog) as cat:
        entry = cat.delete(args.name, args.version) if args.verb == "delete" else cat.restore(args.name, args.version)
    if args.json:
        _print_json(entry.to_dict(with_definition=False))
    else:
        print(f"{'archived' if entry.archived else 'restored'} {entry.ref}")
    return 0


# -- history, diff ------------------------------------------------------------------------------------------------


def cmd_history(args) -> int:
    from ..catalog.store import Catalog

    with Catalog(args.cache_dir, args.catalog) as cat:
        entries, events = cat.history(args.name)
    if args.json:
        _print_json({"name": args.name, "versions": [e.to_dict(with_definition=False) for e in entries],
                     "events": events})
        return 0
    print(f"{'VERSION':>7}  {'CREATED':<20}  {'BY':<12}  {'KEY':<36}  BUILDS")
    for e in entries:
        state = " (archived)" if e.archived else ""
        built = ", ".join(b.image for b in e.builds) or "-"
        print(f"{e.version:>7}  {e.created:<20}  {e.created_by:<12}  {e.key:<36}  {built}{state}")
    for event in events:
        if event["action"] not in ("register", "build"):
            print(f"  {event['at']}  {event['by']}: {event['action']} {args.name}:{event['version']} "
                  f"{json.dumps(event['detail'], sort_keys=True) if event['detail'] else ''}".rstrip())
    return 0


def cmd_diff(args) -> int:
    from dataclasses import asdict

    from ..explain import diff_environments, format_differences

    (old, old_form, old_key), (new, new_form, new_key) = (_as_registered(ref, args) for ref in (args.old, args.new))
    changes, metadata = diff_environments(old, new, old_form, new_form)
    if args.json:
        _print_json({"old": args.old, "new": args.new, "old_key": old_key, "new_key": new_key,
                     "same_key": old_key == new_key, "changes": [asdict(d) for d in changes],
                     "metadata": [asdict(d) for d in metadata]})
        return 0
    print(f"A: {args.old} {old_key}\nB: {args.new} {new_key}")
    print(format_differences(changes, args.old, args.new))
    if metadata:
        print("metadata (not part of the key):\n" + "\n".join(f"  {d}" for d in metadata))
    return 0


def _as_registered(ref: str, args):
    """The environment `ref` names, with the canonical form and key to compare: a catalog version's own, as
    registered (whatever its files have become since); a spec file's as it is now."""
    from ..explain import compared_form
    from ..references import resolve

    env, entry = resolve(ref, home=args.cache_dir, catalog_url=args.catalog)
    return (env, *compared_form(env, entry))


# -- run, shell ---------------------------------------------------------------------------------------------------


def _split_run_arguments(args) -> list[str]:
    """`run SPEC [OPTIONS] -- CMD...`: argparse hands everything after SPEC over unparsed (so that the command's
    own options stay its own); the options before `--` are envbuild's and are parsed here. Without `--`, all of it
    is the command, as with `docker run IMAGE CMD...`."""
    rest = args.command
    if "--" not in rest:
        return rest
    split = rest.index("--")
    if split:
        options = argparse.ArgumentParser(prog=f"envbuild run {args.ref}", add_help=False)
        _run_options(options)
        options.parse_args(rest[:split], namespace=args)
    return rest[split + 1:]



def cmd_run(args) -> int:
    from ..runner import run_ref

    if args.shell:
        command = ["sh", "-c", "command -v bash >/dev/null && exec bash || exec sh"]
    else:
        command = _split_run_arguments(args)
        if not command:
            from ..errors import SpecError

            raise SpecError("no command to run", fix=f"write it after `--`: envbuild run {args.ref} -- python -V")

    def progress(stage: str, message: str) -> None:
        # A build can take minutes: say so. A cache hit is the normal case and stays silent.
        if not args.quiet and (stage != "cache" or args.verbose):
            err(f"envbuild: {stage}: {message}")

    result = run_ref(args.ref, command, cache_dir=args.cache_dir, catalog_url=args.catalog, shm_size=args.shm_size,
                     gpus=args.gpus, mount_at=args.mount_at, environment=_pairs(args.env, "-e"), capture=False,
                     interactive=True, on_progress=progress,
                     on_log=(lambda line: err(f"  | {line}")) if args.verbose else None)
    return result.returncode
