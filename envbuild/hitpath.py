"""The byte-for-byte fast path: `envbuild build SPEC` on a spec file seen before, without parsing it.

A spec file's exact bytes (with its path and the `--base-image` override) are remembered, after a build, as the
spec key they stood for (`remember_file`, on the full path). A later request for the same bytes skips parsing,
normalizing, locking and rendering: read the memo, check the other files it was loaded from are unchanged, ask
the engine for the base image's id, key the request, and return the index entry the request key leads to if the
engine still has its image. Anything uncertain answers None within a few milliseconds, and the caller takes the
full path (`api.build`), which gives the same answer for any equivalent spec.

This path runs in a fresh process on every cache hit, so its cost is mostly imports (benchmark P2 measures it
against a bare interpreter start). Allowed imports, all of them (the modules' own module-level imports included;
tests/test_hitpath.py checks the heavy ones stay out):
- the standard library's os and time; collections (namedtuple); _sqlite3 and _pickle (the index reader, without
  the packages around them); _socket (the engine, on its local socket); logging only on a failure;
- xxhash (through envbuild.keys.digest);
- envbuild.config, envbuild.cache (Image, image_of, IndexReader), envbuild.engine (Engine), envbuild.keys
  (file_memo_key, template_digest, digest; request_key only when the memo's request key does not apply),
  envbuild.errors.
Not json (nor the `re` it loads): the memo holds the request key the full path computed, and the engine's answer
is read for its Id alone. `remember_file` runs on the full path and imports the spec model there, inside the
function.
"""

from __future__ import annotations

import os
import time

from . import config
from .cache import Image, IndexReader, image_of
from .engine import Engine
from .keys import digest, file_memo_key, request_key, template_digest


def cached_build_for_file(path: str | os.PathLike, *, base_image: str | None = None, cache_dir=None,
                          template=None) -> Image | None:
    """The cached image of the spec file at `path` if these exact bytes were built before, else None."""
    started = time.perf_counter()
    home = config.home_dir(cache_dir)
    if not os.path.exists(os.path.join(home, "index")):
        return None
    try:
        memo = file_memo_key(path, base_image)
        index = IndexReader(home)
    except (OSError, LookupError):
        return None
    engine = Engine()
    try:
        remembered = index.memo_get(memo)
        if not remembered or not _files_unchanged(remembered["files"]):
            return None
        base_id = engine.image_id(remembered["base_ref"])
        if base_id is None:
            return None
        build_key = index.resolve_request(_request_key(remembered, base_id, template_digest(template)))
        entry = index.get(build_key) if build_key else None
        if entry is None or engine.image_id(entry["image"]) != entry["id"]:
            return None
        index.record_hit(build_key)
        return image_of(entry, build_key, source="cache", started=started)
    except LookupError as exc:  # an index this reader cannot read: take the full path
        import logging

        logging.getLogger(__name__).debug("fast path skipped: %s", exc)
        return None
    finally:
        index.close()
        engine.close()


def _request_key(remembered: dict, base_id: str, template: str | None) -> str:
    """The request key of the remembered spec on base `base_id` with the template of digest `template`.

    The full path stored the one it computed: it is the same key while the base, the template and the (absent)
    local channels are what they were then, and taking it saves the hit the json import of `keys.key_of`.
    Otherwise it is computed again.
    """
    as_remembered = base_id == remembered["base_id"] and template == remembered["template"]
    if as_remembered and not remembered["local_channels"]:  # a local channel may have been re-indexed since
        return remembered["request_key"]
    return request_key(remembered["spec_key"], base_id, template, remembered["local_channels"],
                       remembered["platform"])


def _files_unchanged(files: dict[str, str]) -> bool:
    try:
        return all(_file_digest(p) == d for p, d in files.items())
    except OSError:
        return False


def _file_digest(path: str) -> str:
    with open(path, "rb") as file:
        return digest(file.read())


def remember_file(index, env, spec_key: str, base, *, requested: str, template: str | None,
                  local_channels: list[str], platform: str) -> None:
    """Remember that the bytes of env's spec file stand for `spec_key`, so the next build of that file skips parsing.

    Only when they really do: an environment changed after it was loaded (API users may) is not its file. The
    memo is keyed by the base image override (what `--base-image` says), not by an image the file names itself.
    With it: the base (`bases.BaseImage`: its reference to ask the engine for, its id), and the request key
    `requested` computed for that base id, the template of digest `template` and the local channels.
    """
    if not env.source_files:
        return
    from pathlib import Path

    from .errors import EnvbuildError
    from .keys import canonical_spec
    from .spec import Environment

    main = Path(env.source_files[0])
    try:
        as_written = Environment.from_file(main)
        override = env.docker.base_image if env.docker.base_image != as_written.docker.base_image else None
        if override:
            as_written.docker.base_image = override
        if canonical_spec(as_written).key != spec_key:
            return
        files = {str(Path(p).resolve()): _file_digest(p) for p in env.source_files[1:]}
        index.memo_put(file_memo_key(main, override), {
            "spec_key": spec_key, "base_ref": base.ref, "files": files, "local_channels": list(local_channels),
            "platform": platform, "base_id": base.id, "template": template, "request_key": requested})
    except (OSError, EnvbuildError):
        return
