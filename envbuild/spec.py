"""The environment model users write, and the loaders that read it from files.

An `Environment` mirrors what Azure ML calls an environment: Python packages (conda and pip), environment
variables and Docker settings, plus metadata (name, version, description, tags) that never changes what gets
built. Loaders keep track of where every dependency came from (file and line) so that later steps can point at
the exact line when something is wrong with it.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SpecError


@dataclass(frozen=True)
class Origin:
    """Where a value was written: shown in errors as ``file:line``."""

    path: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass
class CondaDependencies:
    """Conda channels and packages, pip packages and pip options (the content of an environment.yml)."""

    channels: list[str] = field(default_factory=list)
    conda_packages: list[str] = field(default_factory=list)
    pip_packages: list[str] = field(default_factory=list)
    pip_options: list[str] = field(default_factory=list)
    origins: dict[str, Origin] = field(default_factory=dict, compare=False, repr=False)

    def add_conda_package(self, spec: str) -> None:
        if spec not in self.conda_packages:
            self.conda_packages.append(spec)

    def add_pip_package(self, requirement: str) -> None:
        if requirement not in self.pip_packages:
            self.pip_packages.append(requirement)

    def add_channel(self, channel: str) -> None:
        if channel not in self.channels:
            self.channels.append(channel)

    def remove_conda_package(self, name: str) -> None:
        self.conda_packages = [s for s in self.conda_packages if _conda_name(s) != name.lower()]

    def remove_pip_package(self, name: str) -> None:
        wanted = _pip_name(name)
        self.pip_packages = [r for r in self.pip_packages if _pip_name(r) != wanted]

    def remove_channel(self, channel: str) -> None:
        self.channels = [c for c in self.channels if c != channel]

    def set_python_version(self, version: str) -> None:
        self.remove_conda_package("python")
        self.conda_packages.insert(0, f"python={version}")

    def get_python_version(self) -> str | None:
        for spec in self.conda_packages:
            if _conda_name(spec) == "python":
                rest = spec.split("::")[-1][len("python"):].strip().lstrip("=").strip()
                return rest or None
        return None

    @property
    def is_empty(self) -> bool:
        return not (self.conda_packages or self.pip_packages)


@dataclass
class PythonSection:
    conda_dependencies: CondaDependencies = field(default_factory=CondaDependencies)
    # True: the base image already has everything; install nothing (Azure ML's user_managed_dependencies).
    user_managed_dependencies: bool = False
    interpreter_path: str = "python"


@dataclass
class DockerSection:
    """How the image starts: one of base_image, base_dockerfile or build_context (mutually exclusive)."""

    base_image: str | None = None
    base_dockerfile: str | None = None
    build_context: str | None = None
    gpu: bool = False
    cuda: str | None = None
    platform: str = "linux-64"

    def __setattr__(self, name: str, value) -> None:
        exclusive = ("base_image", "base_dockerfile", "build_context")
        if name in exclusive and value is not None:
            for other in exclusive:
                if other != name and getattr(self, other, None) is not None:
                    raise SpecError(
                        f"docker.{name} cannot be set while docker.{other} is set",
                        fix=f"set docker.{other} = None first: an environment starts from exactly one of "
                        "base_image, base_dockerfile or build_context",
                    )
        object.__setattr__(self, name, value)


@dataclass
class Environment:
    """A named environment definition. Only `python`, `docker` and `environment_variables` reach the key."""

    name: str = "unnamed"
    version: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    python: PythonSection = field(default_factory=PythonSection)
    docker: DockerSection = field(default_factory=DockerSection)
    environment_variables: dict[str, str] = field(default_factory=dict)
    # Files read to make this environment (spec files and their includes), for the raw-bytes memo.
    source_files: list[str] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def from_conda_specification(cls, name: str, file_path: str | os.PathLike) -> "Environment":
        env = cls(name=name)
        load_conda_file(Path(file_path), env)
        return env

    @classmethod
    def from_pip_requirements(cls, name: str, file_path: str | os.PathLike) -> "Environment":
        env = cls(name=name)
        path = Path(file_path)
        deps = env.python.conda_dependencies
        for req in parse_requirements_file(path, seen=set(), files=env.source_files):
            if req.option:
                deps.pip_options.append(req.option)
            else:
                deps.pip_packages.append(req.text)
                deps.origins[req.text] = req.origin
        return env

    @classmethod
    def from_file(cls, path: str | os.PathLike, name: str | None = None) -> "Environment":
        """Load any supported spec file, choosing the loader by name and content."""
        p = Path(path)
        if p.is_dir():
            raise SpecError(f"{p} is a directory", fix="pass a spec file (environment.yml, requirements.txt)")
        if not p.is_file():
            raise SpecError(f"{p}: no such file", fix="check the path")
        env_name = name or p.stem
        if p.suffix.lower() in (".yml", ".yaml"):
            return cls.from_conda_specification(env_name, p)
        return cls.from_pip_requirements(env_name, p)

    def copy(self) -> "Environment":
        return copy.deepcopy(self)

    def canonical(self) -> dict:
        from .keys import canonical_form

        return canonical_form(self)

    @property
    def key(self) -> str:
        from .keys import spec_key

        return spec_key(self)


# ---------------------------------------------------------------------------------------------------------------
# environment.yml


_CONDA_FILE_KEYS = {"name", "channels", "dependencies", "variables", "prefix", "platforms", "category"}


def load_conda_file(path: Path, env: Environment) -> None:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror}", where=str(path), fix="check the path") from None
    env.source_files.append(str(path))
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"not valid YAML: {problem}", where=where, fix="fix the YAML syntax") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError("an environment file must be a YAML mapping", where=f"{path}:1",
                        fix="start with `channels:` / `dependencies:`")
    unknown = sorted(set(data) - _CONDA_FILE_KEYS)
    if unknown:
        raise SpecError(f"unknown top-level field {unknown[0]!r}", where=f"{path}:{_line_of(text, unknown[0] + ':')}",
                        fix=f"use only {', '.join(sorted(_CONDA_FILE_KEYS))}")
    deps = env.python.conda_dependencies
    for channel in data.get("channels") or []:
        deps.add_channel(str(channel).strip())
    for item in data.get("dependencies") or []:
        if isinstance(item, dict):
            if set(item) != {"pip"}:
                raise SpecError(f"unexpected mapping in dependencies: {sorted(item)}",
                                where=f"{path}:{_line_of(text, next(iter(item)))}",
                                fix="only a `pip:` list may appear as a mapping under dependencies")
            _load_pip_section(path, text, item["pip"] or [], env)
            continue
        spec = str(item).strip()
        if not spec:
            continue
        deps.add_conda_package(spec)
        deps.origins[spec] = Origin(str(path), _line_of(text, spec))
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise SpecError("`variables` must be a mapping", where=f"{path}:{_line_of(text, 'variables:')}",
                        fix="write `variables:` with `NAME: value` lines")
    for k, v in variables.items():
        env.environment_variables[str(k)] = "" if v is None else str(v)


def _load_pip_section(path: Path, text: str, lines: list, env: Environment) -> None:
    deps = env.python.conda_dependencies
    for raw in lines:
        line = str(raw)
        origin = Origin(str(path), _line_of(text, line))
        for req in parse_requirement_lines([line], origin_path=path, first_line=origin.line or 0,
                                           seen={str(path.resolve())}, files=env.source_files):
            if req.option:
                deps.pip_options.append(req.option)
            elif req.text not in deps.pip_packages:
                deps.pip_packages.append(req.text)
                deps.origins[req.text] = req.origin


def _line_of(text: str, needle: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return None


def _conda_name(spec: str) -> str:
    spec = spec.split("::")[-1].strip()
    return re.split(r"[\s=<>!~\[]", spec, maxsplit=1)[0].lower()


def _pip_name(requirement: str) -> str:
    head = re.split(r"[\s=<>!~\[;@]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", head).lower()


# ---------------------------------------------------------------------------------------------------------------
# requirements.txt


@dataclass(frozen=True)
class RequirementLine:
    """One logical line of a requirements file: a requirement (text) or an index option (option)."""

    text: str | None
    option: str | None
    origin: Origin


# Options that change where packages come from; kept (in order) because they change the result.
_INDEX_OPTIONS = {
    "-i": "--index-url", "--index-url": "--index-url", "--extra-index-url": "--extra-index-url",
    "-f": "--find-links", "--find-links": "--find-links", "--no-index": "--no-index", "--pre": "--pre",
    "--trusted-host": "--trusted-host", "--only-binary": "--only-binary", "--no-binary": "--no-binary",
    "--prefer-binary": "--prefer-binary",
}


def parse_requirements_file(path: Path, *, seen: set[str], files: list[str]) -> list[RequirementLine]:
    resolved = str(path.resolve())
    if resolved in seen:
        raise SpecError(f"requirements include cycle: {path} is included again", where=str(path),
                        fix="remove the `-r` line that includes a file already being read")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"requirements file {path} does not exist", where=str(path),
                        fix="check the path (includes are relative to the including file)") from None
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
    return out


def _strip_comment(line: str) -> str:
    # pip: a comment starts at '#' at line start or after whitespace (URL fragments like #egg= stay).
    match = re.search(r"(^|\s)#", line)
    return line[: match.start()] if match else line


def _parse_one(text: str, origin: Origin, seen: set[str], files: list[str]) -> list[RequirementLine]:
    if text.startswith("-"):
        parts = re.split(r"[\s=]+", text, maxsplit=1)
        flag, value = parts[0], (parts[1].strip() if len(parts) > 1 else "")
        if flag in ("-r", "--requirement", "-c", "--constraint"):
            if not value:
                raise SpecError(f"{flag} needs a file name", where=str(origin), fix=f"write `{flag} other.txt`")
            included = Path(origin.path).parent / value
            lines = parse_requirements_file(included, seen=seen, files=files)
            if flag in ("-c", "--constraint"):
                return [RequirementLine(None, f"--constraint {r.text}", r.origin) for r in lines if r.text]
            return lines
        if flag in ("-e", "--editable"):
            raise SpecError(f"editable requirement {value!r} cannot go into an image", where=str(origin),
                            fix="build a wheel or use a pinned VCS URL (`name @ git+https://...@<commit>`) instead")
        if flag in _INDEX_OPTIONS:
            canonical_flag = _INDEX_OPTIONS[flag]
            return [RequirementLine(None, f"{canonical_flag} {value}".strip(), origin)]
        if flag in ("--hash", "--use-feature", "--no-deps", "--require-hashes", "--no-build-isolation"):
            return []
        raise SpecError(f"unknown pip option {flag!r}", where=str(origin),
                        fix="remove it, or use one of -r, -c, --index-url, --extra-index-url, --find-links, --pre")
    # Per-requirement hash options are checked by the lock's own hashes; the requirement itself stays.
    text = re.sub(r"\s--hash[=\s]\S+", "", text).strip()
    _validate_requirement(text, origin)
    return [RequirementLine(text, None, origin)]


def _validate_requirement(text: str, origin: Origin) -> None:
    from packaging.requirements import InvalidRequirement, Requirement

    if re.match(r"^(\.{0,2}/|~)", text) or text.startswith("file:"):
        raise SpecError(f"local path requirement {text!r} is not reproducible in an image", where=str(origin),
                        fix="publish it to an index or reference a pinned URL with a name: `name @ https://...`")
    if re.match(r"^(git|hg|svn|bzr)\+", text) or re.match(r"^https?://", text):
        egg = re.search(r"[#&]egg=([A-Za-z0-9_.\-]+)", text)
        if not egg:
            raise SpecError(f"URL requirement without a name: {text!r}", where=str(origin),
                            fix="write it as `name @ URL` (PEP 508)")
        return
    try:
        Requirement(text)
    except InvalidRequirement as exc:
        raise SpecError(f"invalid requirement {text!r}: {exc}", where=str(origin),
                        fix="write a PEP 508 requirement, e.g. `numpy>=1.24,<2`") from None
