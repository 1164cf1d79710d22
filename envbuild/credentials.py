"""Credentials of private indexes and channels: found on the host, handed to the build as one BuildKit secret.

They are written many ways: in an index or channel URL (`https://alice:TOKEN@host/simple`), through a variable
(`https://alice:${PRIV_TOKEN}@host/simple`, expanded here and by the solvers, never stored expanded), in the
host's netrc (`~/.netrc` or `$NETRC`), or in pip's and uv's index variables (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL,
UV_INDEX_URL, UV_DEFAULT_INDEX, UV_INDEX, UV_EXTRA_INDEX_URL). The lock, keys, labels and messages only ever hold
public URLs (channels.public_url); the build gets the credentials of the hosts its lock downloads from as a netrc
file, mounted for the pip and conda steps only (`--mount=type=secret,id=netrc`, pointed at by NETRC, which uv,
pip and envbuild's conda installer read). A secret is never in a layer, `docker history` or the build cache.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .errors import BuildError

SECRET_ID = "netrc"
_INDEX_FLAGS = ("--index-url", "--extra-index-url", "--find-links")
_INDEX_VARIABLES = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX",
                    "UV_EXTRA_INDEX_URL")


def expand(value: str) -> str:
    """`${VAR}` (and `$VAR`) from the environment, as pip, conda and conda-lock expand them in index URLs."""
    return os.path.expandvars(value)


def _source_urls(spec) -> list[str]:
    """Every index and channel URL the solve used, expanded: the spec's, then pip's and uv's variables."""
    urls = [expand(option.partition(" ")[2]) for option in spec.solver_pip_options
            if option.partition(" ")[0] in _INDEX_FLAGS]
    urls += [expand(channel) for channel in spec.solver_channels]
    for variable in _INDEX_VARIABLES:
        # UV_INDEX entries may be `name=URL`; several are separated by spaces.
        urls += [item.partition("=")[2] if "=" in item.split("://")[0] else item
                 for item in os.environ.get(variable, "").split()]
    return urls


def host_credentials(spec, lock) -> dict[str, tuple[str, str]]:
    """login and password per host the lock downloads from, where the host has credentials: from the index and
    channel URLs first (what the solve used), else from the host's netrc."""
    hosts = {urlsplit(p.url).hostname for p in lock.packages if p.url.startswith(("http://", "https://"))}
    hosts.discard(None)
    found: dict[str, tuple[str, str]] = {}
    for url in _source_urls(spec):
        parts = urlsplit(url)
        if parts.hostname in hosts and parts.username and parts.hostname not in found:
            found[parts.hostname] = (unquote(parts.username), unquote(parts.password or ""))
    netrc = _host_netrc()
    for host in sorted(hosts - set(found)):
        entry = netrc.authenticators(host) if netrc else None
        if entry and entry[0]:
            found[host] = (entry[0], entry[2] or "")
    return found


def _host_netrc():
    import netrc

    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    if not path.is_file():
        return None
    try:
        return netrc.netrc(str(path))
    except (netrc.NetrcParseError, OSError):
        return None  # a netrc the host's own tools cannot read either: nothing to pass on


def netrc_text(credentials: dict[str, tuple[str, str]]) -> str:
    """The netrc file of `credentials`. netrc has no quoting that uv, pip and Python all read: refuse whitespace."""
    lines = []
    for host, (login, password) in sorted(credentials.items()):
        if any(ch.isspace() for ch in login + password) or not login:
            raise BuildError(f"the credentials for {host} hold whitespace or no user name, which a netrc file "
                             "cannot carry into the build",
                             fix="use a token without spaces, with a user name (`user:TOKEN@host`)")
        lines.append(f"machine {host} login {login} password {password}\n")
    return "".join(lines)


def write_secret(credentials: dict[str, tuple[str, str]], directory: Path) -> Path:
    """The netrc secret file under `directory` (a private temporary directory the caller removes), mode 600."""
    path = directory / SECRET_ID
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(netrc_text(credentials))
    return path


def build_secrets(spec, lock, buildkit: bool, directory: Path) -> dict[str, Path] | None:
    """The secrets of one build, as files under `directory` (private, removed by the caller): the host CA bundle
    (`ca`) and the credentials of the hosts the lock downloads from (`netrc`). The classic builder gets none, and
    a lock that needs credentials is refused there rather than baked into a layer."""
    from .config import host_ca_bundle

    credentials = host_credentials(spec, lock)
    if not buildkit:
        _refuse_classic(credentials)
        return None
    ca = host_ca_bundle()
    secrets = {"ca": ca} if ca else {}
    if credentials:
        secrets[SECRET_ID] = write_secret(credentials, directory)
    return secrets or None


def _refuse_classic(credentials: dict) -> None:
    if credentials:
        raise BuildError(f"the lock downloads from {', '.join(sorted(credentials))}, which needs credentials, and "
                         "the classic builder cannot pass them as a secret (they would be baked into the image)",
                         fix="build with BuildKit: install the buildx plugin or a docker CLI before 23 "
                             "(ENVBUILD_DOCKER), or unset ENVBUILD_BUILDER=classic")
