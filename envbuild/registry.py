"""The shared cache: images stored in an OCI registry under tags derived from their keys.

`--registry HOST[:PORT]/REPO` (or ENVBUILD_REGISTRY) names it. Before building, envbuild asks the registry whether
the key is there with one manifest HEAD over the registry HTTP API v2 (cheap: no layers move); on a hit it pulls
instead of building, and after a build it pushes. Tags in the one repository, each derived from a key, so a tag
names one content and no build overwrites another's:
- ``<tag of the build key>``  — what the image is (Dockerfile + context + base);
- ``req-<tag of the request key>`` — what was asked for (spec + base + template), so another machine finds the
  image before solving, exactly like the local index does;
- ``base-<tag of a recipe key>`` — a base image (shared_bases.py): the first machine's bytes are everyone's base;
- ``stage-<tag of a stage key>`` — an installer stage, a layer-cache source for related builds (layer_cache.py).
Images carry BuildKit inline cache metadata, so a build that misses can still reuse layers of a related image
through ``--cache-from``. Moving bytes (pull, push) goes through the Docker adapter (engine/: the docker CLI, on
the same engine the cache-hit path asks), after one quick probe of the registry's API root: a registry that is
down or answers 5xx costs seconds and one line of warning, never the CLI's minute of retries. The manifest
requests use the same credentials (`docker login`: the docker config's ``auths``, or its credential store or
helper), read by the docker SDK's own ``docker.auth``, so a private registry is a shared cache too.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import re
import urllib.parse
import urllib.request
from typing import Callable

from .errors import CacheError
from .hosts import is_loopback
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
        self.scheme = "http" if insecure or is_loopback(host) else "https"
        self._available: bool | None = None
        self.unavailable: str | None = None  # why `available()` said no

    def __repr__(self) -> str:
        return f"Registry({self.location!r})"

    def ref(self, tag: str) -> str:
        return f"{self.location}:{tag}"

    def build_ref(self, build_key: str) -> str:
        return self.ref(tag_of(build_key))

    def request_ref(self, request_key: str) -> str:
        return self.ref("req-" + tag_of(request_key))

    def base_ref(self, recipe_key: str) -> str:
        """Where a base image is shared: under its recipe key (keys.base_recipe_key)."""
        return self.ref("base-" + tag_of(recipe_key))

    def stage_ref(self, stage_key: str) -> str:
        """Where an installer stage is shared as a layer-cache source: under its stage key (keys.stage_key)."""
        return self.ref("stage-" + tag_of(stage_key))

    def available(self) -> bool:
        """Whether the registry answers its API root (`/v2/`) within PROBE_TIMEOUT seconds with 200 or 401; asked
        once per Registry. Asked before moving bytes, so that a registry that is down or refusing costs seconds,
        not the CLI's minute of retries; `unavailable` then says why, in one line."""
        if self._available is None:
            try:
                status, _, _ = self._ask(f"{self.scheme}://{self.host}/v2/", {}, "GET", PROBE_TIMEOUT)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self.unavailable = f"registry {self.host} unreachable ({_reason(exc)})"
            else:
                if status not in (200, 401):
                    self.unavailable = f"registry {self.host} answered {status}"
            self._available = self.unavailable is None
            if not self._available:
                log.warning("%s: nothing is pushed to it or pulled from it", self.unavailable)
        return self._available

    def has(self, tag: str) -> bool:
        """Whether the registry holds `tag`: one manifest HEAD. An unreachable registry is a miss, logged."""
        return self._manifest(tag, "HEAD") is not None

    def image_id(self, tag: str) -> str | None:
        """The image id (config digest) of `tag` in the registry, without pulling it: what the engine's id of the
        image will be once pulled. None when the registry has no such tag (or answers no single-image manifest)."""
        body = self._manifest(tag, "GET")
        if not body:
            return None
        try:
            return json.loads(body).get("config", {}).get("digest")
        except (ValueError, AttributeError):
            return None

    def _manifest(self, tag: str, method: str) -> bytes | None:
        """The manifest of `tag` (HEAD: an empty body), None when missing or the registry cannot be asked."""
        if not self.available():
            return None
        url = f"{self.scheme}://{self.host}/v2/{self.repository}/manifests/{tag}"
        try:
            status, headers, body = self._ask(url, {}, method)
            challenge = headers.get("www-authenticate", "")
            if status == 401:
                authorization = self._authorization(challenge)
                if authorization:
                    status, headers, body = self._ask(url, {"Authorization": authorization}, method)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            log.warning("registry %s unreachable (%s): building locally", self.host, _reason(exc))
            return None
        if status == 200:
            return body
        if status not in (404,):
            log.warning("registry %s answered %s for %s: treating it as a miss", self.host, status, tag)
        return None

    def _ask(self, url: str, headers: dict, method: str = "HEAD", timeout: float = 10) -> tuple[int, dict, bytes]:
        request = urllib.request.Request(url, method=method, headers={"Accept": _MANIFEST_TYPES, **headers})
        opener = urllib.request.build_opener(_NoErrors)
        with opener.open(request, timeout=timeout) as response:
            body = response.read() if method != "HEAD" else b""
            return response.status, {k.lower(): v for k, v in response.headers.items()}, body

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

        self._check_available()
        with self._refusal_ends_sharing():
            cli.pull(ref, on_log=on_log, error=CacheError, fix=_FIX, timeout=TRANSFER_TIMEOUT)

    def push(self, local_ref: str, tags: list[str], on_log: Callable[[str], None] | None = None) -> str | None:
        """Push `local_ref` under each of `tags`; returns the manifest digest the registry reported. Raises
        CacheError, in one line, as soon as the registry is found down or refusing (see `available`)."""
        from .engine import Engine, cli

        self._check_available()
        pushed_digest = None
        engine = Engine()
        try:
            for tag in tags:
                ref = self.ref(tag)
                engine.tag(local_ref, ref)
                try:
                    with self._refusal_ends_sharing():
                        pushed_digest = cli.push(ref, on_log=on_log, error=CacheError, fix=_FIX,
                                                 timeout=TRANSFER_TIMEOUT) or pushed_digest
                finally:
                    # The registry keeps the image; the local extra tag would only clutter `docker images`.
                    engine.remove(ref, prune=False)
        finally:
            engine.close()
        return pushed_digest

    def _check_available(self) -> None:
        if not self.available():
            raise CacheError(self.unavailable, fix=_FIX)

    @contextlib.contextmanager
    def _refusal_ends_sharing(self):
        """A transfer the registry refused makes it unavailable for the rest of this Registry's life (one call):
        the next push would be refused too, and cost seconds more."""
        try:
            yield
        except CacheError as exc:
            self._available, self.unavailable = False, exc.what
            raise


def _reason(exc: Exception) -> str:
    """An exception as one short line (urllib wraps the interesting part in `reason`)."""
    return str(getattr(exc, "reason", None) or exc or type(exc).__name__)[:200]


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


# Seconds the registry's API root has to answer before envbuild moves no bytes to or from it (ENVBUILD_REGISTRY_PROBE).
PROBE_TIMEOUT = float(os.environ.get("ENVBUILD_REGISTRY_PROBE", "3"))
# Seconds one `docker push|pull` may take (ENVBUILD_REGISTRY_TIMEOUT): a stalled transfer ends, the build is kept.
TRANSFER_TIMEOUT = float(os.environ.get("ENVBUILD_REGISTRY_TIMEOUT", "1800"))

_FIX = "check the registry address, that it is running, and `docker login` for it"
