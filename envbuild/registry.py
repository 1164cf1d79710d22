"""The shared cache: images stored in an OCI registry under tags derived from their keys.

`--registry HOST[:PORT]/REPO` (or ENVBUILD_REGISTRY) names it. Before building, envbuild asks the registry whether
the key is there with one manifest HEAD over the registry HTTP API v2 (cheap: no layers move); on a hit it pulls
instead of building, and after a build it pushes. Two tags point at one image:
- ``<tag of the build key>``  — what the image is (Dockerfile + context + base);
- ``req-<tag of the request key>`` — what was asked for (spec + base + template), so another machine finds the
  image before solving, exactly like the local index does.
Images carry BuildKit inline cache metadata, so a build that misses can still reuse layers of a related image
through ``--cache-from``. Moving bytes (pull, push) goes through the Docker adapter (engine/: the docker CLI, on
the same engine the cache-hit path asks); the manifest HEAD uses the same credentials (`docker login`: the docker
config's ``auths``, or its credential store or helper), read by the docker SDK's own ``docker.auth``, so a private
registry is a shared cache too.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import urllib.parse
import urllib.request
from typing import Callable

from .errors import CacheError
from .keys import tag_of

log = logging.getLogger(__name__)

_MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def configured(option: str | None = None) -> "Registry | None":
    """The registry named by `option`, else by ENVBUILD_REGISTRY, else None (no shared cache)."""
    location = option or os.environ.get("ENVBUILD_REGISTRY")
    return Registry(location) if location else None


class Registry:
    def __init__(self, location: str):
        location = re.sub(r"^[a-z]+://", "", location.strip()).rstrip("/")
        host, _, repository = location.partition("/")
        if not repository or not re.fullmatch(r"[a-z0-9]+(?:[._/-][a-z0-9]+)*", repository):
            raise CacheError(f"registry location {location!r} is not HOST/REPOSITORY",
                             fix="write e.g. 127.0.0.1:5000/envbuild-cache or registry.example.com/team/envs")
        self.location = location
        self.host = host
        self.repository = repository
        insecure = os.environ.get("ENVBUILD_REGISTRY_INSECURE", "") not in ("", "0")
        local = host.split(":")[0] in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")
        self.scheme = "http" if insecure or local else "https"

    def __repr__(self) -> str:
        return f"Registry({self.location!r})"

    def ref(self, tag: str) -> str:
        return f"{self.location}:{tag}"

    def build_ref(self, build_key: str) -> str:
        return self.ref(tag_of(build_key))

    def request_ref(self, request_key: str) -> str:
        return self.ref("req-" + tag_of(request_key))

    def has(self, tag: str) -> bool:
        """Whether the registry holds `tag`: one manifest HEAD. An unreachable registry is a miss, logged."""
        url = f"{self.scheme}://{self.host}/v2/{self.repository}/manifests/{tag}"
        try:
            status, headers = self._head(url, {})
            challenge = headers.get("www-authenticate", "")
            if status == 401:
                authorization = self._authorization(challenge)
                if authorization:
                    status, headers = self._head(url, {"Authorization": authorization})
        except (OSError, http.client.HTTPException, ValueError) as exc:
            log.warning("registry %s unreachable (%s): building locally", self.host, exc)
            return False
        if status == 200:
            return True
        if status not in (404,):
            log.warning("registry %s answered %s for %s: treating it as a miss", self.host, status, tag)
        return False

    def _head(self, url: str, headers: dict) -> tuple[int, dict]:
        request = urllib.request.Request(url, method="HEAD", headers={"Accept": _MANIFEST_TYPES, **headers})
        opener = urllib.request.build_opener(_NoErrors)
        with opener.open(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}

    def _authorization(self, challenge: str) -> str | None:
        """The Authorization header answering a 401's challenge: Basic with the user's docker credentials, or a
        Bearer token from the realm (with those credentials when there are any, anonymous otherwise)."""
        import base64

        credentials = docker_credentials(self.host)
        basic = "Basic " + base64.b64encode(":".join(credentials).encode()).decode() if credentials else None
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "basic":
            return basic
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        if scheme != "bearer" or "realm" not in params:
            return None
        query = urllib.parse.urlencode({k: v for k, v in params.items() if k in ("service", "scope")})
        request = urllib.request.Request(f"{params['realm']}?{query}", headers={"Authorization": basic} if basic else {})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.load(response)
        token = body.get("token") or body.get("access_token")
        return f"Bearer {token}" if token else None

    # -- moving images (docker CLI) ------------------------------------------------------------------------------
    def pull(self, ref: str, on_log: Callable[[str], None] | None = None) -> None:
        from .engine import cli

        cli.pull(ref, on_log=on_log, error=CacheError, fix=_FIX)

    def push(self, local_ref: str, tags: list[str], on_log: Callable[[str], None] | None = None) -> str | None:
        """Push `local_ref` under each of `tags`; returns the manifest digest the registry reported."""
        from .engine import Engine, cli

        pushed_digest = None
        engine = Engine()
        try:
            for tag in tags:
                ref = self.ref(tag)
                engine.tag(local_ref, ref)
                try:
                    pushed_digest = cli.push(ref, on_log=on_log, error=CacheError, fix=_FIX) or pushed_digest
                finally:
                    # The registry keeps the image; the local extra tag would only clutter `docker images`.
                    engine.remove(ref, prune=False)
        finally:
            engine.close()
        return pushed_digest


def docker_credentials(host: str) -> tuple[str, str] | None:
    """(user, secret) that `docker login HOST` stored, found as the docker CLI finds them: the docker config
    (DOCKER_CONFIG, else ~/.docker) names a credential helper for the host, a credential store, or holds them inline
    under ``auths``. None when there are none, or only an identity token (which a HEAD cannot use: a miss)."""
    import docker.auth
    from docker.errors import DockerException

    try:
        found = docker.auth.resolve_authconfig(docker.auth.load_config(), registry=host) or {}
    except DockerException as exc:
        log.warning("docker credentials for %s unreadable (%s): asking without them", host, exc)
        return None
    # Inline entries come back as username/password, store and helper answers as Username/Password.
    user, secret = found.get("username") or found.get("Username"), found.get("password") or found.get("Password")
    return (user, secret) if user and secret else None


class _NoErrors(urllib.request.HTTPErrorProcessor):
    """Let 401/404 come back as answers rather than exceptions: they are what HEAD is asking about."""

    def http_response(self, request, response):
        return response

    https_response = http_response


_FIX = "check the registry address, that it is running, and `docker login` for it"
