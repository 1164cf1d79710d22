"""CanonicalSpec and every content key: what makes two environments, locks, plans and bases "the same".

Rules (see the design notes): metadata never enters a key; order is dropped where it means nothing (packages,
the constraints of one version range) and kept where it means priority (channels, index URLs); names and
constraints are canonical (envbuild.packages); the GPU stack, the base reference and the platform are decided
here, once, before the first key. The key format is versioned so that a change of these rules invalidates old
keys instead of silently reusing them.

Every key recipe is a function here whose docstring lists what enters it: `spec_key`, `request_key`,
`file_memo_key`, `template_digest`, `lock_request_key`, `lock_key`, `lock_set_key`, `build_plan_key`,
`base_recipe_key` (and `user_base_recipe_key`), `stage_key`.

This module is imported on the cache-hit path, and benchmark P2 measures every import of a hit: what the hit
uses (`digest`, `file_memo_key`, `template_digest`) needs only os and xxhash, so every other import (json,
hashlib, pathlib, typing, channels, and the parsers: packaging, rattler, yaml) is inside the functions that need it.
"""

from __future__ import annotations

import os
import posixpath
from collections import namedtuple  # not typing.NamedTuple: `typing` costs the hit path milliseconds

import xxhash


TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from pathlib import Path

# Bump when the canonical form or hashing changes: every key starts with it.
KEY_FORMAT = "v1"
# Bump when a template change alters what an image contains for the same lock.
TEMPLATE_VERSION = "1"


def digest(data: bytes | str) -> str:
    """The content hash used for every key (xxh3-128, hex)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return xxhash.xxh3_128_hexdigest(data)


def key_of(value) -> str:
    """Versioned key of any JSON-serializable value (sorted keys, no whitespace)."""
    import json

    return f"{KEY_FORMAT}:{digest(json.dumps(value, sort_keys=True, separators=(',', ':')))}"


def tag_of(key: str) -> str:
    """A Docker tag for a key (tags cannot contain ':')."""
    return key.replace(":", "-")


# ---------------------------------------------------------------------------------------------------------------
# Environment → CanonicalSpec


class CanonicalSpec(namedtuple("CanonicalSpec", [
    "platform",  # str
    "channels",  # tuple[str, ...]: in priority order, as keyed: public, local directories as file:// URLs
    "conda",  # tuple[packages.PackageRecord, ...]: sorted by name, then spelling
    "pip",  # tuple[packages.PackageRecord, ...]: sorted by spelling
    "pip_options",  # tuple[str, ...]: in priority order, without credentials
    "user_managed",  # bool
    "variables",  # tuple[tuple[str, str], ...]: sorted by name
    "lock_file",  # str | None: a conda-lock.yml installed as it is
    "lock_categories",  # tuple[str, ...]: the categories of lock_file installed (main, and extras chosen)
    "base_image",  # str | None: as written: what the engine is asked for
    "base_dockerfile",  # str | None: the text of the user's Dockerfile
    "build_context",  # str | None: the user's build context directory, and its Dockerfile in it
    "dockerfile_path",  # str
    "build_context_digest",  # str | None: buildcontext.directory_digest of build_context
    "gpu",  # gpu.GpuStack | None: the GPU stack decided for it (None: CPU)
    "gpu_source",  # str | None: where the GPU libraries come from: "conda" (the lock) or "pypi" (envbuild's base)
    "form",  # dict
    "key",  # str
    "solver_channels",  # tuple[str, ...]: the channels' URLs as the solver reaches them
    "solver_pip_options",  # tuple[str, ...]
    "origin",  # str | None: the spec file, for messages
    "name",  # str
    "version",  # str | None
    "description",  # str | None
    "origins",  # tuple[tuple[str, str, str], ...]: (manager, canonical name, "file:line") of each listed package
    "pip_pins",  # tuple[pins.Pin, ...]: the user's hash pins with their lines (their hashes are in `form`)
])):
    """Everything in an environment that changes the image it builds, parsed and decided once; `form` is its
    JSON (what `key` hashes, what `envbuild spec canonical` prints, what `explain` compares). Never mutate
    `form`: it is the key's.

    The fields after `key` do not enter it: what the solver needs as written (credentials, for private
    channels and indexes: keep them out of messages), where the spec came from (for messages), and what people
    call it (labels). Immutable; a named tuple, not a dataclass nor a typing.NamedTuple, because this module is
    imported on the cache-hit path, where `dataclasses` and `typing` cost milliseconds of imports.
    """

    __slots__ = ()

    def __repr__(self) -> str:  # the solver's fields hold credentials: never print them
        return f"CanonicalSpec(key={self.key!r}, name={self.name!r})"

    @property
    def cuda(self) -> str | None:
        return self.gpu.cuda if self.gpu is not None else None

    def origin_of(self, manager: str, name: str) -> str | None:
        """Where (file:line) the package `name` of `manager` is listed, for messages about it; else the spec file."""
        found = next((where for m, n, where in self.origins if m == manager and n == name), None)
        return found or self.origin


def canonical_spec(env) -> CanonicalSpec:
    """The CanonicalSpec of an Environment (a CanonicalSpec is returned as it is).

    What enters the key: the platform; the channels (priority order, no credentials, `./chan` by where it is);
    conda and pip packages (canonical spellings, sorted); pip options (order kept, no credentials);
    user_managed (which leaves packages, channels and pip options out: they are not installed); the environment
    variables; what a given lock file installs (its categories chosen); the base (reference normalized, the user
    Dockerfile's digest, the build context's content); and the GPU stack's CUDA, chosen here from
    docker.gpu/cuda and the framework pins when none is given (gpu.select_stack).
    """
    if isinstance(env, CanonicalSpec):
        return env
    from pathlib import Path

    from .channels import channel_url, expand_channel, keyed_channel
    from .gpu import select_stack, source_of
    from .buildcontext import directory_digest
    from .packages import canonical_pip_option, conda_package, pip_package
    from .pins import collect_pins
    from .platforms import normalize_platform

    deps = env.python.conda_dependencies
    docker = env.docker
    beside = Path(env.source_files[0]).parent if env.source_files else None
    expanded = _dedupe([url for c in deps.channels for url in expand_channel(c)])
    if not deps.channels and deps.conda_packages and not (env.lock_file or env.python.user_managed_dependencies):
        expanded = _fallback_channels(env)
    conda = {r.spelling: r for r in (conda_package(s, deps.origins.get(s)) for s in deps.conda_packages)}
    pip = {r.spelling: r for r in (pip_package(r, deps.origins.get(r)) for r in deps.pip_packages)}
    conda_records = tuple(sorted(conda.values(), key=lambda r: (r.name, r.spelling)))
    pip_records = tuple(sorted(pip.values(), key=lambda r: r.spelling))
    user_managed = bool(env.python.user_managed_dependencies)
    if not (user_managed or conda or pip or env.lock_file) and (docker.base_image or docker.base_dockerfile
                                                                or docker.build_context):
        # An image of the user's with nothing to install is used as it is, whoever wrote the file: Azure ML's dump
        # of an image-only environment has no flag (user-managed), envbuild's own says False. One environment,
        # one image (the renderer sees this value too). On envbuild's default base an empty environment still
        # gets its own `python` (a venv), so there the flag stays as written.
        user_managed = True
    if user_managed:
        # Azure ML installs nothing for a user-managed environment: what is listed is not installed, so it is
        # neither solved nor keyed (the same image whoever listed what), and the user is told.
        if conda or pip:
            _warn_once(f"{env.source_files[0] if env.source_files else env.name}: user_managed_dependencies is true: "
                       f"the {len(conda) + len(pip)} packages listed are not installed (the base image's own are "
                       "used); set it to false to install them")
        conda_records, pip_records, expanded, pip_options = (), (), [], []
    else:
        pip_options = deps.pip_options
    origins = tuple((manager, parse(s).name, str(deps.origins[s]))
                    for manager, parse, listed in (("conda", conda_package, deps.conda_packages),
                                                   ("pip", pip_package, deps.pip_packages))
                    for s in listed if deps.origins.get(s))
    pins = () if user_managed else collect_pins(deps, [pip_package(r, deps.origins.get(r))
                                                       for r in deps.pip_packages])
    base_image = docker.base_image_registry.qualify(docker.base_image)  # the address names the image
    stack = select_stack(gpu=bool(docker.gpu), cuda=docker.cuda, conda=conda_records, pip=pip_records,
                         where=lambda name: next((w for m, n, w in origins if m == "pip" and n == name), None))
    dockerfile_text = docker.base_dockerfile_text() if docker.base_dockerfile else None
    context_digest = (directory_digest(docker.build_context, posixpath.normpath(docker.dockerfile_path))
                      if docker.build_context else None)
    spec = dict(
        platform=normalize_platform(docker.platform),
        channels=tuple(_dedupe([keyed_channel(url, beside) for url in expanded])),
        conda=conda_records, pip=pip_records,
        pip_options=tuple(_dedupe([canonical_pip_option(o) for o in pip_options])),
        user_managed=user_managed,
        variables=tuple((str(k), str(v)) for k, v in sorted(env.environment_variables.items())),
        lock_file=env.lock_file or None,
        lock_categories=tuple(dict.fromkeys(["main", *env.lock_categories])),
        base_image=base_image, base_dockerfile=dockerfile_text, build_context=docker.build_context,
        dockerfile_path=docker.dockerfile_path, build_context_digest=context_digest,
        gpu=stack, gpu_source=source_of(conda_records) if stack is not None else None,
    )
    form = {
        "key_format": KEY_FORMAT,
        "template": TEMPLATE_VERSION,
        "platform": spec["platform"],
        "channels": list(spec["channels"]),
        "conda": [r.spelling for r in conda_records],
        "pip": [_portable(r.spelling) for r in pip_records],
        "pip_options": list(spec["pip_options"]),
        "user_managed": spec["user_managed"],
        "variables": dict(spec["variables"]),
        "lock_file": lock_file_digest(env.lock_file, docker.platform, spec["lock_categories"])
        if env.lock_file else None,
        "docker": {
            "base_image": normalize_image_reference(base_image) if base_image else None,
            "base_dockerfile": digest(dockerfile_text) if dockerfile_text is not None else None,
            "build_context": f"{context_digest}:{posixpath.normpath(docker.dockerfile_path)}"
            if context_digest else None,
            "gpu": stack is not None,
            "cuda": normalize_cuda(stack.cuda) if stack is not None else None,
        },
    }
    interpreter = env.python.interpreter_path
    if env.python.user_managed_dependencies and interpreter not in ("python", "", None):
        # The interpreter of a user-managed environment: its directory leads PATH in the image (renderer).
        form["interpreter_path"] = str(interpreter)
    if pins:  # only when there are some: every unpinned spec keeps its key
        form["pip_hashes"] = {pin.name: list(pin.hashes) for pin in pins}
    return CanonicalSpec(
        **spec, form=form, key=spec_key(form),
        solver_channels=tuple(channel_url(c, beside) for c in expanded),
        solver_pip_options=tuple(_dedupe([canonical_pip_option(o, keep_credentials=True) for o in pip_options])),
        origin=env.source_files[0] if env.source_files else None,
        name=env.name, version=None if env.version is None else str(env.version), description=env.description,
        origins=origins,
        pip_pins=pins,
    )


def _warn_once(message: str) -> None:
    """A warning about a spec, once per process however often its key is computed."""
    if message not in _warned:
        import logging

        _warned.add(message)
        logging.getLogger(__name__).warning("%s", message)


_warned: set[str] = set()


def _portable(spelling: str) -> str:
    """A pip requirement as every machine keys it: a private wheel (envbuild.wheels) by its content, the store's
    `<sha256>/<file>` at the place the build mounts it, not by where this machine's store is."""
    from .wheels import BUILD_URL, wheel_in_requirement

    wheel = wheel_in_requirement(spelling)
    return spelling if wheel is None else f"{spelling.partition(' @ ')[0]} @ {BUILD_URL}{wheel.parent.name}/{wheel.name}"


def _fallback_channels(env) -> list[str]:
    """Channels for conda packages listed without any: conda's fallback (channels.fallback_channels), said."""
    from .channels import fallback_channels, public_url

    channels, source = fallback_channels()
    _warn_once(f"{env.source_files[0] if env.source_files else env.name} lists conda packages but no channels: "
               f"using {', '.join(map(public_url, channels))} from {source}, as conda does (list `channels:` to "
               "choose)")
    return channels


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def normalize_cuda(version: str) -> str:
    """`12.1.0` and `12.1` are the same CUDA request (conda's `__cuda` pads with zeros too)."""
    parts = str(version).strip().split(".")
    while len(parts) > 2 and parts[-1] == "0":
        parts.pop()
    return ".".join(parts)


def normalize_image_reference(reference: str) -> str:
    """Docker's own normalization: `python` → `docker.io/library/python:latest`; a digest wins over a tag.

    Only the reference is keyed here; the base image's id (its digest where it was resolved) enters the request
    key when building (request_key), so a moved tag does not reuse an image built on the old one.
    """
    text = reference.strip()
    name, at, image_digest = text.partition("@")
    first, slash, rest = name.partition("/")
    if not slash:
        name = f"docker.io/library/{name}"
    elif not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}"
    elif first == "index.docker.io":
        name = f"docker.io/{rest}"
    if at:
        return f"{name.rsplit(':', 1)[0] if ':' in name.rpartition('/')[2] else name}@{image_digest.lower()}"
    if ":" not in name.rpartition("/")[2]:
        name += ":latest"
    return name


# ---------------------------------------------------------------------------------------------------------------
# the key recipes


def spec_key(form: dict) -> str:
    """The spec key: the canonical form (CanonicalSpec.form, see canonical_spec for what enters it) under the
    key format and the template version. What the lock cache and the request key start from."""
    return key_of(form)


def request_key(spec_key: str, base_id: str, template_digest: str | None, local_channels=(),
                platform: str = "linux-64") -> str:
    """What a build request is keyed by before locking: the spec key, the exact base image (its id: a moved tag
    is another base), the user template's digest, and the current content of the spec's local channels
    (re-indexing one must not serve the image of its old packages)."""
    value = {"spec": spec_key, "base": base_id, "template": template_digest}
    if local_channels:
        from .channels import channel_identity

        value["channels"] = [channel_identity(url, [platform]) for url in local_channels]
    return key_of(value)


def template_digest(template) -> str | None:
    """The user template's bytes (None: envbuild's own, which TEMPLATE_VERSION stands for)."""
    if not template:
        return None
    with open(template, "rb") as file:
        return digest(file.read())


def file_memo_key(file: str | os.PathLike, base_image: str | None) -> str:
    """What the byte-for-byte fast path remembers a spec file by: its absolute path (symlinks resolved), its bytes
    and the `--base-image` override (the same bytes on another base are another environment).

    Computed on every cache hit, so not through `key_of`: its json would cost the hit milliseconds of imports.
    The three fields are joined by NUL, which neither a path nor an image reference can hold; no override and an
    empty one (which the CLI ignores) are the same memo.
    """
    with open(file, "rb") as spec:
        content = digest(spec.read())
    fields = "\0".join((os.path.realpath(file), content, base_image or ""))
    return f"{KEY_FORMAT}:{digest(fields)}"


def lock_request_key(spec: CanonicalSpec, platforms: list[str], *, python_version: str | None = None,
                     glibc: str | None = None, exclude_newer=None) -> str:
    """What a lock is cached under: the spec key, a given lock file's bytes, the channels' current content, the
    target platforms, the cut-off date (an aware datetime), the Python and glibc of the base, and the variables
    that change a solve (virtual-package overrides, pip's index variables).

    Channel identity (channels.channel_identity): a local channel by the size and modification time of each
    repodata file the solve reads, so re-indexing it invalidates the lock; a remote one by its URL alone
    (asking it for an ETag would cost a round trip on every hit): a lock stays put until `--refresh`, and
    `--exclude-newer` makes a remote solve repeatable anyway.
    """
    from pathlib import Path

    from .channels import channel_identity, public_text

    return key_of({
        "spec": spec.key,
        "lock_file": digest(Path(spec.lock_file).read_bytes()) if spec.lock_file else None,
        "channels": [channel_identity(url, platforms) for url in spec.solver_channels],
        "platforms": list(platforms),
        "exclude_newer": exclude_newer.isoformat() if exclude_newer else None,
        "python": python_version,
        "glibc": glibc,
        # pip's index variables without their credentials: a rotated token is the same index.
        "overrides": {name: public_text(os.environ[name]) for name in sorted(_SOLVE_VARIABLES) if name in os.environ},
    })


_SOLVE_VARIABLES = {"CONDA_OVERRIDE_CUDA", "CONDA_OVERRIDE_GLIBC", "CONDA_OVERRIDE_OSX", "PIP_INDEX_URL",
                    "PIP_EXTRA_INDEX_URL"}


def lock_key(packages) -> str:
    """The lock key: manager, URL (without fragment) and sha256 of every package (its md5, for an older lock
    file that has no sha256), sorted. Only what gets installed: two specs that resolve to the same packages share
    one image."""
    return key_of(sorted([p.manager, p.url.split("#")[0], p.sha256 or f"md5:{p.md5 or ''}"] for p in packages))


def lock_set_key(locks) -> str:
    """The key of a multi-platform lock: each platform's lock key."""
    return key_of({lock.platform: lock.key for lock in locks})


def build_plan_key(dockerfile: str, base_id: str, context: dict) -> str:
    """The build key: the Dockerfile text, the base image's id, and each context file's sha256 by its path.
    Labels that only describe (name, version) are applied at build time and stay out."""
    return key_of({"dockerfile": dockerfile, "base": base_id,
                   "context": {name: item.digest() for name, item in sorted(context.items())}})


def base_recipe_key(*, dockerfile: str | None, parent: str | None, context_digest: str | None = None,
                    build_args: dict | None = None, made_by: str | None = None) -> str:
    """The recipe key of a base image: what it is made from, the name under which the first machine that makes it
    pushes it to the shared registry, and every other machine pulls it (bases.py, shared_bases.py).

    What enters it: the Dockerfile text (None for a root image made without one); the parent: the recipe key of a
    base envbuild makes itself, the repo digest of an image pulled from a registry, or the reference as written in a
    user's Dockerfile; the build context's digest (directory_digest, with the Dockerfile's path); the build
    arguments; how a root image is made (`made_by`, e.g. debootstrap's suite and variant); and TEMPLATE_VERSION.

    A recipe is not its bytes: debootstrap, `apt-get install` and a moved upstream tag give other bytes on every
    machine and every day. That is why a base is shared rather than rebuilt: the pushed bytes become everyone's
    base, and every key built on it takes its image id, exact on every machine that pulled it.
    """
    return key_of({"dockerfile": digest(dockerfile) if dockerfile is not None else None, "parent": parent,
                   "context": context_digest, "build_args": dict(sorted((build_args or {}).items())),
                   "made_by": made_by, "template": TEMPLATE_VERSION})


def user_base_recipe_key(spec: CanonicalSpec) -> str:
    """base_recipe_key of a user's own base: its build context's content and Dockerfile path, or its Dockerfile
    text. Its parents are the FROM lines as written in that text: the first machine's build of them is the base
    everyone shares. An edit builds a new base; anything else reuses it."""
    if spec.build_context is not None:
        # The Dockerfile path matters: .dockerignore may exclude it, and the digest must still see its edits.
        return base_recipe_key(dockerfile=None, parent=None,
                               context_digest=f"{spec.build_context_digest}:{spec.dockerfile_path}")
    return base_recipe_key(dockerfile=spec.base_dockerfile, parent=None)


def stage_key(stage_text: str, parent: str, context: dict[str, str]) -> str:
    """The key of one installer stage of a rendered Dockerfile, the name of its layer-cache source in the shared
    registry (layer_cache.py): the stage's instructions, its parent (the image id of the image it starts FROM, or
    the key of the stage it starts from), and the sha256 of each context file it reads, by path. Two builds that
    push the same stage key pushed the same stage: a cache source that cannot collide."""
    return key_of({"stage": stage_text, "parent": parent, "context": dict(sorted(context.items()))})


# ---------------------------------------------------------------------------------------------------------------
# files


def lock_file_digest(path: str | Path, platform: str, categories=("main",)) -> str:
    """Digest of what a conda-lock file lists for `platform`: each package's manager, name, url, hash, category;
    with extras chosen (`categories` beyond main), of those categories' packages and the categories' names.

    Comments, ordering, metadata and other platforms' packages do not change the image, so they do not count.
    Without extras every category's packages count, as they did when the v1 keys were recorded: a change of dev
    packages then costs a rebuild it need not, but no v1 key moves.
    """
    import json
    from pathlib import Path

    from .lockfile import lock_file_packages

    if tuple(categories) == ("main",):
        value = lock_file_packages(Path(path), platform, categories=None)
    else:
        value = {"categories": sorted(categories), "packages": lock_file_packages(Path(path), platform, categories)}
    return digest(json.dumps(value, sort_keys=True, separators=(",", ":")))
