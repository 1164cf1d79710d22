"""The GPU matrix and stack selection (no engine), and a real GPU image: CUDA runtime, cuDNN and NCCL from PyPI
wheels on the local Debian base with OpenMPI, checked without a GPU (libraries load, MPI tools run)."""

from __future__ import annotations

import pytest

from envbuild.errors import SpecError
from envbuild.gpu import stacks
from envbuild.keys import canonical_spec
from envbuild.spec import Environment
from tests.support.cli import cli


def select_stack(env: Environment):
    """The stack keys.canonical_spec decides for `env`, once, before the first key."""
    return canonical_spec(env).gpu


def gpu_env(*pip: str, conda: tuple[str, ...] = (), cuda: str | None = None) -> Environment:
    env = Environment(name="gpu")
    env.docker.gpu = True
    env.docker.cuda = cuda
    for requirement in pip:
        env.python.conda_dependencies.add_pip_package(requirement)
    for spec in conda:
        env.python.conda_dependencies.add_conda_package(spec)
    return env


def test_the_matrix_is_ordered_and_complete():
    known = stacks()
    assert [s.cuda for s in known] == sorted((s.cuda for s in known), key=lambda v: tuple(map(int, v.split("."))))
    for stack in known:
        assert stack.cuda_runtime.startswith(stack.cuda + ".")
        assert stack.cudnn and stack.nccl and stack.min_driver
    # Published pairs: torch 2.5.1's wheels pin these exact CUDA libraries.
    cuda124 = next(s for s in known if s.cuda == "12.4")
    assert (cuda124.cuda_runtime, cuda124.cudnn, cuda124.nccl) == ("12.4.127", "9.1.0.70", "2.21.5")
    assert "2.5.1" in cuda124.frameworks["torch"]


def test_cpu_environment_has_no_stack():
    assert select_stack(Environment()) is None


def test_an_unpinned_request_gets_the_newest_stack():
    assert select_stack(gpu_env()) == stacks()[-1]


def test_a_torch_pin_picks_the_cuda_it_was_built_for():
    assert select_stack(gpu_env("torch==2.5.1")).cuda == "12.4"
    assert select_stack(gpu_env("torch>=2.4,<2.5")).cuda == "12.1"
    assert select_stack(gpu_env(conda=("pytorch=2.7",))).cuda == "12.6"
    assert select_stack(gpu_env("tensorflow==2.18.0")).cuda == "12.5"


def test_a_torch_pin_for_another_cuda_is_an_error_that_names_the_cuda_it_needs():
    with pytest.raises(SpecError) as caught:
        select_stack(gpu_env("torch==2.5.1", cuda="12.1"))
    message = str(caught.value)
    assert "CUDA 12.4" in message and "12.1" in message and "torch" in message


def test_a_conda_cuda_version_pin_chooses_the_stack_and_must_agree_with_docker_cuda():
    env = gpu_env(conda=("cuda-version=12.4", "cudnn", "nccl"))
    assert select_stack(env).cuda == "12.4" and canonical_spec(env).gpu_source == "conda"
    with pytest.raises(SpecError, match="cuda-version 12.4"):
        select_stack(gpu_env(conda=("cuda-version=12.4",), cuda="12.6"))


def test_unknown_cuda_is_an_error_listing_the_known_ones():
    with pytest.raises(SpecError, match="12.4"):
        select_stack(gpu_env(cuda="11.0"))


def test_the_chosen_cuda_enters_the_key_and_the_solve():
    env = gpu_env("torch==2.6.0")
    chosen = canonical_spec(env)
    assert chosen.cuda == "12.4" and env.docker.cuda is None
    assert chosen.key == gpu_env("torch==2.6.0", cuda="12.4").key  # deciding it is asking for it
    from envbuild.resolver.conda import virtual_packages_for

    cuda = [str(p) for p in virtual_packages_for(chosen, "linux-64") if "__cuda" in str(p)]
    assert cuda and "12.4" in cuda[0]


@pytest.mark.engine
def test_render_command_prints_a_gpu_dockerfile(tmp_path, engine, home):
    spec = tmp_path / "requirements.txt"
    spec.write_text("six==1.16.0\n")
    done = cli("render", str(spec), "--cuda", "12.4")
    assert "FROM envbuild/gpu:cuda12.4.127-cudnn9.1.0.70-nccl2.21.5-bookworm" in done.stdout
    assert 'org.envbuild.cudnn.version="9.1.0.70"' in done.stdout
    # A torch pin built for another CUDA is refused with the CUDA it needs, before anything is built.
    spec.write_text("torch==2.5.1\n")
    refused = cli("render", str(spec), "--cuda", "12.1", check=False)
    assert refused.returncode == 2 and "CUDA 12.4" in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.engine
def test_gpu_base_from_wheels_loads_cuda_cudnn_nccl_and_runs_openmpi(engine):
    from envbuild.bases import build_base
    from envbuild.gpu import stack_for_cuda

    # Built once per engine (its tag names every version) and reused from the layer cache after that.
    base = build_base("gpu", engine, stack=stack_for_cuda("12.4"))
    from tests.conftest import docker

    probe = docker("run", "--rm", base.ref, "python3", "-c",
                   "import ctypes\n"
                   "for name in ('libcudart.so.12', 'libcudnn.so.9', 'libnccl.so.2'):\n"
                   "    ctypes.CDLL(name)\n"
                   "    print('loaded', name)\n").stdout.split()
    assert probe == ["loaded", "libcudart.so.12", "loaded", "libcudnn.so.9", "loaded", "libnccl.so.2"]
    assert "Open MPI" in docker("run", "--rm", base.ref, "mpirun", "--version").stdout
    assert "Open MPI:" in docker("run", "--rm", base.ref, "ompi_info").stdout
    labels = engine.inspect_image(base.ref)["Config"]["Labels"]
    assert labels["org.envbuild.cudnn.version"] == "9.1.0.70"


@pytest.mark.engine
def test_environment_on_the_gpu_stack_builds_and_sees_the_libraries(engine, home):
    import envbuild
    from tests.conftest import docker

    env = gpu_env("six==1.16.0", cuda="12.4")
    image = envbuild.build(env)
    out = docker("run", "--rm", image.image, "python", "-c",
                 "import ctypes, six; ctypes.CDLL('libnccl.so.2'); print(six.__version__)").stdout.strip()
    assert out == "1.16.0"
    labels = engine.inspect_image(image.image)["Config"]["Labels"]
    assert labels["org.envbuild.cuda.version"] == "12.4"


@pytest.mark.engine
def test_gpu_environment_on_a_base_without_the_stack_gets_its_libraries(engine, home):
    import envbuild
    from tests.conftest import docker

    env = gpu_env("six==1.16.0", cuda="12.4")
    env.docker.base_image = "envbuild/python:3.11-bookworm"
    image = envbuild.build(env)
    out = docker("run", "--rm", image.image, "python", "-c",
                 "import ctypes\nfor n in ('libcudart.so.12', 'libcudnn.so.9', 'libnccl.so.2'): ctypes.CDLL(n)\n"
                 "print('loaded')").stdout.strip()
    assert out == "loaded"


@pytest.mark.engine
def test_a_base_with_another_cuda_is_refused(engine):
    from envbuild.bases import base_for_env, gpu_base_tag
    from envbuild.gpu import stack_for_cuda

    env = gpu_env("torch==2.7.1")  # built for CUDA 12.6
    env.docker.base_image = gpu_base_tag(stack_for_cuda("12.4"))  # the base the tests above build
    with pytest.raises(SpecError, match="CUDA 12.6"):
        base_for_env(canonical_spec(env), engine)


@pytest.mark.engine
def test_a_gpu_lock_solves_here_without_a_gpu_and_the_package_lands_on_the_gpu_base(engine, home, conda_channel,
                                                                                    monkeypatch):
    import envbuild
    from envbuild.errors import ResolveError
    from tests.conftest import docker

    def kernel_env(**docker_settings) -> Environment:
        env = Environment(name="kernel")
        env.python.conda_dependencies.add_channel(conda_channel.as_uri())
        env.python.conda_dependencies.add_conda_package("gpu-kernel")  # depends on __cuda >=12
        for name, value in docker_settings.items():
            setattr(env.docker, name, value)
        return env

    monkeypatch.delenv("CONDA_OVERRIDE_CUDA", raising=False)
    with pytest.raises(ResolveError):  # this machine has no GPU: no __cuda unless the stack says so
        envbuild.lock(kernel_env())
    image = envbuild.build(kernel_env(gpu=True, cuda="12.4"))
    out = docker("run", "--rm", image.image, "sh", "-c",
                 "cat /opt/env/share/gpu-kernel/README && ls /usr/local/cuda/lib64 | grep -c libcudnn").stdout.split("\n")
    assert out[0] == "needs a GPU" and int(out[1]) > 0
