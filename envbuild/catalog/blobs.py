"""A version's files, content-addressed: what it needs beyond its definition to be built again anywhere.

A definition names some of its inputs by path: a build context directory, a Dockerfile given as a path, a
conda-lock file. Registering a version stores their bytes as blobs (sha256 of the bytes) in the catalog's
`blobs` table, and the version's `files` record names them: `build_context` (a manifest blob: every file's
relative path, blob and executable bit, and every directory), `base_dockerfile`, `lock_file`. Using the version
writes them back into the envbuild home under their digest (``catalog-files/``), once per machine, and points
the Environment there: edited or deleted originals, another directory, another machine, the same key.
Other features keep their own content in the same table through `Catalog.put_blob` / `get_blob`.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import insert, select

from .. import config
from ..errors import CatalogError
from .schema import blobs

FILES_DIR = "catalog-files"


def blob_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store_blob(conn, data: bytes) -> str:
    """Store `data` (once) and return its digest. A writer racing to store the same bytes makes this
    transaction fail on the primary key; the caller's retry then finds them stored."""
    digest = blob_digest(data)
    if conn.execute(select(blobs.c.digest).where(blobs.c.digest == digest)).first() is None:
        conn.execute(insert(blobs).values(digest=digest, size=len(data), data=data))
    return digest


def load_blob(conn, digest: str) -> bytes:
    data = conn.execute(select(blobs.c.data).where(blobs.c.digest == digest)).scalar()
    if data is None:
        raise CatalogError(f"the catalog has no blob {digest}",
                           fix="the blob was never stored in this catalog: check --catalog / $ENVBUILD_CATALOG")
    return bytes(data)


def capture(env) -> tuple[dict[str, bytes], dict[str, str]]:
    """The files `env` reads by path (build context, a Dockerfile given by path, a lock file, private wheels), as
    blobs to store ({digest: bytes}) and the version's `files` record."""
    found: dict[str, bytes] = {}
    files: dict[str, str] = {}

    def keep(data: bytes) -> str:
        digest = blob_digest(data)
        found[digest] = data
        return digest

    docker = env.docker
    if docker.build_context:
        from ..buildcontext import context_entries

        root = Path(docker.build_context)
        dockerfile = posixpath.normpath(docker.dockerfile_path)
        manifest: dict = {"dirs": [], "files": {}}
        for relative in sorted(set(context_entries(root, dockerfile)) | {dockerfile}):
            entry = root / relative
            if entry.is_dir():
                manifest["dirs"].append(relative)
            elif entry.is_file():
                manifest["files"][relative] = {"blob": keep(entry.read_bytes()),
                                               "executable": bool(entry.stat().st_mode & 0o111)}
        files["build_context"] = keep(json.dumps(manifest, sort_keys=True).encode())
    if docker.base_dockerfile and docker.base_dockerfile_is_path:
        files["base_dockerfile"] = keep(Path(docker.base_dockerfile).read_bytes())
    if env.lock_file:
        files["lock_file"] = keep(Path(env.lock_file).read_bytes())
    from ..wheels import wheel_in_requirement

    for requirement in env.python.conda_dependencies.pip_packages:
        wheel = wheel_in_requirement(requirement)
        if wheel is not None and wheel.is_file():
            files[f"wheel:{wheel.parent.name}/{wheel.name}"] = keep(wheel.read_bytes())
    return found, files


def materialise(env, files: dict[str, str], fetch: Callable[[str], bytes], home=None) -> None:
    """Point `env` at copies of its registered files in the envbuild home, written from their blobs (`fetch`)
    unless this home has them already."""
    if not files:
        return
    store = config.home(home) / FILES_DIR
    store.mkdir(parents=True, exist_ok=True)
    if "build_context" in files:
        target = store / f"context-{files['build_context']}"
        if not target.is_dir():
            _write_context(json.loads(fetch(files["build_context"])), fetch, target)
        env.docker.build_context = str(target)
    if "base_dockerfile" in files:
        env.docker.base_dockerfile = fetch(files["base_dockerfile"]).decode("utf-8")
    if "lock_file" in files:
        target = store / f"lock-{files['lock_file']}" / Path(env.lock_file or "conda-lock.yml").name
        if not target.is_file():
            _write_atomically({target.name: (fetch(files["lock_file"]), False)}, [], target.parent)
        env.lock_file = str(target)
    from ..wheels import restore_wheel

    for name, digest in files.items():
        if name.startswith("wheel:"):
            restore_wheel(env, name[len("wheel:"):], lambda digest=digest: fetch(digest))


def _write_context(manifest: dict, fetch: Callable[[str], bytes], target: Path) -> None:
    contents = {relative: (fetch(item["blob"]), item["executable"]) for relative, item in manifest["files"].items()}
    _write_atomically(contents, manifest["dirs"], target)


def _write_atomically(contents: dict[str, tuple[bytes, bool]], directories: list[str], target: Path) -> None:
    """Write the directory `target` whole or not at all: into a temporary sibling, renamed into place. Another
    process that wrote it first wins (the content is the same: it is named by its digest)."""
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        staging.chmod(0o755)
        for relative in directories:
            (staging / relative).mkdir(parents=True, exist_ok=True)
        for relative, (data, executable) in contents.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(0o755 if executable else 0o644)
        os.rename(staging, target)
    except OSError:
        if not target.is_dir():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
