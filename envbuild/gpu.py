"""GPU stacks: which CUDA runtime, cuDNN, NCCL and driver go together, and which one an environment gets.

The compatibility matrix is data (envbuild/data/gpu-matrix.json), checked against published releases: each stack
is a CUDA release with the cuDNN and NCCL builds the framework wheels pin for it, and the framework releases
built on it. An environment asks for a GPU with `docker.gpu` and/or `docker.cuda`; framework pins in its
dependencies (torch, pytorch, tensorflow) narrow the choice. keys.canonical_spec decides it once, from the
parsed package records, before the first key:

* a pin whose builds need another CUDA than the one asked for is an error that names the CUDA it needs;
* with no CUDA asked for, the newest stack consistent with every pin is taken;
* a conda `cuda-version` pin asks for its CUDA like docker.cuda does, and the two must agree.
* a pin of one CUDA build (`torch==2.5.1+cu121`) asks for that CUDA the same way; `+cpu` in a GPU
  environment, or a CUDA the matrix lacks, is refused at the pin's line.

Where the stack comes from (`source`):
* "pypi": envbuild's GPU base image, built from dockerfiles/gpu.Dockerfile with the nvidia-*-cu12 wheels
  (works offline of any image registry);
* "vendor": the nvidia/cuda image of the stack plus OpenMPI (dockerfiles/gpu-vendor.Dockerfile), where a
  registry can be reached;
* "conda": the environment's own lock carries cuda-version/cudnn/nccl; the base is the CPU + OpenMPI image.
The chosen CUDA becomes the `__cuda` virtual package of the solve (CONDA_OVERRIDE_CUDA), so GPU locks solve on
machines without a GPU.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

from .errors import SpecError

MATRIX = Path(__file__).resolve().parent / "data" / "gpu-matrix.json"
SOURCES = ("pypi", "vendor", "conda")
# Distribution names under which each framework is pinned (pip, conda).
FRAMEWORK_NAMES = {"torch": "torch", "pytorch": "torch", "tensorflow": "tensorflow",
                   "tensorflow-gpu": "tensorflow", "tensorflow-cpu": "tensorflow"}
_CONDA_GPU_PACKAGES = ("cuda-version", "cudnn", "nccl")


@dataclass(frozen=True)
class GpuStack:
    cuda: str  # major.minor: what CONDA_OVERRIDE_CUDA / __cuda is set to
    cuda_runtime: str
    cudnn: str
    nccl: str
    min_driver: str
    vendor_image: str
    frameworks: dict[str, tuple[str, ...]] = field(hash=False)

    def build_args(self) -> dict[str, str]:
        """The ARGs of dockerfiles/gpu.Dockerfile for this stack."""
        return {"CUDA_RUNTIME": self.cuda_runtime, "CUDNN": self.cudnn, "NCCL": self.nccl}

    def describe(self) -> str:
        return (f"CUDA {self.cuda} (runtime {self.cuda_runtime}), cuDNN {self.cudnn}, NCCL {self.nccl}, "
                f"driver >= {self.min_driver}")


@lru_cache(maxsize=None)
def stacks() -> tuple[GpuStack, ...]:
    """Every stack of the matrix, oldest CUDA first."""
    data = json.loads(MATRIX.read_text(encoding="utf-8"))
    found = tuple(GpuStack(cuda=s["cuda"], cuda_runtime=s["cuda_runtime"], cudnn=s["cudnn"], nccl=s["nccl"],
                           min_driver=s["min_driver"], vendor_image=s["vendor_image"],
                           frameworks={k: tuple(v) for k, v in s["frameworks"].items()})
                  for s in data["stacks"])
    return tuple(sorted(found, key=lambda s: _version_tuple(s.cuda)))


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def framework_pins(conda: Sequence, pip: Sequence) -> dict[str, str]:
    """Framework → version constraint (PEP 440 text) from the package records (packages.PackageRecord)."""
    pins: dict[str, str] = {}
    for record in pip:
        framework = FRAMEWORK_NAMES.get(record.name)
        if framework and record.constraint:
            pins[framework] = record.constraint
    for record in conda:
        framework = FRAMEWORK_NAMES.get(record.name)
        constraint = _pep440(record.constraint) if framework else None
        if constraint:
            pins[framework] = constraint
    return pins


def _pep440(conda_version: str) -> str | None:
    """A conda version spec (canonical, packages.canonical_conda_version) in PEP 440, where it has one:
    `2.1.*` → `==2.1.*`, `2.1` → `==2.1`, `>=2,<3` stays; alternatives (`|`) have none."""
    if conda_version in ("", "*") or "|" in conda_version:
        return None
    parts = []
    for constraint in conda_version.split(","):
        if constraint[:1].isdigit():
            constraint = "==" + constraint
        parts.append(constraint)
    return ",".join(parts)


def select_stack(*, gpu: bool, cuda: str | None, conda: Sequence = (), pip: Sequence = (),
                 where: Callable[[str], str | None] = lambda name: None) -> GpuStack | None:
    """The GPU stack an environment gets (None for a CPU one): `gpu`/`cuda` as docker.gpu/cuda say, `conda` and
    `pip` its package records; `where(name)` is the file:line of the pip package `name` (for messages). Raises
    SpecError for inconsistent requests."""
    if not (gpu or cuda):
        return None
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    asked = cuda
    known = stacks()
    if asked is not None and not re.fullmatch(r"\d+\.\d+(\.\d+)?", str(asked)):
        raise SpecError(f"docker.cuda {asked!r} is not a CUDA version", fix="write it as MAJOR.MINOR, e.g. 12.4")
    from_conda = conda_cuda_version(conda)
    if from_conda and asked and not _same_minor(from_conda, str(asked)):
        raise SpecError(f"the conda dependencies pin cuda-version {from_conda} but docker.cuda is {asked}",
                        fix=f"make them agree: set docker.cuda to {from_conda} or change the cuda-version pin")
    asked = asked or from_conda
    for record, build in local_builds(pip):
        asked = _check_local_build(record, build, asked, known, where(record.name))
    candidates = [s for s in known if asked is None or _same_minor(s.cuda, str(asked))]
    if not candidates:
        raise SpecError(f"CUDA {asked} is not in envbuild's GPU matrix",
                        fix=f"ask for one of {', '.join(s.cuda for s in known)}")
    for framework, constraint in sorted(framework_pins(conda, pip).items()):
        try:
            wanted = SpecifierSet(constraint)
        except InvalidSpecifier:
            continue  # a conda spelling PEP 440 cannot read: the resolver reports it where it belongs
        building = [s for s in known if any(wanted.contains(v) for v in s.frameworks.get(framework, ()))]
        if not building:
            continue  # a release the matrix does not know: nothing to check it against
        fitting = [s for s in candidates if s in building]
        if not fitting:
            needs = ", ".join(f"CUDA {s.cuda}" for s in building)
            raise SpecError(
                f"{framework}{constraint} is built for {needs}, not CUDA {asked}",
                fix=f"set docker.cuda to {building[-1].cuda} (or --cuda {building[-1].cuda}), or pin {framework} "
                    f"to a release built for CUDA {asked}: "
                    f"{', '.join(v for s in candidates for v in s.frameworks.get(framework, ())) or 'none known'}",
            )
        candidates = fitting
    return candidates[-1]


def local_builds(pip: Sequence) -> list[tuple]:
    """(record, local version) of every framework pin to one build (`torch==2.5.1+cu121`, `+cpu`): the wheel
    indexes of PyTorch name the CUDA a wheel is built for in its local version, as pip users pin it."""
    out = []
    for record in pip:
        if FRAMEWORK_NAMES.get(record.name):
            found = re.search(r"==\s*[\w.!]+\+([A-Za-z0-9.]+)", record.constraint)
            if found:
                out.append((record, found.group(1).lower()))
    return out


def _check_local_build(record, build: str, asked: str | None, known: Sequence[GpuStack], where: str | None) -> str:
    """The CUDA a `+cuXYZ` pin needs (cu121 → 12.1), checked against the CUDA asked for and the matrix; a `+cpu`
    build in a GPU environment is refused."""
    version = record.constraint.split("==", 1)[1].split("+", 1)[0].strip()
    builds = ", ".join(f"+cu{s.cuda.replace('.', '')}" for s in known)
    if build == "cpu":
        raise SpecError(f"{record.spelling} is the CPU build of {record.name}, in a GPU environment", where=where,
                        fix=f"pin one of its CUDA builds ({builds}, from https://download.pytorch.org/whl/cuXYZ), "
                            "or build for the CPU (docker.gpu false)")
    digits = re.fullmatch(r"cu(\d)(\d)|cu(\d\d)(\d)", build)
    if not digits:
        return asked
    needs = ".".join(d for d in digits.groups() if d)
    in_matrix = any(_same_minor(s.cuda, needs) for s in known)
    if asked is not None and not _same_minor(needs, str(asked)):
        instead = f"ask for CUDA {needs} (docker.cuda {needs} or --cuda {needs}), or " if in_matrix else ""
        raise SpecError(f"{record.spelling} is built for CUDA {needs}, not CUDA {asked}", where=where,
                        fix=f"{instead}pin the build for CUDA {asked}: "
                            f"{record.name}=={version}+cu{''.join(str(asked).split('.')[:2])}")
    if not in_matrix:
        raise SpecError(f"{record.spelling} is built for CUDA {needs}, which is not in envbuild's GPU matrix",
                        where=where, fix=f"pin a build of {record.name} {version} for a CUDA envbuild has ({builds}),"
                                         " or ask for one with docker.cuda / --cuda")
    return needs


def conda_cuda_version(conda: Sequence) -> str | None:
    """The CUDA a conda `cuda-version` pin asks for (conda-forge's way of choosing the CUDA of a solve):
    `cuda-version=12.4` (`12.4.*`), `cuda-version 12.4` or `==12.4`."""
    for record in conda:
        if record.name == "cuda-version":
            match = re.match(r"(?:==)?(\d+\.\d+)", record.constraint)
            if match:
                return match.group(1)
    return None


def _same_minor(stack_cuda: str, asked: str) -> bool:
    return _version_tuple(stack_cuda)[:2] == _version_tuple(asked)[:2]


def stack_for_cuda(cuda: str | None) -> GpuStack:
    """The stack of CUDA `cuda` (major.minor), or the newest one."""
    return select_stack(gpu=True, cuda=cuda)


def source_of(conda: Sequence) -> str:
    """Where the GPU libraries come from: the lock (conda) when the conda records name them, else envbuild's
    base (pypi)."""
    return "conda" if {r.name for r in conda} & set(_CONDA_GPU_PACKAGES) else "pypi"
