"""Bases through the shared registry: made once, by the first machine, and pulled by every other.

A base image envbuild makes (the default Python base, its Debian root, the CPU and GPU bases, a user's Dockerfile
or build context) is not byte-reproducible: debootstrap and `apt-get install` give other bytes on every machine and
every day, so each machine that made its own would get its own image id, and every request and build key on top of
it (they take the base's id) would differ from machine to machine: no machine would ever find another's images.
So with a registry, a base is an environment too: it is shared under its recipe key (keys.base_recipe_key, tag
``base-<key>``), the first machine that makes it pushes it, every other pulls it instead of making its own, and all
stand on the same bytes. A machine that made its own before it knew the registry converges on the registry's
(and says so: environments keyed on its old base are then keyed anew).

Bases named by reference (`python:3.11-slim`, `mcr.microsoft.com/...`) come from their own registry, by repo digest:
nothing to share here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from .errors import CacheError

if TYPE_CHECKING:
    from .engine import Engine
    from .registry import Registry

log = logging.getLogger(__name__)


def obtain(tag: str, recipe_key: str, make: Callable[[], None], engine: "Engine", shared: "Registry | None", *,
           on_log: Callable[[str], None] | None = None) -> str | None:
    """Put the base of `recipe_key` on the engine under `tag`: the registry's when it has one, else what the engine
    has, else `make()`s it (and then pushes it for the others). Returns a warning when the engine's own base under
    `tag` was replaced by the registry's, else None. Without a registry (or with one that does not answer), the
    engine's base is used, made if missing."""
    local_id = engine.image_id(tag)
    if shared is None or not shared.available():
        if local_id is None:
            make()
        return None
    ref = shared.base_ref(recipe_key)
    remote_id = shared.image_id(ref.rsplit(":", 1)[1])
    if remote_id is None:
        if local_id is None:
            make()
        return _push_or_converge(tag, recipe_key, engine, shared, on_log)
    if remote_id == local_id:
        return None
    try:
        _pull_as(ref, tag, engine, shared, on_log)
    except CacheError as exc:
        log.warning("base %s not pulled from the registry (%s): using this engine's", tag, exc.what)
        if local_id is None:
            make()
        return None
    if local_id is None:
        log.info("base %s pulled from the registry (recipe %s)", tag, recipe_key)
        return None
    return _converged(tag, recipe_key, local_id, remote_id)


def _push_or_converge(tag: str, recipe_key: str, engine: "Engine", shared: "Registry", on_log) -> str | None:
    """Share the base this engine has; if another machine shared one meanwhile, take that one instead."""
    ref = shared.base_ref(recipe_key)
    remote_id = shared.image_id(ref.rsplit(":", 1)[1])
    local_id = engine.image_id(tag)
    if remote_id is not None and remote_id != local_id:
        _pull_as(ref, tag, engine, shared, on_log)
        return _converged(tag, recipe_key, local_id, remote_id)
    if remote_id is None:
        try:
            shared.push(tag, [ref.rsplit(":", 1)[1]], on_log)
            log.info("base %s shared as %s", tag, ref)
        except CacheError as exc:
            log.warning("base %s not shared: %s", tag, exc.what)
    return None


def _pull_as(ref: str, tag: str, engine: "Engine", shared: "Registry", on_log) -> None:
    shared.pull(ref, on_log)
    engine.tag(ref, tag)
    engine.remove(ref, prune=False)


def _converged(tag: str, recipe_key: str, old_id: str | None, new_id: str) -> str:
    message = (f"base {tag} replaced by the registry's (recipe {recipe_key}, image {new_id[:19]}; this engine's own "
               f"was {(old_id or '-')[:19]}): environments on it are keyed anew, as on every other machine")
    log.warning("%s", message)
    return message
