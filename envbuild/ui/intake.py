"""A spec pasted or uploaded in the browser, registered as a catalog version, exactly as `env create --file` would.

The text is written under the file name the user gave (environment.yml, requirements.txt, an Azure ML YAML, ...)
into a scratch directory and read by the same loader as a file on the command line, so the same files are
accepted and the same errors given. An error names the file as the user knows it (`environment.yml:3`, not the
scratch path) and nothing is registered: the catalog is written only once the whole spec has loaded.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from ..errors import EnvbuildError, SpecError
from ..spec import Environment

DEFAULT_FILENAME = "environment.yml"
MAX_BYTES = 1 << 20  # a spec, not a data set
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def load_text(text: str, filename: str = "", name: str | None = None) -> Environment:
    """The Environment of `text` read as a file named `filename` (its base name only; default environment.yml)."""
    shown = _SAFE_NAME.sub("-", Path(filename or DEFAULT_FILENAME).name).strip(".-") or DEFAULT_FILENAME
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise SpecError(f"the spec is larger than {MAX_BYTES} bytes", where=shown,
                        fix="paste the environment file itself (environment.yml, requirements.txt)")
    if not text.strip():
        raise SpecError("the spec is empty", where=shown, fix="paste or upload an environment file")
    with tempfile.TemporaryDirectory(prefix="envbuild-ui-") as scratch:
        path = Path(scratch) / shown
        path.write_text(text, encoding="utf-8")
        try:
            env = Environment.from_file(path, name or None)
        except EnvbuildError as exc:
            raise _relative(exc, scratch) from None
    if name:
        env.name = name
    return env


def register_text(workspace, text: str, filename: str = "", *, name: str | None = None,
                  description: str | None = None, tags: dict[str, str] | None = None):
    """Load `text` (see load_text) and register it: the catalog Entry of its version (an unchanged definition
    gets its existing version back, as with `env create`)."""
    env = load_text(text, filename, name)
    if description:
        env.description = description
    env.tags.update(tags or {})
    with workspace.catalog() as cat:
        number = cat.register(env)
        return cat.entry(env.name, number)


def parse_tags(text: str) -> dict[str, str]:
    """`team=vision, stage=dev` → a dict (what `--tag K=V` takes, comma- or line-separated)."""
    tags = {}
    for item in re.split(r"[,\n]", text or ""):
        if item.strip():
            key, _, value = item.strip().partition("=")
            tags[key.strip()] = value.strip()
    return tags


def _relative(error: EnvbuildError, scratch: str) -> EnvbuildError:
    """The error with the scratch directory taken out of its text: the user's file is `environment.yml`."""
    prefix = str(Path(scratch)) + "/"
    for field in ("what", "where", "fix"):
        value = getattr(error, field)
        if value:
            setattr(error, field, value.replace(prefix, ""))
    return error
