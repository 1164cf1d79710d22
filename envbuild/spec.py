"""The environment model users write, and the loaders that read it from files.

An `Environment` mirrors what Azure ML calls an environment: Python packages (conda and pip), environment
variables and Docker settings, plus metadata (name, version, description, tags) that never changes what gets
built. Loaders keep track of where every dependency came from (file and line) so that later steps can point at
the exact line when something is wrong with it.

Inputs: conda environment.yml, pip requirements.txt, Azure ML CLI v2 environment YAML (envbuild.azureml), an
existing conda prefix, a Docker image reference, a Dockerfile or build context, a conda-lock.yml, a directory
written by `save_to_directory`, and `curated:NAME[:VERSION]` (envbuild.catalog). `Environment.from_file` tells
them apart. yaml, packaging and rattler are imported inside functions: this module is on the cache-hit path.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SpecError

log = logging.getLogger(__name__)


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

    @classmethod
    def create(cls, conda_packages=(), pip_packages=(), python_version: str | None = None, channels=(),
               pip_options=()) -> CondaDependencies:
        """Like the Azure ML SDK's `CondaDependencies.create` (without its implicit azureml packages)."""
        deps = cls()
        for channel in channels:
            deps.add_channel(channel)
        if python_version:
            deps.set_python_version(python_version)
        for spec in conda_packages:
            deps.add_conda_package(spec)
        for requirement in pip_packages:
            deps.add_pip_package(requirement)
        for option in pip_options:
            deps.set_pip_option(option)
        return deps

    def add_conda_package(self, spec: str) -> None:
        spec = spec.strip()
        if spec not in self.conda_packages:
            self.conda_packages.append(spec)

    def add_pip_package(self, requirement: str) -> None:
        requirement = requirement.strip()
        if requirement not in self.pip_packages:
            self.pip_packages.append(requirement)

    def add_channel(self, channel: str) -> None:
        channel = channel.strip()
        if channel not in self.channels:
            self.channels.append(channel)

    def set_pip_option(self, option: str) -> None:
        """An index option such as `--extra-index-url https://...` (order kept: it is priority)."""
        option = " ".join(option.split())
        if option not in self.pip_options:
            self.pip_options.append(option)

    def remove_conda_package(self, name: str) -> None:
        self.conda_packages = [s for s in self.conda_packages if _conda_name(s) != name.strip().lower()]

    def remove_pip_package(self, name: str) -> None:
        wanted = _pip_name(name)
        self.pip_packages = [r for r in self.pip_packages if _pip_name(r) != wanted]

    def remove_channel(self, channel: str) -> None:
        self.channels = [c for c in self.channels if c != channel.strip()]

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


_EXCLUSIVE_BASES = ("base_image", "base_dockerfile", "build_context")


@dataclass
class DockerSection:
    """How the image starts: one of base_image, base_dockerfile or build_context (mutually exclusive).

    base_dockerfile is a Dockerfile's text (or a path to one); build_context a directory holding
    `dockerfile_path` (default `Dockerfile`) and the files it copies. gpu/cuda ask for a GPU image; cuda is the
    CUDA version the solve targets (conda's `__cuda`).
    """

    base_image: str | None = None
    base_dockerfile: str | None = None
    build_context: str | None = None
    dockerfile_path: str = "Dockerfile"
    gpu: bool = False
    cuda: str | None = None
    platform: str = "linux-64"

    # The Azure ML SDK's spellings.
    @property
    def base_dockerfile_is_path(self) -> bool:
        """Azure ML takes a Dockerfile's text or a path to it: one line naming an existing file is a path."""
        value = self.base_dockerfile
        return bool(value) and "\n" not in value and Path(value).is_file()

    def base_dockerfile_text(self) -> str | None:
        """The base Dockerfile's content, whether the spec gave the text or a path to it."""
        if self.base_dockerfile_is_path:
            return Path(self.base_dockerfile).read_text(encoding="utf-8")
        return self.base_dockerfile

    @property
    def gpu_support(self) -> bool:
        return self.gpu

    @gpu_support.setter
    def gpu_support(self, value: bool) -> None:
        self.gpu = bool(value)

    @property
    def enabled(self) -> bool:
        """Always True: envbuild always builds a container image (Azure ML could also run without one)."""
        return True

    @enabled.setter
    def enabled(self, value: bool) -> None:
        if not value:
            raise SpecError("docker.enabled = False is not supported: envbuild builds container images",
                            fix="leave docker.enabled as True")

    def __setattr__(self, name: str, value) -> None:
        if name in _EXCLUSIVE_BASES and value is not None:
            for other in _EXCLUSIVE_BASES:
                if other != name and getattr(self, other, None) is not None:
                    raise SpecError(
                        f"docker.{name} cannot be set while docker.{other} is set",
                        fix=f"set docker.{other} = None first: an environment starts from exactly one of "
                        "base_image, base_dockerfile or build_context",
                    )
            if name == "build_context":
                # Keyed by content, saved by path: make the path independent of the current directory.
                value = os.path.abspath(os.fspath(value))
        object.__setattr__(self, name, value)


@dataclass
class Environment:
    """A named environment definition. Only `python`, `docker`, `environment_variables` and `lock_file` reach
    the key."""

    name: str = "unnamed"
    version: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    python: PythonSection = field(default_factory=PythonSection)
    docker: DockerSection = field(default_factory=DockerSection)
    environment_variables: dict[str, str] = field(default_factory=dict)
    # A conda-lock.yml to install as is (no solve); its packages' urls and hashes enter the key.
    lock_file: str | None = None
    # Files read to make this environment (spec files and their includes), for the raw-bytes memo.
    source_files: list[str] = field(default_factory=list, compare=False, repr=False)

    # -- constructors, one per input kind ------------------------------------------------------------------------
    @classmethod
    def from_conda_specification(cls, name: str, file_path: str | os.PathLike) -> Environment:
        env = cls(name=name)
        load_conda_file(Path(file_path), env)
        return env

    @classmethod
    def from_pip_requirements(cls, name: str, file_path: str | os.PathLike) -> Environment:
        env = cls(name=name)
        _add_requirements(env, parse_requirements_file(Path(file_path), seen=set(), files=env.source_files))
        return env

    @classmethod
    def from_azureml_yaml(cls, file_path: str | os.PathLike, name: str | None = None) -> Environment:
        from .azureml import load_azureml_environment

        return load_azureml_environment(Path(file_path), name=name)

    @classmethod
    def from_conda_prefix(cls, name: str, prefix: str | os.PathLike) -> Environment:
        """The packages installed in an existing conda environment, read from its conda-meta (no conda needed)."""
        env = cls(name=name)
        load_conda_prefix(Path(prefix), env)
        return env

    @classmethod
    def from_existing_conda_environment(cls, name: str, conda_environment_name: str) -> Environment:
        """Like the Azure ML SDK: a conda environment by name (or prefix path), found where conda keeps them."""
        return cls.from_conda_prefix(name, find_conda_environment(conda_environment_name))

    @classmethod
    def from_docker_image(cls, name: str, image: str, conda_specification=None,
                          pip_requirements=None) -> Environment:
        """An existing image, used as it is unless a conda or pip file adds packages."""
        env = cls._with_packages(name, conda_specification, pip_requirements)
        env.docker.base_image = image
        return env

    @classmethod
    def from_dockerfile(cls, name: str, dockerfile: str | os.PathLike, conda_specification=None,
                        pip_requirements=None) -> Environment:
        """A Dockerfile (path): its text becomes docker.base_dockerfile; if it COPYs or ADDs local files, its
        directory becomes the build context instead, since the build needs those files."""
        path = Path(dockerfile)
        text = read_text(path)
        _check_dockerfile(path, text)
        env = cls._with_packages(name, conda_specification, pip_requirements)
        if _copies_local_files(text):
            env.docker.build_context = str(path.parent)
            env.docker.dockerfile_path = path.name
            env.source_files.extend(_context_files(path.parent, but=path))
        else:
            env.docker.base_dockerfile = text
        env.source_files.insert(0, str(path))
        return env

    @classmethod
    def from_build_context(cls, name: str, directory: str | os.PathLike, dockerfile_path: str = "Dockerfile",
                           conda_specification=None, pip_requirements=None) -> Environment:
        root = Path(directory)
        dockerfile = root / dockerfile_path
        if not root.is_dir():
            raise SpecError(f"build context {root} is not a directory", fix="pass the directory holding the Dockerfile")
        if not dockerfile.is_file():
            raise SpecError(f"build context {root} has no {dockerfile_path}", where=str(root),
                            fix="add the Dockerfile or name it with dockerfile_path")
        _check_dockerfile(dockerfile, read_text(dockerfile))
        env = cls._with_packages(name, conda_specification, pip_requirements)
        env.docker.build_context = str(root)
        env.docker.dockerfile_path = dockerfile_path
        env.source_files.extend([str(dockerfile), *_context_files(root, but=dockerfile)])
        return env

    @classmethod
    def from_lock_file(cls, name: str, path: str | os.PathLike) -> Environment:
        """A conda-lock.yml installed as it is: the resolver skips the solve."""
        env = cls(name=name)
        lock_path = Path(path).resolve()
        metadata = _lock_metadata(lock_path)
        env.docker.platform = _pick_platform(metadata.get("platforms") or [], env.docker.platform, str(lock_path))
        for channel in metadata.get("channels") or []:
            env.python.conda_dependencies.add_channel(str(channel.get("url") if isinstance(channel, dict) else channel))
        env.lock_file = str(lock_path)
        env.source_files.append(str(lock_path))
        return env

    @classmethod
    def _with_packages(cls, name: str, conda_specification, pip_requirements) -> Environment:
        env = cls(name=name)
        if conda_specification:
            load_conda_file(Path(conda_specification), env)
        if pip_requirements:
            _add_requirements(env, parse_requirements_file(Path(pip_requirements), seen=set(), files=env.source_files))
        env.python.user_managed_dependencies = env.python.conda_dependencies.is_empty
        return env

    @classmethod
    def from_file(cls, path: str | os.PathLike, name: str | None = None) -> Environment:
        """Load any supported input, choosing the loader by name and content (see the module docstring)."""
        text = os.fspath(path)
        if text.startswith("curated:"):
            return _load_curated(text)
        if text.startswith(DOCKER_IMAGE_PREFIX):
            return cls.from_docker_image(name or "image", text[len(DOCKER_IMAGE_PREFIX):])
        p = Path(text)
        if p.is_dir():
            return _load_directory(p, name)
        if not p.is_file():
            raise SpecError(f"{p}: no such file or directory", fix="check the path")
        lowered = p.name.lower()
        if lowered in _PROJECT_FILES or p.suffix.lower() in (".toml", ".py", ".cfg", ".json"):
            raise SpecError(f"{p.name} describes a project, not an environment", where=str(p),
                            fix="export its dependencies to a requirements file (e.g. `uv pip compile "
                                f"{p.name} -o requirements.txt`) and load that")
        if lowered in ("dockerfile", "containerfile") or lowered.startswith("dockerfile.") \
                or lowered.endswith(".dockerfile"):
            return cls.from_dockerfile(name or p.parent.name or "dockerfile", p)
        if p.suffix.lower() in (".yml", ".yaml"):
            return _load_yaml_spec(p, name)
        return cls.from_pip_requirements(name or p.stem, p)

    @classmethod
    def load_from_directory(cls, path: str | os.PathLike) -> Environment:
        """Read a directory written by `save_to_directory`."""
        from .azureml import load_azureml_environment

        directory = Path(path)
        spec = directory / ENVIRONMENT_FILE
        if not spec.is_file():
            raise SpecError(f"{directory} has no {ENVIRONMENT_FILE}", where=str(directory),
                            fix="pass a directory written by Environment.save_to_directory")
        return load_azureml_environment(spec)

    def save_to_directory(self, path: str | os.PathLike, overwrite: bool = False) -> None:
        """Write environment.yaml (Azure ML CLI v2 fields + an `envbuild:` section), conda.yaml and the
        Dockerfile text; `load_from_directory` reads back an equal Environment with the same key."""
        from .azureml import save_environment

        save_environment(self, Path(path), overwrite=overwrite)

    def run(self, command, **options):
        """Run `command` in this environment's image, built first if needed (options: envbuild.runner.run)."""
        from .runner import run

        return run(self, command, **options)

    def build(self, **options):
        """Build this environment's image (or find it in the cache): `envbuild.api.build(self, **options)`."""
        from .api import build

        return build(self, **options)

    # -- values --------------------------------------------------------------------------------------------------
    def copy(self) -> Environment:
        return copy.deepcopy(self)

    def canonical(self) -> dict:
        """The canonical form: the JSON of keys.canonical_spec(self), what the key hashes."""
        from .keys import canonical_spec

        return canonical_spec(self).form

    @property
    def key(self) -> str:
        from .keys import canonical_spec

        return canonical_spec(self).key


ENVIRONMENT_FILE = "environment.yaml"
# Files people point at that hold a project's dependencies in another tool's format.
_PROJECT_FILES = {"pipfile", "setup.py", "setup.cfg", "pyproject.toml", "poetry.lock", "uv.lock", "pipfile.lock"}
CONDA_FILE = "conda.yaml"
# `docker://python:3.11` names an image where a spec file is expected (skopeo's transport notation).
DOCKER_IMAGE_PREFIX = "docker://"


def _load_curated(reference: str) -> Environment:
    try:
        from .catalog import load_curated
    except ImportError:
        raise SpecError(f"{reference}: curated environments are not available in this installation",
                        fix="use a spec file, or install an envbuild with envbuild.catalog") from None
    return load_curated(reference)


def _load_directory(directory: Path, name: str | None) -> Environment:
    if (directory / "conda-meta").is_dir():
        return Environment.from_conda_prefix(name or directory.name, directory)
    if (directory / ENVIRONMENT_FILE).is_file():
        return Environment.from_file(directory / ENVIRONMENT_FILE, name)
    if (directory / "Dockerfile").is_file():
        return Environment.from_build_context(name or directory.name, directory)
    # A project directory: the spec file it is known by.
    for file_name in ("environment.yml", "conda.yaml", "conda.yml", "requirements.txt"):
        if (directory / file_name).is_file():
            return Environment.from_file(directory / file_name, name)
    raise SpecError(f"{directory} is a directory with nothing envbuild can load", where=str(directory),
                    fix="pass a spec file, a conda prefix (with conda-meta/), a build context (with a Dockerfile), "
                        "a directory written by save_to_directory or one with environment.yml/requirements.txt")


def _load_yaml_spec(path: Path, name: str | None) -> Environment:
    """environment.yml, Azure ML environment YAML or conda-lock.yml, told apart by their fields."""
    from .azureml import AZUREML_FIELDS, load_azureml_environment

    if _looks_like_lock_file(path):
        return Environment.from_lock_file(name or path.stem, path)
    document = read_yaml(path)
    data = document.data
    if isinstance(data, dict):
        if "package" in data and "metadata" in data:
            return Environment.from_lock_file(name or path.stem, path)
        if "environment" in data and not set(data) & _CONDA_FILE_KEYS - {"name"}:
            from .azureml import load_inline_environment

            return load_inline_environment(document, name)
        if set(data) & AZUREML_FIELDS or "$schema" in data:
            return load_azureml_environment(path, name=name, document=document)
        if not set(data) & (_CONDA_FILE_KEYS - {"name"}) and set(data) - {"name"}:
            if data.get("type") == "environment" and "spec" in data:
                raise SpecError("this is an azureml-assets asset descriptor, not an environment", where=f"{path}:1",
                                fix=f"load the environment YAML it names (spec: {data['spec']}) once its "
                                    "{{placeholders}} are rendered")
            raise SpecError(f"not an environment spec: fields {', '.join(map(str, data))}", where=f"{path}:1",
                            fix="pass a conda environment.yml (channels/dependencies), an Azure ML environment "
                                "YAML (image/conda_file/build) or a conda-lock.yml")
    env = Environment(name=name or (data.get("name") if isinstance(data, dict) and data.get("name") else path.stem))
    load_conda_file(path, env, document=document)
    return env


# ---------------------------------------------------------------------------------------------------------------
# YAML with line numbers


@dataclass
class YamlDocument:
    """A parsed YAML file with its node tree, so that every value can be traced back to its line."""

    path: Path
    text: str
    data: object
    node: object

    def line(self, node) -> int:
        return node.start_mark.line + 1

    def where(self, node=None) -> str:
        return f"{self.path}:{self.line(node)}" if node is not None else str(self.path)

    def child(self, node, key: str):
        """The value node under `key` of a mapping node (None when absent)."""
        if node is None or not hasattr(node, "value") or not isinstance(node.value, list):
            return None
        for item in node.value:
            if isinstance(item, tuple) and getattr(item[0], "value", None) == key:
                return item[1]
        return None

    def key_node(self, node, key: str):
        for item in getattr(node, "value", []) or []:
            if isinstance(item, tuple) and getattr(item[0], "value", None) == key:
                return item[0]
        return None

    def scalar_text(self, node) -> str:
        """A scalar as written (`1.10` stays `1.10`, not the float 1.1; null is '')."""
        import yaml

        if isinstance(node, yaml.ScalarNode):
            return "" if node.tag.endswith(":null") else node.value
        raise SpecError("expected a single value here, not a list or mapping", where=self.where(node),
                        fix="write a plain value (quote it if needed)")

    def string_map(self, node, what: str) -> dict[str, str]:
        """A mapping of names to values, each as written (tags, variables)."""
        import yaml

        if node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
            return {}
        if not isinstance(node, yaml.MappingNode):
            raise SpecError(f"`{what}` must be a mapping", where=self.where(node),
                            fix=f"write `{what}:` with `NAME: value` lines")
        return {self.scalar_text(k): self.scalar_text(v) for k, v in node.value}


def read_yaml(path: Path) -> YamlDocument:
    import yaml

    text = read_text(path)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)  # libyaml when present: same nodes, faster
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        hint = " (a `{{placeholder}}` template must be rendered first)" if "{{" in text else ""
        raise SpecError(f"not valid YAML: {problem}{hint}", where=where, fix="fix the YAML syntax") from None
    finally:
        loader.dispose()
    return YamlDocument(path, text, data, node)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SpecError(f"{path} does not exist", where=str(path), fix="check the path") from None
    except UnicodeDecodeError:
        raise SpecError(f"{path} is not UTF-8 text", where=str(path), fix="save the file as UTF-8") from None
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror}", where=str(path), fix="check the path") from None


_PLACEHOLDER = re.compile(r"\{\{[^}]*\}\}")


def reject_placeholders(document: YamlDocument, node=None) -> None:
    """`{{asset.name}}`-style templates (azureml-assets, cookiecutter) are not specs until rendered."""
    node = document.node if node is None else node
    if node is None:
        return
    if isinstance(node.value, str):
        found = _PLACEHOLDER.search(node.value)
        if found:
            raise SpecError(f"unrendered template placeholder {found.group(0)}", where=document.where(node),
                            fix="render the template (replace every {{...}}) before loading it")
        return
    for item in node.value:
        for child in (item if isinstance(item, tuple) else (item,)):
            reject_placeholders(document, child)


# ---------------------------------------------------------------------------------------------------------------
# environment.yml


# name/prefix are metadata; platforms, category and pip-repositories are conda-lock's extensions.
_CONDA_FILE_KEYS = {"name", "channels", "dependencies", "variables", "prefix", "platforms", "category",
                    "pip-repositories"}


def load_conda_file(path: Path, env: Environment, document: YamlDocument | None = None) -> None:
    document = document or read_yaml(path)
    env.source_files.append(str(path))
    data = document.data
    if data is None:
        return
    if not isinstance(data, dict):
        raise SpecError("an environment file must be a YAML mapping", where=f"{path}:1",
                        fix="start with `channels:` / `dependencies:`")
    root = document.node
    from .azureml import AZUREML_FIELDS

    azure = sorted(set(data) & AZUREML_FIELDS)
    if azure:
        raise SpecError(f"field {azure[0]!r} belongs to an Azure ML environment YAML, not a conda environment file",
                        where=document.where(document.key_node(root, azure[0])),
                        fix="load the Azure ML environment YAML itself (it names this file as conda_file), or "
                            "keep only channels/dependencies/variables here")
    unknown = sorted(set(map(str, data)) - _CONDA_FILE_KEYS)
    if unknown:
        raise SpecError(f"unknown top-level field {unknown[0]!r}",
                        where=document.where(document.key_node(root, unknown[0])),
                        fix=f"use only {', '.join(sorted(_CONDA_FILE_KEYS))}")
    if data.get("prefix"):
        log.info("%s: `prefix: %s` ignored: the environment is installed inside the image", path, data["prefix"])
    platforms = _string_list(document, root, data, "platforms")
    if platforms:
        env.docker.platform = _pick_platform(platforms, env.docker.platform,
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
    return [str(v).strip() for v in value if v is not None and str(v).strip()]


_UNIDEP_SELECTOR = re.compile(r"^sel\((.+)\)$")


def _load_dependencies(document: YamlDocument, env: Environment) -> None:
    from .packages import canonical_conda_spec

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


# conda-lock's platform selectors (the tool that gives environment.yml selectors a meaning), per platform.
_SELECTOR_NAMES = {
    "linux-64": {"linux64", "unix", "linux"},
    "linux-aarch64": {"aarch64", "unix", "linux"},
    "linux-ppc64le": {"ppc64le", "unix", "linux"},
    "osx-64": {"osx64", "osx", "unix"},
    "osx-arm64": {"arm64", "osx", "unix"},
    "win-64": {"win", "win64"},
}


def _platform_names(platform: str) -> dict[str, bool]:
    """Every selector name, and whether it holds on `platform` (`# [linux64]`, `# [osx]`, `# [aarch64]`, ...)."""
    system = platform.partition("-")[0]
    true = _SELECTOR_NAMES.get(platform, {system, platform.replace("-", "")} | ({"unix"} if system != "win" else set()))
    known = set().union(*_SELECTOR_NAMES.values()) | true
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


def _load_pip_section(document: YamlDocument, node, lines, env: Environment) -> None:
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
    _add_requirements(env, collected)


def _add_requirements(env: Environment, lines: list[RequirementLine]) -> None:
    deps = env.python.conda_dependencies
    for req in lines:
        if req.option:
            deps.set_pip_option(req.option)
        elif req.text not in deps.pip_packages:
            deps.pip_packages.append(req.text)
            deps.origins[req.text] = req.origin


def _pick_platform(platforms: list[str], current: str, where: str) -> str:
    """Images are Linux: keep the current platform when listed, else the first Linux one listed."""
    listed = [str(p) for p in platforms]
    if current in listed:
        return current
    linux = [p for p in listed if p.startswith("linux-")]
    if not linux:
        raise SpecError(f"no Linux platform among {', '.join(listed)}", where=where,
                        fix="add linux-64 (or linux-aarch64) to platforms: envbuild builds Linux images")
    return linux[0]


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
# Options that do not change which packages are installed: the lock pins and hashes everything anyway.
_IGNORED_OPTIONS = {"--hash", "--use-feature", "--require-hashes", "--no-build-isolation", "--progress-bar",
                    "--no-cache-dir", "--disable-pip-version-check", "--upgrade", "-U", "--use-pep517",
                    "--no-use-pep517", "--upgrade-strategy"}


def parse_requirements_file(path: Path, *, seen: set[str], files: list[str]) -> list[RequirementLine]:
    resolved = str(path.resolve())
    if resolved in seen:
        raise SpecError(f"requirements include cycle: {path} is included again", where=str(path),
                        fix="remove the `-r` line that includes a file already being read")
    if not path.is_file():
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
            if not included.is_file():
                raise SpecError(f"included requirements file {value} does not exist", where=str(origin),
                                fix=f"check the path: it is read relative to {Path(origin.path).parent}")
            lines = parse_requirements_file(included, seen=seen, files=files)
            if flag in ("-c", "--constraint"):
                return [RequirementLine(None, f"--constraint {r.text}", r.origin) for r in lines if r.text]
            return lines
        if flag in ("-e", "--editable"):
            if not re.match(r"^(git|hg|svn|bzr)\+[a-z]+://", value):
                raise SpecError(f"editable requirement {value!r} cannot go into an image: only a VCS URL "
                                "(git+https://...) can be installed there", where=str(origin),
                                fix="build a wheel, or use a pinned VCS URL (`name @ git+https://...@<commit>`)")
            # An editable checkout of a VCS URL installs the same code as a regular install of it.
            log.info("%s: `%s` installed from the VCS URL, not in editable mode", origin, text)
            text = value
        elif flag in _INDEX_OPTIONS:
            return [RequirementLine(None, f"{_INDEX_OPTIONS[flag]} {value}".strip(), origin)]
        elif flag in _IGNORED_OPTIONS:
            return []
        else:
            raise SpecError(f"unknown pip option {flag!r}", where=str(origin),
                            fix="remove it, or use one of -r, -c, --index-url, --extra-index-url, --find-links, --pre")
    # Per-requirement hash options are checked by the lock's own hashes; the requirement itself stays.
    text = re.sub(r"\s--hash[=\s]\S+", "", text).strip()
    _validate_requirement(text, origin)
    return [RequirementLine(text, None, origin)]


def _validate_requirement(text: str, origin: Origin) -> None:
    from .packages import canonical_pip_requirement

    if re.match(r"^(\.{0,2}/|~|[A-Za-z]:\\)", text) or text.startswith("file:") or re.search(r"@\s*file:", text):
        raise SpecError(f"local path requirement {text!r} is not reproducible in an image", where=str(origin),
                        fix="publish it to an index or reference a pinned URL with a name: `name @ https://...`")
    canonical_pip_requirement(text, origin)


# ---------------------------------------------------------------------------------------------------------------
# an existing conda environment


def load_conda_prefix(prefix: Path, env: Environment) -> None:
    """Pin every package of `prefix` (conda-meta/*.json) to its channel, version and build; pip-installed
    distributions in site-packages become `name==version` pip requirements."""
    meta = prefix / "conda-meta"
    records = sorted(meta.glob("*.json")) if meta.is_dir() else []
    if not records:
        raise SpecError(f"{prefix} is not a conda environment (no conda-meta/*.json)", where=str(prefix),
                        fix="pass the environment's prefix directory (e.g. ~/miniconda3/envs/NAME)")
    deps = env.python.conda_dependencies
    subdirs: dict[str, int] = {}
    channels = set()
    for record_path in records:
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            name, version, build = record["name"], record["version"], record["build"]
        except (OSError, ValueError, KeyError) as exc:
            raise SpecError(f"unreadable package record: {exc}", where=str(record_path),
                            fix="repair or remove the record (conda-meta/*.json)") from None
        subdir = record.get("subdir") or ""
        subdirs[subdir] = subdirs.get(subdir, 0) + 1
        channel = _record_channel(record, subdir)
        spec = f"{name} =={version} {build}"
        if channel:
            channels.add(channel)
            spec = f"{channel}::{spec}"
        deps.add_conda_package(spec)
        deps.origins[spec] = Origin(str(record_path))
    for channel in sorted(channels):
        deps.add_channel(channel)
    native = sorted((count, s) for s, count in subdirs.items() if s and s != "noarch")
    if native:
        env.docker.platform = native[-1][1]
    for dist_info in sorted(prefix.glob("lib/python*/site-packages/*.dist-info")):
        installer = dist_info / "INSTALLER"
        if installer.is_file() and installer.read_text().strip() in ("pip", "uv"):
            distribution, _, version = dist_info.name[: -len(".dist-info")].partition("-")
            deps.add_pip_package(f"{distribution}=={version}")
    env.source_files.append(str(meta))


def find_conda_environment(name_or_prefix: str) -> Path:
    """The prefix of a conda environment named `name_or_prefix`, searched where conda keeps environments."""
    given = Path(name_or_prefix).expanduser()
    if (given / "conda-meta").is_dir():
        return given
    home = Path.home()
    listed = os.environ.get("CONDA_ENVS_PATH", os.environ.get("CONDA_ENVS_DIRS", ""))
    roots = [Path(p) for p in listed.split(os.pathsep) if p]
    for variable in ("CONDA_ROOT", "MAMBA_ROOT_PREFIX", "CONDA_PREFIX"):
        if os.environ.get(variable):
            roots.append(Path(os.environ[variable]) / "envs")
    roots.append(home / ".conda" / "envs")
    roots += [home / d / "envs" for d in ("miniconda3", "anaconda3", "miniforge3", "mambaforge")]
    roots.append(Path("/opt/conda/envs"))
    candidates = [root / name_or_prefix for root in roots]
    environments_txt = home / ".conda" / "environments.txt"
    if environments_txt.is_file():
        candidates += [Path(line.strip()) for line in environments_txt.read_text().splitlines()
                       if line.strip() and Path(line.strip()).name == name_or_prefix]
    for candidate in candidates:
        if (candidate / "conda-meta").is_dir():
            return candidate
    raise SpecError(f"no conda environment named {name_or_prefix!r}",
                    fix="pass its prefix directory (`conda env list` shows it), or set CONDA_ENVS_PATH")


def _record_channel(record: dict, subdir: str) -> str | None:
    from .channels import normalize_channel

    channel = (record.get("channel") or "").rstrip("/")
    if not channel and record.get("url"):
        channel = record["url"].rsplit("/", 2)[0]
    if subdir and channel.endswith("/" + subdir):
        channel = channel[: -len(subdir) - 1]
    if channel in ("", "pypi", "<unknown>", "@"):
        return None
    return normalize_channel(channel)


# ---------------------------------------------------------------------------------------------------------------
# Dockerfiles


def _check_dockerfile(path: Path, text: str) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        found = _PLACEHOLDER.search(line)
        if found:
            raise SpecError(f"unrendered template placeholder {found.group(0)} in a Dockerfile",
                            where=f"{path}:{number}", fix="render the template (replace every {{...}}) first")
    if not re.search(r"^\s*FROM\s", text, re.IGNORECASE | re.MULTILINE):
        raise SpecError("a Dockerfile needs a FROM instruction", where=str(path), fix="start it with `FROM <image>`")


def _context_files(root: Path, but: Path) -> list[str]:
    """Every file a build sees of its context (.dockerignore applied): the cache-hit memo must see a change in
    any of them."""
    from .keys import context_entries

    files = (root / relative for relative in sorted(context_entries(root, but.relative_to(root).as_posix())))
    return [str(p) for p in files if p.is_file() and p != but]


def _copies_local_files(text: str) -> bool:
    for line in text.splitlines():
        words = line.split()
        if words and words[0].upper() in ("COPY", "ADD") and not any(w.startswith("--from") for w in words[1:]):
            return True
    return False


# ---------------------------------------------------------------------------------------------------------------
# conda-lock files


def _looks_like_lock_file(path: Path) -> bool:
    """conda-lock files are large: tell them by name or by conda-lock's header, before parsing."""
    if path.name.lower().startswith("conda-lock") or ".conda-lock." in path.name.lower():
        return True
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(2048)
    except OSError:
        return False
    return "generated by conda-lock" in head


def _parsed_lock(path: Path):
    """A lock file's YAML, parsed once per content (the loader and the key both need it)."""
    stat = path.stat()
    return _parse_lock_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _parse_lock_cached(path: str, size: int, mtime_ns: int):
    return read_yaml(Path(path)).data


def _lock_metadata(path: Path) -> dict:
    data = _parsed_lock(path)
    packages = data.get("package") if isinstance(data, dict) else None
    if not (isinstance(packages, list) and isinstance(data.get("metadata"), dict)):
        raise SpecError("not a conda-lock file (no `metadata` and `package` list)", where=str(path),
                        fix="pass a conda-lock.yml written by conda-lock or `envbuild lock`")
    return data["metadata"]


def read_lock_file(path: Path, platform: str) -> list[list[str]]:
    """[manager, name, url, hash, category] of every package a conda-lock file lists for `platform`, sorted."""
    data = _parsed_lock(path)
    packages = data.get("package") if isinstance(data, dict) else None
    if not isinstance(packages, list):
        raise SpecError("not a conda-lock file (no `package` list)", where=str(path),
                        fix="pass a conda-lock.yml written by conda-lock or `envbuild lock`")
    out = []
    for package in packages:
        if not isinstance(package, dict) or package.get("platform", platform) != platform:
            continue
        hashes = package.get("hash") or {}
        content_hash = (hashes.get("sha256") or hashes.get("md5") or "") if isinstance(hashes, dict) else str(hashes)
        # The category (main, dev, extras) decides whether an install takes the package: it stays in.
        out.append([str(package.get("manager", "conda")), str(package.get("name")), str(package.get("url")),
                    str(content_hash), str(package.get("category", "main"))])
    if not out:
        raise SpecError(f"the lock file has no packages for {platform}", where=str(path),
                        fix=f"lock for {platform} (`conda-lock -p {platform}` or `envbuild lock -p {platform}`)")
    return sorted(out)
