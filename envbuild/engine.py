"""A minimal Docker Engine API client for the questions the cache-hit path asks.

The docker SDK takes ~100 ms to import; a cache hit must cost little more than an interpreter start. So the few
read-only calls made on every hit (does this image exist, what is its id) go straight to the Engine API over
its socket with http.client. Builds, pushes and pulls use the docker CLI / SDK (see build.py).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.parse

from .errors import EngineError

_API_VERSION = "v1.41"  # supported by every engine from 20.10 on


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._socket_path)
        self.sock = sock


class Engine:
    """Talks to the engine named by DOCKER_HOST (unix:// or tcp://), default /var/run/docker.sock."""

    def __init__(self, host: str | None = None, timeout: float = 30.0):
        self.host = host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            url = urllib.parse.urlparse(self.host)
            if url.scheme == "unix":
                self._conn = _UnixConnection(url.path, self.timeout)
            elif url.scheme in ("tcp", "http"):
                self._conn = http.client.HTTPConnection(url.hostname, url.port or 2375, timeout=self.timeout)
            else:
                raise EngineError(f"unsupported DOCKER_HOST {self.host!r}",
                                  fix="use unix:///path/to/docker.sock or tcp://host:port")
        return self._conn

    def request(self, method: str, path: str) -> tuple[int, bytes]:
        for attempt in (1, 2):  # one retry: the engine may have closed an idle keep-alive connection
            try:
                conn = self._connection()
                conn.request(method, f"/{_API_VERSION}{path}")
                response = conn.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                self.close()
                if attempt == 2:
                    raise EngineError(f"cannot reach the Docker Engine at {self.host}: {exc}",
                                      fix="start dockerd (or set DOCKER_HOST) and retry") from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def inspect_image(self, ref: str) -> dict | None:
        """The engine's image record for `ref` (tag or id), or None when the engine has no such image."""
        status, body = self.request("GET", f"/images/{urllib.parse.quote(ref, safe='')}/json")
        if status == 404:
            return None
        if status != 200:
            raise EngineError(f"engine answered {status} for image {ref}: {body[:200]!r}")
        return json.loads(body)

    def image_id(self, ref: str) -> str | None:
        record = self.inspect_image(ref)
        return record["Id"] if record else None

    def ping(self) -> bool:
        try:
            status, _ = self.request("GET", "/_ping")
        except EngineError:
            return False
        return status == 200
