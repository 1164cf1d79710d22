"""The byte-for-byte fast path: `envbuild build SPEC` on a spec file seen before, without parsing it.

The full path (`api.build`) writes, next to the index, two kinds of small files once it knows a request's image:
- ``index/memo/<file memo key>``: what a spec file's exact bytes (with its path and the `--base-image` override)
  stood for: spec key, base (reference and id), template digest, local channels, the request key it computed for
  them, the other files the spec was loaded from (with their digests), its `docker run` options;
- ``index/answers/<request key>``: the image that request got: build key, reference, id, spec and lock keys,
  registry digest. Rewritten on every full-path build of an equivalent spec (after `--refresh-lock` or
  `--rebuild` too), next to the index's own request record, so the fast path never answers an older image than
  the index would.
A later request for the same bytes skips parsing, normalizing, locking and rendering: read the memo, check the
other files are unchanged, ask the engine for the base image's id, key the request, read its answer, and return it
if the engine still has that image under that id. Anything uncertain (a missing or unreadable file, any mismatch)
answers None within a few milliseconds, and the caller takes the full path, which gives the same answer.

This path runs in a fresh process on every cache hit, so its cost is mostly imports (benchmark P2 measures it
against a bare interpreter start). Hence plain files in a line format (`name value`, one field a line) rather than
the index's SQLite and pickle, or json (and the `re` it loads): these take milliseconds to import, a hit reads its
two files in microseconds. Allowed imports, all of them (the modules' own module-level imports included;
tests/test_hitpath.py checks the heavy ones stay out):
- the standard library's os and time; collections (namedtuple); _socket (the engine, on its local socket);
- xxhash (through envbuild.keys.digest);
- envbuild.config, envbuild.cache (Image, image_of, record_hit: its module top imports no SQLite), envbuild.engine
  (Engine), envbuild.keys (file_memo_key, template_digest, digest, tag_of; request_key only when the memo's
  request key does not apply), envbuild.errors.
`remember_file` runs on the full path and imports the spec model there, inside the function.
"""

from __future__ import annotations

import os
import time

from . import config
from .cache import Image, image_of, record_hit
from .engine import Engine
from .keys import digest, file_memo_key, request_key, tag_of, template_digest

_HEADER = "envbuild fast path 1\n"  # the format's first line: a file of another format (or none) is not read
_LISTS = ("files", "local_channels", "arguments")  # the fields written once per item; the others once at most
_MEMO = ("spec_key", "platform", "base_ref", "base_id", "request_key")  # what a memo must hold
_ANSWER = ("key", "image", "id", "spec_key", "lock_key")  # what an answer must hold (`image_of` reads them)


def cached_build_for_file(path: str | os.PathLike, *, base_image: str | None = None, cache_dir=None,
                          template=None) -> Image | None:
    """The cached image of the spec file at `path` if these exact bytes were built before, else None."""
    started = time.perf_counter()
    home = config.home_dir(cache_dir)
    try:
        remembered = _read(_memo_path(home, file_memo_key(path, base_image)), _MEMO)
        if remembered is None or not _files_unchanged(remembered["files"]):
            return None
        template_hash = template_digest(template)
    except OSError:
        return None
    engine = Engine()
    try:
        base_id = engine.image_id(remembered["base_ref"])
        if base_id is None:
            return None
        answer = _read(_answer_path(home, _request_key(remembered, base_id, template_hash)), _ANSWER)
        if answer is None or engine.image_id(answer["image"]) != answer["id"]:
            return None
    except OSError:  # no answer for this request (the base moved, or another template)
        return None
    finally:
        engine.close()
    record_hit(home, answer["key"])
    return image_of(answer, answer["key"], source="cache", started=started)


def _request_key(remembered: dict, base_id: str, template: str | None) -> str:
    """The request key of the remembered spec on base `base_id` with the template of digest `template`.

    The full path stored the one it computed: it is the same key while the base, the template and the (absent)
    local channels are what they were then, and taking it saves the hit the json import of `keys.key_of`.
    Otherwise it is computed again.
    """
    as_remembered = base_id == remembered["base_id"] and template == remembered.get("template")
    if as_remembered and not remembered["local_channels"]:  # a local channel may have been re-indexed since
        return remembered["request_key"]
    return request_key(remembered["spec_key"], base_id, template, remembered["local_channels"],
                       remembered["platform"])


def _files_unchanged(files: list[str]) -> bool:
    """Whether each `digest path` line of a memo still holds: the other files the spec was loaded from."""
    try:
        for line in files:
            expected, _, path = line.partition(" ")
            if _file_digest(path) != expected:
                return False
    except OSError:
        return False
    return True


def _file_digest(path: str) -> str:
    with open(path, "rb") as file:
        return digest(file.read())


# -- what the full path writes -------------------------------------------------------------------------------------
def remember_file(home: str | os.PathLike, env, spec_key: str, base, image: Image, *, requested: str,
                  template: str | None, local_channels: list[str], platform: str) -> None:
    """Write what the next build of env's spec file needs to answer `image` without parsing: the answer of the
    request `requested` (computed for the base `base`, a `bases.BaseImage`, the template of digest `template` and
    the local channels), and the memo of the file's bytes.

    The answer is written for every request, whatever it came from: an equivalent spec file's memo leads to it.
    The memo only when the file's bytes really stand for `spec_key`: an environment changed after it was loaded
    (API users may) is not its file. It is keyed by the base image override (what `--base-image` says), not by an
    image the file names itself. Nothing is written to a home that cannot be written.
    """
    from .errors import EnvbuildError

    try:
        _write(_answer_path(home, requested), {
            "key": image.key, "image": image.image, "id": image.id, "spec_key": image.spec_key,
            "lock_key": image.lock_key, "digest": image.digest})
        if not env.source_files:
            return
        from pathlib import Path

        from .keys import canonical_spec
        from .spec import Environment

        main = Path(env.source_files[0])
        as_written = Environment.from_file(main)
        override = env.docker.base_image if env.docker.base_image != as_written.docker.base_image else None
        if override:
            as_written.docker.base_image = override
        if canonical_spec(as_written).key != spec_key:
            return
        run = env.docker.run_options()
        _write(_memo_path(home, file_memo_key(main, override)), {
            "spec_key": spec_key, "platform": platform, "base_ref": base.ref, "base_id": base.id,
            "template": template, "request_key": requested, "local_channels": list(local_channels),
            "files": [f"{_file_digest(p)} {Path(p).resolve()}" for p in env.source_files[1:]],
            "shm_size": run.get("shm_size"), "arguments": list(run.get("arguments", ()))})
    except (OSError, ValueError, EnvbuildError):
        return


def remembered_run_options(path: str | os.PathLike, cache_dir=None) -> dict:
    """The `docker run` options (shm_size, arguments) of the spec file at `path`, as remembered with its bytes by
    the full path: `envbuild run` on a cache hit applies them without parsing the file."""
    try:
        remembered = _read(_memo_path(config.home_dir(cache_dir), file_memo_key(path, None)), ())
    except OSError:
        return {}
    if not remembered or not (remembered.get("shm_size") or remembered["arguments"]):
        return {}
    return {"shm_size": remembered.get("shm_size"), "arguments": remembered["arguments"]}


# -- the files ---------------------------------------------------------------------------------------------------
def _memo_path(home: str | os.PathLike, memo_key: str) -> str:
    return os.path.join(home, "index", "memo", tag_of(memo_key))


def _answer_path(home: str | os.PathLike, requested: str) -> str:
    return os.path.join(home, "index", "answers", tag_of(requested))


def _write(path: str, fields: dict) -> None:
    """Write `fields` (None: left out; a list for the _LISTS) to `path` whole or not at all: a reader sees the old
    file or the new one, never a part. Mode 0600: a memo names the user's files. ValueError for a value holding a
    newline (a path may): that file is then not remembered."""
    lines = [_HEADER]
    for name, value in fields.items():
        for item in value if name in _LISTS else [value]:
            if item is None:
                continue
            if "\n" in item:
                raise ValueError(f"{name} holds a newline")
            lines.append(f"{name} {item}\n")
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    temporary = f"{path}.{os.getpid()}.{time.time_ns()}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write("".join(lines))
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _read(path: str, required: tuple[str, ...]) -> dict | None:
    """The fields of the file at `path` (the _LISTS as lists, possibly empty); None when it is of another format,
    torn, or lacks a field of `required`. OSError when it cannot be read (there is none)."""
    with open(path, encoding="utf-8", errors="replace") as file:
        text = file.read()
    if not text.startswith(_HEADER) or not text.endswith("\n"):
        return None
    fields: dict = {name: [] for name in _LISTS}
    for line in text[len(_HEADER):].split("\n")[:-1]:
        name, _, value = line.partition(" ")
        if name in _LISTS:
            fields[name].append(value)
        elif name in fields:
            return None  # a field given twice: not a file this module wrote
        else:
            fields[name] = value
    return fields if all(name in fields for name in required) else None
