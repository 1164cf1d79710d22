"""A minimal Docker Engine API client for the questions the cache-hit path asks, and the image edits that are
plain API calls (tag, remove).

The docker SDK takes ~100 ms to import, and even http.client drags in the email package; a cache hit must cost
little more than an interpreter start. So the few calls made on every hit (does this image exist, what is its id)
speak HTTP/1.1 to the Engine API over a plain socket (unix, tcp, or tcp with TLS through the ssl module, imported
only then), keeping the connection alive between calls. The engine is the one `current_endpoint()` finds, the
same one the builders and CLI subprocesses are pointed at. TLS uses the endpoint's own CA, passed explicitly:
nothing here reads REQUESTS_CA_BUNDLE, which would otherwise replace it.

Imports are inside the functions that need them, because every cache hit imports this module and benchmark P2
measures it: a hit on the local socket loads only `_socket` (the C module under `socket`: socket.py adds enum and
selectors, milliseconds), and reads an image's id without `json` (which loads `re`); tcp engines load
urllib.parse, TLS ones socket and ssl.
"""

from __future__ import annotations

import _socket

from ..errors import EngineError
from .endpoint import API_VERSION, Endpoint, current_endpoint

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    import socket


class Engine:
    """Talks to one engine: `endpoint`, default the one DOCKER_HOST / the docker context / the local socket names."""

    def __init__(self, endpoint: Endpoint | None = None, timeout: float = 30.0):
        self.endpoint = endpoint or current_endpoint()
        self.timeout = timeout
        self._sock: socket.socket | _socket.socket | None = None
        self._buffer = b""

    @property
    def host(self) -> str:
        return self.endpoint.host

    def _connect(self) -> socket.socket | _socket.socket:
        if self._sock is None:
            tls = self.endpoint.tls_dir is not None
            if self.host.startswith("unix://"):  # what urlparse(host).path is for a unix:// address
                sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
                address, hostname, tls = self.host[len("unix://"):], None, False
            else:
                import urllib.parse

                url = urllib.parse.urlparse(self.host)
                if url.scheme not in ("tcp", "http", "https"):
                    raise EngineError(f"unsupported engine address {self.host!r} ({self.endpoint.source})",
                                      fix="use unix:///path/to/docker.sock or tcp://host:port")
                hostname = url.hostname
                family = _socket.AF_INET6 if ":" in (hostname or "") else _socket.AF_INET
                if tls:  # ssl wraps a socket.socket, not the raw one
                    import socket

                    sock = socket.socket(family)
                else:
                    sock = _socket.socket(family)
                address = (hostname, url.port or (2376 if tls else 2375))
            sock.settimeout(self.timeout)
            try:
                sock.connect(address)
                if tls:
                    sock = self._tls_context().wrap_socket(sock, server_hostname=hostname)
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
        body = self._image_record(ref)
        if body is None:
            return None
        import json

        return json.loads(body)

    def image_id(self, ref: str) -> str | None:
        """The id of the image `ref` (tag or id), None when the engine has no such image: the cache hit's question."""
        body = self._image_record(ref)
        if body is None:
            return None
        # Hand-read rather than json.loads, which would import json and re on every hit: the engine (Go's encoder,
        # fields in declaration order) starts the record with its Id, a plain "sha256:<hex>". Any other shape is
        # parsed as JSON.
        if body.startswith(b'{"Id":"'):
            value, quote, _ = body[7:].partition(b'"')
            if quote and b"\\" not in value:
                return value.decode("ascii")
        import json

        return json.loads(body)["Id"]

    def _image_record(self, ref: str) -> bytes | None:
        """The JSON text of the engine's record of image `ref`, None on 404."""
        status, body = self.request("GET", f"/images/{_quote(ref)}/json")
        if status == 404:
            return None
        if status != 200:
            raise EngineError(f"engine answered {status} for image {ref}: {body[:200]!r}")
        return body

    def tag(self, source: str, target: str) -> None:
        """Give the image `source` (tag or id) the name `target` (REPOSITORY[:TAG]), like `docker tag`."""
        import urllib.parse

        repository, tag = _split_reference(target)
        query = urllib.parse.urlencode({"repo": repository, "tag": tag})
        status, body = self.request("POST", f"/images/{_quote(source)}/tag?{query}")
        if status != 201:
            raise EngineError(f"engine could not tag {source} as {target} ({status}): {_message(body)}")

    def remove(self, ref: str, *, prune: bool = True) -> bool:
        """Remove the name `ref` (or the image, given its id), like `docker rmi`; prune=False keeps the untagged
        parent layers. False when the engine has no such image; an image a container still uses is an error."""
        status, body = self.request("DELETE", f"/images/{_quote(ref)}"
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


# What urllib.parse.quote never escapes: RFC 3986's unreserved characters.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def _quote(text: str) -> str:
    """`urllib.parse.quote(text, safe="")`, the form of an image reference in an API path. Hand-written because
    urllib.parse costs every cache hit milliseconds of imports for this one call."""
    return "".join(c if c in _UNRESERVED else "".join(f"%{b:02X}" for b in c.encode()) for c in text)


def _split_reference(ref: str) -> tuple[str, str]:
    """("REPOSITORY", "TAG") of REPOSITORY[:TAG]; a colon before the last slash is a registry port, not a tag."""
    repository, colon, tag = ref.rpartition(":")
    if not colon or "/" in tag:
        return ref, "latest"
    return repository, tag


def _message(body: bytes) -> str:
    import json

    try:
        return json.loads(body).get("message") or body.decode(errors="replace")
    except (ValueError, AttributeError):
        return body[:300].decode(errors="replace")
