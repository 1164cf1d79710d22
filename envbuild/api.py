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
A finder answers `find(wanted) -> Image | None`; every image a finder or a build obtains goes into the index first
(`cache.new_entry`, in `_index_image`) and comes back as an `Image` made from that entry (`cache.image_of`).
The byte-for-byte fast path of the command line, which skips even step 1's parsing, is envbuild.hitpath.
Library code never prints: progress goes to `on_progress(stage, message)` and build output to `on_log(line)`.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NamedTuple

from . import config
from .cache import Image, Index, image_of, new_entry
from .engine import Engine
from .hitpath import remember_file
from .keys import request_key, tag_of, template_digest

if TYPE_CHECKING:
    from .renderer import BuildPlan

ProgressCallback = Callable[[str, str], None]


def _log():
    import logging  # imported when there is something to log

    return logging.getLogger(__name__)


def _notify(on_progress: ProgressCallback | None, stage: str, message: str) -> None:
    _log().info("%s: %s", stage, message)
    if on_progress:
        on_progress(stage, message)


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
        _notify(on_progress, "lock", "lock cache hit")
    else:
        _notify(on_progress, "lock", f"solving for {', '.join(wanted)}")
        started = time.perf_counter()
        result = resolve_platforms(spec, wanted, python_version=python_version, glibc=glibc,
                                   exclude_newer=exclude_newer,
                                   sdists=SdistPolicy(image=sdist_image, allow_host=allow_host_builds))
        _notify(on_progress, "lock", f"solved {len(result.packages)} packages in {time.perf_counter() - started:.2f}s")
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


def base_for(env, engine: Engine, on_log=None):
    """The base `env` starts from: its user Dockerfile/context built as given, the image it names, envbuild's GPU
    base for its stack, or the default base (see bases.base_for_env)."""
    from .bases import base_for_env
    from .keys import canonical_spec

    return base_for_env(canonical_spec(env), engine, on_log=on_log)


def _installer_base(spec, engine: Engine, on_log=None) -> str | None:
    """Conda environments are installed with envbuild's own Python base, whatever the final base is."""
    from .bases import DEFAULT_BASE, resolve_base

    if not spec.conda:
        return None
    return resolve_base(DEFAULT_BASE, engine, on_log=on_log).from_ref


def render(env, *, cache_dir=None, template=None, refresh_lock: bool = False, gpu: bool | None = None,
           cuda: str | None = None, buildkit: bool = True, on_progress=None, on_log=None,
           allow_host_builds: bool = False):
    """The BuildPlan for `env` on its base image (locks first, from the lock cache when it can).

    `gpu`/`cuda` ask for a GPU stack (see envbuild.gpu); `buildkit=False` renders for the classic builder.
    """
    from .keys import canonical_spec
    from .renderer import render as render_plan

    if gpu is not None or cuda is not None:
        env = env.copy()
        env.docker.gpu = bool(gpu) or cuda is not None
        env.docker.cuda = cuda or env.docker.cuda
    spec = canonical_spec(env)
    engine = Engine()
    base = base_for(spec, engine, on_log)
    resolved = lock(spec, python_version=base.python_version, glibc=base.glibc, cache_dir=cache_dir,
                    refresh=refresh_lock, on_progress=on_progress, allow_host_builds=allow_host_builds,
                    sdist_image=base.ref if base.python_version else None)
    return render_plan(spec, resolved, base, template=template, installer_from=_installer_base(spec, engine, on_log),
                       buildkit=buildkit)


def build(env, *, cache_dir=None, template=None, refresh_lock: bool = False, rebuild: bool = False,
          registry: str | None = None, builder: str | None = None, on_progress: ProgressCallback | None = None,
          on_log: Callable[[str], None] | None = None, allow_host_builds: bool = False) -> Image:
    """Build `env` into an image, or return the image already built for an equivalent environment.

    `registry` (``HOST/REPO``, default ENVBUILD_REGISTRY) is the shared cache: looked up before building, pushed
    to after. `builder` forces buildx | buildkit | classic (default: the best one found). `rebuild` skips every
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
    try:
        base = base_for(spec, engine, on_log)
        spec_key = spec.key
        local_channels = [c for c in spec.channels if c.startswith("file://")]
        template_hash = template_digest(template)
        requested = request_key(spec_key, base.id, template_hash, local_channels, spec.platform)
        remember_file(index, env, spec_key, base, requested=requested, template=template_hash,
                      local_channels=local_channels, platform=spec.platform)
        pull = RegistryFinder(index, engine, shared, started, on_progress, on_log)

        # 1. look up: the request, before locking
        if not (rebuild or refresh_lock):
            image = _look_up([IndexFinder(index, engine, started), pull], Wanted(requested))
            if image is not None:
                index.remember_request(requested, image.key)
                _notify(on_progress, "cache", f"{image.source}: {image.image}")
                return image

        # 2. lock
        resolved = lock(spec, python_version=base.python_version, glibc=base.glibc, cache_dir=cache_dir,
                        refresh=refresh_lock, on_progress=on_progress, allow_host_builds=allow_host_builds,
                        sdist_image=base.ref if base.python_version else None)

        # 3. render
        chosen = find_builder(builder)
        plan = render_plan(spec, resolved, base, template=template, installer_from=_installer_base(spec, engine, on_log),
                           **({} if chosen.buildkit else {"buildkit": False}))
        wanted = Wanted(requested, plan)

        # 4. look up again: the plan's key (first without waiting, then under its build lock)
        image = None if rebuild else IndexFinder(index, engine, started).find(wanted)
        if image is None:
            with _merged(index, plan.key, engine.host, on_progress) as joined:
                in_index, on_engine = ("joined", "joined") if joined else ("cache", "engine")
                if not rebuild:
                    image = _look_up([IndexFinder(index, engine, started, in_index),
                                      EngineFinder(index, engine, started, env.name, on_engine), pull], wanted)
                # 5. build
                built = image is None
                if built:
                    image = _build(index, engine, shared, plan, resolved, env, chosen, started, on_progress, on_log)
                # 6. share
                if shared is not None and (built or (image.source == "engine" and not shared.has(tag_of(image.key)))):
                    image = _share(index, shared, image, requested, env.name, on_progress, on_log)
        index.remember_request(requested, image.key)
        index.canonical_put(spec_key, spec.form)  # for `envbuild explain`
        if image.source != "built":
            _notify(on_progress, "cache", f"{image.source}: {image.image}")
        return image
    finally:
        index.close()
        engine.close()


# -- finders: where an image may already be ---------------------------------------------------------------------
class Wanted(NamedTuple):
    """What a lookup looks for: the image of a build request, known before locking only by its request key, and
    after rendering by its plan (whose key is the build key)."""

    request: str
    plan: BuildPlan | None = None  # once rendered


def _look_up(finders: list, wanted: Wanted) -> Image | None:
    """The first finder's answer, in order (cheapest and most local first)."""
    for finder in finders:
        image = finder.find(wanted)
        if image is not None:
            return image
    return None


class IndexFinder:
    """The index entry of the build key (before locking: the one the request key led to last time), if the
    engine still has its image (one engine call)."""

    def __init__(self, index: Index, engine: Engine, started: float, source: str = "cache"):
        self.index, self.engine, self.started, self.source = index, engine, started, source

    def find(self, wanted: Wanted) -> Image | None:
        build_key = wanted.plan.key if wanted.plan is not None else self.index.resolve_request(wanted.request)
        entry = self.index.get(build_key) if build_key else None
        if entry is None:
            return None
        if self.engine.image_id(entry["image"]) != entry["id"]:
            _log().info("image %s of %s is gone from the engine", entry["image"], build_key)
            return None
        self.index.record_hit(build_key)
        return image_of(entry, build_key, source=self.source, started=self.started)


class EngineFinder:
    """The engine already holds the plan's image (its key tag, labelled with the key) though the index does not:
    built by another envbuild home, or by the identical build in flight this call waited for (`source` joined)."""

    def __init__(self, index: Index, engine: Engine, started: float, name: str | None, source: str = "engine"):
        self.index, self.engine, self.started, self.name, self.source = index, engine, started, name, source

    def find(self, wanted: Wanted) -> Image | None:
        plan = wanted.plan
        if plan is None:
            return None
        record = self.engine.inspect_image(plan.image)
        labels = ((record or {}).get("Config") or {}).get("Labels") or {}
        if labels.get("org.envbuild.build-key") != plan.key:
            return None
        entry = _index_image(self.index, plan.key, detail=_detail(plan, labels), image=plan.image,
                             image_id=record["Id"], name=self.name, spec_key=plan.spec_key, lock_key=plan.lock_key,
                             base_id=plan.base_id, build_seconds=None, size=record.get("Size", 0), source="engine")
        return image_of(entry, plan.key, source=self.source, started=self.started)


class RegistryFinder:
    """The shared registry has the image (one manifest HEAD first): pull it, tag it locally, index it. Before
    locking it is looked up by its request tag, after rendering by its build key tag; none without a registry."""

    def __init__(self, index: Index, engine: Engine, shared, started: float, on_progress, on_log):
        self.index, self.engine, self.shared, self.started = index, engine, shared, started
        self.on_progress, self.on_log = on_progress, on_log

    def find(self, wanted: Wanted) -> Image | None:
        from .errors import CacheError
        from .renderer import IMAGE_REPOSITORY

        shared, plan = self.shared, wanted.plan
        if shared is None:
            return None
        ref = shared.build_ref(plan.key) if plan is not None else shared.request_ref(wanted.request)
        if not shared.has(ref.rsplit(":", 1)[1]):
            return None
        _notify(self.on_progress, "registry", f"pulling {ref}")
        try:
            shared.pull(ref, self.on_log)
        except CacheError as exc:
            _log().warning("%s", exc)
            return None
        record = self.engine.inspect_image(ref) or {}
        labels = (record.get("Config") or {}).get("Labels") or {}
        build_key = labels.get("org.envbuild.build-key")
        if not build_key or (plan is not None and build_key != plan.key):
            _log().warning("registry image %s does not carry the expected build key: ignoring it", ref)
            return None
        local = f"{IMAGE_REPOSITORY}:{tag_of(build_key)}"
        self.engine.tag(ref, local)
        self.engine.remove(ref, prune=False)
        manifest_digest = next((d.split("@", 1)[1] for d in record.get("RepoDigests") or []
                                if d.startswith(shared.location + "@")), None)
        # How long the image took to build elsewhere is not known here: the cost policy treats it as cheap.
        entry = _index_image(self.index, build_key,
                             detail=_detail(plan, labels) if plan else {"labels": labels, "registry": ref},
                             image=local, image_id=record["Id"], name=None,
                             spec_key=labels.get("org.envbuild.spec-key", ""),
                             lock_key=labels.get("org.envbuild.lock-key", ""), base_id=plan.base_id if plan else "",
                             build_seconds=None, size=record.get("Size", 0), source="registry",
                             digest=manifest_digest)
        return image_of(entry, build_key, source="registry", started=self.started)


def _index_image(index: Index, build_key: str, *, detail: dict, log: str | None = None, **fields) -> dict:
    """Write the index entry (`cache.new_entry` of `fields`) of an image this call obtained without an index hit
    (built, found on the engine, pulled), with what `envbuild show` prints; count the miss. Returns the entry."""
    entry = new_entry(**fields)
    index.put(build_key, entry, log=log, detail=detail)
    index.record_miss(fields["build_seconds"])
    return entry


# -- build and share ---------------------------------------------------------------------------------------------
def _build(index: Index, engine: Engine, shared, plan, resolved, env, chosen, started: float, on_progress,
           on_log) -> Image:
    """Build the plan and index it, only once the image exists."""
    import tempfile

    from .builder import build_image

    warnings = (chosen.limitations,) if chosen.limitations else ()
    for warning in warnings:
        _notify(on_progress, "build", f"warning: {warning}")
    name_tag = _name_tag(env.name)
    cache_from = [shared.ref(name_tag)] if shared and name_tag and shared.has(name_tag) else []
    _notify(on_progress, "build", f"building {plan.image} with {chosen.kind}")
    build_started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="envbuild-context-") as tmp:
        context = plan.write_context(tmp)
        ca = config.host_ca_bundle()
        image_id, build_log = build_image(
            context, plan.image, labels={**plan.metadata_labels, "org.envbuild.build-key": plan.key,
                                             "org.envbuild.spec-key": plan.spec_key},
            secrets={"ca": ca} if ca and chosen.buildkit else None, on_log=on_log, cache_from=cache_from,
            builder=chosen)
    build_seconds = time.perf_counter() - build_started
    record = engine.inspect_image(image_id) or {}
    labels = (record.get("Config") or {}).get("Labels") or {}
    entry = _index_image(index, plan.key, log=build_log, detail=_detail(plan, labels, resolved.text),
                         image=plan.image, image_id=image_id, name=env.name, spec_key=plan.spec_key,
                         lock_key=plan.lock_key, base_id=plan.base_id, build_seconds=build_seconds,
                         size=record.get("Size", 0), source="built")
    _notify(on_progress, "build", f"built {plan.image} in {build_seconds:.1f}s")
    return image_of(entry, plan.key, source="built", started=started, builder=chosen.kind, warnings=warnings)


def _share(index: Index, shared, image: Image, requested: str, name: str | None, on_progress, on_log) -> Image:
    """Push `image` to the shared registry under its build key, its request key and its name's latest tag.
    A failed push leaves the image local and says so in the result's warnings."""
    from .errors import CacheError

    name_tag = _name_tag(name)
    _notify(on_progress, "registry", f"pushing {shared.build_ref(image.key)}")
    try:
        pushed = shared.push(image.image, [tag_of(image.key), "req-" + tag_of(requested)]
                             + ([name_tag] if name_tag else []), on_log)
    except CacheError as exc:
        _notify(on_progress, "registry", f"warning: push failed, the image stays local: {exc.what}")
        return image._replace(warnings=image.warnings + (f"not shared: {exc.what}",))
    index.update(image.key, digest=pushed)
    return image._replace(digest=pushed)


@contextmanager
def _merged(index: Index, build_key: str, engine_host: str, on_progress):
    """Hold the build lock of `build_key`; yields whether another process held it first (we then joined it)."""
    from filelock import Timeout

    build_lock = index.build_lock(build_key, engine_host)
    try:
        build_lock.acquire(timeout=0)
        joined = False
    except Timeout:
        _notify(on_progress, "build", f"waiting for an identical build in flight ({build_key})")
        build_lock.acquire()
        joined = True
    try:
        yield joined
    finally:
        build_lock.release()


def _detail(plan, labels: dict, lock_text: str | None = None) -> dict:
    """What `envbuild show` prints, kept at build time: the image may be gone (or remote) when asked."""
    return {"dockerfile": plan.dockerfile, "lock": lock_text, "labels": labels}


def _name_tag(name: str | None) -> str | None:
    """A registry tag for the latest image of a named environment: the layer cache a new version starts from."""
    import re

    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", name or "").strip(".-")[:100]
    return f"name-{cleaned}" if cleaned else None
