"""Where envbuild keeps its state, and the knobs users set through the environment.

Imported on the cache-hit path: pathlib is imported inside the functions that return paths.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from pathlib import Path


def home_dir(override: str | os.PathLike | None = None) -> str:
    """The envbuild home (cache index, lock cache, logs, catalog), as a string: what the cache-hit path uses.

    `override` (``--cache-dir``) wins over ``ENVBUILD_HOME``, which wins over the user cache dir.
    """
    if override:
        return os.path.expanduser(override)
    if os.environ.get("ENVBUILD_HOME"):
        return os.path.expanduser(os.environ["ENVBUILD_HOME"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "envbuild")


def home(override: str | os.PathLike | None = None) -> Path:
    """`home_dir` as a Path."""
    from pathlib import Path

    return Path(home_dir(override))


def host_ca_bundle() -> Path | None:
    """The CA bundle the host trusts, to hand to pip/uv inside builds as a BuildKit secret (never a layer)."""
    from pathlib import Path

    for var in ("ENVBUILD_CA_BUNDLE", "PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return Path(value)
    for candidate in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"):
        if Path(candidate).is_file():
            return Path(candidate)
    return None
