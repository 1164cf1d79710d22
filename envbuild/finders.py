"""Finders: where the image of a build request may already be, cheapest and most local first.

`api.build` asks them twice: before locking, by the request key (the index, the shared registry), and after
rendering, by the plan's build key (the index, the engine's key tag, the shared registry). Each answers
`find(wanted) -> Image | None`; every image a finder obtains without an index hit is indexed first
(`index_image`) and comes back as an `Image` made from that entry (`cache.image_of`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from .cache import Image, Index, image_of, new_entry
from .engine import Engine
from .keys import tag_of
from .progress import log, notify

if TYPE_CHECKING:
    from .renderer import BuildPlan


class Wanted(NamedTuple):
    """What a lookup looks for: the image of a build request, known before locking only by its request key, and
    after rendering by its plan (whose key is the build key)."""

    request: str
    plan: BuildPlan | None = None  # once rendered


def look_up(finders: list, wanted: Wanted) -> Image | None:
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
            log().info("image %s of %s is gone from the engine", entry["image"], build_key)
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
        entry = index_image(self.index, plan.key, detail=detail_of(plan, labels), image=plan.image,
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
        notify(self.on_progress, "registry", f"pulling {ref}")
        try:
            shared.pull(ref, self.on_log)
        except CacheError as exc:
            log().warning("%s", exc)
            return None
        record = self.engine.inspect_image(ref) or {}
        labels = (record.get("Config") or {}).get("Labels") or {}
        build_key = labels.get("org.envbuild.build-key")
        if not build_key or (plan is not None and build_key != plan.key):
            log().warning("registry image %s does not carry the expected build key: ignoring it", ref)
            return None
        local = f"{IMAGE_REPOSITORY}:{tag_of(build_key)}"
        self.engine.tag(ref, local)
        self.engine.remove(ref, prune=False)
        manifest_digest = next((d.split("@", 1)[1] for d in record.get("RepoDigests") or []
                                if d.startswith(shared.location + "@")), None)
        # How long the image took to build elsewhere is not known here: the cost policy treats it as cheap.
        entry = index_image(self.index, build_key,
                             detail=detail_of(plan, labels) if plan else {"labels": labels, "registry": ref},
                             image=local, image_id=record["Id"], name=None,
                             spec_key=labels.get("org.envbuild.spec-key", ""),
                             lock_key=labels.get("org.envbuild.lock-key", ""), base_id=plan.base_id if plan else "",
                             build_seconds=None, size=record.get("Size", 0), source="registry",
                             digest=manifest_digest)
        return image_of(entry, build_key, source="registry", started=self.started)


def index_image(index: Index, build_key: str, *, detail: dict, log: str | None = None, **fields) -> dict:
    """Write the index entry (`cache.new_entry` of `fields`) of an image this call obtained without an index hit
    (built, found on the engine, pulled), with what `envbuild show` prints; count the miss. Returns the entry."""
    entry = new_entry(**fields)
    index.put(build_key, entry, log=log, detail=detail)
    index.record_miss(fields["build_seconds"])
    return entry


def detail_of(plan, labels: dict, lock_text: str | None = None) -> dict:
    """What `envbuild show` prints, kept at build time: the image may be gone (or remote) when asked."""
    return {"dockerfile": plan.dockerfile, "lock": lock_text, "labels": labels}
