"""A real authenticated package index for tests: pypiserver serving a directory of wheels behind an htpasswd file
(made with passlib), listening on every address so that build steps reach it at the docker0 gateway.

Also `make_wheel`: a small pure-Python wheel written directly (a wheel is a zip with three metadata files), so a
test owns its package's exact bytes without running a build backend.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import sys
import zipfile
from pathlib import Path
from typing import Iterator

from tests.support.servers import serving

GATEWAY = "172.17.0.1"  # the docker0 gateway: the host as build steps see it (../shared/testworld.md)

# passlib 1.7 probes bcrypt at import and fails on bcrypt 5; the htpasswd file here uses sha256_crypt, so the
# server runs without bcrypt (passlib then skips that scheme).
_SERVER = ("import sys; sys.modules['bcrypt'] = None; from pypiserver.__main__ import main; "
           "sys.exit(main(sys.argv[1:]))")


def make_wheel(directory: Path, name: str, version: str, code: str = "VALUE = 42\n") -> Path:
    """A py3-none-any wheel of package `name` (one module, `name/__init__.py` holding `code`)."""
    dist = f"{name}-{version}"
    files = {
        f"{name}/__init__.py": code.encode(),
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: envbuild-tests\nRoot-Is-Purelib: true\n"
                                   b"Tag: py3-none-any\n",
    }
    record = "".join(f"{path},sha256={_record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{dist}.dist-info/RECORD"] = (record + f"{dist}.dist-info/RECORD,,\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0)), data)
    return path


def _record_hash(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_index(packages: Path, root: Path, user: str, password: str) -> Iterator[int]:
    """pypiserver over `packages`, asking for `user`/`password` on every request; yields its port."""
    from passlib.hash import sha256_crypt  # not passlib.apache: its import probes bcrypt (see _SERVER)

    root.mkdir(parents=True, exist_ok=True)
    (root / "htpasswd").write_text(f"{user}:{sha256_crypt.hash(password)}\n")
    port = _free_port()
    command = [sys.executable, "-c", _SERVER, "run", "-p", str(port), "-i", "0.0.0.0", "-P", str(root / "htpasswd"),
               "-a", "download,list,update", str(packages)]
    with serving(command, f"http://127.0.0.1:{port}/simple/", root / "pypiserver.log", "pypiserver"):
        yield port
