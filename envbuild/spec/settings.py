"""envbuild.yaml: envbuild's settings for an environment that Azure ML's schema has no field for.

`Environment.save_to_directory` writes it beside environment.yaml (v2) or azureml_environment.json (v1), and the
loaders read it back (an earlier release's `envbuild:` section inside environment.yaml is read the same way).
Azure ML never reads it. A setting is a row of `SETTINGS` (name → Environment attribute and type), saved and
loaded as that type; the few that are more than a value (the base, the files beside, the registry login) are
named in `FILE_SETTINGS` and handled by name. Every setting is checked at its line before it is used.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SpecError
from .source import YamlDocument, is_file, read_text, read_yaml

SETTINGS_FILE = "envbuild.yaml"

# envbuild's settings Azure ML has no field for, as envbuild.yaml spells them: name → (Environment attribute, type).
# A new DockerSection/PythonSection setting is one more row: saved and loaded as this type.
SETTINGS = {
    "platform": ("docker.platform", str),
    "gpu": ("docker.gpu", bool),
    "cuda": ("docker.cuda", str),
    "user_managed_dependencies": ("python.user_managed_dependencies", bool),
    "interpreter_path": ("python.interpreter_path", str),
    "environment_variables": ("environment_variables", dict),
    "shm_size": ("docker.shm_size", str),  # run options: applied by `envbuild run`, not keyed
    "arguments": ("docker.arguments", list),
}
# Settings whose saving and loading is more than a value: the base and the files beside.
FILE_SETTINGS = {"default_base", "base_dockerfile", "base_dockerfile_file", "pip_options", "lock_file",
                  "base_image_registry"}


def checked_settings(settings_document: YamlDocument) -> tuple[dict, YamlDocument]:
    settings = settings_document.data
    known = set(SETTINGS) | FILE_SETTINGS
    if settings is None:
        return {}, settings_document
    if not isinstance(settings, dict) or set(settings) - known:
        raise SpecError(f"envbuild's settings must be a mapping of {', '.join(sorted(known))}",
                        where=settings_document.where(settings_document.node), fix="remove the unknown fields")
    _check_settings(settings_document)
    return settings, settings_document


def _check_settings(document: YamlDocument) -> None:
    """Each of envbuild's settings has its type, and the files it names exist: at the setting's line."""
    import re

    from ..limits import check_name

    node, settings = document.node, document.data
    kinds = {"platform": str, "gpu": bool, "cuda": (str, int, float), "user_managed_dependencies": bool,
             "interpreter_path": str, "base_dockerfile": str, "base_dockerfile_file": str, "pip_options": list,
             "environment_variables": dict, "lock_file": str, "default_base": bool, "shm_size": (str, int),
             "arguments": list, "base_image_registry": dict}
    for key, kind in kinds.items():
        value, where = settings.get(key), document.where(document.child(node, key) or node)
        if value is None:
            continue
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            names = {str: "text", bool: "true or false", list: "a list", dict: "a mapping"}
            wanted = names.get(kind, "a version such as 12.4" if key == "cuda" else "text")
            raise SpecError(f"envbuild setting `{key}` must be {wanted}, not {type(value).__name__}", where=where,
                            fix=f"write `{key}:` as {wanted}")
        if key in ("pip_options", "arguments") and not all(isinstance(item, str) for item in value):
            raise SpecError(f"envbuild setting `{key}` must be a list of text items", where=where,
                            fix="write each item as text, e.g. `- --extra-index-url https://...`")
        if key == "cuda" and not re.fullmatch(r"\d+(\.\d+){0,2}", str(value)):
            raise SpecError(f"envbuild setting `cuda` {value!r} is not a CUDA version", where=where,
                            fix="write it as MAJOR.MINOR, e.g. 12.4")
        if isinstance(value, str):
            check_name(value, f"envbuild setting `{key}`", where)
        if key in ("base_dockerfile_file", "lock_file") and value and not is_file(document.path.parent / value):
            raise SpecError(f"envbuild setting `{key}` {value} does not exist", where=where,
                            fix=f"check the path: it is read relative to {document.path.parent}")


def apply_settings(document: YamlDocument, settings: dict, env) -> None:
    """Set what envbuild.yaml (parsed as `document`, its mapping `settings`) holds on `env`."""
    node, beside = document.node, document.path.parent
    for field, (attribute, kind) in SETTINGS.items():
        if settings.get(field) is None:  # `field: null` is not set: the default stays
            continue
        owner, _, name = attribute.rpartition(".")
        target = _attribute_owner(env, owner)
        value = settings[field]
        if kind is dict:
            getattr(target, name).update(document.string_map(document.child(node, field), field))
            continue
        if kind is bool:
            value = bool(value)
        elif kind is list:
            value = [str(item) for item in value or []]
        elif value is not None:
            value = document.scalar_text(document.child(node, field))
        setattr(target, name, value)
    docker = env.docker
    if settings.get("base_dockerfile_file"):
        dockerfile = beside / settings["base_dockerfile_file"]
        docker.base_dockerfile = read_text(dockerfile)
        env.source_files.append(str(dockerfile))
    elif settings.get("base_dockerfile"):
        docker.base_dockerfile = str(settings["base_dockerfile"])
        if docker.base_dockerfile_is_path:
            env.source_files.append(docker.base_dockerfile)
    for option in settings.get("pip_options") or []:
        env.python.conda_dependencies.set_pip_option(str(option))
    if settings.get("lock_file"):
        env.lock_file = str((beside / str(settings["lock_file"])).resolve())
        env.source_files.append(env.lock_file)
    _load_registry(document, settings, env)


def _load_registry(document: YamlDocument, settings: dict, env) -> None:
    """docker.base_image_registry: address, username and a password that is only ever a `${VAR}`."""
    registry = settings.get("base_image_registry") or {}
    if not isinstance(registry, dict) or set(registry) - {"address", "username", "password"}:
        raise SpecError("`base_image_registry` must be a mapping of address, username and password",
                        where=document.where(document.child(document.node, "base_image_registry")),
                        fix="write `base_image_registry: {address: HOST, username: USER, password: '${VAR}'}`")
    for name, value in registry.items():
        setattr(env.docker.base_image_registry, name, None if value is None else str(value))
    env.docker.base_image_registry.saved_password()  # a password in clear in a file is refused, like on save


def _attribute_owner(env, dotted: str):
    target = env
    for part in filter(None, dotted.split(".")):
        target = getattr(target, part)
    return target


def settings_of(env) -> dict:
    """The SETTINGS values of `env`, as envbuild.yaml holds them."""
    settings: dict = {}
    for field, (attribute, kind) in SETTINGS.items():
        owner, _, name = attribute.rpartition(".")
        value = getattr(_attribute_owner(env, owner), name)
        settings[field] = {str(k): str(v) for k, v in value.items()} if kind is dict else \
            list(value) if kind is list else value
    return settings


def read_settings(path: Path) -> tuple[dict, YamlDocument] | None:
    """envbuild.yaml at `path` (its mapping and document), checked; None when there is none."""
    if not path.is_file():
        return None
    document = read_yaml(path)
    settings, document = checked_settings(document)
    return settings, document
