"""Pulling a private base image with the login of `docker.base_image_registry`, and keeping that login nowhere.

`docker login` would write the credentials to the user's docker config; instead they travel in the one pull
request's X-Registry-Auth header (the docker SDK's `auth_config`), which the engine does not store.
"""

from __future__ import annotations

from .channels import public_text
from .engine.endpoint import current_endpoint
from .errors import BuildError


def pull_private_base(env, engine, on_progress=None) -> None:
    """The base image of `docker.base_image_registry` with a login: pulled with it when the engine lacks it."""
    registry = getattr(getattr(env, "docker", None), "base_image_registry", None)
    login = registry.login() if registry is not None else None
    ref = registry.qualify(env.docker.base_image) if login else None
    if ref and engine.inspect_image(ref) is None:
        if on_progress:
            on_progress("base", f"pulling {ref} as {registry.username}")
        pull_with_login(ref, login)


def pull_with_login(ref: str, login: dict) -> None:
    """Pull `ref` with `login` (username, password); a BuildError naming the registry's answer on failure."""
    from docker.errors import APIError, DockerException
    from docker.utils import parse_repository_tag

    repository, tag = parse_repository_tag(ref)
    client = current_endpoint().sdk_client()
    failure = None
    try:
        for message in client.pull(repository, tag=tag or "latest", auth_config=login, stream=True, decode=True):
            failure = message.get("error") or failure
    except (APIError, DockerException) as exc:
        failure = getattr(exc, "explanation", None) or str(exc)
    if failure:
        raise BuildError(f"pulling the base image {ref} failed: {public_text(str(failure))}",
                         fix="check docker.base_image_registry (address, username, and the variable its password "
                             "names)")
