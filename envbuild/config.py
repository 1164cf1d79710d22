"""Where envbuild keeps its state, and the knobs users set through the environment."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_PLATFORM = "linux-64"


def home(override: str | os.PathLike | None = None) -> Path:
    """The envbuild home: cache index, lock cache, logs, catalog.

    `override` (``--cache-dir``) wins over ``ENVBUILD_HOME``, which wins over the user cache dir.
    """
    if override:
        return Path(override).expanduser()
    if os.environ.get("ENVBUILD_HOME"):
        return Path(os.environ["ENVBUILD_HOME"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "envbuild"


def host_ca_bundle() -> Path | None:
    """The CA bundle the host trusts, to hand to pip/uv inside builds as a BuildKit secret (never a layer)."""
    for var in ("ENVBUILD_CA_BUNDLE", "PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return Path(value)
    for candidate in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"):
        if Path(candidate).is_file():
            return Path(candidate)
    return None
