"""Layer-cache sources in the shared registry: every installer stage's layers reusable on every machine.

An environment's image is built in stages (templates/environment.Dockerfile.j2): `env-installer` (the installer's
own tools, the conda environment or a venv), `pip-installer` (the lock's pip packages), then the final stage, which
only copies what those made and sets variables and labels. The installing is all in the installer stages, so those
are what another machine must be able to reuse: a one-package change re-runs one installer step, not all of them.

How, by builder:
- a buildx builder with the docker-container or remote driver exports the cache of every stage itself:
  ``--cache-to type=registry,mode=max`` to the ref ``cache-<key of the first installer stage>`` (one cache per
  installer environment: builds that share it share that stage, and each export carries every stage's records);
- the docker driver (Debian's engine, a CLI before 23) exports inline cache for the final stage only, so each
  installer stage is pushed as an image of its own, built with ``--target STAGE`` (all steps already cached, so
  seconds) and tagged ``stage-<stage key>``; later builds name those images with ``--cache-from``.

The final stage's first steps (its base, the GPU libraries, the environment copied from env-installer) are the same
for every environment with the same installer environment, and redoing them gives a new layer of the whole
environment (its directories get new times) that each machine would push again. So the first image built with such
a prefix is tagged ``final-<key of the prefix>``, and later builds name it as a cache source.

Naming (why sources cannot collide): a stage key (keys.stage_key) is over the stage's instructions (the final
stage's prefix: up to its first step that reads the pip stage or the build context), the image id or stage key it
starts from and copies from, and the bytes of the context files it reads. A tag names what it offers, and it is
written once: pushed only when the registry does not have it, never replaced, by any machine. Two environments of
the same name never share a source unless they share what it offers (an old scheme tagged every
`requirements.txt` environment `name-requirements`, each build replacing the last).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable, NamedTuple

from .keys import stage_key, tag_of

if TYPE_CHECKING:
    from .builder import Builder
    from .registry import Registry
    from .renderer import BuildPlan

STAGE_REPOSITORY = "envbuild/stage"  # local tags of stage images, only while they are pushed

_FROM = re.compile(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?\s*$", re.IGNORECASE | re.MULTILINE)
_COPY_FROM = re.compile(r"--from=(\S+)")


class Stage(NamedTuple):
    """One named stage of a plan's Dockerfile: its name (for `--target`) and its key (keys.stage_key)."""

    name: str
    key: str


class Sources(NamedTuple):
    """A plan's cache sources: its installer stages, and the key of its final stage's prefix (None: no installer)."""

    stages: list[Stage]
    final: str | None


def cache_sources(plan: "BuildPlan", image_id: Callable[[str], str | None]) -> Sources:
    """The keyed cache sources of `plan`'s Dockerfile; `image_id(ref)` is the engine's id of an image a stage starts
    from or copies from (None: not on the engine, keyed by its reference)."""
    text = plan.dockerfile
    starts = list(_FROM.finditer(text))
    stages: list[Stage] = []
    keys: dict[str, str] = {}
    final = None
    for number, start in enumerate(starts):
        name = start.group(2)
        body = text[start.start():starts[number + 1].start() if number + 1 < len(starts) else len(text)]
        if not name:  # the final stage: its prefix, when it starts with what an installer stage made
            body = _prefix(body, list(keys))
        parents = [start.group(1)] + _COPY_FROM.findall(body)
        parent = "|".join(keys.get(ref) or image_id(ref) or ref for ref in parents)
        reads = {path: item.digest() for path, item in plan.context.items() if _reads(body, path.split("/")[0])}
        if name:
            keys[name] = stage_key(body, parent, reads)
            stages.append(Stage(name, keys[name]))
        elif keys and any(ref in keys for ref in parents):
            final = stage_key(body, parent, reads)
    return Sources(stages, final)


def _prefix(body: str, stage_names: list[str]) -> str:
    """The final stage up to its first step that reads the last installer stage or the build context: what every
    environment with the same first installer stage has in common."""
    last = stage_names[-1:] if len(stage_names) > 1 else []
    lines = []
    for line in body.splitlines(keepends=True):
        reads_context = re.match(r"^(COPY|ADD)\s+(?!--from=)", line)
        if reads_context or any(f"--from={name} " in line for name in last):
            break
        lines.append(line)
    return "".join(lines)


def _reads(stage_text: str, top: str) -> bool:
    """Whether a stage reads the context entry `top` (bind-mounted under BuildKit, copied for the classic builder)."""
    return bool(re.search(rf"(source={re.escape(top)}[,\s]|^COPY\s+{re.escape(top)}\s)", stage_text, re.MULTILINE))


def exports_all_stages(builder: "Builder") -> bool:
    """Whether `builder` exports a registry cache of every stage itself (buildx, not on the docker driver)."""
    return builder.kind == "buildx" and builder.driver not in (None, "docker")


def cache_options(plan: "BuildPlan", sources: Sources, shared: "Registry | None",
                  builder: "Builder") -> tuple[list[str], list[str]]:
    """(--cache-from values, extra build arguments) for building `plan`: the registry's sources for its stages
    that exist (one manifest HEAD each) and, for a rebuild, its own image."""
    if shared is None or not shared.available():
        return [], []
    if exports_all_stages(builder):
        if not sources.stages:
            return [], []
        ref = shared.ref("cache-" + tag_of(sources.stages[0].key))
        return [f"type=registry,ref={ref}"], ["--cache-to", f"type=registry,ref={ref},mode=max"]
    refs = [shared.stage_ref(stage.key) for stage in sources.stages]
    refs += [shared.ref(final_tag(sources.final))] if sources.final else []
    refs.append(shared.build_ref(plan.key))
    return [ref for ref in refs if shared.has(ref.rsplit(":", 1)[1])], []


def final_tag(final_key: str) -> str:
    return "final-" + tag_of(final_key)


def new_final_tags(sources: Sources, shared: "Registry") -> list[str]:
    """The tag of the final stage's prefix, to push the image under if the registry has none yet (write once)."""
    if sources.final is None or shared.has(final_tag(sources.final)):
        return []
    return [final_tag(sources.final)]


def share_stages(plan: "BuildPlan", stages: list[Stage], shared: "Registry", builder: "Builder",
                 on_log: Callable[[str], None] | None = None) -> list[str]:
    """Push each installer stage the registry lacks as an image of its own (`--target STAGE`: its steps are in this
    engine's cache from the build just made), with its inline cache; returns the refs pushed. Nothing for a builder
    that exported every stage's cache itself. Raises CacheError when the registry refuses, BuildError when a stage
image cannot be made."""
    import tempfile

    from .builder import build_image
    from .config import host_ca_bundle
    from .engine import Engine

    if exports_all_stages(builder):
        return []
    missing = [stage for stage in stages if not shared.has(shared.stage_ref(stage.key).rsplit(":", 1)[1])]
    if not missing:
        return []
    pushed = []
    engine = Engine()
    try:
        with tempfile.TemporaryDirectory(prefix="envbuild-stage-") as tmp:
            context = plan.write_context(tmp)
            for stage in missing:
                local = f"{STAGE_REPOSITORY}:{tag_of(stage.key)}"
                ca = host_ca_bundle()  # only if a step is not cached after all: it then runs as in the build
                build_image(context, local, extra_args=["--target", stage.name], builder=builder, on_log=on_log,
                            secrets={"ca": ca} if ca and builder.buildkit else None)
                try:
                    shared.push(local, [shared.stage_ref(stage.key).rsplit(":", 1)[1]], on_log)
                finally:
                    engine.remove(local, prune=False)
                pushed.append(shared.stage_ref(stage.key))
    finally:
        engine.close()
    return pushed
