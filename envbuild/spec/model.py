"""The environment model users write: `Environment` and its sections, mutable, as in the Azure ML SDK.

An `Environment` mirrors what Azure ML calls an environment: Python packages (conda and pip), environment
variables and Docker settings, plus metadata (name, version, description, tags) that never changes what gets
built. Its constructors (`from_conda_specification`, `from_file`, ...) hand the reading to one loader module per
input form, which fills the Environment it is given and records where every dependency came from (file and
line), so that later steps can point at the exact line. From here on the pipeline works on values made from it
(envbuild.keys); only `build`, `run` and `save_to_directory` reach further up.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpecError
from ..lockfile import lock_metadata, metadata_where
from .azureml import ENVIRONMENT_FILE, load_azureml_environment, save_environment
from .azureml_v1 import is_v1_directory, load_v1_directory, save_v1_directory
from .conda_file import load_conda_file, pick_platform
from .container_registry import ContainerRegistry
from .dispatch import load_file
from .dockerfile import (
    check_build_context,
    read_dockerfile,
    start_from_build_context,
    start_from_dockerfile,
)
from .prefix import find_conda_environment, load_conda_prefix
from .requirements import add_requirements, parse_requirements_file
from .sdk_v1 import CondaDependenciesV1, EnvironmentV1, image_details, move_labels
from .source import Origin, is_file


@dataclass
class CondaDependencies(CondaDependenciesV1):
    """Conda channels and packages, pip packages and pip options (the content of an environment.yml); v1's other
    members (as_dict, save, set_pip_requirements, ...) come from sdk_v1.CondaDependenciesV1."""

    channels: list[str] = field(default_factory=list)
    conda_packages: list[str] = field(default_factory=list)
    pip_packages: list[str] = field(default_factory=list)
    pip_options: list[str] = field(default_factory=list)
    origins: dict[str, Origin] = field(default_factory=dict, compare=False, repr=False)
    # A requirement's `--hash` pins (`sha256:HEX`), by the requirement as written: keyed and checked on the lock.
    pip_hashes: dict[str, list[str]] = field(default_factory=dict)

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

    def add_private_pip_wheel(self, path: str | os.PathLike) -> str:
        """Store the wheel at `path` by content in the envbuild home (envbuild.wheels) and add it as a pip
        package; returns its requirement (`name @ file://...`). The build installs it from a mount: in no layer."""
        from ..wheels import store_wheel

        requirement = store_wheel(path)
        self.add_pip_package(requirement)
        return requirement

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
    # Where a private base image is pulled from, with its credentials (spec.container_registry).
    base_image_registry: ContainerRegistry = field(default_factory=ContainerRegistry)
    # `docker run` options of `envbuild run`/`shell`: kept with the environment, not part of the image (not keyed).
    shm_size: str | None = None
    arguments: list[str] = field(default_factory=list)

    # The Azure ML SDK's spellings.
    @property
    def base_dockerfile_is_path(self) -> bool:
        """Azure ML takes a Dockerfile's text or a path to it: one line naming an existing file is a path."""
        value = self.base_dockerfile
        return bool(value) and "\n" not in value and is_file(Path(value))

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

    def run_options(self) -> dict:
        """The `docker run` options `envbuild run`/`shell` apply (runner.with_run_options): not keyed, since they
        change how a container runs, not the image."""
        return {"shm_size": self.shm_size, "arguments": list(self.arguments)} if self.shm_size or self.arguments \
            else {}

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
        if name not in self.__dataclass_fields__ and not isinstance(getattr(type(self), name, None), property):
            raise SpecError(f"docker has no attribute {name!r}",
                            fix=f"use one of {', '.join(sorted(self.__dataclass_fields__))}")
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
class Environment(EnvironmentV1):
    """A named environment definition. Only `python`, `docker`, `environment_variables` and `lock_file` reach
    the key. v1's clone, build_local and from_docker_build_context come from sdk_v1.EnvironmentV1."""

    name: str = "unnamed"
    version: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    python: PythonSection = field(default_factory=PythonSection)
    docker: DockerSection = field(default_factory=DockerSection)
    environment_variables: dict[str, str] = field(default_factory=dict)
    # A conda-lock.yml to install as is (no solve); its packages' urls and hashes enter the key.
    lock_file: str | None = None
    # The categories of lock_file to install: main, and the extras chosen (conda-lock's --dev / --extras NAME).
    lock_categories: tuple[str, ...] = ("main",)
    # Azure ML's serving routes (liveness/readiness/scoring: path and port): kept for Azure, not built.
    inference_config: dict | None = None
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
        add_requirements(env, parse_requirements_file(Path(file_path), seen=set(), files=env.source_files))
        return env

    @classmethod
    def from_azureml_yaml(cls, file_path: str | os.PathLike, name: str | None = None) -> Environment:
        env = cls()
        load_azureml_environment(Path(file_path), env, name=name)
        return env

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
        text = read_dockerfile(path)
        env = cls._with_packages(name, conda_specification, pip_requirements)
        start_from_dockerfile(env, path, text)
        return env

    @classmethod
    def from_build_context(cls, name: str, directory: str | os.PathLike, dockerfile_path: str = "Dockerfile",
                           conda_specification=None, pip_requirements=None) -> Environment:
        root = Path(directory)
        check_build_context(root, dockerfile_path)
        env = cls._with_packages(name, conda_specification, pip_requirements)
        start_from_build_context(env, root, dockerfile_path)
        return env

    @classmethod
    def from_lock_file(cls, name: str, path: str | os.PathLike) -> Environment:
        """A conda-lock.yml installed as it is: the resolver skips the solve."""
        env = cls(name=name)
        lock_path = Path(path).resolve()
        metadata = lock_metadata(lock_path)
        env.docker.platform = pick_platform(metadata["platforms"], env.docker.platform,
                                            metadata_where(lock_path, "platforms"))
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
            add_requirements(env, parse_requirements_file(Path(pip_requirements), seen=set(), files=env.source_files))
        env.python.user_managed_dependencies = env.python.conda_dependencies.is_empty
        return env

    @classmethod
    def from_file(cls, path: str | os.PathLike, name: str | None = None) -> Environment:
        """Load any supported spec file or directory, choosing the loader by name and content (envbuild.spec.dispatch).

        References that are not files (`curated:NAME`, `docker://IMAGE`, a catalog `NAME:VERSION`) are resolved by
        envbuild.references, above the model."""
        return load_file(cls, path, name)

    @classmethod
    def load_from_directory(cls, path: str | os.PathLike) -> Environment:
        """Read a directory written by `save_to_directory` (either format), or by azureml-core's (SDK v1)."""
        directory = Path(path)
        env = cls()
        if is_v1_directory(directory):
            load_v1_directory(directory, env)
            return env
        spec = directory / ENVIRONMENT_FILE
        if not spec.is_file():
            raise SpecError(f"{directory} has no {ENVIRONMENT_FILE}", where=str(directory),
                            fix="pass a directory written by Environment.save_to_directory")
        load_azureml_environment(spec, env)
        return env

    def save_to_directory(self, path: str | os.PathLike, overwrite: bool = False, format: str = "v2") -> None:
        """Write the files Azure ML loads, and envbuild.yaml for what it has no field for: `v2` environment.yaml +
        conda.yaml (+ Dockerfile) for azure-ai-ml, or `v1` azureml_environment.json + conda_dependencies.yml
        (+ BaseDockerfile) for azureml-core. `load_from_directory` reads back an equal Environment."""
        savers = {"v2": save_environment, "v1": save_v1_directory}
        if format not in savers:
            raise SpecError(f"unknown format {format!r}", fix="pass format='v2' (azure-ai-ml) or 'v1' (azureml-core)")
        savers[format](self, Path(path), overwrite=overwrite)

    @staticmethod
    def label(workspace, name: str, version, labels) -> None:
        """SDK v1: label version `version` of the catalog environment `name`; `workspace` is the envbuild home (None:
        the default). Each label becomes the tag `label:LABEL` on that version and leaves the others."""
        from ..catalog import Catalog

        with Catalog(workspace) as catalog:
            move_labels(catalog, name, version, labels)

    def get_image_details(self, workspace=None) -> dict:
        """SDK v1: the image this environment builds to (its name, whether the cache has it, its Dockerfile);
        `workspace` is the envbuild home. Locks and renders, never builds."""
        from .. import config
        from ..api import render
        from ..cache import Index
        from ..keys import tag_of
        from ..registry import configured
        from ..renderer import IMAGE_REPOSITORY

        plan = render(self, cache_dir=workspace)
        with Index(config.home(workspace)) as index:
            entry = index.get(plan.key)
        shared = configured(None)
        return image_details(self, plan, entry, f"{IMAGE_REPOSITORY}:{tag_of(plan.key)}",
                             shared.location if shared else None)

    def add_private_pip_wheel(self, path: str | os.PathLike) -> str:
        """A private wheel for this environment: stored by content, installed from a build mount
        (CondaDependencies.add_private_pip_wheel). Returns its requirement."""
        return self.python.conda_dependencies.add_private_pip_wheel(path)

    def run(self, command, **options):
        """Run `command` in this environment's image, built first if needed (options: envbuild.runner.run)."""
        from ..runner import run

        return run(self, command, **options)

    def build(self, **options):
        """Build this environment's image (or find it in the cache): `envbuild.api.build(self, **options)`."""
        from ..api import build

        return build(self, **options)

    # -- the catalog (Azure ML's workspace environments; `catalog_url` default: $ENVBUILD_CATALOG, else the home's)
    def register(self, *, home=None, catalog_url: str | None = None) -> Environment:
        """Register this definition in the catalog; the registered version (`env.register(ws)` in the SDK)."""
        from ..catalog.store import Catalog

        with Catalog(home, catalog_url) as catalog:
            return catalog.get(self.name, catalog.register(self))

    @classmethod
    def get(cls, name: str, version: str | None = None, label: str | None = "latest", *, home=None,
            catalog_url: str | None = None) -> Environment:
        """A registered version: `version`, else the one `label` names (only "latest" exists in envbuild)."""
        from ..catalog.store import Catalog

        if version is None and label not in (None, "latest"):
            raise SpecError(f"unknown label {label!r}", fix="use label='latest' or give a version")
        with Catalog(home, catalog_url) as catalog:
            return catalog.get(name, version)

    @classmethod
    def list(cls, *, home=None, catalog_url: str | None = None) -> dict[str, Environment]:
        """The latest version of every registered environment, by name (the SDK's `Environment.list(ws)`)."""
        from ..catalog.store import Catalog

        with Catalog(home, catalog_url) as catalog:
            return {entry.name: catalog.environment(entry) for entry in catalog.list()}

    # -- values --------------------------------------------------------------------------------------------------
    def copy(self) -> Environment:
        return copy.deepcopy(self)

    def canonical(self) -> dict:
        """The canonical form: the JSON of keys.canonical_spec(self), what the key hashes."""
        from ..keys import canonical_spec

        return canonical_spec(self).form

    @property
    def key(self) -> str:
        from ..keys import canonical_spec

        return canonical_spec(self).key


def _conda_name(spec: str) -> str:
    spec = spec.split("::")[-1].strip()
    return re.split(r"[\s=<>!~\[]", spec, maxsplit=1)[0].lower()


def _pip_name(requirement: str) -> str:
    head = re.split(r"[\s=<>!~\[;@]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", head).lower()
