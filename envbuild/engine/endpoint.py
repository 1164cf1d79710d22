"""Which Docker Engine envbuild talks to: decided once, the way the docker CLI decides it.

The docker CLI picks its engine in this order, and so does `current_endpoint`:
1. ``DOCKER_HOST`` (``unix://PATH`` or ``tcp://HOST:PORT``); over tcp, TLS when ``DOCKER_TLS_VERIFY`` is set (the
   server is verified against ``ca.pem``) or ``DOCKER_TLS`` is (not verified), with ``ca.pem``, ``cert.pem`` and
   ``key.pem`` from ``DOCKER_CERT_PATH`` (default: the docker config directory);
2. the docker context named by ``DOCKER_CONTEXT``, else the config's ``currentContext``: its endpoint is read from
   ``contexts/meta/<sha256 of the name>/meta.json`` and its TLS files from ``contexts/tls/<same>/docker/``;
3. the local socket ``unix:///var/run/docker.sock``.
Every caller (the hit path's Engine API client, the builders, the CLI subprocesses, the SDK) takes its engine from
one `Endpoint`, and CLI subprocesses are handed it explicitly (`cli_environment`), so a cache-hit check and the
build that fills the cache cannot land on two different engines.

Hand-written rather than the SDK's `docker.context` because the hit path reads it too. For the same reason,
imports are inside the functions that need them (benchmark P2 measures every import of a hit): a hit on the local
socket loads nothing here but os; json loads only when a docker config names a context.
"""

from __future__ import annotations

import os

from ..errors import EngineError

DEFAULT_HOST = "unix:///var/run/docker.sock"
API_VERSION = "1.41"  # the Engine API version envbuild speaks: every engine from 20.10 on supports it
_TLS_FILES = ("ca.pem", "cert.pem", "key.pem")


class Endpoint:
    """One engine: its address, and for TLS the directory holding ca.pem/cert.pem/key.pem and whether the server
    is verified. `source` says where it was found (for messages)."""

    __slots__ = ("host", "tls_dir", "verify", "source")

    def __init__(self, host: str, *, tls_dir: str | None = None, verify: bool = True, source: str = "default"):
        self.host = host
        self.tls_dir = tls_dir
        self.verify = verify
        self.source = source

    def __repr__(self) -> str:
        tls = f", tls_dir={self.tls_dir!r}, verify={self.verify}" if self.tls_dir else ""
        return f"Endpoint({self.host!r}{tls}, source={self.source!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Endpoint) and (self.host, self.tls_dir, self.verify) == \
            (other.host, other.tls_dir, other.verify)

    def tls_file(self, name: str) -> str | None:
        """The path of ca.pem, cert.pem or key.pem for this endpoint, None when it has none."""
        if self.tls_dir is None:
            return None
        path = os.path.join(self.tls_dir, name)
        return path if os.path.exists(path) else None

    def cli_environment(self, base: dict | None = None) -> dict:
        """The environment for a docker CLI subprocess that must reach this engine and no other: DOCKER_HOST and
        the TLS variables set from this endpoint, DOCKER_CONTEXT dropped (DOCKER_HOST wins over it anyway)."""
        env = dict(os.environ if base is None else base)
        for name in ("DOCKER_CONTEXT", "DOCKER_TLS", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
            env.pop(name, None)
        env["DOCKER_HOST"] = self.host
        if self.tls_dir is not None:
            env["DOCKER_CERT_PATH"] = self.tls_dir
            env["DOCKER_TLS_VERIFY" if self.verify else "DOCKER_TLS"] = "1"
        return env

    def sdk_client(self):
        """A docker SDK APIClient for this engine (off the hit path: the SDK takes ~100 ms to import).

        With TLS the CA is given to the client and the client ignores the environment: requests would otherwise let
        REQUESTS_CA_BUNDLE (set on many corporate machines) replace the engine's CA, and verification would fail.
        """
        import docker

        tls = None
        if self.tls_dir is not None:
            from docker.tls import TLSConfig

            cert, key, ca = self.tls_file("cert.pem"), self.tls_file("key.pem"), self.tls_file("ca.pem")
            tls = TLSConfig(client_cert=(cert, key) if cert and key else None, ca_cert=ca,
                            verify=(ca or True) if self.verify else False)
        # A fixed version: the SDK would otherwise ask the engine for it in the constructor, before trust_env is off.
        client = docker.APIClient(base_url=self.host, tls=tls, version=API_VERSION)
        client.trust_env = False  # no REQUESTS_CA_BUNDLE / proxy variables: the engine's CA is the one above
        return client


def config_dir() -> str:
    """The docker CLI's configuration directory: DOCKER_CONFIG, else ~/.docker."""
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def current_endpoint() -> Endpoint:
    """The engine the docker CLI would talk to in this environment (see the module docstring for the order)."""
    host = os.environ.get("DOCKER_HOST")
    if host:
        verify = bool(os.environ.get("DOCKER_TLS_VERIFY"))
        if verify or os.environ.get("DOCKER_TLS"):
            return Endpoint(host, tls_dir=os.environ.get("DOCKER_CERT_PATH") or config_dir(), verify=verify,
                            source="DOCKER_HOST")
        return Endpoint(host, source="DOCKER_HOST")
    name = os.environ.get("DOCKER_CONTEXT") or _config_current_context()
    if name and name != "default":
        return context_endpoint(name)
    return Endpoint(DEFAULT_HOST)


def _config_current_context() -> str | None:
    try:
        with open(os.path.join(config_dir(), "config.json"), "rb") as file:
            text = file.read()
    except OSError:
        return None
    # Most configs name no context: then json (and the `re` it loads) stays out of the cache hit. A JSON text can
    # only spell the key without these bytes through \u escapes of its letters.
    if b"currentContext" not in text and b"\\u" not in text:
        return None
    import json

    try:
        return json.loads(text.decode("utf-8")).get("currentContext") or None
    except ValueError:
        return None


def context_endpoint(name: str) -> Endpoint:
    """The docker endpoint of the docker context `name`, as `docker context create` stored it."""
    import hashlib
    import json

    digest = hashlib.sha256(name.encode()).hexdigest()
    meta_path = os.path.join(config_dir(), "contexts", "meta", digest, "meta.json")
    try:
        with open(meta_path, encoding="utf-8") as file:
            docker = json.load(file)["Endpoints"]["docker"]
        host = docker["Host"]
    except (OSError, ValueError, KeyError, TypeError):
        raise EngineError(f"docker context {name!r} is not readable at {meta_path}",
                          fix="`docker context ls` lists the contexts; set DOCKER_CONTEXT or `docker context use` "
                              "one of them, or set DOCKER_HOST") from None
    tls_dir = os.path.join(config_dir(), "contexts", "tls", digest, "docker")
    skip_verify = bool(docker.get("SkipTLSVerify"))
    # Like the CLI: TLS when the context stored TLS files, or when it asks to skip verification (TLS, unverified).
    has_tls = skip_verify or any(os.path.exists(os.path.join(tls_dir, f)) for f in _TLS_FILES)
    return Endpoint(host, tls_dir=tls_dir if has_tls else None, verify=not skip_verify, source=f"context {name}")
