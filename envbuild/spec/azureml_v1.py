"""Azure ML SDK v1 environment directories: what azureml-core's `Environment.save_to_directory` writes, both ways.

Such a directory holds `azureml_environment.json` (the environment's definition: name, version, variables, the
python and docker sections, and sections envbuild does not build: spark, databricks, r), `conda_dependencies.yml`
(a conda environment file) and, for a Dockerfile given as text, `BaseDockerfile`. `load_v1_directory` reads all
three into an Environment; `save_v1_directory` writes them in the shape azureml-core reads back with
`Environment.load_from_directory`, so that v1 users can take an environment back. What v1 has no field for
(GPU/CUDA, a lock file, envbuild's default base) goes into envbuild.yaml beside, as in the v2 format
(envbuild.spec.azureml), and is named in one warning.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..errors import SpecError
from ..platforms import ALIASES, PLATFORMS
from .azureml import AZURE_DEFAULT_IMAGES, relative_to_directory
from .conda_file import load_conda_file
from .dockerfile import check_build_context, start_from_build_context
from .settings import SETTINGS_FILE, apply_settings, read_settings, settings_of
from .source import read_text

log = logging.getLogger(__name__)

DEFINITION_FILE = "azureml_environment.json"
CONDA_DEPENDENCIES_FILE = "conda_dependencies.yml"
BASE_DOCKERFILE_FILE = "BaseDockerfile"
# Settings envbuild.yaml keeps beside a v1 definition: those v1 has no field of its own for.
_V1_SETTINGS = ("gpu", "cuda")


def is_v1_directory(path: Path) -> bool:
    return (path / DEFINITION_FILE).is_file()


def load_v1_directory(directory: Path, env, name: str | None = None) -> None:
    """Fill the empty Environment `env` from the v1 directory `directory`."""
    definition_path = directory / DEFINITION_FILE
    try:
        definition = json.loads(read_text(definition_path))
    except json.JSONDecodeError as exc:
        raise SpecError(f"not valid JSON: {exc.msg}", where=f"{definition_path}:{exc.lineno}",
                        fix="fix the JSON (azureml-core's Environment.save_to_directory writes this file)") from None
    if not isinstance(definition, dict):
        raise SpecError("an azureml_environment.json must hold a JSON object", where=str(definition_path),
                        fix="save it again with azureml-core's Environment.save_to_directory")
    python, docker = definition.get("python") or {}, definition.get("docker") or {}
    env.name = name or definition.get("name") or directory.name
    env.version = None if definition.get("version") is None else str(definition["version"])
    env.source_files.append(str(definition_path))
    conda_path = directory / CONDA_DEPENDENCIES_FILE
    if not conda_path.is_file() and python.get("condaDependenciesFile"):
        conda_path = directory / str(python["condaDependenciesFile"])
    if conda_path.is_file():
        load_conda_file(conda_path, env)
    env.environment_variables.update({str(k): "" if v is None else str(v)
                                      for k, v in (definition.get("environmentVariables") or {}).items()})
    env.python.user_managed_dependencies = bool(python.get("userManagedDependencies", False))
    env.python.interpreter_path = str(python.get("interpreterPath") or "python")
    _load_docker(directory, docker, env)
    ignored = [section for section in ("spark", "databricks", "r") if _has_content(definition.get(section))]
    if ignored:
        log.warning("%s: the %s section%s not built by envbuild", definition_path, ", ".join(ignored),
                    " is" if len(ignored) == 1 else "s are")
    found = read_settings(directory / SETTINGS_FILE)
    if found:
        settings, document = found
        env.source_files.append(str(document.path))
        apply_settings(document, settings, env)
        if settings.get("default_base"):
            env.docker.base_image = None


def _load_docker(directory: Path, docker: dict, env) -> None:
    architecture = str((docker.get("platform") or {}).get("architecture") or "amd64").lower()
    # v1's platform.architecture is Docker's (amd64, arm64): the platform table names it (v1 builds Linux only).
    env.docker.platform = ALIASES.get(f"linux/{architecture}", env.docker.platform)
    env.docker.gpu = bool(docker.get("gpuSupport", False))
    dockerfile = directory / BASE_DOCKERFILE_FILE
    context = docker.get("buildContext") or {}
    if dockerfile.is_file() or docker.get("baseDockerfile"):
        env.docker.base_dockerfile = read_text(dockerfile) if dockerfile.is_file() else str(docker["baseDockerfile"])
        env.source_files.append(str(dockerfile))
    elif context.get("location"):
        env.docker.build_context = None
        _load_build_context(directory, context, env)
    elif docker.get("baseImage"):
        image = str(docker["baseImage"])
        registry = (docker.get("baseImageRegistry") or {}).get("address")
        if registry and not image.startswith(f"{registry}/"):
            image = f"{str(registry).rstrip('/')}/{image}"
        env.docker.base_image = image


def _load_build_context(directory: Path, context: dict, env) -> None:
    from .. import config
    from ..buildcontext import checkout

    location, kind = str(context["location"]), str(context.get("locationType") or "")
    if kind != "git":
        raise SpecError(f"the build context is in a storage account ({location})",
                        where=str(directory / DEFINITION_FILE),
                        fix="download it and load it as a directory with a Dockerfile (or use a git repository)")
    root = checkout(location, config.home())
    dockerfile_path = str(context.get("dockerfilePath") or "Dockerfile")
    check_build_context(root, dockerfile_path)
    start_from_build_context(env, root, dockerfile_path)


def _has_content(section) -> bool:
    if isinstance(section, dict):
        return any(_has_content(v) for k, v in section.items() if k != "precachePackages")
    return bool(section)


def save_v1_directory(env, directory: Path, overwrite: bool = False) -> None:
    """Write `env` as azureml-core writes an environment: azureml_environment.json, conda_dependencies.yml and
    BaseDockerfile (plus envbuild.yaml for what v1 has no field for)."""
    import yaml

    if directory.exists() and any(directory.iterdir()) and not overwrite:
        raise SpecError(f"{directory} is not empty", where=str(directory),
                        fix="pick an empty directory or pass overwrite=True")
    docker, deps = env.docker, env.python.conda_dependencies
    build_context = None
    if docker.build_context:
        from ..buildcontext import remote_of

        location = remote_of(docker.build_context)
        if location is None:
            raise SpecError("SDK v1 has no local build contexts (only git repositories and storage accounts)",
                            where=docker.build_context, fix="save it in the v2 format (the default), or build "
                                                            "from a git repository")
        build_context = {"locationType": "git", "location": location, "dockerfilePath": docker.dockerfile_path}
    directory.mkdir(parents=True, exist_ok=True)
    for stale in (BASE_DOCKERFILE_FILE, SETTINGS_FILE):
        (directory / stale).unlink(missing_ok=True)
    if docker.base_dockerfile:
        (directory / BASE_DOCKERFILE_FILE).write_text(docker.base_dockerfile_text(), encoding="utf-8")
    default_base = not (docker.base_image or docker.base_dockerfile or docker.build_context)
    known = PLATFORMS.get(docker.platform)
    architecture = known.docker.partition("/")[2] if known and known.docker else "amd64"
    definition = {
        "name": env.name, "version": env.version,
        "environmentVariables": {str(k): str(v) for k, v in env.environment_variables.items()},
        "python": {"userManagedDependencies": env.python.user_managed_dependencies,
                   "interpreterPath": env.python.interpreter_path, "condaDependenciesFile": None,
                   "baseCondaEnvironment": None},
        "docker": {"enabled": False,
                   "baseImage": AZURE_DEFAULT_IMAGES[bool(docker.gpu)] if default_base else docker.base_image,
                   "buildContext": build_context, "sharedVolumes": True, "shmSize": "2g", "arguments": [],
                   "baseImageRegistry": {"address": None, "username": None, "password": None,
                                         "registryIdentity": None},
                   "platform": {"os": "Linux", "architecture": architecture}},
        "spark": {"repositories": [], "packages": [], "precachePackages": True},
        "databricks": {"mavenLibraries": [], "pypiLibraries": [], "rcranLibraries": [], "jarLibraries": [],
                       "eggLibraries": []},
        "r": None, "inferencingStackVersion": None, "assetId": None,
    }
    (directory / DEFINITION_FILE).write_text(json.dumps(definition, indent=4), encoding="utf-8")
    pip = list(deps.pip_options) + list(deps.pip_packages)
    conda = {"name": "project_environment",
             "dependencies": list(deps.conda_packages) + ([{"pip": pip}] if pip else []),
             "channels": list(deps.channels)}
    (directory / CONDA_DEPENDENCIES_FILE).write_text(yaml.safe_dump(conda, sort_keys=False), encoding="utf-8")
    settings = {k: v for k, v in settings_of(env).items() if k in _V1_SETTINGS and v}
    if default_base:
        settings["default_base"] = True
    if env.lock_file:
        settings["lock_file"] = relative_to_directory(env.lock_file, directory)
    if settings:
        (directory / SETTINGS_FILE).write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    lost = [name for name, present in (("the GPU/CUDA request", docker.gpu or docker.cuda),
                                        ("the lock file (v1 solves conda_dependencies.yml again)", env.lock_file),
                                        (f"envbuild's default base (v1 builds on {AZURE_DEFAULT_IMAGES[False]})",
                                         default_base)) if present]
    if lost:
        log.warning("%s: Azure ML (SDK v1) will not see %s (envbuild keeps them in %s)", directory, "; ".join(lost),
                    SETTINGS_FILE)
