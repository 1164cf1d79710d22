"""What cached images occupy on the engine, with every layer counted once: the bytes a removal really frees.

Images built on one base share its layers, and environments that differ by one package share all but a few more:
three images of 275 MB may occupy 276 MB together, and removing one of them frees almost nothing. So sizes here are
per layer: an image's layers are its RootFS diff ids, identified across images by their chain ids (a layer is the
same layer only on the same parents, as the engine stores it), and each layer's size comes from the image's
history. `unique` bytes of an image are those of layers no other image on the engine holds (what removing it alone
frees), `shared` the rest; `frees(images)` is what removing a set of them frees, layers shared only among them
included.

The engine's /system/df answers Size and SharedSize per image, but not which images share what, which a plan of
several removals needs: hence layers. The history gives a size per step, layers and steps that made none (ENV,
LABEL, ...) mixed; `_layer_sizes` matches them up (hand-written: neither the docker SDK nor the API does it).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from .engine import Engine

# History steps that make no layer: BuildKit writes the instruction, the classic builder "#(nop)" before it.
_NO_LAYER = re.compile(r"^(?:/bin/sh -c #\(nop\)\s+(?!ADD|COPY)|(?:ENV|LABEL|ARG|CMD|ENTRYPOINT|EXPOSE|USER|VOLUME|"
                       r"WORKDIR|STOPSIGNAL|HEALTHCHECK|SHELL|ONBUILD|MAINTAINER)\b)")


class Footprint:
    """The layers of some images (`layers`: image id → chain id → bytes), and which layers other images on the
    engine hold too (`holders`: chain id → ids of every image holding it)."""

    def __init__(self, layers: dict[str, dict[str, int]], holders: dict[str, set[str]]):
        self.layers, self.holders = layers, holders

    def size(self, image_id: str) -> int:
        return sum(self.layers.get(image_id, {}).values())

    def unique(self, image_id: str) -> int:
        """Bytes of the layers no other image on the engine holds: what removing this image alone frees."""
        return self.frees([image_id])

    def total(self, image_ids: Iterable[str]) -> int:
        """Bytes the images occupy together, each layer counted once."""
        sizes: dict[str, int] = {}
        for image_id in image_ids:
            sizes.update(self.layers.get(image_id, {}))
        return sum(sizes.values())

    def frees(self, image_ids: Iterable[str]) -> int:
        """Bytes that removing all of `image_ids` frees: their layers that no other image holds."""
        removed = set(image_ids)
        sizes: dict[str, int] = {}
        for image_id in removed:
            for chain, size in self.layers.get(image_id, {}).items():
                if self.holders.get(chain, set()) <= removed:
                    sizes[chain] = size
        return sum(sizes.values())


def measure(engine: "Engine", image_ids: Iterable[str]) -> Footprint:
    """The footprint of `image_ids` on `engine` (an image the engine no longer has occupies nothing)."""
    status, body = engine.request("GET", "/images/json")
    everything = [image["Id"] for image in json.loads(body)] if status == 200 else []
    holders: dict[str, set[str]] = {}
    chains_of: dict[str, list[str]] = {}
    for image_id in set(everything) | set(image_ids):
        record = engine.inspect_image(image_id)
        if record is None:
            continue
        chains_of[image_id] = _chain_ids((record.get("RootFS") or {}).get("Layers") or [])
        for chain in chains_of[image_id]:
            holders.setdefault(chain, set()).add(image_id)
    layers = {}
    for image_id in set(image_ids):
        if image_id in chains_of:
            layers[image_id] = dict(zip(chains_of[image_id], _layer_sizes(engine, image_id, len(chains_of[image_id]))))
    return Footprint(layers, holders)


def _chain_ids(diff_ids: list[str]) -> list[str]:
    """The chain id of each layer (the OCI image spec's ChainID: a layer on its parents)."""
    chains: list[str] = []
    for diff_id in diff_ids:
        chains.append(diff_id if not chains else
                      "sha256:" + hashlib.sha256(f"{chains[-1]} {diff_id}".encode()).hexdigest())
    return chains


def _layer_sizes(engine: "Engine", image_id: str, count: int) -> list[int]:
    """The size of each of the image's `count` layers, oldest first, from its history: the steps that made a
    layer are those with bytes, or whose instruction can make one; if neither reading gives `count` steps, the
    sized steps in order (a zero-byte layer then may be misplaced: it weighs nothing either way)."""
    status, body = engine.request("GET", f"/images/{image_id}/history")
    steps = list(reversed(json.loads(body))) if status == 200 else []
    by_instruction = [step["Size"] for step in steps
                      if step.get("Size") or not _NO_LAYER.match((step.get("CreatedBy") or "").strip())]
    if len(by_instruction) == count:
        return by_instruction
    sized = [step["Size"] for step in steps if step.get("Size")]
    return (sized + [0] * count)[:count]
