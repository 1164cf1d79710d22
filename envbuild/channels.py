"""Conda channels by name and URL, and credentials out of every URL: the one place both keys and the solver use.

A channel is written many ways (`conda-forge`, `https://conda.anaconda.org/conda-forge/`, `./chan`, `defaults`,
`https://user:${TOKEN}@host/chan`). `expand_channel` turns one entry of `channels:` into the channels it stands
for; `channel_url` gives the URL the solver reaches (credentials and `${VAR}`s included); `public_url` and
`public_text` give what a key, a lock file, a label or a message may hold (never a credential).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

_ANACONDA_ORG = ("https://conda.anaconda.org/", "http://conda.anaconda.org/")
# What conda's `defaults` means on Linux (without a .condarc that redefines it): two channels, in this order.
DEFAULT_CHANNELS = ("https://repo.anaconda.com/pkgs/main", "https://repo.anaconda.com/pkgs/r")


def fallback_channels() -> tuple[list[str], str]:
    """The channels conda uses for a file that lists none, and where they come from: the `channels:` of the
    user's .condarc (conda's search order, the last file found wins; `defaults` there means its
    `default_channels:` when set), else conda's own defaults. Azure ML builds such a file the same way. A
    .condarc is read within envbuild's limits; one that is not YAML is an error at its line, as it is for conda."""
    from .limits import load_yaml

    home = Path.home()
    found = None
    for candidate in (home / ".config/conda/.condarc", home / ".conda/.condarc", home / ".condarc",
                      Path(os.environ["CONDARC"]) if os.environ.get("CONDARC") else None):
        if candidate is not None and candidate.is_file():
            found = candidate
    if found is not None:
        try:
            settings = load_yaml(found.read_text(encoding="utf-8"), str(found)) or {}
        except (OSError, UnicodeDecodeError):
            settings = {}
        listed = [str(c) for c in settings.get("channels") or []] if isinstance(settings, dict) else []
        if listed:
            defaults = [str(c) for c in settings.get("default_channels") or []] or list(DEFAULT_CHANNELS)
            expanded = [url for c in listed for url in (defaults if c == "defaults" else expand_channel(c))]
            return expanded, str(found)
    return list(DEFAULT_CHANNELS), "conda's defaults"


def normalize_channel(channel: str) -> str:
    """`https://conda.anaconda.org/conda-forge/` → `conda-forge`; `/srv/chan` → `file:///srv/chan`."""
    text = channel.strip().rstrip("/")
    for prefix in _ANACONDA_ORG:
        if text.startswith(prefix) and len(text) > len(prefix):
            return text[len(prefix):]
    if os.path.isabs(text) and "://" not in text:
        return Path(text).as_uri()
    return text


def expand_channel(channel: str) -> list[str]:
    """The channels one entry of `channels:` stands for: `defaults` is two, `nodefaults` none (envbuild never
    adds defaults on its own), `pkgs/main` is Anaconda's URL; others are one, normalized."""
    text = normalize_channel(channel)
    if text == "defaults":
        return list(DEFAULT_CHANNELS)
    if text == "nodefaults":
        return []
    if text in ("pkgs/main", "pkgs/r"):
        return [f"https://repo.anaconda.com/{text}"]
    return [text]


def channel_url(channel: str, beside: Path | None = None) -> str:
    """A channel as the solver reaches it: URLs as written, directories as file:// URLs, names on anaconda.org.

    A relative directory is looked for `beside` the spec file first (where the spec's author meant it).
    """
    # `${TOKEN}` in a channel URL comes from the environment, as in conda-lock; the lock never records it.
    channel = os.path.expandvars(normalize_channel(channel))
    if "://" in channel:
        return channel
    path = Path(channel).expanduser()
    if not path.is_absolute() and beside is not None and _is_dir(beside / path):
        path = beside / path
    # As in conda, a bare word is a channel name even if a directory has that name; `a/b` is a path only if it
    # exists (else it is a label channel such as conda-forge/label/dev).
    if channel.startswith(("/", ".", "~")) or ("/" in channel and _is_dir(path)):
        return path.resolve().as_uri()
    return f"https://conda.anaconda.org/{channel}"


def _is_dir(path: Path) -> bool:
    """Whether `path` is a directory; a name no file system takes (too long, a NUL) is not one."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def keyed_channel(channel: str, beside: Path | None = None) -> str:
    """A channel as it enters a key: a relative directory by where it is (two specs saying `./chan` beside
    different files are different environments), and never a credential (a rotated token is the same channel)."""
    if "://" not in channel and "${" not in channel:
        resolved = channel_url(channel, beside)
        if resolved.startswith("file://"):
            return resolved
        return re.sub(r"^t/[^/]+/", "", channel)  # an anaconda.org token: `t/<token>/name` is `name`
    return public_url(channel)


def public_url(url: str) -> str:
    """`url` without credentials: no user:password@, no anaconda.org `/t/<token>/` segment."""
    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed netloc (an unclosed `[`): drop everything up to its last `@`
        scheme, sep, rest = url.partition("://")
        netloc, slash, path = rest.partition("/")
        return f"{scheme}{sep}{netloc.rpartition('@')[2]}" + _TOKEN.sub("/", slash + path)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, _TOKEN.sub("/", parts.path), parts.query, parts.fragment))


_TOKEN = re.compile(r"/t/[^/]+/")  # anaconda.org's token segment


_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)


def public_text(text: str) -> str:
    """A message (a solver's, uv's) with every URL in it made public: tools echo index URLs with their tokens."""
    return _URL.sub(lambda found: public_url(found.group()), text)


def channel_identity(url: str, platforms: list[str]) -> list:
    """A local channel by the size and mtime of its repodata files (re-indexing it is a change); a remote one
    by its URL without credentials (a rotated token is the same channel)."""
    if not url.startswith("file://"):
        return [public_url(url)]
    root = Path(unquote(urlsplit(url).path))
    stamps = []
    for subdir in [*platforms, "noarch"]:
        try:
            st = (root / subdir / "repodata.json").stat()
            stamps.append([subdir, st.st_size, st.st_mtime_ns])
        except OSError:
            stamps.append([subdir, None])
    return [url, stamps]
