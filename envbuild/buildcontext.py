"""Build contexts as Azure ML takes them: a git URL checked out at its ref, and a directory filtered by .amlignore.

Git: Azure ML (like `docker build`) accepts a repository URL as `build.path`, in Docker's remote-context form
`https://host/org/repo.git#ref:subdir` (also `git+https://...`, `git://...`, `ssh://...`, `file://...`). Here the
repository is cloned once into the envbuild home (`git/<url digest>/repo.git`, bare) and fetched again when a
spec names it, the ref is resolved to a commit, and that commit's tree (without `.git`, as Docker's git
contexts have none) is written to `git/<url digest>/<commit>/`: the build context is a directory named by the
commit, so two loads at one commit share it, and the key follows the content at that commit. `remote_of` gives
the URL back (pinned to the commit) for a directory made here, so that a saved environment names the repository,
not a path in someone's cache.

.amlignore: Azure ML uploads a build context without what its `.amlignore` (gitignore rules) names, then builds
with its `.dockerignore`. context_entries applies both (what the key sees), and `staged` hands the builder a
copy without the .amlignore'd files, so that the image is built from what was keyed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from .errors import SpecError

_GIT_SCHEMES = ("git://", "ssh://", "git@")
_SOURCE_FILE = "source.json"


def is_git_url(location: str) -> bool:
    """Whether a `build.path` names a git repository (Azure ML's and Docker's forms) rather than a directory."""
    url, fragment, _ = location.partition("#")
    return location.startswith("git+") or url.startswith(_GIT_SCHEMES) or (
        "://" in url and (url.rstrip("/").endswith(".git") or bool(fragment)))


def split_git_url(location: str) -> tuple[str, str | None, str]:
    """`git+https://h/r.git#main:sub/dir` → (`https://h/r.git`, `main`, `sub/dir`)."""
    url, _, fragment = location.removeprefix("git+").partition("#")
    ref, _, subdir = fragment.partition(":")
    return url, ref or None, subdir.strip("/")


def checkout(location: str, home: Path) -> Path:
    """The directory of `location`'s repository at its ref (a subdirectory when the URL names one), cloned or
    fetched into `home`; the directory's name under `home/git/<url digest>/` is the commit."""
    import hashlib

    url, ref, subdir = split_git_url(location)
    root = home / "git" / hashlib.sha256(url.encode()).hexdigest()[:16]
    repository = root / "repo.git"
    root.mkdir(parents=True, exist_ok=True)
    if repository.is_dir():
        _git(["fetch", "--quiet", "--prune", "origin", "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
             location, cwd=repository)
    else:
        partial = Path(tempfile.mkdtemp(prefix="clone-", dir=root))
        _git(["clone", "--quiet", "--bare", url, str(partial / "repo.git")], location)
        os.replace(partial / "repo.git", repository)
        shutil.rmtree(partial)
    commit = _git(["rev-parse", "--verify", "--quiet", f"{ref or 'HEAD'}^{{commit}}"], location, cwd=repository,
                  missing=f"no branch, tag or commit {ref!r} in {url}")
    tree = root / commit
    if not tree.is_dir():
        partial = Path(tempfile.mkdtemp(prefix="tree-", dir=root))
        archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=repository, capture_output=True,
                                 check=True)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(partial, filter="data")
        (root / f"{commit}.{_SOURCE_FILE}").write_text(json.dumps({"url": url, "commit": commit}), encoding="utf-8")
        try:
            os.replace(partial, tree)
        except OSError:  # another process wrote the same commit first: same content
            shutil.rmtree(partial)
    context = tree / subdir if subdir else tree
    if not context.is_dir():
        raise SpecError(f"{url} has no directory {subdir!r} at {ref or 'HEAD'} ({commit[:12]})", where=location,
                        fix="check the path after `:` in the URL's fragment (#ref:subdir)")
    return context


def remote_of(directory: str | os.PathLike) -> str | None:
    """`URL#commit[:subdir]` for a directory `checkout` made, else None."""
    path = Path(directory).resolve()
    for commit_dir in (path, *path.parents):
        source = commit_dir.parent / f"{commit_dir.name}.{_SOURCE_FILE}"
        if source.is_file() and commit_dir.parent.parent.name == "git":
            recorded = json.loads(source.read_text(encoding="utf-8"))
            subdir = path.relative_to(commit_dir).as_posix()
            return f"{recorded['url']}#{recorded['commit']}" + ("" if subdir == "." else f":{subdir}")
    return None


@contextlib.contextmanager
def staged(root: Path, dockerfile_path: str):
    """The directory to hand the builder for the context `root`: itself, or (with an .amlignore) a copy of what
    context_entries keeps, so what is built is what was keyed."""
    if not (root / AMLIGNORE).is_file():
        yield root
        return

    with tempfile.TemporaryDirectory(prefix="envbuild-context-") as tmp:
        for relative in sorted(context_entries(root, dockerfile_path)):
            source, target = root / relative, Path(tmp) / relative
            if source.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif source.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        yield Path(tmp)


def _git(args: list[str], location: str, cwd: Path | None = None, missing: str | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    if done.returncode != 0:
        from .channels import public_text

        detail = public_text(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}")
        raise SpecError(missing or f"cannot fetch the build context {public_text(location)}: {detail}",
                        where=public_text(location),
                        fix="check the URL and ref (Docker's form: https://host/repo.git#ref:subdir) and that git "
                            "can reach it")
    return done.stdout.strip()


# What a build sees of a directory, and its content digest (what the key takes of a build context).

def directory_digest(path: str | Path, dockerfile_path: str = "Dockerfile") -> str:
    """Content digest of a build context: every file's relative path, executable bit and bytes, and every
    directory (COPY creates empty ones too), in sorted order; what .dockerignore keeps out of the build (a .git
    directory, caches) does not count."""
    import hashlib
    from pathlib import Path

    root = Path(path)
    if not root.is_dir():
        raise SpecError(f"build context {root} is not a directory", fix="point docker.build_context at a directory")
    h = hashlib.sha256()
    for relative in sorted(context_entries(root, dockerfile_path)):
        entry = root / relative
        if entry.is_dir():
            h.update(f"{relative}/\0".encode())
        elif entry.is_file():
            executable = b"x" if entry.stat().st_mode & 0o111 else b"-"
            h.update(relative.encode() + b"\0" + executable)
            h.update(hashlib.sha256(entry.read_bytes()).digest())
    return h.hexdigest()


def context_entries(root: Path, dockerfile_path: str) -> list[str]:
    """Relative paths of what a build sees of `root`: all of it, or what its .dockerignore lets through, less
    what its .amlignore names (Azure ML uploads a context without those, then builds with its .dockerignore)."""
    ignore = root / ".dockerignore"
    if not ignore.is_file():
        return amlignored(root, [p.relative_to(root).as_posix() for p in root.rglob("*")])
    from pathlib import Path

    from docker.utils.build import exclude_paths  # the docker SDK's implementation of .dockerignore rules

    patterns = [line.strip() for line in ignore.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.strip().startswith("#")]
    kept = exclude_paths(str(root), patterns, dockerfile=dockerfile_path)
    return amlignored(root, [Path(p).as_posix() for p in kept])


AMLIGNORE = ".amlignore"


def amlignored(root: Path, entries: list[str]) -> list[str]:
    """`entries` (relative to `root`) without what `root/.amlignore` names: gitignore rules (Azure ML reads them
    with pathspec's git wildmatch patterns); a directory is matched with its trailing slash, as git does."""
    ignore = root / AMLIGNORE
    if not ignore.is_file():
        return entries
    import pathspec

    spec = pathspec.GitIgnoreSpec.from_lines(ignore.read_text(encoding="utf-8").splitlines())
    return [e for e in entries if not spec.match_file(e + "/" if (root / e).is_dir() else e)]
