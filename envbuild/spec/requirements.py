"""pip requirements files: requirement lines, index options and `-r`/`-c` includes, each with its file and line.

The same parser reads a requirements.txt and the `pip:` list of an environment.yml, so both accept the same lines
and fail the same way. Options that change where packages come from are kept in order (they are priority);
options that do not change what gets installed are dropped; `--hash` pins are kept with their requirement
(envbuild.pins enforces them); a local `*.whl` path is a private wheel, stored by content (envbuild.wheels);
anything else that cannot go into an image (other local paths, editable checkouts that are not VCS URLs) fails
at its line.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpecError
from ..limits import check_name
from .source import Origin, is_file, read_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RequirementLine:
    """One logical line of a requirements file: a requirement (text) or an index option (option)."""

    text: str | None
    option: str | None
    origin: Origin
    hashes: tuple[str, ...] = ()  # the line's `--hash` values (`sha256:HEX`)
    wheel: str | None = None  # a private wheel: the file the line named (its bytes are in the store)


# Options that change where packages come from; kept (in order) because they change the result.
_INDEX_OPTIONS = {
    "-i": "--index-url", "--index-url": "--index-url", "--extra-index-url": "--extra-index-url",
    "-f": "--find-links", "--find-links": "--find-links", "--no-index": "--no-index", "--pre": "--pre",
    "--trusted-host": "--trusted-host", "--only-binary": "--only-binary", "--no-binary": "--no-binary",
    "--prefer-binary": "--prefer-binary",
}
# Options that do not change which packages are installed: the lock pins and hashes everything anyway.
_IGNORED_OPTIONS = {"--hash", "--use-feature", "--require-hashes", "--no-build-isolation", "--progress-bar",
                    "--no-cache-dir", "--disable-pip-version-check", "--upgrade", "-U", "--use-pep517",
                    "--no-use-pep517", "--upgrade-strategy"}


def parse_requirements_file(path: Path, *, seen: set[str], files: list[str]) -> list[RequirementLine]:
    resolved = str(path.resolve())
    if resolved in seen:
        raise SpecError(f"requirements include cycle: {path} is included again", where=str(path),
                        fix="remove the `-r` line that includes a file already being read")
    if not is_file(path):
        raise SpecError(f"requirements file {path} does not exist", where=str(path),
                        fix="check the path (includes are relative to the including file)")
    text = read_text(path)
    files.append(str(path))
    return parse_requirement_lines(text.splitlines(), origin_path=path, first_line=1,
                                   seen=seen | {resolved}, files=files)


def parse_requirement_lines(lines: list[str], *, origin_path: Path, first_line: int, seen: set[str],
                            files: list[str]) -> list[RequirementLine]:
    out: list[RequirementLine] = []
    logical = ""
    start = first_line
    for offset, raw in enumerate(lines):
        number = first_line + offset
        if not logical:
            start = number
        line = raw.rstrip()
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        text, logical = _strip_comment(logical).strip(), ""
        if text:
            out.extend(_parse_one(text, Origin(str(origin_path), start), seen, files))
    if logical.strip():
        text = _strip_comment(logical).strip()
        if text:
            out.extend(_parse_one(text, Origin(str(origin_path), start), seen, files))
    return out


def _strip_comment(line: str) -> str:
    # pip: a comment starts at '#' at line start or after whitespace (URL fragments like #egg= stay).
    match = re.search(r"(^|\s)#", line)
    return line[: match.start()] if match else line


def _parse_one(text: str, origin: Origin, seen: set[str], files: list[str]) -> list[RequirementLine]:
    if text == "@EXPLICIT":
        raise SpecError("this is a conda explicit lock file, not a requirements file", where=str(origin),
                        fix="lock to a conda-lock.yml (`conda-lock lock` or `envbuild lock`) and load that")
    if text.startswith("-"):
        parts = re.split(r"[\s=]+", text, maxsplit=1)
        flag, value = parts[0], (parts[1].strip().strip("'\"") if len(parts) > 1 else "")
        if flag in ("-r", "--requirement", "-c", "--constraint"):
            if not value:
                raise SpecError(f"{flag} needs a file name", where=str(origin), fix=f"write `{flag} other.txt`")
            included = Path(origin.path).parent / value
            if not is_file(included):
                raise SpecError(f"included requirements file {value} does not exist", where=str(origin),
                                fix=f"check the path: it is read relative to {Path(origin.path).parent}")
            lines = parse_requirements_file(included, seen=seen, files=files)
            if flag in ("-c", "--constraint"):
                return [RequirementLine(None, f"--constraint {r.text}", r.origin) for r in lines if r.text]
            return lines
        if flag in ("-e", "--editable"):
            # A bare VCS URL, or one named as PEP 508 has it (`name @ git+https://...`, spaces or none).
            if not re.match(r"^(?:[A-Za-z0-9][\w.-]*\s*(?:\[[^\]]*\])?\s*@\s*)?(git|hg|svn|bzr)\+[a-z]+://", value):
                raise SpecError(f"editable requirement {value!r} cannot go into an image: only a VCS URL "
                                "(git+https://...) can be installed there", where=str(origin),
                                fix="build a wheel, or use a pinned VCS URL (`name @ git+https://...@<commit>`)")
            # An editable checkout of a VCS URL installs the same code as a regular install of it.
            log.info("%s: `%s` installed from the VCS URL, not in editable mode", origin, text)
            text = value
        elif flag in _INDEX_OPTIONS:
            check_name(text, "pip option", str(origin))  # nothing long reaches uv's argv
            return [RequirementLine(None, f"{_INDEX_OPTIONS[flag]} {value}".strip(), origin)]
        elif flag in _IGNORED_OPTIONS:
            return []
        else:
            raise SpecError(f"unknown pip option {flag!r}", where=str(origin),
                            fix="remove it, or use one of -r, -c, --index-url, --extra-index-url, --find-links, --pre")
    # Per-requirement hash options are pins (envbuild.pins): kept beside the requirement, checked on the lock.
    hashes = tuple(re.findall(r"\s--hash[=\s]+(\S+)", text))
    if hashes:
        from ..pins import sha256_pins

        sha256_pins(hashes, str(origin))  # a pin that cannot be checked fails at its line
    text = re.sub(r"\s--hash[=\s]+\S+", "", text).strip()
    check_name(text, "requirement", str(origin))  # nothing long reaches uv's argv, a path or a Dockerfile
    wheel = _local_wheel(text, origin)
    if wheel is not None:
        from ..wheels import store_wheel

        return [RequirementLine(store_wheel(wheel, str(origin)), None, origin, hashes, str(wheel))]
    _validate_requirement(text, origin)
    return [RequirementLine(text, None, origin, hashes)]


def _local_wheel(text: str, origin: Origin) -> Path | None:
    """The file of a local wheel requirement (`./dist/x-1.0-py3-none-any.whl`, `x @ file:///.../x.whl`), read
    relative to the requirements file; None for anything else."""
    location = text.split(";", 1)[0].strip()
    if "@" in location and not location.startswith(("/", ".", "~", "file:")):
        location = location.split("@", 1)[1].strip()
    if not location.endswith(".whl") or re.match(r"^[a-z][a-z0-9+.-]*://", location) and \
            not location.startswith("file://"):
        return None
    if location.startswith("file:"):
        from urllib.parse import unquote, urlsplit

        location = unquote(urlsplit(location).path)
    return Path(origin.path).parent / Path(location).expanduser()


def _validate_requirement(text: str, origin: Origin) -> None:
    from ..packages import canonical_pip_requirement

    if re.match(r"^(\.{0,2}/|~|[A-Za-z]:\\)", text) or text.startswith("file:") or re.search(r"@\s*file:", text):
        raise SpecError(f"local path requirement {text!r} is not reproducible in an image", where=str(origin),
                        fix="publish it to an index or reference a pinned URL with a name: `name @ https://...`")
    canonical_pip_requirement(text, origin)



def add_requirements(env, lines: list[RequirementLine]) -> None:
    """Add parsed lines to `env`'s pip packages (with their origins) and pip options, in order, once each."""
    deps = env.python.conda_dependencies
    present = set(deps.pip_packages)  # a set: `in` on the list made a 20,000-line file take seconds (quadratic)
    for req in lines:
        if req.option:
            deps.set_pip_option(req.option)
        elif req.text not in present:
            present.add(req.text)
            deps.pip_packages.append(req.text)
            deps.origins[req.text] = req.origin
            if req.hashes:
                deps.pip_hashes[req.text] = list(req.hashes)
            if req.wheel:  # its bytes decide the key: the fast path must see them change
                env.source_files.append(req.wheel)
