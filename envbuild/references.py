"""Anything that names an environment, resolved to an `Environment`: where every kind of reference is told apart.

A reference is a spec file or directory (envbuild.spec reads it), ``curated:NAME[:VERSION|@latest]`` (an
environment that ships with envbuild, envbuild.curated), ``docker://IMAGE`` (an existing image used as it is;
skopeo's transport notation) or a catalog ``NAME[:VERSION|@latest]`` (envbuild.catalog). The command line, the
runner and the catalog commands accept references and come here; the model and its loaders only read files.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import catalog
from .curated import is_curated, load_curated
from .errors import CatalogError
from .spec import Environment

DOCKER_IMAGE_PREFIX = "docker://"


def load(ref: str | os.PathLike, name: str | None = None) -> Environment:
    """A spec file or directory, `curated:NAME[:VERSION]` or `docker://IMAGE` (`name` names a file's or an
    image's environment; a curated one keeps its own)."""
    text = os.fspath(ref)
    if is_curated(text):
        return load_curated(text)
    if text.startswith(DOCKER_IMAGE_PREFIX):
        return Environment.from_docker_image(name or "image", text[len(DOCKER_IMAGE_PREFIX):])
    return Environment.from_file(text, name)


def resolve(ref: str, *, home=None) -> tuple[Environment, catalog.Entry | None]:
    """What `load` reads, or else a catalog `NAME[:VERSION]` → (Environment, the catalog entry or None)."""
    if is_curated(ref) or ref.startswith(DOCKER_IMAGE_PREFIX) or Path(ref).exists():
        return load(ref), None
    try:
        name, version = catalog.parse_ref(ref)
    except CatalogError:
        raise CatalogError(f"{ref!r} is neither a spec file nor an environment reference",
                           fix="pass a spec file, NAME[:VERSION] from `envbuild env list`, or curated:NAME[:VERSION]") \
            from None
    with catalog.Catalog(home) as opened:
        try:
            entry = opened.entry(name, version)
        except CatalogError as exc:
            raise CatalogError(f"{ref!r} is not a spec file, and {exc.what}", fix=exc.fix) from None
    return entry.environment, entry
