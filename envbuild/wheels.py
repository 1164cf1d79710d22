"""Private wheels: stored by content in the envbuild home, locked by their sha256, mounted into the one build step
that installs them, so the wheel file itself is in no layer.

A private wheel (`Environment.add_private_pip_wheel(path)`, or a local `*.whl` path in requirements.txt or
`pip:`) is copied to `<home>/wheels/<sha256>/<filename>` and named in the environment as `name @ file://<that
path>`: the solver reads it there, and a change of its bytes is a new path, so a new key. The lock records it at
the place the build finds it (`file:///tmp/envbuild/wheels/<sha256>/<filename>`, a bind mount of the build
context), not at this machine's home: two machines with the same wheel lock, render and key it the same.

A catalog version keeps its private wheels with its other files (envbuild.catalog.blobs stores their bytes by
content); on another machine `restore_wheel` puts them into that machine's store and points the requirement there.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from . import config
from .errors import SpecError
from .lockfile import write_atomically

# Where the pip step of a build sees the private wheels: renderer.CONTEXT_DIR's wheels/, bind-mounted from the
# build context for that one RUN.
BUILD_DIR = "/tmp/envbuild/wheels"
BUILD_URL = f"file://{BUILD_DIR}/"


def store_dir() -> Path:
    """The wheel store: `<home>/wheels` of the default home (ENVBUILD_HOME), where every later step looks."""
    return config.home() / "wheels"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def store_wheel(path: str | os.PathLike, where: str | None = None) -> str:
    """Copy the wheel at `path` into the store (once per content); returns its requirement, `name @ file://...`.

    `where` (file:line) names the line that asked for it in an error.
    """
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    source = Path(path).expanduser()
    if not source.is_file():
        raise SpecError(f"private wheel {source} does not exist", where=where,
                        fix="check the path (a path in a requirements file is read relative to that file)")
    try:
        name = parse_wheel_filename(source.name)[0]
    except InvalidWheelFilename as exc:
        raise SpecError(f"{source.name} is not a wheel file name: {exc}", where=where,
                        fix="build a wheel (`python -m build --wheel`) and name the .whl file it writes") from None
    sha256 = sha256_of(source)
    target = store_dir() / sha256 / source.name
    if not target.is_file():
        write_atomically(target, source.read_bytes())
    return f"{name} @ {target.as_uri()}"


def locked_url(path: str) -> tuple[str, str]:
    """A local wheel the solver locked (a path in the store) → (the URL the build installs it from, its sha256)."""
    from .errors import ResolveError

    local = Path(path[len("file://"):] if path.startswith("file://") else path)
    store = store_dir()
    if local.parent.parent != store:
        raise ResolveError(f"local file {local} is not a stored private wheel",
                           fix="add it with `add_private_pip_wheel(path)` or as a `*.whl` path in requirements.txt")
    return f"{BUILD_URL}{local.parent.name}/{local.name}", local.parent.name


def stored_wheel(url: str) -> Path | None:
    """The stored file of a locked private wheel URL (`file:///tmp/envbuild/wheels/<sha256>/<name>`); None for
    any other URL."""
    if not url.startswith(BUILD_URL):
        return None
    return store_dir() / url[len(BUILD_URL):]


def wheel_in_requirement(requirement: str) -> Path | None:
    """The stored wheel a requirement written by `store_wheel` names (`name @ file://.../wheels/<sha256>/<file>`,
    on whichever machine wrote it); None for any other requirement."""
    from urllib.parse import unquote

    _, separator, url = requirement.partition(" @ ")
    if not separator or not url.startswith("file://"):
        return None
    path = Path(unquote(url[len("file://"):]))
    if path.parent.parent.name != "wheels" or len(path.parent.name) != 64 or not path.name.endswith(".whl"):
        return None
    return path


def restore_wheel(env, relative: str, data) -> None:
    """Put the private wheel `<sha256>/<file>` (its bytes from `data()`, asked only when this store lacks it) into
    this machine's store, and point env's requirement for it there: a catalog version registered on another machine
    names that machine's store."""
    target = store_dir() / relative
    if not target.is_file():
        write_atomically(target, data())
    deps = env.python.conda_dependencies
    renamed = {}
    for requirement in deps.pip_packages:
        wheel = wheel_in_requirement(requirement)
        if wheel is not None and f"{wheel.parent.name}/{wheel.name}" == relative:
            renamed[requirement] = f"{requirement.partition(' @ ')[0]} @ {target.as_uri()}"
    deps.pip_packages = [renamed.get(r, r) for r in deps.pip_packages]
    for table in (deps.pip_hashes, deps.origins):  # keyed by the requirement's text
        for old, new in renamed.items():
            if old in table:
                table[new] = table.pop(old)
