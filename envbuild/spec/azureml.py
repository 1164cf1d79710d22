"""Azure ML CLI v2 environment YAML: load it with the schema's own rules, and save environments in that shape.

The CLI v2 schema (https://azuremlschemas.azureedge.net/latest/environment.schema.json) describes an environment
as metadata (name, version, description, tags) plus exactly one way to start the image: `image` (optionally with a
`conda_file` installed on top) or `build: {path, dockerfile_path}`. Paths are relative to the YAML file.

`save_environment` writes what `Environment.save_to_directory` promises: environment.yaml in that schema plus an
`envbuild:` section for what the schema has no field for (environment variables, GPU/CUDA request, platform,
pip options, a Dockerfile's text, a lock file, and "envbuild's default base image" when no image is set),
conda.yaml next to it, and the Dockerfile text as a file. Loading it gives back an equal Environment.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import SpecError
from .conda_file import AZUREML_FIELDS, load_conda_file
from .dockerfile import check_build_context, start_from_build_context
from .source import YamlDocument, is_file, read_text, read_yaml, reject_placeholders

# The files of a directory written by `Environment.save_to_directory`.
ENVIRONMENT_FILE = "environment.yaml"
CONDA_FILE = "conda.yaml"

SCHEMA_URL = "https://azuremlschemas.azureedge.net/latest/environment.schema.json"
_METADATA = {"$schema", "name", "version", "description", "tags", "properties", "datastore", "intellectual_property",
             "stage"}
_EXTENSION = "envbuild"
_EXTENSION_FIELDS = {"platform", "gpu", "cuda", "user_managed_dependencies", "interpreter_path", "base_dockerfile",
                     "base_dockerfile_file", "pip_options", "environment_variables", "lock_file"}
_DOCKERFILE_FILE = "Dockerfile"


def load_azureml_environment(path: Path, env, name: str | None = None, document: YamlDocument | None = None) -> None:
    """Fill the empty Environment `env` from the Azure ML environment YAML at `path` (or its parsed `document`)."""
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
    extension = data.get(_EXTENSION)
    if extension is not None and (not isinstance(extension, dict) or set(extension) - _EXTENSION_FIELDS):
        raise SpecError(f"`{_EXTENSION}:` must be a mapping of {', '.join(sorted(_EXTENSION_FIELDS))}",
                        where=document.where(document.child(root, _EXTENSION)), fix="remove the unknown fields")
    _check_shape(document, data, uses_default_base=extension is not None)

    def text(key: str) -> str | None:
        return document.scalar_text(document.child(root, key)) if key in data else None

    env.name = name or text("name") or path.stem
    env.source_files.append(str(path))
    env.version = text("version") or None
    env.description = text("description")
    env.tags = document.string_map(document.child(root, "tags"), "tags")
    if data.get("image"):
        env.docker.base_image = text("image")
    if data.get("build"):
        _load_build(document, env)
    if data.get("conda_file") is not None:
        _load_conda_file(document, env)
    has_lock = bool((extension or {}).get("lock_file"))
    env.python.user_managed_dependencies = env.python.conda_dependencies.is_empty and not has_lock
    if extension:
        _load_extension(document, extension, env)


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
    load_azureml_environment(document.path, env, name=name, document=inline)


def _check_shape(document: YamlDocument, data: dict, uses_default_base: bool) -> None:
    """The schema's rules: one of image/build, conda_file only on an image, Linux only."""
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
    if data.get("conda_file") is not None and not image and not uses_default_base:
        raise SpecError("`conda_file` needs an `image` to install into (Azure ML: the Docker section is missing: "
                        "provide a base image or Dockerfile)", where=where("conda_file"),
                        fix="add `image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest` (or any image "
                            "with a shell); with `build:`, install the packages in the Dockerfile instead")
    if not image and not data.get("build") and not uses_default_base:
        raise SpecError("an environment needs `image` or `build`", where=f"{document.path}:1",
                        fix="add `image: REPOSITORY:TAG`, or `build: {path: DIR}` for a directory with a Dockerfile")
    os_type = str(data.get("os_type") or "linux").lower()
    if os_type != "linux":
        raise SpecError(f"os_type {os_type!r} is not supported: envbuild builds Linux images", where=where("os_type"),
                        fix="use `os_type: linux`")


def _load_build(document: YamlDocument, env) -> None:
    build = document.data["build"]
    node = document.child(document.node, "build")
    if not isinstance(build, dict) or not build.get("path") or set(build) - {"path", "dockerfile_path"}:
        raise SpecError("`build` must be a mapping with `path` (and optionally `dockerfile_path`)",
                        where=document.where(node), fix="write `build: {path: ./context, dockerfile_path: Dockerfile}`")
    location = str(build["path"])
    if "://" in location or "#" in location:
        raise SpecError(f"remote build context {location!r} is not supported",
                        where=document.where(document.child(node, "path")),
                        fix="clone it and point build.path at the local directory")
    directory = (document.path.parent / location).resolve()
    dockerfile_path = str(build.get("dockerfile_path") or "Dockerfile")
    check_build_context(directory, dockerfile_path)
    start_from_build_context(env, directory, dockerfile_path)


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


def _check_extension(document: YamlDocument, extension: dict) -> None:
    """Each field of the `envbuild:` section has its type, and the files it names exist: at the field's line."""
    import re

    from ..limits import check_name

    node = document.child(document.node, _EXTENSION)
    kinds = {"platform": str, "gpu": bool, "cuda": (str, int, float), "user_managed_dependencies": bool,
             "interpreter_path": str, "base_dockerfile": str, "base_dockerfile_file": str, "pip_options": list,
             "environment_variables": dict, "lock_file": str}
    for key, kind in kinds.items():
        value, where = extension.get(key), document.where(document.child(node, key) or node)
        if value is None:
            continue
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            names = {str: "text", bool: "true or false", list: "a list", dict: "a mapping"}
            wanted = names.get(kind, "a version such as 12.4")
            raise SpecError(f"`{_EXTENSION}.{key}` must be {wanted}, not {type(value).__name__}", where=where,
                            fix=f"write `{key}:` as {wanted}")
        if key == "pip_options" and not all(isinstance(option, str) for option in value):
            raise SpecError(f"`{_EXTENSION}.pip_options` must be a list of options such as `--pre`", where=where,
                            fix="write each option as text: `- --extra-index-url https://...`")
        if key == "cuda" and not re.fullmatch(r"\d+(\.\d+){0,2}", str(value)):
            raise SpecError(f"`{_EXTENSION}.cuda` {value!r} is not a CUDA version", where=where,
                            fix="write it as MAJOR.MINOR, e.g. 12.4")
        if isinstance(value, str):
            check_name(value, f"`{_EXTENSION}.{key}`", where)
        if key in ("base_dockerfile_file", "lock_file") and value and not is_file(document.path.parent / value):
            raise SpecError(f"`{_EXTENSION}.{key}` {value} does not exist", where=where,
                            fix=f"check the path: it is read relative to {document.path.parent}")


def _load_extension(document: YamlDocument, extension: dict, env) -> None:
    _check_extension(document, extension)
    node = document.child(document.node, _EXTENSION)
    docker = env.docker
    docker.platform = str(extension.get("platform") or docker.platform)
    docker.gpu = bool(extension.get("gpu", False))
    docker.cuda = None if extension.get("cuda") is None else document.scalar_text(document.child(node, "cuda"))
    if "user_managed_dependencies" in extension:
        env.python.user_managed_dependencies = bool(extension["user_managed_dependencies"])
    env.python.interpreter_path = str(extension.get("interpreter_path") or env.python.interpreter_path)
    if extension.get("base_dockerfile_file"):
        dockerfile = document.path.parent / extension["base_dockerfile_file"]
        docker.base_dockerfile = read_text(dockerfile)
        env.source_files.append(str(dockerfile))
    elif extension.get("base_dockerfile"):
        docker.base_dockerfile = str(extension["base_dockerfile"])
        if docker.base_dockerfile_is_path:
            env.source_files.append(docker.base_dockerfile)
    for option in extension.get("pip_options") or []:
        env.python.conda_dependencies.set_pip_option(str(option))
    env.environment_variables.update(document.string_map(document.child(node, "environment_variables"),
                                                         "environment_variables"))
    if extension.get("lock_file"):
        env.lock_file = str((document.path.parent / str(extension["lock_file"])).resolve())
        env.source_files.append(env.lock_file)


def save_environment(env, directory: Path, overwrite: bool = False) -> None:
    import yaml

    if directory.exists() and any(directory.iterdir()) and not overwrite:
        raise SpecError(f"{directory} is not empty", where=str(directory),
                        fix="pick an empty directory or pass overwrite=True")
    directory.mkdir(parents=True, exist_ok=True)
    docker, deps = env.docker, env.python.conda_dependencies
    spec: dict = {"$schema": SCHEMA_URL, "name": env.name}
    if env.version is not None:
        spec["version"] = str(env.version)
    if env.description is not None:
        spec["description"] = env.description
    if env.tags:
        spec["tags"] = {str(k): str(v) for k, v in env.tags.items()}
    if docker.base_image:
        spec["image"] = docker.base_image
    if docker.build_context:
        spec["build"] = {"path": _relative_or_absolute(docker.build_context, directory),
                         "dockerfile_path": docker.dockerfile_path}
    conda_path = directory / CONDA_FILE
    if deps.channels or deps.conda_packages or deps.pip_packages:
        dependencies: list = list(deps.conda_packages)
        if deps.pip_packages:
            dependencies.append({"pip": list(deps.pip_packages)})
        conda_path.write_text(yaml.safe_dump({"channels": list(deps.channels), "dependencies": dependencies},
                                             sort_keys=False), encoding="utf-8")
        spec["conda_file"] = CONDA_FILE
    elif conda_path.exists():
        conda_path.unlink()
    spec["os_type"] = "linux"
    extension: dict = {"platform": docker.platform, "gpu": bool(docker.gpu), "cuda": docker.cuda,
                       "user_managed_dependencies": env.python.user_managed_dependencies,
                       "interpreter_path": env.python.interpreter_path}
    if docker.base_dockerfile:
        if docker.base_dockerfile_is_path:
            extension["base_dockerfile"] = docker.base_dockerfile
        else:
            (directory / _DOCKERFILE_FILE).write_text(docker.base_dockerfile, encoding="utf-8")
            extension["base_dockerfile_file"] = _DOCKERFILE_FILE
    if deps.pip_options:
        extension["pip_options"] = list(deps.pip_options)
    if env.environment_variables:
        extension["environment_variables"] = {str(k): str(v) for k, v in env.environment_variables.items()}
    if env.lock_file:
        extension["lock_file"] = str(Path(env.lock_file).resolve())
    spec[_EXTENSION] = extension
    (directory / ENVIRONMENT_FILE).write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")


def _relative_or_absolute(path: str, directory: Path) -> str:
    target = Path(path).resolve()
    try:
        return target.relative_to(directory.resolve()).as_posix()
    except ValueError:
        return os.fspath(target)
