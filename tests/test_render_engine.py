"""Rendered Dockerfiles on the real engine: hostile values stay inert, the CA bundle never reaches a layer, a
user's Dockerfile or build context is built as given with the managed environment appended, user-managed
environments install nothing, and the classic-builder variant builds without BuildKit."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import uuid

import pytest

import envbuild
from envbuild.errors import RenderError
from envbuild.spec import Environment
from tests.conftest import DOCKER, docker, write
from tests.support.cli import cli

pytestmark = pytest.mark.engine

HOSTILE = {
    "CMD_SUBST": "$(touch /pwned-subst)",
    "BACKTICKS": "`touch /pwned-backticks`",
    "QUOTES": "\"'; touch /pwned-quotes; echo '\"",
    "DOLLAR": "${HOME} $PATH",
    "CHAIN": "a && touch /pwned-chain || b; c | d > /pwned-redirect",
    "BACKSLASH": "ends with a backslash \\",
    "UNICODE": "caf\u00e9 \u2603",
}


def run_python(image: str, code: str) -> str:
    return docker("run", "--rm", "--entrypoint", "", image, "python3", "-c", code).stdout.strip()


def labels_of(image: str) -> dict:
    return json.loads(docker("image", "inspect", "--format", "{{json .Config.Labels}}", image).stdout)


def test_hostile_values_build_into_an_image_where_they_are_literal(engine, home):
    env = Environment(name='evil"name\nLABEL x=$(id)')
    env.description = "`id` $(touch /pwned-label)"
    env.environment_variables = dict(HOSTILE)
    image = envbuild.build(env)
    seen = json.loads(run_python(image.image, f"import os, json; print(json.dumps({{k: os.environ[k] for k in "
                                                 f"{sorted(HOSTILE)!r}}}))"))
    assert seen == HOSTILE
    assert docker("run", "--rm", image.image, "sh", "-c", "ls / | grep -c pwned", check=False).stdout.strip() == "0"
    labels = labels_of(image.image)
    assert labels["org.opencontainers.image.title"] == env.name
    assert labels["org.opencontainers.image.description"] == env.description


def test_a_value_that_would_start_a_new_instruction_is_refused_before_building(engine, home):
    env = Environment(name="newline")
    env.environment_variables = {"SAFE": "ok\nRUN rm -rf /"}
    with pytest.raises(RenderError, match="control character"):
        envbuild.build(env)


def _layer_files(image: str):
    """(path, bytes) of every file in every layer of `image`, from `docker save`."""
    saved = subprocess.run([DOCKER, "save", image], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
        for member in outer.getmembers():
            if not member.isfile():
                continue
            data = outer.extractfile(member).read()
            yield member.name, data
            if member.name.endswith("layer.tar"):
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    for item in layer.getmembers():
                        if item.isfile():
                            yield f"{member.name}:{item.name}", layer.extractfile(item).read()


def test_the_ca_bundle_never_reaches_a_layer_or_the_history(engine, home, tmp_path, monkeypatch):
    marker = f"envbuild-test-ca-{uuid.uuid4().hex}"
    host_bundle = open("/etc/ssl/certs/ca-certificates.crt", "rb").read()
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(f"# {marker}\n".encode() + host_bundle)
    monkeypatch.setenv("ENVBUILD_CA_BUNDLE", str(bundle))
    env = Environment(name="ca-check")
    env.python.conda_dependencies.add_pip_package("six==1.16.0")
    env.environment_variables = {"CA_TEST_RUN": marker[-12:]}  # a fresh image for this run
    image = envbuild.build(env)
    # pip reached PyPI through the intercepting proxy, so the bundle was there during the build...
    assert run_python(image.image, "import six; print(six.__version__)") == "1.16.0"
    # ...and is nowhere in the image: no layer file holds it, the history does not mention it.
    leaks = [name for name, data in _layer_files(image.image) if marker.encode() in data]
    assert leaks == []
    history = docker("history", "--no-trunc", image.image).stdout
    assert marker not in history and "BEGIN CERTIFICATE" not in history
    assert docker("run", "--rm", image.image, "test", "-e", "/run/secrets/ca", check=False).returncode != 0


def test_user_dockerfile_is_built_as_given_and_the_managed_environment_appended(engine, home):
    env = Environment(name="user-dockerfile")
    env.docker.base_dockerfile = ("FROM envbuild/python:3.11-bookworm\n"
                                  "RUN echo 'from the user Dockerfile' > /user-step.txt\n")
    env.python.conda_dependencies.add_pip_package("six==1.16.0")
    image = envbuild.build(env)
    out = docker("run", "--rm", image.image, "sh", "-c",
                 "cat /user-step.txt && python -c 'import six; print(six.__version__)'").stdout.split("\n")
    assert out[:2] == ["from the user Dockerfile", "1.16.0"]
    # The user's part is its own image, named by its content: a second environment on it reuses it.
    base = labels_of(image.image)["org.opencontainers.image.base.name"]
    assert base.startswith("envbuild/user-base:")
    again = Environment(name="same-dockerfile-other-env")
    again.docker.base_dockerfile = env.docker.base_dockerfile
    again.environment_variables = {"EXTRA": "1"}
    assert labels_of(envbuild.build(again).image)["org.opencontainers.image.base.name"] == base


def test_build_context_without_packages_is_built_as_given(engine, home, tmp_path):
    context = tmp_path / "context"
    write(context / "hello.txt", "hello from the context\n")
    write(context / "Dockerfile", "FROM envbuild/python:3.11-bookworm\nCOPY hello.txt /hello.txt\n")
    env = Environment(name="context-only")
    env.docker.build_context = str(context)
    image = envbuild.build(env)
    assert docker("run", "--rm", image.image, "cat", "/hello.txt").stdout == "hello from the context\n"
    assert docker("run", "--rm", image.image, "test", "-e", "/opt/env", check=False).returncode != 0


def test_user_managed_environment_uses_the_base_python_as_is(engine, home):
    env = Environment(name="user-managed")
    env.python.user_managed_dependencies = True
    env.python.conda_dependencies.add_pip_package("six==1.16.0")
    env.environment_variables = {"MANAGED_BY": "the user"}
    image = envbuild.build(env)
    probe = run_python(image.image, "import os, sys; print(sys.prefix, os.environ['MANAGED_BY'])")
    assert probe == "/usr the user"
    assert docker("run", "--rm", image.image, "test", "-e", "/opt/env", check=False).returncode != 0


def test_classic_variant_builds_without_buildkit(engine, home, tmp_path):
    from envbuild.builder import build_image, find_builder

    env = Environment(name="classic")
    env.python.user_managed_dependencies = True
    env.environment_variables = dict(HOSTILE)
    plan = envbuild.render(env, buildkit=False)
    assert "--mount" not in plan.dockerfile
    tag = f"envbuild-test/classic:{uuid.uuid4().hex[:12]}"
    try:
        build_image(plan.write_context(tmp_path / "context"), tag, builder=find_builder("classic"))
        seen = json.loads(run_python(tag, f"import os, json; print(json.dumps({{k: os.environ[k] for k in "
                                          f"{sorted(HOSTILE)!r}}}))"))
        assert seen == HOSTILE
    finally:
        docker("rmi", tag, check=False)


def _cached_steps(build_log: str) -> dict[str, bool]:
    """Each step of a BuildKit plain-progress log (its instruction text) → whether it came from the layer cache."""
    import re

    names = {m.group(1): m.group(2) for m in re.finditer(r"^#(\d+) \[[^\]]+\] (.+)$", build_log, re.M)}
    cached = set(re.findall(r"^#(\d+) CACHED$", build_log, re.M))
    return {text: number in cached for number, text in names.items()}


def test_a_change_rebuilds_only_the_layers_after_it(engine, home, tmp_path):
    from envbuild.builder import build_image
    from envbuild.config import host_ca_bundle

    def build(name: str, six: str, **variables: str) -> dict[str, bool]:
        env = Environment(name="layers")
        env.python.conda_dependencies.add_pip_package("idna==3.10")
        env.python.conda_dependencies.add_pip_package(f"six=={six}")
        env.environment_variables = variables
        context = envbuild.render(env).write_context(tmp_path / name)
        # A comment unique to this run: the pip step cannot come from an earlier run's layers.
        with (context / "pip" / "requirements.txt").open("a") as requirements:
            requirements.write(f"# {run}\n")
        tag = f"envbuild-test/layers:{uuid.uuid4().hex[:12]}"
        try:
            _, log = build_image(context, tag, secrets={"ca": host_ca_bundle()})
        finally:
            docker("rmi", tag, check=False)
        return _cached_steps(log)

    def step(steps: dict[str, bool], starts: str) -> bool:
        return next(cached for text, cached in steps.items() if text.startswith(starts))

    run = uuid.uuid4().hex
    first = build("first", "1.16.0", STAGE="one")
    assert not step(first, "RUN --mount=type=bind,source=pip")
    other_variable = build("variable", "1.16.0", STAGE="two")
    assert step(other_variable, "COPY --from=env-installer") and step(other_variable, "COPY --from=pip-installer")
    other_package = build("package", "1.17.0", STAGE="one")
    assert step(other_package, "COPY --from=env-installer")
    assert not step(other_package, "RUN --mount=type=bind,source=pip")


def test_the_image_carries_no_installer_cache_or_context(engine, home):
    env = Environment(name="six")
    env.python.conda_dependencies.add_pip_package("six==1.16.0")
    leftovers = docker("run", "--rm", envbuild.build(env).image, "sh", "-c",
                       "ls -d /root/.cache/pip /root/.cache/uv /opt/envbuild-installer /opt/envbuild-pip "
                       "/tmp/envbuild 2>/dev/null; true").stdout
    assert leftovers == ""


def test_render_command_writes_a_classic_context_that_builds_as_it_is(engine, home, tmp_path):
    spec = write(tmp_path / "requirements.txt", "six==1.16.0\n")
    context = tmp_path / "context"
    done = cli("render", str(spec), "--classic", "--context", str(context))
    assert (context / "Dockerfile").read_text() == done.stdout
    assert "--mount" not in done.stdout and "COPY pip /tmp/envbuild/pip" in done.stdout
    assert "--hash=sha256:" in (context / "pip" / "requirements.txt").read_text()
