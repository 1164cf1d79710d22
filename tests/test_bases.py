"""`envbuild base build`: envbuild's own bases from dockerfiles/, built once per engine and used by image id."""

from __future__ import annotations

import json

import pytest

from envbuild.bases import CPU_MPI_BASE, gpu_base_tag
from envbuild.gpu import stack_for_cuda
from tests.conftest import docker
from tests.support.cli import cli

pytestmark = pytest.mark.engine


def base_build(*args: str) -> dict:
    return json.loads(cli("base", "build", "--json", "-q", *args).stdout)


def test_cpu_base_has_python_and_a_working_openmpi(engine):
    built = base_build("--cpu")
    assert built["image"] == CPU_MPI_BASE and built["python"] == "3.11"
    assert built["id"] == engine.inspect_image(CPU_MPI_BASE)["Id"]
    assert "Open MPI" in docker("run", "--rm", CPU_MPI_BASE, "mpirun", "--version").stdout
    # mpirun really launches processes in the image (as root, which the base allows).
    ranks = docker("run", "--rm", CPU_MPI_BASE, "mpirun", "--oversubscribe", "-n", "2", "python3", "-c",
                   "import os; print('rank', os.environ['OMPI_COMM_WORLD_RANK'])").stdout.split("\n")
    assert sorted(line for line in ranks if line) == ["rank 0", "rank 1"]


def test_gpu_base_build_names_its_versions_and_is_not_rebuilt(engine):
    stack = stack_for_cuda("12.4")
    built = base_build("--cuda", "12.4")
    assert built["image"] == gpu_base_tag(stack) and built["cuda"] == "12.4"
    assert base_build("--cuda", "12.4")["id"] == built["id"]


def test_an_unknown_cuda_is_refused_with_the_known_ones(engine):
    done = cli("base", "build", "--cuda", "10.2", check=False)
    assert done.returncode == 2 and "12.4" in done.stderr and "Traceback" not in done.stderr
