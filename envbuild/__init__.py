"""envbuild: environment specifications → container images, never built twice.

The public API is imported lazily so that `python -m envbuild build` on a cached environment does not pay for
jinja2, conda-lock, rattler or the docker SDK.
"""

from __future__ import annotations

__version__ = "0.1.0"

_EXPORTS = {
    "Environment": "envbuild.spec",
    "CondaDependencies": "envbuild.spec",
    "EnvbuildError": "envbuild.errors",
    "SpecError": "envbuild.errors",
    "ResolveError": "envbuild.errors",
    "RenderError": "envbuild.errors",
    "BuildError": "envbuild.errors",
    "CacheError": "envbuild.errors",
    "CatalogError": "envbuild.errors",
    "Image": "envbuild.cache",
    "build": "envbuild.api",
    "lock": "envbuild.api",
    "render": "envbuild.api",
    "Lock": "envbuild.lockfile",
    "LockSet": "envbuild.lockfile",
    "BuildPlan": "envbuild.renderer",
    "Catalog": "envbuild.catalog",
    "load_curated": "envbuild.curated",
    "RunResult": "envbuild.runner",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'envbuild' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
