"""The shared cache: images stored in an OCI registry under tags derived from their keys.

`--registry HOST[:PORT]/REPO` (or ENVBUILD_REGISTRY) names it. Before building, envbuild asks the registry whether
the key is there with one manifest HEAD over the registry HTTP API v2 (cheap: no layers move); on a hit it pulls
instead of building, and after a build it pushes. Two tags point at one image:
- ``<tag of the build key>``  — what the image is (Dockerfile + context + base);
- ``req-<tag of the request key>`` — what was asked for (spec + base + template), so another machine finds the
  image before solving, exactly like the local index does.
Images carry BuildKit inline cache metadata, so a build that misses can still reuse layers of a related image
through ``--cache-from``. Moving bytes (pull, push) goes through the docker CLI; the manifest HEAD uses the same
credentials (`docker login`: the docker config's ``auths``, or its credential helper), so a private registry is a
shared cache too.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import subprocess
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
        _docker(["pull", ref], on_log, f"pull {ref}")

    def push(self, local_ref: str, tags: list[str], on_log: Callable[[str], None] | None = None) -> str | None:
        """Push `local_ref` under each of `tags`; returns the manifest digest the registry reported."""
        pushed_digest = None
        for tag in tags:
            ref = self.ref(tag)
            _docker(["tag", local_ref, ref], on_log, f"tag {ref}")
            output = _docker(["push", ref], on_log, f"push {ref}")
            found = re.search(r"digest: (sha256:[0-9a-f]{64})", output)
            pushed_digest = pushed_digest or (found.group(1) if found else None)
            # The registry keeps the image; the local extra tag would only clutter `docker images`.
            _docker(["rmi", "--no-prune", ref], None, f"untag {ref}", check=False)
        return pushed_digest


def docker_credentials(host: str) -> tuple[str, str] | None:
    """(user, secret) that `docker login HOST` stored: inline in the docker config's ``auths``, or in its credential
    helper (``credHelpers`` for the host, else ``credsStore``). None when there are none."""
    import base64

    config_path = os.path.join(os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker"), "config.json")
    try:
        with open(config_path, encoding="utf-8") as file:
            config = json.load(file)
    except (OSError, ValueError):
        return None
    inline = ((config.get("auths") or {}).get(host) or {}).get("auth")
    if inline:
        user, _, secret = base64.b64decode(inline).decode().partition(":")
        return user, secret
    helper = (config.get("credHelpers") or {}).get(host) or config.get("credsStore")
    if not helper:
        return None
    try:
        done = subprocess.run([f"docker-credential-{helper}", "get"], input=host, capture_output=True, text=True,
                              timeout=20)
        stored = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    return (stored["Username"], stored["Secret"]) if stored and stored.get("Secret") else None


class _NoErrors(urllib.request.HTTPErrorProcessor):
    """Let 401/404 come back as answers rather than exceptions: they are what HEAD is asking about."""

    def http_response(self, request, response):
        return response

    https_response = http_response


def _docker(args: list[str], on_log, what: str, check: bool = True) -> str:
    from .builder import find_docker_cli

    cli = find_docker_cli()
    done = subprocess.run([cli.path, *args], capture_output=True, text=True, env=cli.environment())
    output = done.stdout + done.stderr
    if on_log:
        for line in output.splitlines():
            on_log(line)
    if check and done.returncode != 0:
        raise CacheError(f"docker {what} failed: {output.strip()[-800:]}",
                         fix="check the registry address, that it is running, and `docker login` for it")
    return output
