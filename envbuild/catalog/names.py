"""How catalog environments are named and referenced: names, versions, `NAME:VERSION` and its Azure ML spellings.

Light on purpose (no database, no spec model): envbuild.curated names its environments by the same rules, and
the reference parser runs before anything decides whether a catalog is needed at all.

Versions are strings, as in Azure ML v2 ("1", "1.0.3", "2024-01-rc"). A version of digits only is a number of
the integer sequence (written without leading zeros): registering without a version continues that sequence
from its highest number.
"""

from __future__ import annotations

import getpass
import os
import re
import time

from ..errors import CatalogError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LATEST = "latest"
# Azure ML CLI v2 writes references to workspace assets as `azureml:NAME:VERSION` and `azureml:NAME@latest`.
AZUREML_PREFIX = "azureml:"


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise CatalogError(f"invalid environment name {name!r}",
                           fix="use letters, digits, '.', '_' and '-' (starting with a letter or digit)")
    return name


def check_version(version, ref: str | None = None) -> str:
    """A version as the catalog stores it: its text, a number without leading zeros. Refused: `latest` (a label,
    not a version), 0, and anything but letters, digits, '.', '_' and '-'."""
    text = str(version).strip()
    if text.isdigit():
        text = str(int(text))
    if not _VERSION.match(text) or text == "0" or text == LATEST:
        where = f" in {ref!r}" if ref else ""
        raise CatalogError(f"invalid version {version!r}{where}",
                           fix="a version is a number from 1 or a string of letters, digits, '.', '_' and '-' "
                               "such as 1.0.3 (`latest` names the newest version)")
    return text


def sequence_number(version: str) -> int | None:
    """The place of `version` in the integer sequence, None for a string version such as 1.0.3."""
    return int(version) if version.isdigit() else None


def parse_ref(ref: str) -> tuple[str, str | None]:
    """`name:3` → ("name", "3"); `name:1.0.3` → ("name", "1.0.3"); `name`, `name@latest`, `name:latest` →
    ("name", None). The Azure ML spellings `azureml:name:3` and `azureml:name@latest` are the same references."""
    text = ref.strip()
    text = text.removeprefix(AZUREML_PREFIX)
    if text.endswith("@" + LATEST):
        name, version = text[: -len("@" + LATEST)], None
    elif ":" in text:
        name, raw = text.split(":", 1)
        version = None if raw == LATEST else check_version(raw, ref)
    else:
        name, version = text, None
    check_name(name)
    return name, version


def iso(timestamp: float) -> str:
    """A time as ISO 8601 UTC, as the catalog prints it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def current_user() -> str:
    """Who is acting: ENVBUILD_USER, else the login name, else the uid."""
    if os.environ.get("ENVBUILD_USER"):
        return os.environ["ENVBUILD_USER"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"
