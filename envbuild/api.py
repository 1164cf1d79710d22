"""The public pipeline: Environment → Lock → BuildPlan → Image, with the cache consulted before every arrow.

`build()` reads as six named steps:
1. look up: key the request (spec key, base image id, template) and ask the request's finders (the index, the
   shared registry): an environment seen before is done without locking or rendering;
2. lock: from the lock cache, else a solve;
3. render: the BuildPlan, whose key is over what the image contains, so two specs that lock to the same packages
   share one image;
4. look up again: the plan's finders (the index entry, the engine's key tag, the shared registry), under a lock
   per build key so that identical builds in flight are merged (the later ones find what the first built);
5. build: only when no finder has the image; its index entry is written once the image exists;
6. share: push to the shared registry what this call built (or found on its engine but not shared yet).
A finder (envbuild.finders) answers `find(wanted) -> Image | None`; every image a finder or a build obtains goes into the index first
(`cache.new_entry`, in `finders.index_image`) and comes back as an `Image` made from that entry (`cache.image_of`).
The byte-for-byte fast path of the command line, which skips even step 1's parsing, is envbuild.hitpath.
Library code never prints: progress goes to `on_progress(stage, message)` and build output to `on_log(line)`.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from . import config
from .cache import Image, Index, image_of
from .engine import Engine
from .hitpath import remember_file
from .journal import BuildJournal
from .finders import EngineFinder, IndexFinder, RegistryFinder, Wanted, detail_of, index_image, look_up
from .keys import request_key, tag_of, template_digest
from .private_base import pull_private_base
from .progress import ProgressCallback, notify


def lock(env, *, platform: str | None = None, platforms: list[str] | None = None, python_version: str | None = None,
         glibc: str | None = None, exclude_newer=None, cache_dir=None, refresh: bool = False,
         on_progress: ProgressCallback | None = None, allow_host_builds: bool = False, sdist_image: str | None = None):
    """Resolve `env` from the lock cache unless `refresh`: the Lock of one platform (`platform`, default the
    environment's), or with `platforms` a LockSet (one conda-lock.yml for all of them, a Lock per platform).

    A failed solve raises ResolveError and caches nothing. A hit costs a few milliseconds and imports neither
    rattler nor conda-lock.

    An sdist whose metadata the solve needs is built in a throwaway container of `sdist_image` (the target's base;
    default envbuild's), never on this machine unless `allow_host_builds` (envbuild.resolver.isolated).
    """
    from .keys import canonical_spec, lock_request_key
    from .resolver import SdistPolicy, parse_exclude_newer, resolve_platforms, target_platforms

    spec = canonical_spec(env)
    wanted = target_platforms(spec, platforms or [platform or spec.platform])
    request = lock_request_key(spec, wanted, python_version=python_version, glibc=glibc,
                               exclude_newer=parse_exclude_newer(exclude_newer))
    index = _lock_index(config.home(cache_dir))
    result = None if refresh else index.lock_get(request)
    if result is not None:
        notify(on_progress, "lock", "lock cache hit")
    else:
        notify(on_progress, "lock", f"solving for {', '.join(wanted)}")
        started = time.perf_counter()
        result = resolve_platforms(spec, wanted, python_version=python_version, glibc=glibc,
                                   exclude_newer=exclude_newer,
                                   sdists=SdistPolicy(image=sdist_image, allow_host=allow_host_builds))
        notify(on_progress, "lock", f"solved {len(result.packages)} packages in {time.perf_counter() - started:.2f}s")
        index.lock_put(request, result)
    return result if platforms else result.locks[0]


# Open lock-cache indexes of this process, by (home, pid): opening a diskcache costs several times a hit.
_lock_indexes: dict[tuple[str, int], tuple[Index, int]] = {}


def _lock_index(home: Path) -> Index:
    """The index the lock cache lives in, kept open for the process (dropped if its database was replaced)."""
    key = (str(home), os.getpid())
    opened = _lock_indexes.get(key)
    database = home / "index" / "cache.db"
    if opened:
        try:
            if database.stat().st_ino == opened[1]:
                return opened[0]
        except OSError:
            pass
        opened[0].close()
    index = Index(home)
    _lock_indexes[key] = (index, database.stat().st_ino)
    return index


def base_for(env, engine: Engine, on_log=None, shared=None, on_progress=None, spec=None):
    """The base `env` starts from: its user Dockerfile/context built as given, the image it names (behind
    `docker.base_image_registry`'s login: pulled with it, private_base.py), envbuild's GPU base for its stack, or
    the default base (see bases.base_for_env); with a `shared` registry, a base envbuild makes is the registry's
    (shared_bases.py). `spec` is env's CanonicalSpec when the caller has it already."""
    from .bases import base_for_env
    from .keys import canonical_spec

    pull_private_base(env, engine, on_progress)
    return base_for_env(spec or canonical_spec(env), engine, on_log=on_log, shared=shared)


def _installer_base(spec, engine: Engine, on_log=None, shared=None) -> str | None:
    """Conda environments are installed with envbuild's own Python base, whatever the final base is."""
    from .bases import DEFAULT_BASE, resolve_base

    if not spec.conda:
        return None
    return resolve_base(DEFAULT_BASE, engine, on_log=on_log, shared=shared).from_ref


def lock_python(spec, base, python_version: str | None) -> str | None:
    """The Python a build locks pip packages for: the base image's, or `python_version` (`--python`), which a
    pip-only environment installs into the base's own Python, so the base must have it. (A conda environment gets
    its Python from conda: `--python` pins it there, see commands.with_python.)"""
    if python_version and spec.pip and not spec.conda and not spec.lock_file and base.python_version \
            and base.python_version.split(".")[:2] != str(python_version).split(".")[:2]:
        from .errors import SpecError

        raise SpecError(f"--python {python_version}: the pip packages are installed into the base image's Python, "
                        f"and {base.ref} has Python {base.python_version}", where=spec.origin,
                        fix=f"start from an image with Python {python_version} (--base-image IMAGE), or let conda "
                            f"bring it: list `python={python_version}` and the pip packages in an environment.yml "
                            "with a channel")
    return python_version or base.python_version


def render(env, *, cache_dir=None, template=None, refresh_lock: bool = False, gpu: bool | None = None,
           cuda: str | None = None, buildkit: bool = True, python_version: str | None = None, on_progress=None,
           on_log=None, allow_host_builds: bool = False):
    """The BuildPlan for `env` on its base image (locks first, from the lock cache when it can).

    `gpu`/`cuda` ask for a GPU stack (see envbuild.gpu); `buildkit=False` renders for the classic builder;
    `python_version` the Python of pip-only environments (see lock_python).
    """
    from .keys import canonical_spec
    from .registry import configured
    from .renderer import render as render_plan

    if gpu is not None or cuda is not None:
        env = env.copy()
        env.docker.gpu = bool(gpu) or cuda is not None
        env.docker.cuda = cuda or env.docker.cuda
    spec = canonical_spec(env)
    engine = Engine()
    shared = configured()  # the bases a build with ENVBUILD_REGISTRY would stand on
    base = base_for(env, engine, on_log, shared, on_progress, spec=spec)
    resolved = lock(spec, python_version=lock_python(spec, base, python_version), glibc=base.glibc,
                    cache_dir=cache_dir, refresh=refresh_lock, on_progress=on_progress,
                    allow_host_builds=allow_host_builds, sdist_image=base.ref if base.python_version else None)
    return render_plan(spec, resolved, base, template=template,
                       installer_from=_installer_base(spec, engine, on_log, shared), buildkit=buildkit)


def build(env, *, cache_dir=None, template=None, refresh_lock: bool = False, rebuild: bool = False,
          registry: str | None = None, builder: str | None = None, python_version: str | None = None,
          on_progress: ProgressCallback | None = None, on_log: Callable[[str], None] | None = None,
          allow_host_builds: bool = False) -> Image:
    """Build `env` into an image, or return the image already built for an equivalent environment.

    `registry` (``HOST/REPO``, default ENVBUILD_REGISTRY) is the shared cache: looked up before building, pushed
    to after. `builder` forces buildx | buildkit | classic (default: the best one found). `python_version`: the
    Python of a pip-only environment (see lock_python). `rebuild` skips every
    cache (index, engine, registry) but the engine's layer cache; `refresh_lock` skips the request lookup.
    """
    from .builder import find_builder
    from .keys import canonical_spec
    from .registry import configured
    from .renderer import render as render_plan

    spec = canonical_spec(env)  # the GPU stack, the base and the platform decided once, before anything is keyed
    started = time.perf_counter()
    engine = Engine()
    index = Index(config.home(cache_dir))
    shared = configured(registry)
    journal = None
    try:
        base = base_for(env, engine, on_log, shared, on_progress, spec=spec)
        for warning in base.warnings:
            notify(on_progress, "base", f"warning: {warning}")
        python = lock_python(spec, base, python_version)
        spec_key = spec.key
        local_channels = [c for c in spec.channels if c.startswith("file://")]
        template_hash = template_digest(template)
        requested = request_key(spec_key, base.id, template_hash, local_channels, spec.platform)
        pull = RegistryFinder(index, engine, shared, started, on_progress, on_log)

        # 1. look up: the request, before locking
        if not (rebuild or refresh_lock):
            image = look_up([IndexFinder(index, engine, started), pull], Wanted(requested))
            if image is not None:
                _remember(index, env, spec, base, image, requested, template_hash, local_channels)
                notify(on_progress, "cache", f"{image.source}: {image.image}")
                return image._replace(warnings=base.warnings + image.warnings)

        # Missed: this call may take minutes, so others can follow it (`envbuild ui` reads the journal).
        journal = BuildJournal.start(index.home, env.name)
        on_progress, on_log = journal.tee(on_progress, on_log)

        # 2. lock
        resolved = lock(spec, python_version=python, glibc=base.glibc, cache_dir=cache_dir,
                        refresh=refresh_lock, on_progress=on_progress, allow_host_builds=allow_host_builds,
                        sdist_image=base.ref if base.python_version else None)

        # 3. render
        chosen = find_builder(builder)
        plan = render_plan(spec, resolved, base, template=template,
                           installer_from=_installer_base(spec, engine, on_log, shared),
                           **({} if chosen.buildkit else {"buildkit": False}))
        wanted = Wanted(requested, plan)

        # 4. look up again: the plan's key (first without waiting, then under its build lock)
        image = None if rebuild else IndexFinder(index, engine, started).find(wanted)
        if image is None:
            with _merged(index, plan.key, engine.host, on_progress) as joined:
                in_index, on_engine = ("joined", "joined") if joined else ("cache", "engine")
                if not rebuild:
                    image = look_up([IndexFinder(index, engine, started, in_index),
                                      EngineFinder(index, engine, started, env.name, on_engine), pull], wanted)
                # 5. build
                built = image is None
                if built:
                    image = _build(index, engine, shared, plan, resolved, env, chosen, started, on_progress, on_log)
                # 6. share
                if shared is not None and (built or (image.source == "engine" and not shared.has(tag_of(image.key)))):
                    image = _share(index, engine, shared, image, requested, plan, chosen, on_progress, on_log)
        _remember(index, env, spec, base, image, requested, template_hash, local_channels)
        index.canonical_put(spec_key, spec.form)  # for `envbuild explain`
        if image.source != "built":
            notify(on_progress, "cache", f"{image.source}: {image.image}")
        image = image._replace(warnings=base.warnings + image.warnings)
        journal.finish(image)
        return image
    finally:
        if journal is not None:
            journal.close()
        index.close()
        engine.close()


def _remember(index: Index, env, spec, base, image: Image, requested: str, template: str | None,
              local_channels: list[str]) -> None:
    """Keep the answer to the request `requested` for the next call: in the index (step 1 reads it), and for the
    byte-for-byte fast path (the memo of env's spec file and the request's answer, next to the index)."""
    index.remember_request(requested, image.key)
    remember_file(index.home, env, spec.key, base, image, requested=requested, template=template,
                  local_channels=local_channels, platform=spec.platform)


# -- build and share ---------------------------------------------------------------------------------------------
def _build(index: Index, engine: Engine, shared, plan, resolved, env, chosen, started: float, on_progress,
           on_log) -> Image:
    """Build the plan and index it, only once the image exists."""
    import tempfile

    from .builder import build_image
    from .credentials import build_secrets
    from .errors import BuildError
    from .keys import canonical_spec

    warnings = (chosen.limitations,) if chosen.limitations else ()
    for warning in warnings:
        notify(on_progress, "build", f"warning: {warning}")
    from .layer_cache import Sources, cache_options, cache_sources

    sources = cache_sources(plan, engine.image_id) if shared is not None else Sources([], None)
    cache_from, cache_args = cache_options(plan, sources, shared, chosen)
    notify(on_progress, "build", f"building {plan.image} with {chosen.kind}")
    build_started = time.perf_counter()
    lines: list[str] = []  # the log so far, kept if the build fails

    def kept(line: str) -> None:
        lines.append(line)
        if on_log:
            on_log(line)

    with tempfile.TemporaryDirectory(prefix="envbuild-context-") as tmp, \
            tempfile.TemporaryDirectory(prefix="envbuild-secrets-") as secret_dir:
        secrets = build_secrets(canonical_spec(env), resolved, chosen.buildkit, Path(secret_dir))
        context = plan.write_context(tmp)
        try:
            image_id, build_log = build_image(
                context, plan.image, labels={**plan.metadata_labels, "org.envbuild.build-key": plan.key,
                                                 "org.envbuild.spec-key": plan.spec_key},
                secrets=secrets, on_log=kept, cache_from=cache_from, builder=chosen, extra_args=cache_args)
        except BuildError:
            index.failed_put(plan.key, "\n".join(lines))  # `envbuild logs KEY` / `--last-failed`
            raise
    build_seconds = time.perf_counter() - build_started
    record = engine.inspect_image(image_id) or {}
    labels = (record.get("Config") or {}).get("Labels") or {}
    entry = index_image(index, plan.key, log=build_log, detail=detail_of(plan, labels, resolved.text),
                         image=plan.image, image_id=image_id, name=env.name, spec_key=plan.spec_key,
                         lock_key=plan.lock_key, base_id=plan.base_id, build_seconds=build_seconds,
                         size=record.get("Size", 0), source="built")
    notify(on_progress, "build", f"built {plan.image} in {build_seconds:.1f}s")
    return image_of(entry, plan.key, source="built", started=started, builder=chosen.kind, warnings=warnings)


def _share(index: Index, engine: Engine, shared, image: Image, requested: str, plan, chosen, on_progress,
           on_log) -> Image:
    """Push `image` to the shared registry under its build key and its request key, then its installer stages as
    layer-cache sources for related builds on other machines (layer_cache.py). The time it takes is the result's
    `push_seconds`. A registry that is down or refuses ends this within seconds (registry.Registry.available, and
    the CLI stopped at its first retry): the image stays local, and the result's warnings say so in one line."""
    from .errors import BuildError, CacheError
    from .layer_cache import cache_sources, new_final_tags, share_stages

    started = time.perf_counter()
    notify(on_progress, "registry", f"pushing {shared.build_ref(image.key)}")
    try:
        sources = cache_sources(plan, engine.image_id)
        pushed = shared.push(image.image, [tag_of(image.key), "req-" + tag_of(requested)]
                             + new_final_tags(sources, shared), on_log)
        index.update(image.key, digest=pushed)
        image = image._replace(digest=pushed)
        share_stages(plan, sources.stages, shared, chosen, on_log)
    except (CacheError, BuildError) as exc:
        notify(on_progress, "registry", f"warning: not shared, the image stays local: {exc.what}")
        image = image._replace(warnings=image.warnings + (f"not shared: {exc.what.splitlines()[0]}",))
    return image._replace(push_seconds=round(time.perf_counter() - started, 3))


@contextmanager
def _merged(index: Index, build_key: str, engine_host: str, on_progress):
    """Hold the build lock of `build_key`; yields whether another process held it first (we then joined it)."""
    from filelock import Timeout

    build_lock = index.build_lock(build_key, engine_host)
    try:
        build_lock.acquire(timeout=0)
        joined = False
    except Timeout:
        notify(on_progress, "build", f"waiting for an identical build in flight ({build_key})")
        build_lock.acquire()
        joined = True
    try:
        yield joined
    finally:
        build_lock.release()
