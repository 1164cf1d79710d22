"""Azure ML CLI v2 environment YAML: load it with the schema's own rules, and save environments that Azure ML loads.

The CLI v2 schema (https://azuremlschemas.azureedge.net/latest/environment.schema.json) describes an environment
as metadata (name, version, description, tags) plus exactly one way to start the image: `image` (optionally with a
`conda_file` installed on top) or `build: {path, dockerfile_path}`, and an optional `inference_config`. Paths are
relative to the YAML file; `build.path` may also be a git URL (envbuild.buildcontext checks it out).

`save_environment` writes what `Environment.save_to_directory` promises, and azure-ai-ml's `load_environment`
takes it as it is: environment.yaml with only schema fields, conda.yaml (pip index options in its `pip:` list, as
pip reads them there), a Dockerfile when the environment starts from Dockerfile text, and **envbuild.yaml**, a
file of its own beside them for what the schema has no field for (`SETTINGS` below, plus the base Dockerfile, a
lock file and pip options pip cannot read in a conda file). Azure ML never reads envbuild.yaml; envbuild reads it
whenever it loads an environment YAML with one beside it (and reads the `envbuild:` section that earlier releases
wrote inside environment.yaml the same way). What Azure ML cannot carry over is named in one warning when saving.

Every environment.yaml names an image or a build: an environment on envbuild's default base is saved with the
image Azure ML's v1 SDK defaults to (`AZURE_DEFAULT_IMAGES`) and `default_base: true` in envbuild.yaml, so Azure
builds on its default while envbuild keeps its own. A build context or lock file outside the directory is saved as
a path relative to it (the directory moves together with them); a git checkout as its URL pinned to the commit.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import SpecError
from .conda_file import AZUREML_FIELDS, load_conda_file
from .dockerfile import check_build_context, start_from_build_context
from .requirements import _INDEX_OPTIONS  # the options pip reads in a requirements line (and a conda `pip:` list)
from .settings import SETTINGS_FILE, apply_settings, checked_settings, settings_of
from .source import YamlDocument, is_file, read_yaml, reject_placeholders

log = logging.getLogger(__name__)

# The files of a directory written by `Environment.save_to_directory`.
ENVIRONMENT_FILE = "environment.yaml"
CONDA_FILE = "conda.yaml"
_DOCKERFILE_FILE = "Dockerfile"

SCHEMA_URL = "https://azuremlschemas.azureedge.net/latest/environment.schema.json"
_METADATA = {"$schema", "name", "version", "description", "tags", "properties", "datastore", "intellectual_property",
             "stage"}
_EXTENSION = "envbuild"  # the section earlier releases wrote inside environment.yaml
# What Azure ML builds on when an environment names no base (azureml-core's DEFAULT_CPU_IMAGE / DEFAULT_GPU_IMAGE).
AZURE_DEFAULT_IMAGES = {False: "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest",
                        True: "mcr.microsoft.com/azureml/openmpi4.1.0-cuda11.8-cudnn8-ubuntu22.04:latest"}


def load_azureml_environment(path: Path, env, name: str | None = None, document: YamlDocument | None = None,
                             inline: bool = False) -> None:
    """Fill the empty Environment `env` from the Azure ML environment YAML at `path` (or its parsed `document`;
    `inline`: the `environment:` of a job, which has no envbuild.yaml beside it)."""
    document = document or read_yaml(path)
    data, root = document.data, document.node
    if not isinstance(data, dict):
        raise SpecError("an Azure ML environment must be a YAML mapping", where=f"{path}:1",
                        fix="start with `name:` and `image:` (see the CLI v2 environment schema)")
    reject_placeholders(document)
    pasted = sorted(set(data) & {"channels", "dependencies"})
    if pasted:
        raise SpecError(f"`{pasted[0]}` is a conda environment field: this looks like a conda file pasted in place "
                        "of the environment YAML", where=document.where(document.key_node(root, pasted[0])),
                        fix="move channels/dependencies to their own file (conda.yaml) and point at it with "
                            "`conda_file: conda.yaml` next to `image:`")
    unknown = sorted(set(map(str, data)) - AZUREML_FIELDS - _METADATA - {_EXTENSION})
    if unknown:
        raise SpecError(f"unknown field {unknown[0]!r} in an Azure ML environment",
                        where=document.where(document.key_node(root, unknown[0])),
                        fix=f"use only {', '.join(sorted(AZUREML_FIELDS | _METADATA))}")
    settings, settings_document = _settings(document, inline)
    _check_shape(document, data, saved_by_envbuild=settings is not None)
    settings = settings or {}

    def text(key: str) -> str | None:
        return document.scalar_text(document.child(root, key)) if key in data else None

    env.name = name or text("name") or path.stem
    env.source_files.append(str(path))
    if settings_document.path != document.path:  # envbuild.yaml: the cache-hit memo must see its edits too
        env.source_files.append(str(settings_document.path))
    env.version = text("version") or None
    env.description = text("description")
    env.tags = document.string_map(document.child(root, "tags"), "tags")
    if data.get("inference_config") is not None:
        env.inference_config = _inference_config(document)
        # Kept for Azure ML (saved back), but nothing of it is built: say so once, at its line.
        log.warning("%s: `inference_config` is kept for Azure ML but not used: it holds the routes of an Azure ML "
                    "inference server, and envbuild images start no server (`envbuild run` runs the command you "
                    "give)", document.where(document.key_node(root, "inference_config")))
    if data.get("image") and not settings.get("default_base"):
        env.docker.base_image = text("image")
    if data.get("build") and not (settings.get("base_dockerfile") or settings.get("base_dockerfile_file")):
        _load_build(document, env)
    if data.get("conda_file") is not None:
        _load_conda_file(document, env)
    env.python.user_managed_dependencies = env.python.conda_dependencies.is_empty and not settings.get("lock_file")
    if settings:
        apply_settings(settings_document, settings, env)


def load_inline_environment(document: YamlDocument, env, name: str | None = None) -> None:
    """The `environment:` of an Azure ML job, component or deployment YAML (paths relative to that file)."""
    value, node = document.data["environment"], document.child(document.node, "environment")
    if isinstance(value, str):
        raise SpecError(f"the environment is a reference to a registered Azure ML environment ({value})",
                        where=document.where(node),
                        fix="pass that environment's own YAML (or its image with docker://)")
    if not isinstance(value, dict):
        raise SpecError("`environment` must be a mapping (image, conda_file, build) or a reference",
                        where=document.where(node), fix="write `environment:` with `image:` and `conda_file:` under it")
    inline = YamlDocument(document.path, document.text, value, node)
    name = name or value.get("name") or str(document.data.get("name") or "")
    load_azureml_environment(document.path, env, name=name, document=inline, inline=True)


def _settings(document: YamlDocument, inline: bool) -> tuple[dict | None, YamlDocument]:
    """envbuild's settings for this environment: envbuild.yaml beside it, or an earlier release's `envbuild:`."""
    beside = document.path.parent / SETTINGS_FILE
    if _EXTENSION in document.data:
        settings_document = YamlDocument(document.path, document.text, document.data[_EXTENSION],
                                         document.child(document.node, _EXTENSION))
    elif not inline and beside.is_file():
        settings_document = read_yaml(beside)
    else:
        return None, document
    return checked_settings(settings_document)


def _check_shape(document: YamlDocument, data: dict, saved_by_envbuild: bool) -> None:
    """The schema's rules: one of image/build, conda_file only on an image, Linux only. Directories envbuild saved
    may hold a conda file on a build (envbuild adds it on top; the saving warned that Azure ML will not)."""
    root = document.node

    def where(key: str) -> str:
        return document.where(document.child(root, key) or root)

    image = data.get("image")
    if image is not None and not isinstance(image, str):
        raise SpecError("`image` must be an image reference such as mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04",
                        where=where("image"), fix="write `image: REPOSITORY:TAG` (a build recipe for an image is "
                                                  "not an environment: use `build: {path: DIR}` instead)")
    if isinstance(image, str):
        from ..limits import check_image_reference

        check_image_reference(image, where("image"))
    if image and data.get("build"):
        raise SpecError("an environment has either `image` or `build`, not both", where=where("build"),
                        fix="remove `image:` to build from the Dockerfile, or remove `build:` to use the image")
    if data.get("conda_file") is not None and not image and not saved_by_envbuild:
        raise SpecError("`conda_file` needs an `image` to install into (Azure ML: the Docker section is missing: "
                        "provide a base image or Dockerfile)", where=where("conda_file"),
                        fix="add `image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest` (or any image "
                            "with a shell); with `build:`, install the packages in the Dockerfile instead")
    if not image and not data.get("build") and not saved_by_envbuild:
        raise SpecError("an environment needs `image` or `build`", where=f"{document.path}:1",
                        fix="add `image: REPOSITORY:TAG`, or `build: {path: DIR}` for a directory with a Dockerfile")
    os_type = str(data.get("os_type") or "linux").lower()
    if os_type != "linux":
        raise SpecError(f"os_type {os_type!r} is not supported: envbuild builds Linux images", where=where("os_type"),
                        fix="use `os_type: linux`")


def _inference_config(document: YamlDocument) -> dict:
    """The serving routes (liveness, readiness, scoring: each a path and a port), kept as written."""
    node = document.child(document.node, "inference_config")
    value = document.data["inference_config"]
    routes = ("liveness_route", "readiness_route", "scoring_route")
    if not isinstance(value, dict) or set(value) - set(routes) or not all(
            isinstance(value.get(r), dict) and set(value[r]) == {"path", "port"} for r in routes):
        raise SpecError("`inference_config` must have liveness_route, readiness_route and scoring_route, each with "
                        "`path` and `port`", where=document.where(node),
                        fix="write e.g. `scoring_route: {path: /score, port: 5001}` for each of the three routes")
    return {r: {"path": str(value[r]["path"]), "port": int(value[r]["port"])} for r in routes}


def _load_build(document: YamlDocument, env) -> None:
    build = document.data["build"]
    node = document.child(document.node, "build")
    if not isinstance(build, dict) or not build.get("path") or set(build) - {"path", "dockerfile_path"}:
        raise SpecError("`build` must be a mapping with `path` (and optionally `dockerfile_path`)",
                        where=document.where(node), fix="write `build: {path: ./context, dockerfile_path: Dockerfile}`")
    location = str(build["path"])
    if "://" in location or "#" in location or location.startswith("git@"):
        directory = _remote_context(location, document.where(document.child(node, "path")))
    else:
        directory = (document.path.parent / location).resolve()
    dockerfile_path = str(build.get("dockerfile_path") or "Dockerfile")
    check_build_context(directory, dockerfile_path)
    start_from_build_context(env, directory, dockerfile_path)


def _remote_context(location: str, where: str) -> Path:
    from .. import config
    from ..buildcontext import checkout, is_git_url

    if not is_git_url(location):
        raise SpecError(f"build context {location!r} is a URL envbuild cannot fetch: only git repositories are",
                        where=where, fix="download and unpack it, and point build.path at the directory (or use "
                                         "a git URL: https://host/repo.git#ref:subdir)")
    return checkout(location, config.home())


def _load_conda_file(document: YamlDocument, env) -> None:
    value = document.data["conda_file"]
    node = document.child(document.node, "conda_file")
    if isinstance(value, dict):  # the schema also allows the conda environment inline
        load_conda_file(document.path, env, document=YamlDocument(document.path, document.text, value, node))
        return
    if not isinstance(value, str) or not value.strip():
        raise SpecError("`conda_file` must be a path (relative to this file) or an inline conda environment",
                        where=document.where(node), fix="write `conda_file: conda.yaml`")
    # `file:conda.yml` is the preview CLI's spelling of a local path.
    conda_path = document.path.parent / value.strip().removeprefix("file:")
    if not is_file(conda_path):
        raise SpecError(f"conda_file {value} does not exist", where=document.where(node),
                        fix=f"check the path: it is read relative to {document.path.parent}")
    load_conda_file(conda_path, env)


def save_environment(env, directory: Path, overwrite: bool = False) -> None:
    """Write `env` as environment.yaml + conda.yaml (+ Dockerfile) that Azure ML loads, and envbuild.yaml."""
    import yaml

    if directory.exists() and any(directory.iterdir()) and not overwrite:
        raise SpecError(f"{directory} is not empty", where=str(directory),
                        fix="pick an empty directory or pass overwrite=True")
    password = env.docker.base_image_registry.saved_password()  # a password in clear: refused before any write
    directory.mkdir(parents=True, exist_ok=True)
    docker, deps = env.docker, env.python.conda_dependencies
    spec: dict = {"$schema": SCHEMA_URL, "name": env.name}
    if env.version is not None:
        spec["version"] = str(env.version)
    if env.description is not None:
        spec["description"] = env.description
    if env.tags:
        spec["tags"] = {str(k): str(v) for k, v in env.tags.items()}
    settings = settings_of(env)
    for stale in (CONDA_FILE, _DOCKERFILE_FILE):
        (directory / stale).unlink(missing_ok=True)
    if docker.base_image:
        spec["image"] = docker.base_image
    elif docker.build_context:
        spec["build"] = {"path": _context_location(docker.build_context, directory),
                         "dockerfile_path": docker.dockerfile_path}
    elif docker.base_dockerfile:
        (directory / _DOCKERFILE_FILE).write_text(docker.base_dockerfile_text(), encoding="utf-8")
        spec["build"] = {"path": ".", "dockerfile_path": _DOCKERFILE_FILE}
        if docker.base_dockerfile_is_path:
            settings["base_dockerfile"] = docker.base_dockerfile
        else:
            settings["base_dockerfile_file"] = _DOCKERFILE_FILE
    else:
        spec["image"] = AZURE_DEFAULT_IMAGES[bool(docker.gpu)]
        settings["default_base"] = True
    pip_lines = [o for o in deps.pip_options if o.split()[0] in _INDEX_OPTIONS] + [
        " ".join([r, *(f"--hash={h}" for h in deps.pip_hashes.get(r, ()))]) for r in deps.pip_packages]
    if deps.channels or deps.conda_packages or pip_lines:
        conda: dict = {"channels": list(deps.channels)} if deps.channels else {}
        conda["dependencies"] = list(deps.conda_packages) + ([{"pip": pip_lines}] if pip_lines else [])
        (directory / CONDA_FILE).write_text(yaml.safe_dump(conda, sort_keys=False), encoding="utf-8")
        spec["conda_file"] = CONDA_FILE
    spec["os_type"] = "linux"
    if env.inference_config:
        spec["inference_config"] = env.inference_config
    other_options = [o for o in deps.pip_options if o.split()[0] not in _INDEX_OPTIONS]
    if other_options:
        settings["pip_options"] = other_options
    if env.lock_file:
        settings["lock_file"] = relative_to_directory(env.lock_file, directory)
    registry = docker.base_image_registry
    if registry.address or registry.username:
        settings["base_image_registry"] = {"address": registry.address, "username": registry.username,
                                           "password": password}
    (directory / ENVIRONMENT_FILE).write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    (directory / SETTINGS_FILE).write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    lost = azure_losses(env)
    if lost:
        log.warning("%s: Azure ML will not see %s (envbuild keeps them in %s)", directory, "; ".join(lost),
                    SETTINGS_FILE)


def azure_losses(env) -> list[str]:
    """What of `env` an Azure ML (v2) build of its saved directory would not have."""
    docker, deps = env.docker, env.python.conda_dependencies
    lost = []
    if env.environment_variables:
        lost.append(f"environment variables {', '.join(sorted(env.environment_variables))}")
    if docker.gpu or docker.cuda:
        lost.append("the GPU request" + (f" (CUDA {docker.cuda})" if docker.cuda else ""))
    if docker.platform != "linux-64":
        lost.append(f"platform {docker.platform}")
    if not (docker.base_image or docker.build_context or docker.base_dockerfile):
        lost.append(f"envbuild's default base (Azure ML builds on {AZURE_DEFAULT_IMAGES[bool(docker.gpu)]})")
    elif not docker.base_image and not deps.is_empty:
        lost.append("conda/pip packages on a Dockerfile (Azure ML installs conda_file only on an image)")
    if env.lock_file:
        lost.append("the lock file (Azure ML solves conda.yaml again)")
    if env.python.user_managed_dependencies and not deps.is_empty:
        lost.append("user-managed dependencies (Azure ML installs conda.yaml)")
    if any(o.split()[0] not in _INDEX_OPTIONS for o in deps.pip_options):
        lost.append("pip options other than index options")
    return lost


def _context_location(path: str, directory: Path) -> str:
    """A build context as saved: its git URL at the commit, or its path relative to the saved directory."""
    from ..buildcontext import remote_of

    return remote_of(path) or relative_to_directory(path, directory)


def relative_to_directory(path: str, directory: Path) -> str:
    """`path` as saved in `directory`: relative to it (`../ctx` when outside), so that the two move together."""
    return Path(os.path.relpath(Path(path).resolve(), directory.resolve())).as_posix()
