"""A Dockerfile or a build context as where an environment starts (Azure ML's base_dockerfile / build context).

A Dockerfile that copies no local files is kept as text (`docker.base_dockerfile`); one that COPYs or ADDs local
files needs its directory, so that directory becomes the build context. Every file of a context (.dockerignore
applied) is a source file: the cache-hit memo must see a change in any of them. The functions fill the
`Environment` they are given; the model's constructors (`from_dockerfile`, `from_build_context`) and the Azure ML
loader's `build:` call them.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import SpecError
from .source import find_placeholder, is_dir, is_file, read_text


def read_dockerfile(path: Path) -> str:
    """The text of a Dockerfile, refused when it is an unrendered template or has no FROM."""
    text = read_text(path)
    for number, line in enumerate(text.splitlines(), start=1):
        found = find_placeholder(line)
        if found:
            raise SpecError(f"unrendered template placeholder {found} in a Dockerfile",
                            where=f"{path}:{number}", fix="render the template (replace every {{...}}) first")
    if not re.search(r"^\s*FROM\s", text, re.IGNORECASE | re.MULTILINE):
        raise SpecError("a Dockerfile needs a FROM instruction", where=str(path), fix="start it with `FROM <image>`")
    return text


def start_from_dockerfile(env, path: Path, text: str) -> None:
    """Make `env` start from the Dockerfile at `path` (its `text`, as `read_dockerfile` returned it)."""
    if _copies_local_files(text):
        env.docker.build_context = str(path.parent)
        env.docker.dockerfile_path = path.name
        env.source_files.extend(_context_files(path.parent, but=path))
    else:
        env.docker.base_dockerfile = text
    env.source_files.insert(0, str(path))


def check_build_context(root: Path, dockerfile_path: str) -> None:
    """Refuse a build context that is not a directory holding a valid `dockerfile_path`."""
    dockerfile = root / dockerfile_path
    if not is_dir(root):
        raise SpecError(f"build context {root} is not a directory", fix="pass the directory holding the Dockerfile")
    if not is_file(dockerfile):
        raise SpecError(f"build context {root} has no {dockerfile_path}", where=str(root),
                        fix="add the Dockerfile or name it with dockerfile_path")
    read_dockerfile(dockerfile)


def start_from_build_context(env, root: Path, dockerfile_path: str) -> None:
    """Make `env` start from the build context `root` (checked by `check_build_context`)."""
    dockerfile = root / dockerfile_path
    env.docker.build_context = str(root)
    env.docker.dockerfile_path = dockerfile_path
    env.source_files.extend([str(dockerfile), *_context_files(root, but=dockerfile)])


def _context_files(root: Path, but: Path) -> list[str]:
    """Every file a build sees of its context (.dockerignore applied): the cache-hit memo must see a change in
    any of them."""
    from ..buildcontext import context_entries

    files = (root / relative for relative in sorted(context_entries(root, but.relative_to(root).as_posix())))
    return [str(p) for p in files if p.is_file() and p != but]


def _copies_local_files(text: str) -> bool:
    for line in text.splitlines():
        words = line.split()
        if words and words[0].upper() in ("COPY", "ADD") and not any(w.startswith("--from") for w in words[1:]):
            return True
    return False
