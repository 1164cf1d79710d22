"""Curated environments: the definitions that ship with envbuild, in the folders beside this file.

Each envbuild/curated/NAME/VERSION/ is a `save_to_directory` folder (Azure ML environment.yaml + conda.yaml) with
the Dockerfile rendered from it and its lock (render_curated.py re-renders them). They are referenced as
``curated:NAME:VERSION``, ``curated:NAME@latest`` or ``curated:NAME`` (envbuild.references resolves those). The code
lives beside the data it reads, so the folder layout and its reader are in one place; the names and versions follow
the catalog's rules (`catalog.parse_ref`), but nothing here touches the catalog's database.
"""

from __future__ import annotations

from pathlib import Path

from ..catalog.names import check_name, parse_ref
from ..errors import CatalogError
from ..spec import ENVIRONMENT_FILE, Environment

CURATED = Path(__file__).resolve().parent
CURATED_PREFIX = "curated:"


def curated_versions(name: str) -> list[int]:
    folder = CURATED / check_name(name)
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / ENVIRONMENT_FILE).is_file())


def curated_names() -> list[str]:
    if not CURATED.is_dir():
        return []
    return sorted(p.name for p in CURATED.iterdir() if p.is_dir() and curated_versions(p.name))


def curated_path(ref: str) -> Path:
    """The folder of a curated environment: `curated:NAME:VERSION`, `curated:NAME@latest` or `curated:NAME`."""
    text = ref.removeprefix(CURATED_PREFIX)
    name, version = parse_ref(text)
    versions = curated_versions(name)
    if not versions:
        raise CatalogError(f"no curated environment named {name!r}",
                           fix=f"curated environments: {', '.join(curated_names()) or 'none'}")
    chosen = str(versions[-1]) if version is None else version
    if chosen not in [str(v) for v in versions]:
        raise CatalogError(f"curated environment {name} has no version {chosen}",
                           fix=f"versions: {', '.join(str(v) for v in versions)} (or @latest)")
    return CURATED / name / chosen


def load_curated(ref: str) -> Environment:
    """The Environment of a curated reference (`curated:NAME:VERSION` or `curated:NAME@latest`)."""
    folder = curated_path(ref)
    env = Environment.load_from_directory(folder)
    env.name, env.version = folder.parent.name, folder.name  # the folder is the reference, whatever the file says
    return env


def is_curated(ref: str) -> bool:
    return ref.startswith(CURATED_PREFIX)
