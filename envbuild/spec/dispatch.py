"""Which loader reads a path: `Environment.from_file` for a spec file or a directory, told apart by name and content.

Files: a Dockerfile by its name; YAML by its fields (a conda-lock file, an Azure ML environment, an Azure ML job
with an inline `environment:`, a conda environment.yml); anything else is a pip requirements file. Directories: a
conda prefix, a `save_to_directory` folder, a build context, or a project holding a conda-lock.yml (preferred, and
said so, where an environment.yml sits beside it: conda-lock installs from the lock) or a spec file. Project files of
other tools (pyproject.toml, Pipfile, ...) are refused with the command that exports them. The functions build the
Environment through the class they are given (`cls`): the model imports this module, not the other way round.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import SpecError
from ..lockfile import looks_like_lock_file
from .azureml import ENVIRONMENT_FILE, load_azureml_environment, load_inline_environment
from .azureml_v1 import DEFINITION_FILE, is_v1_directory
from .conda_file import AZUREML_FIELDS, CONDA_FILE_KEYS, load_conda_file
from .source import is_dir, is_file, read_yaml

log = logging.getLogger(__name__)

# Files people point at that hold a project's dependencies in another tool's format.
_PROJECT_FILES = {"pipfile", "setup.py", "setup.cfg", "pyproject.toml", "poetry.lock", "uv.lock", "pipfile.lock"}
# What a project directory is loaded from, in this order after a lock file (which wins, as for conda-lock).
_PROJECT_SPECS = ("environment.yml", "conda.yaml", "conda.yml", "requirements.txt")
_LOCK_FILES = ("conda-lock.yml", "conda-lock.yaml")
# Prefixes of references (envbuild.references resolves them): named in the error when one reaches a file loader.
_REFERENCE_PREFIXES = ("curated:", "docker://")


def load_file(cls, location: str | os.PathLike, name: str | None):
    """The Environment (made with `cls`) of the spec file or directory at `location`."""
    text = os.fspath(location)
    if text.startswith(_REFERENCE_PREFIXES):
        raise SpecError(f"{text} is a reference, not a file", fix="resolve it with envbuild.references.load (the "
                        "command line does): it reads curated:NAME[:VERSION], docker://IMAGE and spec files")
    path = Path(text)
    if is_dir(path):
        return _load_directory(cls, path, name)
    if not is_file(path):
        raise SpecError(f"{path}: no such file or directory", fix="check the path")
    lowered = path.name.lower()
    if lowered == DEFINITION_FILE:  # an Azure ML SDK v1 directory, named by its definition file
        return cls.load_from_directory(path.parent)
    if lowered in _PROJECT_FILES or path.suffix.lower() in (".toml", ".py", ".cfg", ".json"):
        raise SpecError(f"{path.name} describes a project, not an environment", where=str(path),
                        fix="export its dependencies to a requirements file (e.g. `uv pip compile "
                            f"{path.name} -o requirements.txt`) and load that")
    if lowered in ("dockerfile", "containerfile") or lowered.startswith("dockerfile.") \
            or lowered.endswith(".dockerfile"):
        return cls.from_dockerfile(name or path.parent.name or "dockerfile", path)
    if path.suffix.lower() in (".yml", ".yaml"):
        return _load_yaml_spec(cls, path, name)
    return cls.from_pip_requirements(name or path.stem, path)


def _load_directory(cls, directory: Path, name: str | None):
    if (directory / "conda-meta").is_dir():
        return cls.from_conda_prefix(name or directory.name, directory)
    if (directory / ENVIRONMENT_FILE).is_file():
        return cls.from_file(directory / ENVIRONMENT_FILE, name)
    if is_v1_directory(directory):
        env = cls.load_from_directory(directory)
        env.name = name or env.name
        return env
    if (directory / "Dockerfile").is_file():
        return cls.from_build_context(name or directory.name, directory)
    # A project directory: its lock file (what conda-lock installs from), else the spec file it is known by.
    specs = [directory / f for f in _PROJECT_SPECS if (directory / f).is_file()]
    lock = next((directory / f for f in _LOCK_FILES if (directory / f).is_file()), None)
    if lock is not None:
        if specs:
            log.warning("%s: loading %s, not %s: the lock is installed as it is, as `conda-lock install` does "
                        "(pass %s itself to solve it again)", directory, lock.name, specs[0].name, specs[0])
        return cls.from_file(lock, name or directory.name)
    if specs:
        return cls.from_file(specs[0], name)
    raise SpecError(f"{directory} is a directory with nothing envbuild can load", where=str(directory),
                    fix="pass a spec file, a conda prefix (with conda-meta/), a build context (with a Dockerfile), "
                        "a directory written by save_to_directory (envbuild's or azureml-core's) or one with "
                        "conda-lock.yml, environment.yml or requirements.txt")


def _load_yaml_spec(cls, path: Path, name: str | None):
    """environment.yml, Azure ML environment YAML or conda-lock.yml, told apart by their fields."""
    if looks_like_lock_file(path):
        return cls.from_lock_file(name or path.stem, path)
    document = read_yaml(path)
    data = document.data
    if isinstance(data, dict):
        if "package" in data and "metadata" in data:
            return cls.from_lock_file(name or path.stem, path)
        if "environment" in data and not set(data) & CONDA_FILE_KEYS - {"name"}:
            env = cls()
            load_inline_environment(document, env, name)
            return env
        if set(data) & AZUREML_FIELDS or "$schema" in data:
            env = cls()
            load_azureml_environment(path, env, name=name, document=document)
            return env
        if not set(data) & (CONDA_FILE_KEYS - {"name"}) and set(data) - {"name"}:
            if data.get("type") == "environment" and "spec" in data:
                raise SpecError("this is an azureml-assets asset descriptor, not an environment", where=f"{path}:1",
                                fix=f"load the environment YAML it names (spec: {data['spec']}) once its "
                                    "{{placeholders}} are rendered")
            raise SpecError(f"not an environment spec: fields {', '.join(map(str, data))}", where=f"{path}:1",
                            fix="pass a conda environment.yml (channels/dependencies), an Azure ML environment "
                                "YAML (image/conda_file/build) or a conda-lock.yml")
    env = cls(name=name or (data.get("name") if isinstance(data, dict) and data.get("name") else path.stem))
    load_conda_file(path, env, document=document)
    return env
