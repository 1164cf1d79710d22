"""The Azure ML SDK v1 members people still call, with v1's meaning, as mixins of the model's classes.

`CondaDependenciesV1` and `EnvironmentV1` are bases of `CondaDependencies` and `Environment` (envbuild.spec.model),
kept here so that the model stays the data and its constructors. What v1 did against a workspace is done against
envbuild's own counterparts: the catalog (`Environment.label`: labels as catalog tags), the local cache
(`get_image_details`) and the local engine (`build_local`); those three are methods of `Environment` itself, which
alone may reach above the spec package, and use the helpers below.
"""

from __future__ import annotations

import copy
import os
import re

from ..errors import SpecError

# A catalog tag per label (`label:production`), on one version of a name at a time, as v1's labels point at one.
LABEL_TAG_PREFIX = "label:"


class CondaDependenciesV1:
    """azureml-core's CondaDependencies members beyond `create` and the add/remove/set ones."""

    def as_dict(self) -> dict:
        """The conda environment file as a mapping: channels, then dependencies with pip's lines (options first)."""
        pip = list(self.pip_options) + list(self.pip_packages)
        data: dict = {"channels": list(self.channels)} if self.channels else {}
        data["dependencies"] = list(self.conda_packages) + ([{"pip": pip}] if pip else [])
        return data

    def serialize_to_string(self) -> str:
        """The conda environment file's text (what `save` writes)."""
        import yaml

        return yaml.safe_dump(self.as_dict(), sort_keys=False)

    def save(self, path: str | os.PathLike) -> str:
        """Write the conda environment file to `path` (a file, not a directory) and return the path."""
        target = os.fspath(path)
        if os.path.isdir(target):
            raise SpecError(f"{target} is a directory", fix="pass the path of the file to write, e.g. DIR/conda.yaml")
        with open(target, "w", encoding="utf-8") as file:
            file.write(self.serialize_to_string())
        return target

    def set_pip_index_url(self, index_url: str) -> None:
        """Use `index_url` as pip's index (`--index-url URL`; an option string is taken as it is), replacing one set
        before, as v1 does (it keeps one option per flag)."""
        option = index_url if index_url.lstrip().startswith("-") else f"--index-url {index_url.strip()}"
        self.remove_pip_option(option)
        self.set_pip_option(option)

    def remove_pip_option(self, pip_option: str) -> None:
        """Remove every pip option with the flag of `pip_option` (`--extra-index-url` removes all of them)."""
        flag = pip_option.split()[0] if pip_option.split() else ""
        if not flag.startswith("-"):
            raise SpecError(f"invalid pip option {pip_option!r}", fix="pass an option such as --extra-index-url")
        self.pip_options = [o for o in self.pip_options if o.split()[0] != flag]

    def set_pip_requirements(self, pip_requirements) -> None:
        """Replace the pip list (requirements and options, as in a conda file's `pip:`) by `pip_requirements`."""
        self.pip_packages, self.pip_options = [], []
        for line in pip_requirements:
            if line.strip().startswith("-"):
                self.set_pip_option(line)
            else:
                self.add_pip_package(line)

    @staticmethod
    def merge_requirements(requirements) -> list[str]:
        """One requirement per package, its constraints joined: `numpy>=1.20`, `numpy<2` → `numpy>=1.20,<2`."""
        merged: dict[str, list[str]] = {}
        for requirement in requirements:
            name = re.split(r"[=<>~!\s]", requirement.strip(), maxsplit=1)[0]
            constraint = requirement.strip()[len(name):].strip()
            merged.setdefault(name, [])
            if constraint:
                merged[name].append(constraint)
        return [name + ",".join(constraints) for name, constraints in merged.items()]


class EnvironmentV1:
    """azureml-core's Environment members that need nothing above the spec package."""

    def clone(self, new_name: str):
        """A copy named `new_name`, unversioned (as v1: a clone is a new environment, not a version)."""
        if not new_name:
            raise SpecError("a clone needs a name", fix="pass new_name")
        env = copy.deepcopy(self)
        env.name, env.version = new_name, None
        return env

    @classmethod
    def from_docker_build_context(cls, name: str, docker_build_context):
        """An environment built from a Docker build context: a directory, a git URL (`https://host/repo.git#ref:dir`),
        or v1's DockerBuildContext (its `location` and `dockerfile_path`)."""
        location = os.fspath(getattr(docker_build_context, "location", docker_build_context))
        dockerfile_path = getattr(docker_build_context, "dockerfile_path", None) or "Dockerfile"
        from ..buildcontext import is_git_url

        if is_git_url(location):
            from .. import config
            from ..buildcontext import checkout

            location = os.fspath(checkout(location, config.home()))
        return cls.from_build_context(name, location, dockerfile_path=dockerfile_path)

    def build_local(self, workspace=None, platform: str | None = None, useDocker: bool = True,  # noqa: N803
                    pushImageToWorkspaceAcr: bool = False, **options):  # noqa: N803 (v1's spellings)
        """Build this environment's image on this machine: `self.build`. `workspace` is the envbuild home; the
        image is pushed to the shared registry (ENVBUILD_REGISTRY, or `registry=`) when one is configured, which is
        what v1's `pushImageToWorkspaceAcr` asks."""
        if not useDocker:
            raise SpecError("build_local without Docker (a local conda environment) is not supported",
                            fix="envbuild builds container images: call build_local() with useDocker=True")
        if platform and platform.lower() != "linux":
            raise SpecError(f"platform {platform} is not supported: envbuild builds Linux images",
                            fix="pass platform='Linux' (or leave it out)")
        if pushImageToWorkspaceAcr and not (options.get("registry") or os.environ.get("ENVBUILD_REGISTRY")):
            raise SpecError("pushImageToWorkspaceAcr needs a shared registry",
                            fix="set ENVBUILD_REGISTRY=HOST/REPO or pass registry='HOST/REPO'")
        return self.build(cache_dir=workspace, **options)


def image_details(env, plan, entry: dict | None, image_name: str, registry: str | None) -> dict:
    """v1's DockerImageDetails of `env`, whose build plan is `plan` and cache index entry `entry` (None: not built)."""
    from ..renderer import PREFIX

    return {
        "imageExistsInRegistry": entry is not None,
        "dockerImage": {"name": entry["image"] if entry else image_name,
                        "registry": {"address": registry, "username": None, "password": None}},
        "pythonEnvironment": {"interpreterPath": env.python.interpreter_path,
                              "condaEnvironmentPath": None if env.python.user_managed_dependencies else PREFIX},
        "dockerfile": plan.dockerfile,
    }


def move_labels(catalog, name: str, version, labels) -> None:
    """v1's `Environment.label`: tag `name:version` with each label (`label:NAME`), taking it off the other
    versions of `name`, so that a label names one version."""
    wanted = {LABEL_TAG_PREFIX + str(label) for label in labels}
    target = catalog.entry(name, version)
    for entry in catalog.list(name, include_archived=True):
        if entry.version != target.version and wanted & set(entry.tags):
            catalog.update(name, entry.version, tags={k: v for k, v in entry.tags.items() if k not in wanted})
    catalog.update(name, target.version, tags={**target.tags, **{tag: "" for tag in sorted(wanted)}})
