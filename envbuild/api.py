"""The public pipeline: Environment → Lock → BuildPlan → Image, with the cache consulted before every arrow.

Read top to bottom, `build()` is the whole story of an environment:
1. key the spec (canonical form) and the base image (its id), and ask the index: seen → done (one engine call).
2. lock (lock cache, else solve), render the plan, and ask the index for the plan's key: two specs that lock
   to the same packages share one image.
3. under a per-key lock (identical builds in flight are merged): the engine may hold the image by its key tag,
   the shared registry may have it (pull), else build, and then (and only then) write the index entry; push.
Library code never prints: progress goes to `on_progress(stage, message)` and build output to `on_log(line)`.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, NamedTuple

from . import config
from .cache import Index, IndexReader, new_entry
from .engine import Engine
from .keys import digest, file_memo_key, request_key, tag_of, template_digest

ProgressCallback = Callable[[str, str], None]


SOURCES = ("built", "cache", "engine", "registry", "joined")


class Image(NamedTuple):
    """An environment's image and how this call obtained it (`source`, one of SOURCES):
    built here; from the cache index; from the engine (its key tag was there without an index entry); pulled from
    the shared registry; or joined (an identical build in flight elsewhere finished it while this call waited).
    Immutable; a NamedTuple rather than a dataclass because `dataclasses` (and `inspect` behind it) would cost
    the cache-hit path milliseconds of imports."""

    image: str  # reference (repository:tag), tag derived from the build key
    id: str  # the engine's image id
    key: str  # build key
    spec_key: str
    lock_key: str
    cached: bool  # False only when this call ran the build
    source: str
    seconds: float
    digest: str | None = None  # manifest digest in the shared registry, when pushed or pulled
    builder: str | None = None  # buildx | buildkit | classic, when built
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return self._asdict()


def _log():
    import logging  # imported when there is something to log: the cache-hit path does without it

    return logging.getLogger(__name__)


def _notify(on_progress: ProgressCallback | None, stage: str, message: str) -> None:
    _log().info("%s: %s", stage, message)
    if on_progress:
        on_progress(stage, message)


def _hit(index: Index | IndexReader, engine: Engine, build_key: str | None, started: float,
         source: str = "cache") -> Image | None:
    """The cached image for `build_key` if the engine still has it (one engine call), else None."""
    if not build_key:
        return None
    entry = index.get(build_key)
    if entry is None:
        return None
    if engine.image_id(entry["image"]) != entry["id"]:
        _log().info("image %s of %s is gone from the engine", entry["image"], build_key)
        return None
    index.record_hit(build_key)
    return Image(image=entry["image"], id=entry["id"], key=build_key, spec_key=entry["spec_key"],
                 lock_key=entry["lock_key"], cached=True, source=source, seconds=time.perf_counter() - started,
                 digest=entry.get("digest"))


def cached_build_for_file(path: str | os.PathLike, *, base_image: str | None = None, cache_dir=None,
                          template=None) -> Image | None:
    """The fast path for a spec file seen before, byte for byte: no parsing, no heavy imports.

    Returns None (and costs a few milliseconds) whenever anything is not certain; the caller then takes the full
    path, which gives the same answer for any equivalent spec.
    """
    started = time.perf_counter()
    home = config.home(cache_dir)
    if not (home / "index").exists():
        return None
    file = Path(path)
    try:
        memo = file_memo_key(file, base_image)
    except OSError:
        return None
    import sqlite3

    try:
        index = IndexReader(home)
    except (OSError, sqlite3.Error):
        return None
    engine = Engine()
    try:
        remembered = index.memo_get(memo)
        if not remembered or not _files_unchanged(remembered["files"]):
            return None
        base_id = engine.image_id(remembered["base_ref"])
        if base_id is None:
            return None
        build_key = index.resolve_request(request_key(
            remembered["spec_key"], base_id, template_digest(template), remembered.get("local_channels", ()),
            remembered.get("platform", "linux-64")))
        return _hit(index, engine, build_key, started)
    except (sqlite3.Error, LookupError) as exc:  # an index this reader cannot read: take the full path
        _log().debug("fast path skipped: %s", exc)
        return None
    finally:
        index.close()
        engine.close()


def _files_unchanged(files: dict[str, str]) -> bool:
    try:
        return all(digest(Path(p).read_bytes()) == d for p, d in files.items())
    except OSError:
        return False


def _remember_file(index: Index, env, spec_key: str, base_ref: str, local_channels: list[str],
                   platform: str) -> None:
    """Remember that the bytes of env's spec file stand for `spec_key`, so the next build of that file skips parsing.

    Only when they really do: an environment changed after it was loaded (API users may) is not its file. The
    memo is keyed by the base image override (what `--base-image` says), not by an image the file names itself.
    """
    if not env.source_files:
        return
    from .errors import EnvbuildError
    from .keys import canonical_spec
    from .spec import Environment

    main = Path(env.source_files[0])
    try:
        as_written = Environment.from_file(main)
        override = env.docker.base_image if env.docker.base_image != as_written.docker.base_image else None
        if override:
            as_written.docker.base_image = override
        if canonical_spec(as_written).key != spec_key:
            return
        files = {str(Path(p).resolve()): digest(Path(p).read_bytes()) for p in env.source_files[1:]}
        index.memo_put(file_memo_key(main, override), {"spec_key": spec_key, "base_ref": base_ref, "files": files,
                                                   "local_channels": local_channels, "platform": platform})
    except (OSError, EnvbuildError):
        return


def lock(env, *, platform: str | None = None, platforms: list[str] | None = None, python_version: str | None = None,
         glibc: str | None = None, exclude_newer=None, cache_dir=None, refresh: bool = False,
         on_progress: ProgressCallback | None = None):
    """Resolve `env` from the lock cache unless `refresh`: the Lock of one platform (`platform`, default the
    environment's), or with `platforms` a LockSet (one conda-lock.yml for all of them, a Lock per platform).

    A failed solve raises ResolveError and caches nothing. A hit costs a few milliseconds and imports neither
    rattler nor conda-lock.
    """
    from .keys import canonical_spec, lock_request_key
    from .resolver import parse_exclude_newer, resolve_platforms, target_platforms

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
                                   exclude_newer=exclude_newer)
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
           cuda: str | None = None, buildkit: bool = True, on_progress=None, on_log=None):
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
                    refresh=refresh_lock, on_progress=on_progress)
    return render_plan(spec, resolved, base, template=template, installer_from=_installer_base(spec, engine, on_log),
                       buildkit=buildkit)


def build(env, *, cache_dir=None, template=None, refresh_lock: bool = False, rebuild: bool = False,
          registry: str | None = None, builder: str | None = None, on_progress: ProgressCallback | None = None,
          on_log: Callable[[str], None] | None = None) -> Image:
    """Build `env` into an image, or return the image already built for an equivalent environment.

    `registry` (``HOST/REPO``, default ENVBUILD_REGISTRY) is the shared cache: looked up before building, pushed
    to after. `builder` forces buildx | buildkit | classic (default: the best one found). `rebuild` skips every
    cache (index, engine, registry) but the engine's layer cache.
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
        requested = request_key(spec_key, base.id, template_digest(template), local_channels, spec.platform)
        _remember_file(index, env, spec_key, base.ref, local_channels, spec.platform)
        if not (rebuild or refresh_lock):
            image = _hit(index, engine, index.resolve_request(requested), started)
            if image is None and shared is not None:
                image = _pull(index, engine, shared, shared.request_ref(requested), None, started, on_progress, on_log)
            if image:
                index.remember_request(requested, image.key)
                _notify(on_progress, "cache", f"{image.source}: {image.image}")
                return image
        resolved = lock(spec, python_version=base.python_version, glibc=base.glibc, cache_dir=cache_dir,
                        refresh=refresh_lock, on_progress=on_progress)
        chosen = find_builder(builder)
        plan = render_plan(spec, resolved, base, template=template, installer_from=_installer_base(spec, engine, on_log),
                           **({} if chosen.buildkit else {"buildkit": False}))
        image = None if rebuild else _hit(index, engine, plan.key, started)
        if image is None:
            with _merged(index, plan.key, engine.host, on_progress) as joined:
                image = None if rebuild else (
                    _hit(index, engine, plan.key, started, source="joined" if joined else "cache")
                    or _found_on_engine(index, engine, plan, env, started, "joined" if joined else "engine")
                    or (shared and _pull(index, engine, shared, shared.build_ref(plan.key), plan, started,
                                         on_progress, on_log)))
                if image is None:
                    image = _build(index, engine, shared, plan, resolved, env, chosen, requested, started,
                                   on_progress, on_log)
                elif image.source == "engine" and shared is not None and not shared.has(tag_of(image.key)):
                    image = _share(index, shared, image, requested, env.name, on_progress, on_log)
        index.remember_request(requested, image.key)
        index.canonical_put(spec_key, spec.form)  # for `envbuild explain`
        if image.source != "built":
            _notify(on_progress, "cache", f"{image.source}: {image.image}")
        return image
    finally:
        index.close()
        engine.close()


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


def _found_on_engine(index: Index, engine: Engine, plan, env, started: float, source: str) -> Image | None:
    """The engine already holds the plan's image (its tag, labelled with the key) though the index does not:
    built by another envbuild home, or by the identical build in flight this call waited for (`source`)."""
    record = engine.inspect_image(plan.image)
    labels = ((record or {}).get("Config") or {}).get("Labels") or {}
    if labels.get("org.envbuild.build-key") != plan.key:
        return None
    index.put(plan.key, new_entry(image=plan.image, image_id=record["Id"], name=env.name, spec_key=plan.spec_key,
                                  lock_key=plan.lock_key, base_id=plan.base_id, build_seconds=None,
                                  size=record.get("Size", 0), source="engine"),
              detail=_detail(plan, labels))
    index.record_miss()
    return Image(image=plan.image, id=record["Id"], key=plan.key, spec_key=plan.spec_key, lock_key=plan.lock_key,
                 cached=True, source=source, seconds=time.perf_counter() - started)


def _pull(index: Index, engine: Engine, shared, ref: str, plan, started: float, on_progress, on_log) -> Image | None:
    """Pull `ref` from the shared registry if it is there (one manifest HEAD first), tag it locally, index it."""
    from .errors import CacheError
    from .renderer import IMAGE_REPOSITORY

    if not shared.has(ref.rsplit(":", 1)[1]):
        return None
    _notify(on_progress, "registry", f"pulling {ref}")
    try:
        shared.pull(ref, on_log)
    except CacheError as exc:
        _log().warning("%s", exc)
        return None
    record = engine.inspect_image(ref) or {}
    labels = (record.get("Config") or {}).get("Labels") or {}
    build_key = labels.get("org.envbuild.build-key")
    if not build_key or (plan is not None and build_key != plan.key):
        _log().warning("registry image %s does not carry the expected build key: ignoring it", ref)
        return None
    local = f"{IMAGE_REPOSITORY}:{tag_of(build_key)}"
    engine.tag(ref, local)
    engine.remove(ref, prune=False)
    manifest_digest = next((d.split("@", 1)[1] for d in record.get("RepoDigests") or []
                            if d.startswith(shared.location + "@")), None)
    spec_key, lock_key = labels.get("org.envbuild.spec-key", ""), labels.get("org.envbuild.lock-key", "")
    # How long the image took to build elsewhere is not known here: the cost policy treats it as cheap.
    index.put(build_key, new_entry(image=local, image_id=record["Id"], name=None, spec_key=spec_key, lock_key=lock_key,
                                   base_id=plan.base_id if plan else "", build_seconds=None,
                                   size=record.get("Size", 0), source="registry", digest=manifest_digest),
              detail=_detail(plan, labels) if plan else {"labels": labels, "registry": ref})
    index.record_miss()
    return Image(image=local, id=record["Id"], key=build_key, spec_key=spec_key, lock_key=lock_key, cached=True,
                 source="registry", seconds=time.perf_counter() - started, digest=manifest_digest)


def _build(index: Index, engine: Engine, shared, plan, resolved, env, chosen, requested: str, started: float,
           on_progress, on_log) -> Image:
    """Build the plan, index it only once the image exists, then push it to the shared registry."""
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
    index.put(plan.key, new_entry(image=plan.image, image_id=image_id, name=env.name, spec_key=plan.spec_key,
                                  lock_key=plan.lock_key, base_id=plan.base_id, build_seconds=build_seconds,
                                  size=record.get("Size", 0), source="built"),
              log=build_log, detail=_detail(plan, labels, resolved.text))
    index.record_miss(build_seconds)
    _notify(on_progress, "build", f"built {plan.image} in {build_seconds:.1f}s")
    image = Image(image=plan.image, id=image_id, key=plan.key, spec_key=plan.spec_key, lock_key=plan.lock_key,
                  cached=False, source="built", seconds=time.perf_counter() - started, builder=chosen.kind,
                  warnings=warnings)
    return _share(index, shared, image, requested, env.name, on_progress, on_log) if shared is not None else image


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


def _detail(plan, labels: dict, lock_text: str | None = None) -> dict:
    """What `envbuild show` prints, kept at build time: the image may be gone (or remote) when asked."""
    return {"dockerfile": plan.dockerfile, "lock": lock_text, "labels": labels}


def _name_tag(name: str | None) -> str | None:
    """A registry tag for the latest image of a named environment: the layer cache a new version starts from."""
    import re

    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", name or "").strip(".-")[:100]
    return f"name-{cleaned}" if cleaned else None
