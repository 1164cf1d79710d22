"""What the catalog records, as frozen values: a version (`Entry`), an image built from it (`Build`), and the
definition of an Environment as plain JSON-ready data (`to_dict` / `from_dict`)."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
from dataclasses import dataclass

from ..errors import SpecError
from ..spec import Environment
from .names import iso

# Azure ML: "For environments, only description and tags can be updated."
MUTABLE_FIELDS = ("description", "tags")
# Stored in their own columns (mutable or given by the catalog), never in the immutable definition.
METADATA_FIELDS = ("name", "version", "description", "tags")


@dataclass(frozen=True)
class Build:
    """An image built from a catalog version, with the lock it was built from.

    One image can serve several environments (two definitions that lock to the same packages share it):
    `spec_key` is this version's own key, `image_spec_key` the key of the definition the image was first built
    for (its label), which is another environment's when the image is shared.
    """

    image: str
    image_id: str
    build_key: str
    spec_key: str
    image_spec_key: str
    lock_key: str | None
    lock: str | None
    built_by: str
    built_at: float

    def to_dict(self, with_lock: bool = False) -> dict:
        data = dataclasses.asdict(self)
        data["built_at"] = iso(self.built_at)
        if not with_lock:
            data.pop("lock")
        return data


@dataclass(frozen=True)
class Entry:
    """One version of a named environment as the catalog records it.

    `definition` is the Environment's data as registered; `files` the content digests of the files it needs
    (build context, Dockerfile, lock file: see envbuild.catalog.blobs), so that `Catalog.environment` can make
    it again on any machine; `canonical` the canonical form its `key` was computed from (None for versions
    migrated from a catalog that did not keep it).
    """

    name: str
    version: str
    key: str
    description: str | None
    tags: dict[str, str]
    created_by: str
    created_at: float
    archived: bool
    # The definition and the canonical form as the database holds them (JSON text), decoded on first use: a list
    # of a thousand names shows neither, and decoding them was most of its time.
    definition_json: str = dataclasses.field(repr=False)
    files: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)
    canonical_json: str | None = dataclasses.field(default=None, repr=False)
    builds: tuple[Build, ...] = ()

    @functools.cached_property
    def definition(self) -> dict:
        return json.loads(self.definition_json)

    @functools.cached_property
    def canonical(self) -> dict | None:
        return json.loads(self.canonical_json) if self.canonical_json else None

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def created(self) -> str:
        """When it was registered, ISO 8601 UTC."""
        return iso(self.created_at)

    @property
    def latest_build(self) -> Build | None:
        return self.builds[-1] if self.builds else None

    def to_dict(self, with_definition: bool = True) -> dict:
        data = {
            "name": self.name, "version": self.version, "key": self.key, "description": self.description,
            "tags": dict(self.tags), "created_by": self.created_by, "created_at": self.created,
            "archived": self.archived, "builds": [b.to_dict() for b in self.builds],
        }
        if with_definition:
            data["definition"] = self.definition
            data["files"] = dict(self.files)
        return data


# ---------------------------------------------------------------------------------------------------------------
# The definition: every field of an Environment that `Environment.__eq__` compares, as JSON-ready data.


def to_dict(env: Environment, *, metadata: bool = True) -> dict:
    """`env` as plain data (all sections, variables, pip options, docker settings); `from_dict` inverts it."""
    data = _plain(env)
    if not metadata:
        for name in METADATA_FIELDS:
            data.pop(name, None)
    return data


def from_dict(data: dict, cls: type = Environment):
    """The Environment (or section) written by `to_dict`; an unknown field is an error, a missing one a default.

    A section is known by its field's default factory (a dataclass), not by its annotation: Environment has
    members named like builtins (`list`), which resolving the annotations would trip over."""
    if not isinstance(data, dict):
        raise SpecError(f"{cls.__name__} definition must be a mapping, not {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls) if f.compare}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise SpecError(f"unknown {cls.__name__} field {unknown[0]!r}",
                        fix=f"use only {', '.join(sorted(known))} (written by a newer envbuild?)")
    values = {}
    for name, value in data.items():
        section = known[name].default_factory
        nested = isinstance(section, type) and dataclasses.is_dataclass(section)
        if nested:
            values[name] = from_dict(value, section)
        elif isinstance(known[name].default, tuple) and isinstance(value, list):
            values[name] = tuple(value)  # JSON has no tuples: a tuple field comes back as the list it was saved as
        else:
            values[name] = copy.deepcopy(value)
    return cls(**values)


def _plain(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.compare}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
