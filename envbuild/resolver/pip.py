"""The pip side of a solve: uv against the Python the conda side chose (or the base image's), for the target
platform, each package pinned to one file (URL + sha256) for that platform's wheel tags."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from ..channels import public_text, public_url
from ..credentials import expand
from ..errors import ResolveError
from ..lockfile import LockedPackage
from ..platforms import PLATFORMS, Platform
from .isolated import SdistPolicy, compile_requirements


def uv_platform(target: Platform, glibc: str) -> str:
    """uv's --python-platform; uv knows manylinux_2_17 and 2_28 onwards, so an older glibc falls back."""
    arch = {"arm64": "aarch64"}.get(target.arch, target.arch)
    if target.os == "linux":
        if arch not in ("x86_64", "aarch64"):
            raise ResolveError(f"uv cannot lock pip packages for linux on {arch}",
                               fix="lock the pip packages for linux-64 or linux-aarch64")
        minor = int(glibc.split(".")[1])
        minor = minor if minor >= 31 else (28 if minor >= 28 else 17)
        return f"{arch}-manylinux_2_{minor}"
    if target.os == "osx":
        return f"{arch}-apple-darwin"
    return f"{arch}-pc-windows-msvc"


def _uv_binary() -> str:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except Exception:
        return "uv"


def solve_pip(requirements: list[str], options: list[str], python_version: str, platform: str, glibc: str,
               cutoff: dt.datetime | None, sdists: SdistPolicy | None = None) -> list[LockedPackage]:
    """Lock `requirements`; an sdist is built to read its metadata only where `sdists` says (resolver.isolated)."""
    import tempfile
    import tomllib

    target = PLATFORMS[platform]
    py = ".".join(python_version.split(".")[:2])
    with tempfile.TemporaryDirectory(prefix="envbuild-pip-") as tmp:
        req_in = Path(tmp, "requirements.in")
        req_in.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        out = Path(tmp, "pylock.toml")
        cmd = [_uv_binary(), "pip", "compile", str(req_in), "--format", "pylock.toml", "-o", str(out),
               "--python-version", py, "--python-platform", uv_platform(target, glibc), "--quiet", "--no-header",
               "--no-annotate",
               # pip takes the best version across every index; uv by default stops at the first index that has
               # the name, which silently picks e.g. PyPI's CUDA torch over the `+cpu` build of an extra index.
               # requirements files are written for pip's behaviour.
               "--index-strategy", "unsafe-best-match"]
        if cutoff:
            cmd += ["--exclude-newer", cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")]
        for number, option in enumerate(options):
            flag, _, value = option.partition(" ")
            if flag == "--pre":
                cmd += ["--prerelease", "allow"]
            elif flag in ("--index-url", "--extra-index-url", "--find-links"):
                cmd += [flag, expand(value)]  # `https://alice:${TOKEN}@host/simple`, as pip expands it
            elif flag == "--no-index":
                cmd += ["--no-index"]
            elif flag == "--constraint":
                constraint = Path(tmp, f"constraints-{number}.txt")
                constraint.write_text(value + "\n", encoding="utf-8")
                cmd += ["--constraint", str(constraint)]
        proc = compile_requirements(cmd, Path(tmp), _uv_env(), sdists)
        if proc.returncode != 0:
            raise _uv_error(proc.stderr, py, platform)
        data = tomllib.loads(out.read_text(encoding="utf-8"))
    tags = _target_tags(py, target, glibc)
    return [_pick_file(pkg, tags, py, platform) for pkg in data.get("packages", [])]


def _uv_env() -> dict:
    """The caller's environment for uv, with pip's index variables translated: private indexes just work."""
    env = dict(os.environ)
    env.setdefault("UV_NO_PROGRESS", "1")
    # uv reads the system trust store only when asked; corporate proxies need it.
    env.setdefault("UV_NATIVE_TLS", "1")
    if env.get("PIP_INDEX_URL") and not (env.get("UV_DEFAULT_INDEX") or env.get("UV_INDEX_URL")):
        env["UV_DEFAULT_INDEX"] = env["PIP_INDEX_URL"]
    if env.get("PIP_EXTRA_INDEX_URL") and not (env.get("UV_INDEX") or env.get("UV_EXTRA_INDEX_URL")):
        env["UV_INDEX"] = env["PIP_EXTRA_INDEX_URL"]
    return env


def _uv_error(stderr: str, py: str, platform: str) -> ResolveError:
    """uv's failure as one message: a package that fails to build is named, with the lines that explain why."""
    import re

    failed = re.search(r"Failed to (?:download and )?build\s+`([^`]+)`", stderr)
    if failed:
        name = re.split(r"[=<>!~ @]", failed.group(1), maxsplit=1)[0]
        return ResolveError(f"pip package {failed.group(1)} cannot be built for Python {py} on {platform} (it has no "
                            f"wheel for it, and building its sdist failed):\n{_uv_message(stderr)}",
                            fix=f"pin a version of {name} that publishes a wheel for Python {py}, or replace it (see "
                                "uv's hints above); for an old pip-only environment, lock for its Python with "
                                "--python")
    return ResolveError(f"pip requirements cannot be resolved for Python {py} on {platform}:\n{_uv_message(stderr)}",
                        fix="check the package names and versions (the message above names the conflict)")


def _uv_message(stderr: str, head: int = 12, tail: int = 12) -> str:
    """uv's output, indented: its first lines (what failed, and where) and its last (the cause and uv's hints),
    with the middle cut when it is long (a build's stack frames)."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    if len(lines) > head + tail:
        lines = lines[:head] + [f"... ({len(lines) - head - tail} lines cut)"] + lines[-tail:]
    # uv echoes index URLs in some messages: never show credentials either.
    return "\n".join("  " + public_text(line) for line in lines)


def _target_tags(py: str, target: Platform, glibc: str) -> list[str]:
    """Wheel tags the target interpreter accepts, most specific first (the order pip would prefer)."""
    from packaging import tags

    major, minor = (int(x) for x in py.split("."))
    if target.os == "linux":
        glibc_minor = int(glibc.split(".")[1])
        arch = target.arch
        platforms = [f"manylinux_2_{m}_{arch}" for m in range(glibc_minor, 4, -1)]
        platforms += [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}", f"linux_{arch}"]
    elif target.os == "osx":
        macos = tuple(int(x) for x in target.os_version.split("."))
        platforms = list(tags.mac_platforms(macos, target.arch))
    else:
        platforms = ["win_amd64"]
    ordered = list(tags.cpython_tags((major, minor), platforms=platforms))
    ordered += list(tags.compatible_tags((major, minor), interpreter=f"cp{major}{minor}", platforms=platforms))
    return [str(t) for t in ordered]


def _pick_file(pkg: dict, target_tags: list[str], py: str, platform: str) -> LockedPackage:
    from packaging.utils import parse_wheel_filename

    rank = {tag: i for i, tag in enumerate(target_tags)}
    best = None
    for wheel in pkg.get("wheels", []):
        filename = wheel["url"].rsplit("/", 1)[-1]
        try:
            _, _, _, wheel_tags = parse_wheel_filename(filename)
        except Exception:
            continue
        score = min((rank[str(t)] for t in wheel_tags if str(t) in rank), default=None)
        if score is not None and (best is None or score < best[0]):
            best = (score, wheel)
    archive = pkg.get("archive")
    if archive and (archive.get("url") or archive.get("path", "")).endswith(".whl"):
        return _archive_wheel(pkg, archive)
    if "vcs" in pkg or "archive" in pkg or "directory" in pkg:
        raise ResolveError(f"{pkg['name']} comes from a VCS URL, an sdist archive or a directory, which envbuild "
                           "cannot lock to a file and a sha256 yet",
                           fix="publish it to an index, or name a wheel: `name @ https://.../name-1.0-py3-none-any.whl` "
                               "or a local `./dist/name-1.0-py3-none-any.whl`")
    chosen = best[1] if best else pkg.get("sdist")
    if chosen is None:
        raise ResolveError(f"{pkg['name']} {pkg.get('version')} has no file for Python {py} on {platform}",
                           fix="pin a version that publishes a compatible wheel or an sdist")
    sha256 = (chosen.get("hashes") or {}).get("sha256")
    if not sha256:
        raise ResolveError(f"the index gives no sha256 for {public_url(chosen['url'])}",
                           fix="use an index that publishes hashes (PEP 503 #sha256= fragments)")
    return LockedPackage(manager="pip", name=pkg["name"], version=str(pkg.get("version", "")),
                         url=public_url(chosen["url"]), sha256=sha256)


def _archive_wheel(pkg: dict, archive: dict) -> LockedPackage:
    """A wheel named by URL (`six @ https://.../six-1.16.0-py2.py3-none-any.whl`) or a stored private wheel (a
    path): locked to that file and the sha256 uv computed (a `#sha256=` of the URL is checked by resolver.pins)."""
    from ..wheels import locked_url

    sha256 = (archive.get("hashes") or {}).get("sha256")
    if archive.get("path"):
        url, stored_sha256 = locked_url(archive["path"])
        sha256 = sha256 or stored_sha256
    else:
        url = public_url(archive["url"].split("#", 1)[0])
    if not sha256:
        raise ResolveError(f"no sha256 for the wheel {url}", fix="add `#sha256=<hash>` to its URL")
    return LockedPackage(manager="pip", name=pkg["name"], version=str(pkg.get("version", "")), url=url,
                         sha256=sha256)
