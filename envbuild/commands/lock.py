"""lock: resolve an environment to one conda-lock.yml for one or more platforms."""

from __future__ import annotations

import sys

from . import add_allow_host_builds, add_common, add_spec, err, load_spec, with_python


def register(sub) -> None:
    p = sub.add_parser("lock", help="resolve an environment to a conda-lock.yml (from the lock cache when it can)")
    add_spec(p)
    add_common(p)
    p.add_argument("-o", "--output", help="write the lock here, only once it is solved (default: stdout)")
    p.add_argument("-p", "--platform", action="append", dest="platforms", metavar="PLATFORM",
                   help="target platform, repeat for several (default: the environment's, linux-64)")
    p.add_argument("--python", help="Python version: conda environments get python=VERSION; pip-only ones are "
                                    "locked for it (default: the base image's Python)")
    p.add_argument("--exclude-newer", metavar="DATE",
                   help="ignore packages published after DATE (2024-06-01 or an ISO timestamp): a repeatable solve")
    p.add_argument("--refresh", action="store_true", help="re-solve even if the lock cache has the spec")
    add_allow_host_builds(p)
    p.set_defaults(func=cmd_lock)


def cmd_lock(args) -> int:
    from ..api import base_for, lock

    env = with_python(load_spec(args), args.python)
    python = args.python
    glibc = sdist_image = None
    if python is None and not env.python.conda_dependencies.conda_packages and not getattr(env, "lock_file", None):
        from ..engine import Engine

        base = base_for(env, Engine())
        python, glibc = base.python_version, base.glibc
        sdist_image = base.ref if base.python_version else None
    result = lock(env, platforms=args.platforms or [env.docker.platform], python_version=python, glibc=glibc,
                  exclude_newer=args.exclude_newer, cache_dir=args.cache_dir, refresh=args.refresh,
                  allow_host_builds=args.allow_host_builds, sdist_image=sdist_image,
                  on_progress=lambda stage, message: err(f"envbuild: {stage}: {message}") if args.debug else None)
    if args.output:
        result.write(args.output)
        # Each platform's lock key is the one `build` labels its image with (org.envbuild.lock-key); the set's key
        # (over all of them) is named apart, and only where there is a set.
        locks = "; ".join(f"{lock.platform}: {len(lock.packages)} packages, lock {lock.key}" for lock in result.locks)
        every = f"; lock set {result.key}" if len(result.locks) > 1 else ""
        err(f"envbuild: wrote {args.output} ({locks}{every})")
    else:
        sys.stdout.write(result.text)
    return 0
