"""A real OCI registry for tests and benchmarks: Debian's docker-registry on 127.0.0.1, storage in a tmp dir.

The engine treats 127.0.0.0/8 registries as insecure by default, so push and pull work over plain HTTP.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

from tests.support.servers import serving


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_registry(root: Path, users: dict[str, str] | None = None) -> Iterator[str]:
    """Start a registry storing under `root`; yields its address (127.0.0.1:PORT); stops it afterwards.
    With `users` (name → password) it asks for HTTP basic authentication."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RuntimeError("docker-registry is not installed: apt-get install -y docker-registry")
    root.mkdir(parents=True, exist_ok=True)
    address = f"127.0.0.1:{_free_port()}"
    config = root / "config.yml"
    config.write_text(f"""\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root / 'data'}
  delete:
    enabled: true
http:
  addr: {address}
""")
    if users:
        import bcrypt

        (root / "htpasswd").write_text("".join(f"{name}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()}\n"
                                               for name, password in users.items()))
        with config.open("a") as file:
            file.write(f"auth:\n  htpasswd:\n    realm: envbuild-tests\n    path: {root / 'htpasswd'}\n")
    with serving([binary, "serve", str(config)], f"http://{address}/v2/", root / "registry.log", "docker-registry"):
        yield address


def stored_bytes(root: Path) -> int:
    """Bytes the registry stores (blobs and manifests): what sharing layers saves shows up here."""
    return sum(path.stat().st_size for path in (root / "data").rglob("*") if path.is_file())


def image_config(location: str, tag: str) -> dict:
    """The image config blob the registry at `location` (HOST:PORT/REPO) stores for `tag`."""
    import json

    host, _, repository = location.partition("/")
    request = urllib.request.Request(f"http://{host}/v2/{repository}/manifests/{tag}",
                                     headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        config_digest = json.load(response)["config"]["digest"]
    with urllib.request.urlopen(f"http://{host}/v2/{repository}/blobs/{config_digest}", timeout=10) as response:
        return json.load(response)
