"""The public pipeline: Environment → Lock → BuildPlan → Image, with the cache consulted before every arrow.

Read top to bottom, `build()` is the whole story of an environment:
1. key the spec (canonical form) and the base image (its id), and ask the index: seen → done (one engine call).
2. lock (lock cache, else solve), render the plan, and ask the index for the plan's key: two specs that lock
   to the same packages share one image.
3. build on the engine, then (and only then) write the index entry.
Library code never prints: progress goes to `on_progress(stage, message)` and build output to `on_log(line)`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from . import config
from .cache import Index
from .engine import Engine
from .keys import digest, key_of

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, str], None]


@dataclass(frozen=True)
class Image:
    """A built environment image and how it was obtained."""

    image: str  # reference (repository:tag), tag derived from the build key
    id: str  # the engine's image id
    key: str  # build key
    spec_key: str
    lock_key: str
    cached: bool
    source: str  # "built" | "cache"
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def _notify(on_progress: ProgressCallback | None, stage: str, message: str) -> None:
    log.info("%s: %s", stage, message)
    if on_progress:
        on_progress(stage, message)


def request_key(spec_key: str, base_id: str, template_digest: str | None) -> str:
    """What a build request is keyed by before locking: the spec, the exact base image, the template."""
    return key_of({"spec": spec_key, "base": base_id, "template": template_digest})


def _template_digest(template) -> str | None:
    return digest(Path(template).read_bytes()) if template else None


def _hit(index: Index, engine: Engine, build_key: str | None, started: float) -> Image | None:
    """The cached image for `build_key` if the engine still has it (one engine call), else None."""
    if not build_key:
        return None
    entry = index.get(build_key)
    if entry is None:
        return None
    if engine.image_id(entry["image"]) != entry["id"]:
        log.info("image %s of %s is gone from the engine: rebuilding", entry["image"], build_key)
        return None
    index.record_hit(build_key)
    return Image(image=entry["image"], id=entry["id"], key=build_key, spec_key=entry["spec_key"],
                 lock_key=entry["lock_key"], cached=True, source="cache", seconds=time.perf_counter() - started)


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
        memo = _memo_key(file, base_image)
    except OSError:
        return None
    index = Index(home)
    try:
        remembered = index.memo_get(memo)
        if not remembered or not _files_unchanged(remembered["files"]):
            return None
        engine = Engine()
        base_id = engine.image_id(remembered["base_ref"])
        if base_id is None:
            return None
        build_key = index.resolve_request(request_key(remembered["spec_key"], base_id, _template_digest(template)))
        return _hit(index, engine, build_key, started)
    finally:
        index.close()


def _memo_key(file: Path, base_image: str | None) -> str:
    return key_of({"path": str(file.resolve()), "bytes": digest(file.read_bytes()), "base": base_image})


def _files_unchanged(files: dict[str, str]) -> bool:
    try:
        return all(digest(Path(p).read_bytes()) == d for p, d in files.items())
    except OSError:
        return False


def _remember_file(index: Index, env, base_image: str | None, spec_key: str, base_ref: str) -> None:
    if not env.source_files:
        return
    main = Path(env.source_files[0])
    try:
        files = {str(Path(p).resolve()): digest(Path(p).read_bytes()) for p in env.source_files[1:]}
        index.memo_put(_memo_key(main, base_image), {"spec_key": spec_key, "base_ref": base_ref, "files": files})
    except OSError:
        pass


def lock(env, *, platform: str | None = None, platforms: list[str] | None = None, python_version: str | None = None,
         glibc: str | None = None, exclude_newer=None, cache_dir=None, refresh: bool = False,
         on_progress: ProgressCallback | None = None):
    """Resolve `env` from the lock cache unless `refresh`: the Lock of one platform (`platform`, default the
    environment's), or with `platforms` a LockSet (one conda-lock.yml for all of them, a Lock per platform).

    A failed solve raises ResolveError and caches nothing. A hit costs a few milliseconds and imports neither
    rattler nor conda-lock.
    """
    from .resolver import lock_request_key, resolve_platforms

    wanted = list(platforms) if platforms else [platform or env.docker.platform]
    request = lock_request_key(env, wanted, python_version=python_version, glibc=glibc, exclude_newer=exclude_newer)
    index = Index(config.home(cache_dir))
    try:
        result = None if refresh else index.lock_get(request)
        if result is not None:
            _notify(on_progress, "lock", "lock cache hit")
        else:
            _notify(on_progress, "lock", f"solving for {', '.join(wanted)}")
            started = time.perf_counter()
            result = resolve_platforms(env, wanted, python_version=python_version, glibc=glibc,
                                       exclude_newer=exclude_newer)
            _notify(on_progress, "lock", f"solved {len(result.packages)} packages in "
                                         f"{time.perf_counter() - started:.2f}s")
            index.lock_put(request, result)
    finally:
        index.close()
    return result if platforms else result.locks[0]


def base_for(env, engine: Engine, on_log=None):
    from .bases import resolve_base
    from .errors import BuildError

    base = resolve_base(env.docker.base_image, engine, on_log=on_log)
    if base is None:
        raise BuildError(f"base image {env.docker.base_image} not found", fix="build, load or pull it first")
    return base


def _installer_base(env, engine: Engine, on_log=None) -> str | None:
    """Conda environments are installed with envbuild's own Python base, whatever the final base is."""
    from .bases import DEFAULT_BASE, resolve_base

    if not env.python.conda_dependencies.conda_packages:
        return None
    return resolve_base(DEFAULT_BASE, engine, on_log=on_log).from_ref


def render(env, *, cache_dir=None, template=None, refresh_lock: bool = False, on_progress=None, on_log=None):
    """The BuildPlan for `env` on its base image (locks first, from the lock cache when it can)."""
    from .renderer import render as render_plan

    engine = Engine()
    base = base_for(env, engine, on_log)
    resolved = lock(env, python_version=base.python_version, glibc=base.glibc, cache_dir=cache_dir,
                    refresh=refresh_lock, on_progress=on_progress)
    return render_plan(env, resolved, base, template=template, installer_from=_installer_base(env, engine, on_log))


def build(env, *, cache_dir=None, template=None, refresh_lock: bool = False, rebuild: bool = False,
          on_progress: ProgressCallback | None = None, on_log: Callable[[str], None] | None = None) -> Image:
    """Build `env` into an image, or return the image already built for an equivalent environment."""
    from .builder import build_image
    from .renderer import render as render_plan

    started = time.perf_counter()
    home = config.home(cache_dir)
    engine = Engine()
    index = Index(home)
    try:
        spec_key = env.key
        base = base_for(env, engine, on_log)
        requested = request_key(spec_key, base.id, _template_digest(template))
        _remember_file(index, env, env.docker.base_image, spec_key, base.ref)
        if not rebuild:
            image = _hit(index, engine, index.resolve_request(requested), started)
            if image:
                _notify(on_progress, "cache", f"hit: {image.image}")
                return image
        resolved = lock(env, python_version=base.python_version, glibc=base.glibc, cache_dir=cache_dir,
                        refresh=refresh_lock, on_progress=on_progress)
        plan = render_plan(env, resolved, base, template=template, installer_from=_installer_base(env, engine, on_log))
        build_key = plan.key
        if not rebuild:
            image = _hit(index, engine, build_key, started)
            if image:
                index.remember_request(requested, build_key)
                _notify(on_progress, "cache", f"hit on the lock: {image.image}")
                return image
        _notify(on_progress, "build", f"building {plan.image}")
        build_started = time.perf_counter()
        import tempfile

        with tempfile.TemporaryDirectory(prefix="envbuild-context-") as tmp:
            context = plan.write_context(tmp)
            ca = config.host_ca_bundle()
            image_id, build_log = build_image(
                context, plan.image, labels={"org.envbuild.build-key": build_key},
                secrets={"ca": ca} if ca else None, on_log=on_log)
        build_seconds = time.perf_counter() - build_started
        record = engine.inspect_image(image_id) or {}
        from . import __version__

        index.log_put(build_key, build_log)
        index.put(build_key, {
            "image": plan.image, "id": image_id, "spec_key": spec_key, "lock_key": plan.lock_key,
            "base_id": base.id, "created": time.time(), "build_seconds": build_seconds,
            "size": record.get("Size", 0), "hits": 0, "last_hit": None, "name": env.name,
            "envbuild_version": __version__,
        })
        index.remember_request(requested, build_key)
        _notify(on_progress, "build", f"built {plan.image} in {build_seconds:.1f}s")
        return Image(image=plan.image, id=image_id, key=build_key, spec_key=spec_key, lock_key=plan.lock_key,
                     cached=False, source="built", seconds=time.perf_counter() - started)
    finally:
        index.close()
        engine.close()
