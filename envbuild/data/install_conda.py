"""Install the conda packages of a lock into a prefix, inside the installer stage of an envbuild image.

Runs with the installer's own Python and py-rattler. It installs exactly the records of the lock: every package
is taken from the build context (local channels) or downloaded from its URL, checked against the lock's sha256
(md5 where an older lock file has no sha256), and linked into the prefix. Nothing is solved here: the lock already decided.

usage: install_conda.py MANIFEST.json CONDA_CONTEXT_DIR PREFIX  (local packages under CONDA_CONTEXT_DIR/packages)
"""

import asyncio
import hashlib
import json
import os
import shutil
import ssl
import sys
import urllib.request
from pathlib import Path

import rattler

CA_SECRET = "/run/secrets/ca"
DOWNLOADS = Path("/root/.cache/envbuild-conda-pkgs")


def hash_of(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def expected(entry: dict) -> tuple[str, str]:
    """The hash the lock gives: sha256, or md5 for older conda-lock files that carry nothing else."""
    return ("sha256", entry["sha256"]) if entry.get("sha256") else ("md5", entry["md5"])


def fetch(entry: dict, context: Path) -> Path:
    bundled = context / "packages" / entry["filename"]
    if bundled.exists():
        return bundled
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    algorithm, value = expected(entry)
    target = DOWNLOADS / f"{value}-{entry['filename']}"
    if target.exists() and hash_of(target, algorithm) == value:
        return target
    context_ssl = ssl.create_default_context(cafile=CA_SECRET if os.path.exists(CA_SECRET) else None)
    with urllib.request.urlopen(entry["url"], context=context_ssl) as response, target.open("wb") as out:
        shutil.copyfileobj(response, out)
    return target


async def main(manifest: Path, context: Path, prefix: str) -> None:
    entries = json.loads(manifest.read_text())
    records = []
    for entry in entries:
        path = fetch(entry, context)
        algorithm, value = expected(entry)
        actual = hash_of(path, algorithm)
        if actual != value:
            sys.exit(f"envbuild: {algorithm} mismatch for {entry['url']}: lock says {value}, got {actual}")
        records.append(await rattler.RepoDataRecord.from_package_archive(path))
    await rattler.install(records, target_prefix=prefix, show_progress=False, execute_link_scripts=False)
    print(f"envbuild: installed {len(records)} conda packages into {prefix}")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]))
    # py-rattler's runtime threads can abort the interpreter while it finalizes ("PyGILState_Release: thread
    # state must be current", exit 134) after a successful install: the work is done and flushed, so skip it.
    sys.stdout.flush()
    os._exit(0)
