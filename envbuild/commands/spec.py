"""key, canonical, explain: what envbuild makes of a spec, and why two specs (or a spec and the cache) differ."""

from __future__ import annotations

import json
from dataclasses import asdict

from . import add_common, add_spec, load_spec


def register(sub) -> None:
    p = sub.add_parser("key", help="print the environment's key")
    add_spec(p)
    add_common(p)
    p.set_defaults(func=cmd_key)

    p = sub.add_parser("canonical", help="print the environment's canonical form as JSON (sorted, stable)")
    add_spec(p)
    add_common(p)
    p.set_defaults(func=cmd_canonical)

    p = sub.add_parser("explain", help="why two specs have different keys; with one spec, the nearest cached "
                                       "environment and why it is not a hit")
    add_spec(p)
    p.add_argument("other", nargs="?", help="a second spec to compare with (default: compare with the cache)")
    p.add_argument("--json", action="store_true", help="print the differences as JSON")
    add_common(p)
    p.set_defaults(func=cmd_explain)


def cmd_key(args) -> int:
    print(load_spec(args).key)
    return 0


def cmd_canonical(args) -> int:
    print(json.dumps(load_spec(args).canonical(), indent=2, sort_keys=True))
    return 0


def cmd_explain(args) -> int:
    from ..explain import diff_canonical, explain_miss, format_differences, nearest

    env = load_spec(args)
    canonical = env.canonical()
    if args.other:
        other = load_spec(_with_spec(args, args.other))
        differences = diff_canonical(canonical, other.canonical())
        if args.json:
            print(json.dumps([asdict(d) for d in differences], indent=2, sort_keys=True))
        else:
            print(f"A: {args.spec} ({env.key})\nB: {args.other} ({other.key})")
            print(format_differences(differences, args.spec, args.other))
        return 0
    from .. import config
    from ..cache import Index
    from ..keys import key_of

    home = config.home(args.cache_dir)
    spec_key = key_of(canonical)
    candidates, images = [], []
    if (home / "index").exists():
        index = Index(home)
        try:
            candidates = list(index.canonicals())
            images = [entry for _, entry in index.entries() if entry.get("spec_key") == spec_key]
        finally:
            index.close()
    if args.json:
        found = nearest(canonical, candidates)
        print(json.dumps({"spec_key": spec_key, "built": any(k == spec_key for k, _ in candidates),
                          "nearest": found[0].spec_key if found else None,
                          "differences": [asdict(d) for d in found[0].differences] if found else []},
                         indent=2, sort_keys=True))
    else:
        print(explain_miss(canonical, spec_key, candidates, images))
    return 0


def _with_spec(args, spec: str):
    from argparse import Namespace

    return Namespace(**{**vars(args), "spec": spec})
