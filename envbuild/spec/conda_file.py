"""conda environment.yml: channels, conda and pip dependencies, variables, platforms and line selectors.

The loader fills the `Environment` it is given (it does not import the model, which imports it), recording the
file and line of every dependency. Selectors are the two spellings people use to keep one file for several
platforms: conda-lock's `# [linux64]` comments and unidep's `sel(linux): spec` items; both are evaluated for the
environment's platform here, so the key sees only what that platform installs.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ..errors import SpecError
from .requirements import add_requirements, parse_requirement_lines
from ..limits import check_name
from .source import Origin, YamlDocument, read_yaml

log = logging.getLogger(__name__)


# name/prefix are metadata; platforms, category and pip-repositories are conda-lock's extensions.
CONDA_FILE_KEYS = {"name", "channels", "dependencies", "variables", "prefix", "platforms", "category",
                    "pip-repositories"}
# Fields only an Azure ML environment has (envbuild.spec.azureml reads them): here, below both loaders, because a
# conda file holding one is the wrong file, and the Azure ML loader reads conda files.
AZUREML_FIELDS = {"image", "conda_file", "build", "os_type", "inference_config"}


def load_conda_file(path: Path, env, document: YamlDocument | None = None) -> None:
    document = document or read_yaml(path)
    env.source_files.append(str(path))
    data = document.data
    if data is None:
        return
    if not isinstance(data, dict):
        raise SpecError("an environment file must be a YAML mapping", where=f"{path}:1",
                        fix="start with `channels:` / `dependencies:`")
    root = document.node
    azure = sorted(set(data) & AZUREML_FIELDS)
    if azure:
        raise SpecError(f"field {azure[0]!r} belongs to an Azure ML environment YAML, not a conda environment file",
                        where=document.where(document.key_node(root, azure[0])),
                        fix="load the Azure ML environment YAML itself (it names this file as conda_file), or "
                            "keep only channels/dependencies/variables here")
    unknown = sorted(set(map(str, data)) - CONDA_FILE_KEYS)
    if unknown:
        raise SpecError(f"unknown top-level field {unknown[0]!r}",
                        where=document.where(document.key_node(root, unknown[0])),
                        fix=f"use only {', '.join(sorted(CONDA_FILE_KEYS))}")
    if data.get("prefix"):
        log.info("%s: `prefix: %s` ignored: the environment is installed inside the image", path, data["prefix"])
    platforms = _string_list(document, root, data, "platforms")
    if platforms:
        env.docker.platform = pick_platform(platforms, env.docker.platform,
                                             document.where(document.child(root, "platforms")))
    deps = env.python.conda_dependencies
    for channel in _string_list(document, root, data, "channels"):
        deps.add_channel(channel)
    for url in _string_list(document, root, data, "pip-repositories"):
        deps.set_pip_option(f"--extra-index-url {url}")
    _load_dependencies(document, env)
    env.environment_variables.update(document.string_map(document.child(root, "variables"), "variables"))


def _string_list(document: YamlDocument, root, data: dict, key: str) -> list[str]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or any(isinstance(v, (dict, list)) for v in value):
        raise SpecError(f"`{key}` must be a list of strings", where=document.where(document.child(root, key)),
                        fix=f"write `{key}:` followed by `- item` lines")
    where = document.where(document.child(root, key))
    return [check_name(str(v).strip(), f"a `{key}` entry", where) for v in value if v is not None and str(v).strip()]


_UNIDEP_SELECTOR = re.compile(r"^sel\((.+)\)$")


def _load_dependencies(document: YamlDocument, env) -> None:
    from ..packages import canonical_conda_spec

    data, root = document.data, document.node
    items = data.get("dependencies") or []
    items_node = document.child(root, "dependencies")
    if not isinstance(items, list):
        raise SpecError("`dependencies` must be a list", where=document.where(items_node),
                        fix="write `dependencies:` followed by `- package` lines")
    deps = env.python.conda_dependencies
    lines = document.text.splitlines()
    for item, node in zip(items, items_node.value if items_node is not None else []):
        origin = Origin(str(document.path), document.line(node))
        if isinstance(item, dict):
            key = next(iter(item)) if len(item) == 1 else None
            unidep = _UNIDEP_SELECTOR.match(str(key)) if key is not None else None
            if key == "pip":
                _load_pip_section(document, document.child(node, "pip"), item["pip"], env)
                continue
            if unidep and isinstance(item[key], str):
                if not _selector_holds(unidep.group(1).replace(",", " or "), env.docker.platform, origin):
                    continue
                spec = item[key].strip()
            else:
                raise SpecError(f"unexpected mapping in dependencies: {sorted(map(str, item))}", where=str(origin),
                                fix="only a `pip:` list (or a unidep `sel(linux): spec`) may appear as a mapping "
                                    "under dependencies")
        elif isinstance(item, list):
            raise SpecError("a nested list in dependencies", where=str(origin), fix="write one `- package` per line")
        else:
            spec = "" if item is None else str(item).strip()
        if not spec:
            continue
        selector = _line_selector(lines[origin.line - 1] if origin.line <= len(lines) else "")
        if selector and not _selector_holds(selector, env.docker.platform, origin):
            continue
        canonical_conda_spec(spec, origin)  # fail here, at the line, rather than at key time
        deps.add_conda_package(spec)
        deps.origins.setdefault(spec.strip(), origin)


_SELECTOR_COMMENT = re.compile(r"#\s*\[([^\]]+)\]\s*$")
_SELECTOR_WORDS = {"and", "or", "not"}


def _line_selector(line: str) -> str | None:
    found = _SELECTOR_COMMENT.search(line)
    return found.group(1).strip() if found else None


def _platform_names(platform: str) -> dict[str, bool]:
    """Every selector name, and whether it holds on `platform` (`# [linux64]`, `# [osx]`, `# [aarch64]`, ...):
    conda-lock's names (the tool that gives environment.yml selectors a meaning), from the platform table."""
    from ..platforms import PLATFORMS

    system = platform.partition("-")[0]
    known_platform = PLATFORMS.get(platform)
    true = set(known_platform.selectors) if known_platform else \
        {system, platform.replace("-", "")} | ({"unix"} if system != "win" else set())
    known = set().union(*(p.selectors for p in PLATFORMS.values())) | true
    return {name: name in true for name in known}


def _selector_holds(expression: str, platform: str, origin: Origin) -> bool:
    """Evaluate `linux64`, `not win`, `osx or linux`; a bracketed comment that is not a selector is a comment."""
    names = _platform_names(platform)
    words = expression.replace("(", " ").replace(")", " ").split()
    if not words or any(w not in names and w not in _SELECTOR_WORDS for w in words):
        log.debug("%s: [%s] is not a platform selector; read as a comment", origin, expression)
        return True
    return any(all(_selector_term(term.split(), names) for term in alternative.split(" and "))
               for alternative in " ".join(words).split(" or "))


def _selector_term(words: list[str], names: dict[str, bool]) -> bool:
    negate = len(words) == 2 and words[0] == "not"
    return names.get(words[-1], False) != negate


def _load_pip_section(document: YamlDocument, node, lines, env) -> None:
    if lines is None:
        return
    if not isinstance(lines, list):
        raise SpecError("`pip:` must be a list of requirement lines", where=document.where(node),
                        fix="write `- pip:` followed by indented `- requirement` lines")
    collected = []
    for raw, item_node in zip(lines, node.value):
        if raw is None:
            continue
        collected.extend(parse_requirement_lines([str(raw)], origin_path=document.path,
                                                 first_line=document.line(item_node),
                                                 seen={str(document.path.resolve())}, files=env.source_files))
    add_requirements(env, collected)


def pick_platform(platforms: list[str], current: str, where: str) -> str:
    """Images are Linux: keep the current platform when listed, else the first Linux one listed."""
    listed = [str(p) for p in platforms]
    if current in listed:
        return current
    linux = [p for p in listed if p.startswith("linux-")]
    if not linux:
        raise SpecError(f"no Linux platform among {', '.join(listed)}", where=where,
                        fix="add linux-64 (or linux-aarch64) to platforms: envbuild builds Linux images")
    return linux[0]
