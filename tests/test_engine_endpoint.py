"""Which engine the Docker adapter picks, in the docker CLI's order: pure logic over environment variables and a
docker config directory, no engine needed (tests/test_engine_tls.py checks the same against a real TLS engine)."""

from __future__ import annotations

import hashlib
import json

import pytest

from envbuild.engine.client import _split_reference
from envbuild.engine.endpoint import DEFAULT_HOST, current_endpoint
from envbuild.errors import EngineError


@pytest.fixture
def docker_config(tmp_path, monkeypatch):
    for name in ("DOCKER_HOST", "DOCKER_TLS", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    return tmp_path


def add_context(config, name: str, host: str, *, tls_files=(), skip_verify=False):
    """A context as `docker context create` stores it: meta.json and TLS files under sha256(name)."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({"Name": name, "Metadata": {}, "Endpoints": {
        "docker": {"Host": host, "SkipTLSVerify": skip_verify}}}))
    for file in tls_files:
        tls = config / "contexts" / "tls" / digest / "docker"
        tls.mkdir(parents=True, exist_ok=True)
        (tls / file).write_text("PEM")
    return config / "contexts" / "tls" / digest / "docker"


def test_nothing_set_is_the_local_socket(docker_config):
    endpoint = current_endpoint()
    assert (endpoint.host, endpoint.tls_dir, endpoint.source) == (DEFAULT_HOST, None, "default")


def test_docker_host_with_tls_variables_and_the_cli_environment_it_gives(docker_config, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.5:2376")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CONTEXT", "ignored-when-docker-host-is-set")
    endpoint = current_endpoint()
    assert (endpoint.host, endpoint.tls_dir, endpoint.verify) == ("tcp://10.0.0.5:2376", str(docker_config), True)
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path / "certs"))
    env = current_endpoint().cli_environment({"PATH": "/bin", "DOCKER_CONTEXT": "other"})
    assert env == {"PATH": "/bin", "DOCKER_HOST": "tcp://10.0.0.5:2376", "DOCKER_TLS_VERIFY": "1",
                   "DOCKER_CERT_PATH": str(tmp_path / "certs")}
    monkeypatch.delenv("DOCKER_TLS_VERIFY")
    assert current_endpoint().tls_dir is None  # plain tcp


def test_the_current_context_from_the_config_or_docker_context(docker_config, monkeypatch):
    tls = add_context(docker_config, "remote", "tcp://10.0.0.7:2376", tls_files=("ca.pem", "cert.pem", "key.pem"))
    add_context(docker_config, "insecure", "tcp://10.0.0.8:2376", skip_verify=True)
    (docker_config / "config.json").write_text(json.dumps({"currentContext": "remote"}))
    endpoint = current_endpoint()
    assert (endpoint.host, endpoint.tls_dir, endpoint.verify, endpoint.source) == \
        ("tcp://10.0.0.7:2376", str(tls), True, "context remote")
    assert endpoint.tls_file("ca.pem") == str(tls / "ca.pem")
    monkeypatch.setenv("DOCKER_CONTEXT", "insecure")
    insecure = current_endpoint()
    assert (insecure.host, insecure.verify, insecure.tls_file("ca.pem")) == ("tcp://10.0.0.8:2376", False, None)
    assert insecure.cli_environment({})["DOCKER_TLS"] == "1" and "DOCKER_TLS_VERIFY" not in insecure.cli_environment({})
    monkeypatch.setenv("DOCKER_CONTEXT", "default")
    assert current_endpoint().host == DEFAULT_HOST


def test_an_unknown_context_says_how_to_list_them(docker_config, monkeypatch):
    monkeypatch.setenv("DOCKER_CONTEXT", "nope")
    with pytest.raises(EngineError, match="docker context ls"):
        current_endpoint()


def test_a_colon_before_the_last_slash_is_a_registry_port_not_a_tag():
    assert _split_reference("127.0.0.1:5000/team/envs:v1-abc") == ("127.0.0.1:5000/team/envs", "v1-abc")
    assert _split_reference("127.0.0.1:5000/team/envs") == ("127.0.0.1:5000/team/envs", "latest")
    assert _split_reference("envbuild/env") == ("envbuild/env", "latest")
