"""A minimal Docker Engine API client for the questions the cache-hit path asks, and the image edits that are
plain API calls (tag, remove).

The docker SDK takes ~100 ms to import, and even http.client drags in the email package; a cache hit must cost
little more than an interpreter start. So the few calls made on every hit (does this image exist, what is its id)
speak HTTP/1.1 to the Engine API over a plain socket (unix, tcp, or tcp with TLS through the ssl module, imported
only then), keeping the connection alive between calls. The engine is the one `current_endpoint()` finds, the
same one the builders and CLI subprocesses are pointed at. TLS uses the endpoint's own CA, passed explicitly:
nothing here reads REQUESTS_CA_BUNDLE, which would otherwise replace it.
"""

from __future__ import annotations

import json
import socket
import urllib.parse

from ..errors import EngineError
from .endpoint import API_VERSION, Endpoint, current_endpoint


class Engine:
    """Talks to one engine: `endpoint`, default the one DOCKER_HOST / the docker context / the local socket names."""

    def __init__(self, endpoint: Endpoint | None = None, timeout: float = 30.0):
        self.endpoint = endpoint or current_endpoint()
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = b""

    @property
    def host(self) -> str:
        return self.endpoint.host

    def _connect(self) -> socket.socket:
        if self._sock is None:
            url = urllib.parse.urlparse(self.host)
            tls = self.endpoint.tls_dir is not None
            if url.scheme == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                address = url.path
            elif url.scheme in ("tcp", "http", "https"):
                sock = socket.socket(socket.AF_INET6 if ":" in (url.hostname or "") else socket.AF_INET)
                address = (url.hostname, url.port or (2376 if tls else 2375))
            else:
                raise EngineError(f"unsupported engine address {self.host!r} ({self.endpoint.source})",
                                  fix="use unix:///path/to/docker.sock or tcp://host:port")
            sock.settimeout(self.timeout)
            try:
                sock.connect(address)
                if tls and url.scheme != "unix":
                    sock = self._tls_context().wrap_socket(sock, server_hostname=url.hostname)
            except OSError:
                sock.close()
                raise
            self._sock, self._buffer = sock, b""
        return self._sock

    def _tls_context(self):
        """TLS as the docker CLI does it: the server checked against ca.pem (system roots when there is none)
        unless verification is off; cert.pem/key.pem as the client's identity."""
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if self.endpoint.verify:
            ca = self.endpoint.tls_file("ca.pem")
            if ca:
                context.load_verify_locations(cafile=ca)
            else:
                context.load_default_certs()
        else:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        cert, key = self.endpoint.tls_file("cert.pem"), self.endpoint.tls_file("key.pem")
        if cert and key:
            context.load_cert_chain(cert, key)
        return context

    def request(self, method: str, path: str) -> tuple[int, bytes]:
        for attempt in (1, 2):  # one retry: the engine may have closed an idle keep-alive connection
            try:
                sock = self._connect()
                sock.sendall(f"{method} /v{API_VERSION}{path} HTTP/1.1\r\nHost: docker\r\n"
                             f"Content-Length: 0\r\n\r\n".encode("ascii"))
                return self._response()
            except (OSError, ValueError) as exc:
                self.close()
                if attempt == 2:
                    raise EngineError(f"cannot reach the Docker Engine at {self.host} ({self.endpoint.source}): {exc}",
                                      fix="start dockerd, or point DOCKER_HOST (with DOCKER_TLS_VERIFY and "
                                          "DOCKER_CERT_PATH for TLS) or DOCKER_CONTEXT at a running engine") from None
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

    def tag(self, source: str, target: str) -> None:
        """Give the image `source` (tag or id) the name `target` (REPOSITORY[:TAG]), like `docker tag`."""
        repository, tag = _split_reference(target)
        query = urllib.parse.urlencode({"repo": repository, "tag": tag})
        status, body = self.request("POST", f"/images/{urllib.parse.quote(source, safe='')}/tag?{query}")
        if status != 201:
            raise EngineError(f"engine could not tag {source} as {target} ({status}): {_message(body)}")

    def remove(self, ref: str, *, prune: bool = True) -> bool:
        """Remove the name `ref` (or the image, given its id), like `docker rmi`; prune=False keeps the untagged
        parent layers. False when the engine has no such image; an image a container still uses is an error."""
        status, body = self.request("DELETE", f"/images/{urllib.parse.quote(ref, safe='')}"
                                              f"?noprune={'false' if prune else 'true'}")
        if status == 404:
            return False
        if status != 200:
            raise EngineError(f"engine could not remove {ref} ({status}): {_message(body)}")
        return True

    def ping(self) -> bool:
        try:
            status, _ = self.request("GET", "/_ping")
        except EngineError:
            return False
        return status == 200


def _split_reference(ref: str) -> tuple[str, str]:
    """("REPOSITORY", "TAG") of REPOSITORY[:TAG]; a colon before the last slash is a registry port, not a tag."""
    repository, colon, tag = ref.rpartition(":")
    if not colon or "/" in tag:
        return ref, "latest"
    return repository, tag


def _message(body: bytes) -> str:
    try:
        return json.loads(body).get("message") or body.decode(errors="replace")
    except (ValueError, AttributeError):
        return body[:300].decode(errors="replace")
