"""Anything that names an environment, resolved to an `Environment`: where every kind of reference is told apart.

A reference is a spec file or directory (envbuild.spec reads it), ``curated:NAME[:VERSION|@latest]`` (an
environment that ships with envbuild, envbuild.curated), ``docker://IMAGE`` (an existing image used as it is;
skopeo's transport notation) or a catalog ``NAME[:VERSION|@latest]``, also spelled as Azure ML CLI v2 does,
``azureml:NAME:VERSION`` / ``azureml:NAME@latest`` (envbuild.catalog). The command line, the runner and the
catalog commands accept references and come here; the model and its loaders only read files.
"""

from __future__ import annotations

import os
from pathlib import Path

from .catalog.names import parse_ref
from .curated import is_curated, load_curated
from .errors import CatalogError
from .spec import Environment

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .catalog.records import Entry

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


def resolve(ref: str, *, name: str | None = None, home=None,
            catalog_url: str | None = None) -> tuple[Environment, Entry | None]:
    """What `load` reads, or else a catalog version → (Environment, its catalog entry or None). A catalog
    version's files come from the catalog (`catalog_url`, default $ENVBUILD_CATALOG or the home's own)."""
    ref = os.fspath(ref)
    if is_curated(ref) or ref.startswith(DOCKER_IMAGE_PREFIX) or Path(ref).exists():
        return load(ref, name), None
    try:
        wanted, version = parse_ref(ref)
    except CatalogError:
        raise CatalogError(f"{ref!r} is neither a spec file nor an environment reference",
                           fix="pass a spec file, NAME[:VERSION] from `envbuild env list` (or azureml:NAME:VERSION), "
                               "or curated:NAME[:VERSION]") from None
    from .catalog.store import Catalog

    with Catalog(home, catalog_url) as opened:
        try:
            entry = opened.entry(wanted, version)
        except CatalogError as exc:
            raise CatalogError(f"{ref!r} is not a spec file, and {exc.what}", fix=exc.fix) from None
        return opened.environment(entry), entry
