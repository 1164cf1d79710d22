"""An existing conda environment (a prefix with conda-meta/) as a spec: every installed package, pinned.

conda keeps one JSON record per installed package in conda-meta/; reading those needs no conda. Each package is
pinned to its channel, version and build, and pip-installed distributions become `name==version` pip requirements.
`find_conda_environment` looks for an environment by name where conda keeps them, as the Azure ML SDK's
`Environment.from_existing_conda_environment` does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import SpecError
from .source import Origin


def load_conda_prefix(prefix: Path, env) -> None:
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
    from ..channels import normalize_channel

    channel = (record.get("channel") or "").rstrip("/")
    if not channel and record.get("url"):
        channel = record["url"].rsplit("/", 2)[0]
    if subdir and channel.endswith("/" + subdir):
        channel = channel[: -len(subdir) - 1]
    if channel in ("", "pypi", "<unknown>", "@"):
        return None
    return normalize_channel(channel)

