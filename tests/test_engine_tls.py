"""One engine for everything: with a TLS DOCKER_HOST (or a docker context) naming a second, remote-like engine, the
cache-hit check, the builders (BuildKit CLI and the SDK's classic builder) and the image edits all reach that
engine, and the main engine sees none of it. REQUESTS_CA_BUNDLE is set, as on these machines: a client that let it
replace the engine's CA would fail verification here."""

from __future__ import annotations

import os
import subprocess

import pytest

import envbuild
from envbuild.bases import DEFAULT_BASE, ROOT_IMAGE
from envbuild.builder import build_image, find_builder
from envbuild.engine import Engine, current_endpoint
from envbuild.engine.endpoint import DEFAULT_HOST, Endpoint
from envbuild.runner import run_image
from tests.conftest import DOCKER, write
from tests.support.cache_helpers import unique_template
from tests.support.cli import cli_json
from tests.support.second_engine import second_engine

pytestmark = pytest.mark.engine

SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@pytest.fixture(scope="module")
def remote(engine, tmp_path_factory):
    """A second engine on tcp://127.0.0.1:PORT with --tlsverify, holding the default base (and its root)."""
    with second_engine(tmp_path_factory.mktemp("machine-b")) as started:
        started.load_images(DEFAULT_BASE, ROOT_IMAGE)
        yield started


@pytest.fixture
def over_tls(remote, monkeypatch, home):
    """This process and its children pointed at the remote engine the way a user does it: the TLS variables."""
    for name, value in remote.tls_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    if os.path.exists(SYSTEM_CA_BUNDLE):  # as on these machines: requests would prefer it to the engine's CA
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", SYSTEM_CA_BUNDLE)
    return remote


def on_main_engine(ref: str) -> str | None:
    engine = Engine(Endpoint(DEFAULT_HOST))
    try:
        return engine.image_id(ref)
    finally:
        engine.close()


def test_a_build_over_a_tls_docker_host_lands_where_the_cache_hit_check_looks(over_tls, tmp_path, home):
    assert current_endpoint().host == over_tls.tcp and current_endpoint().tls_dir == str(over_tls.client_certs)
    spec = write(tmp_path / "requirements.txt", "six\n")
    template = unique_template(tmp_path)
    built = cli_json("build", str(spec), "--template", str(template), "-q")
    assert built["source"] == "built"

    # The image is on the TLS engine (asked over its unix socket, not through envbuild), not on the main one.
    assert over_tls.docker("image", "inspect", "--format", "{{.Id}}", built["image"]).stdout.strip() == built["id"]
    assert on_main_engine(built["image"]) is None
    # The hit path asks the same engine: a hit, not "gone from the engine" and a rebuild.
    again = cli_json("build", str(spec), "--template", str(template))
    assert (again["source"], again["id"]) == ("cache", built["id"])
    # The library finds it there too, and runs its command there.
    image = envbuild.build(envbuild.Environment.from_pip_requirements("six", spec), template=template)
    assert (image.source, image.id) == ("cache", built["id"])
    ran = run_image(image, ["python", "-c", "import six; print(six.__name__)"], workdir=tmp_path)
    assert ran.stdout.strip() == "six", ran.stderr

    engine = Engine()
    try:
        assert engine.image_id(built["image"]) == built["id"]
        engine.tag(built["image"], "envbuild-tls-test/copy:1")
        assert engine.image_id("envbuild-tls-test/copy:1") == built["id"]
        assert engine.remove("envbuild-tls-test/copy:1", prune=False) is True
        assert engine.remove("envbuild-tls-test/copy:1") is False
        assert engine.image_id(built["image"]) == built["id"]  # removing a second name kept the image
    finally:
        engine.close()


def test_the_classic_builder_reaches_the_tls_engine_through_the_sdk(over_tls, tmp_path):
    context = tmp_path / "context"
    write(context / "Dockerfile", f"FROM {DEFAULT_BASE}\nRUN echo classic > /built-by\n")
    tag = "envbuild-tls-test/classic:1"
    image_id, _ = build_image(context, tag, builder=find_builder("classic"))
    assert over_tls.docker("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip() == image_id
    assert on_main_engine(tag) is None


def test_a_docker_context_names_the_engine_for_the_hit_check_and_the_builder(remote, monkeypatch, tmp_path, home):
    config = tmp_path / "docker-config"
    for name in ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    certs = remote.client_certs
    for command in (["context", "create", "machine-b", "--docker",
                     f"host={remote.tcp},ca={certs / 'ca.pem'},cert={certs / 'cert.pem'},key={certs / 'key.pem'}"],
                    ["context", "use", "machine-b"]):
        done = subprocess.run([DOCKER, *command], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    endpoint = current_endpoint()
    assert (endpoint.host, endpoint.source) == (remote.tcp, "context machine-b")

    context = tmp_path / "context"
    write(context / "Dockerfile", f"FROM {DEFAULT_BASE}\nRUN echo buildkit > /built-by\n")
    tag = "envbuild-tls-test/context:1"
    image_id, _ = build_image(context, tag)  # a BuildKit CLI, pointed at the context's engine by the adapter
    assert Engine().image_id(tag) == image_id
    assert remote.docker("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip() == image_id
    assert on_main_engine(tag) is None

    # DOCKER_HOST wins over the context, as it does for the docker CLI.
    monkeypatch.setenv("DOCKER_HOST", DEFAULT_HOST)
    assert current_endpoint() == Endpoint(DEFAULT_HOST) and Engine().image_id(tag) is None
