"""A minimal Docker Engine API client for the questions the cache-hit path asks.

The docker SDK takes ~100 ms to import, and even http.client drags in the email package; a cache hit must cost
little more than an interpreter start. So the few calls made on every hit (does this image exist, what is its id)
speak HTTP/1.1 to the Engine API over a plain socket (unix or tcp), keeping the connection alive between calls.
Builds, pushes and pulls use the docker CLI / SDK (see builder.py).
"""

from __future__ import annotations

import json
import os
import socket
import urllib.parse

from .errors import EngineError

_API_VERSION = "v1.41"  # supported by every engine from 20.10 on


class Engine:
    """Talks to the engine named by DOCKER_HOST (unix:// or tcp://), default /var/run/docker.sock."""

    def __init__(self, host: str | None = None, timeout: float = 30.0):
        self.host = host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = b""

    def _connect(self) -> socket.socket:
        if self._sock is None:
            url = urllib.parse.urlparse(self.host)
            if url.scheme == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                address = url.path
            elif url.scheme in ("tcp", "http"):
                sock = socket.socket(socket.AF_INET6 if ":" in (url.hostname or "") else socket.AF_INET)
                address = (url.hostname, url.port or 2375)
            else:
                raise EngineError(f"unsupported DOCKER_HOST {self.host!r}",
                                  fix="use unix:///path/to/docker.sock or tcp://host:port (TLS engines: the docker CLI)")
            sock.settimeout(self.timeout)
            try:
                sock.connect(address)
            except OSError:
                sock.close()
                raise
            self._sock, self._buffer = sock, b""
        return self._sock

    def request(self, method: str, path: str) -> tuple[int, bytes]:
        for attempt in (1, 2):  # one retry: the engine may have closed an idle keep-alive connection
            try:
                sock = self._connect()
                sock.sendall(f"{method} /{_API_VERSION}{path} HTTP/1.1\r\nHost: docker\r\n"
                             f"Content-Length: 0\r\n\r\n".encode("ascii"))
                return self._response()
            except (OSError, ValueError) as exc:
                self.close()
                if attempt == 2:
                    raise EngineError(f"cannot reach the Docker Engine at {self.host}: {exc}",
                                      fix="start dockerd (or set DOCKER_HOST) and retry") from None
        raise AssertionError("unreachable")

    def _response(self) -> tuple[int, bytes]:
        head = self._read_until(b"\r\n\r\n").decode("iso-8859-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while size := int(self._read_until(b"\r\n").split(b";")[0], 16):
                body += self._read_exactly(size + 2)[:-2]
            self._read_until(b"\r\n")
        else:
            body = self._read_exactly(int(headers.get("content-length", 0)))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, body

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            self._fill()
        found, _, self._buffer = self._buffer.partition(marker)
        return found

    def _read_exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        found, self._buffer = self._buffer[:size], self._buffer[size:]
        return found

    def _fill(self) -> None:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("the engine closed the connection")
        self._buffer += chunk

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buffer = b""

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
