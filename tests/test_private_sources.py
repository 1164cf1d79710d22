"""Private sources without an engine (issue 15): credentials become a netrc secret and nothing else, private
wheels are stored and locked by content, hash pins are keyed and enforced by a real uv lock, the docker section's
options are kept, saved and applied, and failed builds keep their log."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from envbuild.credentials import build_secrets, host_credentials, netrc_text
from envbuild.errors import BuildError, EnvbuildError, ResolveError, SpecError
from envbuild.keys import canonical_spec
from envbuild.lockfile import LockedPackage
from envbuild.runner import docker_command, with_run_options
from envbuild.spec import Environment
from tests.support.private_index import make_wheel

TOKEN = "tok-3f9a1c"


def _lock(*urls: str):
    from types import SimpleNamespace

    return SimpleNamespace(packages=[LockedPackage("pip", "p", "1", url, "0" * 64) for url in urls])


def _pip_env(tmp_path: Path, text: str) -> Environment:
    (tmp_path / "requirements.txt").write_text(text)
    return Environment.from_pip_requirements("private", tmp_path / "requirements.txt")


def test_index_credentials_from_variables_become_a_netrc_secret_only(tmp_path, monkeypatch, home):
    monkeypatch.setenv("PRIV_TOKEN", TOKEN)
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    env = _pip_env(tmp_path, "--extra-index-url http://alice:${PRIV_TOKEN}@pkgs.example:8080/simple\nsix\n")
    spec = canonical_spec(env)
    # Keyed and shown without credentials; the solver gets them (expanded when it runs).
    assert TOKEN not in repr(spec.form) and "alice" not in repr(spec.form) and TOKEN not in repr(spec)
    lock = _lock("http://pkgs.example:8080/packages/six-1.0-py3-none-any.whl",
                 "https://files.pythonhosted.org/packages/x/idna-3-py3-none-any.whl")
    assert host_credentials(spec, lock) == {"pkgs.example": ("alice", TOKEN)}
    secrets = build_secrets(spec, lock, True, tmp_path)
    assert (tmp_path / "netrc").read_text() == f"machine pkgs.example login alice password {TOKEN}\n"
    assert oct((tmp_path / "netrc").stat().st_mode & 0o777) == "0o600" and secrets["netrc"] == tmp_path / "netrc"
    # A host the lock does not download from gets nothing.
    assert host_credentials(spec, _lock("https://files.pythonhosted.org/packages/x/six.whl")) == {}


def test_credentials_from_the_host_netrc_and_pip_variables(tmp_path, monkeypatch, home):
    (tmp_path / "netrc").write_text(f"machine files.corp login bob password {TOKEN}\n")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", f"https://carol:{TOKEN}x@pypi.corp/simple")
    spec = canonical_spec(_pip_env(tmp_path, "six\n"))
    found = host_credentials(spec, _lock("https://files.corp/six.whl", "https://pypi.corp/packages/idna.whl"))
    assert found == {"files.corp": ("bob", TOKEN), "pypi.corp": ("carol", TOKEN + "x")}
    with pytest.raises(BuildError, match="whitespace"):
        netrc_text({"h": ("u", "a b")})


def test_the_classic_builder_refuses_private_sources(tmp_path, monkeypatch, home):
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    spec = canonical_spec(_pip_env(tmp_path, f"--index-url https://u:{TOKEN}@pkgs.example/simple\nsix\n"))
    with pytest.raises(BuildError) as failure:
        build_secrets(spec, _lock("https://pkgs.example/packages/six.whl"), False, tmp_path)
    assert "classic builder" in failure.value.what and TOKEN not in str(failure.value)
    assert build_secrets(spec, _lock("https://files.pythonhosted.org/six.whl"), False, tmp_path) is None


def test_a_local_wheel_is_stored_by_content_and_locked_where_the_build_mounts_it(tmp_path, home):
    from envbuild.api import lock

    wheel = make_wheel(tmp_path / "dist", "privpkg", "1.0")
    sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
    env = _pip_env(tmp_path, "./dist/privpkg-1.0-py3-none-any.whl\n")
    stored = home / "wheels" / sha256 / wheel.name
    assert stored.read_bytes() == wheel.read_bytes()
    assert env.python.conda_dependencies.pip_packages == [f"privpkg @ {stored.as_uri()}"]
    assert str(wheel) in env.source_files  # the fast path sees the wheel's bytes change
    resolved = lock(env, python_version="3.11")
    assert [(p.name, p.url, p.sha256) for p in resolved.pip] == [
        ("privpkg", f"file:///tmp/envbuild/wheels/{sha256}/{wheel.name}", sha256)]
    # New bytes, new key; the API spelling is the same store.
    before = env.key
    make_wheel(tmp_path / "dist", "privpkg", "1.0", code="VALUE = 43\n")
    assert _pip_env(tmp_path, "./dist/privpkg-1.0-py3-none-any.whl\n").key != before
    api = Environment("api")
    api.add_private_pip_wheel(wheel)
    assert api.python.conda_dependencies.pip_packages[0].startswith("privpkg @ file://")


def test_a_wrong_hash_pin_fails_the_lock_naming_the_line_and_both_hashes(tmp_path, home):
    from envbuild.api import lock

    wheel = make_wheel(tmp_path, "privpkg", "1.0")
    actual = hashlib.sha256(wheel.read_bytes()).hexdigest()
    wrong = "ab" * 32
    env = _pip_env(tmp_path, f"# pinned\n./privpkg-1.0-py3-none-any.whl --hash=sha256:{wrong}\n")
    with pytest.raises(ResolveError) as failure:
        lock(env, python_version="3.11")
    message = str(failure.value)
    assert f"{tmp_path / 'requirements.txt'}:2" in message and "privpkg" in message
    assert wrong in message and actual in message
    right = _pip_env(tmp_path, f"./privpkg-1.0-py3-none-any.whl --hash=sha256:{actual}\n")
    assert right.key != env.key  # the pin is keyed
    assert lock(right, python_version="3.11").pip[0].sha256 == actual
    with pytest.raises(SpecError, match="not a sha256"):
        _pip_env(tmp_path, "six --hash=md5:abc\n").key


def test_docker_section_options_are_checked_saved_and_keyed_only_when_they_change_the_image(tmp_path, monkeypatch):
    env = Environment("opts")
    with pytest.raises(SpecError, match="shm_sise"):
        env.docker.shm_sise = "2g"
    plain = env.key
    env.docker.shm_size = "256m"
    env.docker.arguments = ["-e", "FROM_ARGUMENTS=yes"]
    assert env.key == plain  # how a container runs, not what the image is
    env.docker.base_image = "team/base:1"
    env.docker.base_image_registry.address = "registry.corp:5000"
    env.docker.base_image_registry.username = "ci"
    env.docker.base_image_registry.password = TOKEN
    with pytest.raises(SpecError, match="in clear"):
        env.save_to_directory(tmp_path / "clear")
    assert not (tmp_path / "clear").exists()  # nothing half-written
    env.docker.base_image_registry.password = "${REGISTRY_PASSWORD}"
    env.save_to_directory(tmp_path / "saved")
    assert TOKEN not in (tmp_path / "saved" / "environment.yaml").read_text()
    loaded = Environment.load_from_directory(tmp_path / "saved")
    assert loaded.docker.run_options() == {"shm_size": "256m", "arguments": ["-e", "FROM_ARGUMENTS=yes"]}
    assert loaded.docker.base_image_registry == env.docker.base_image_registry
    assert loaded.key == env.key
    assert canonical_spec(env).form["docker"]["base_image"] == "registry.corp:5000/team/base:1"
    monkeypatch.setenv("REGISTRY_PASSWORD", TOKEN)
    assert env.docker.base_image_registry.login() == {"username": "ci", "password": TOKEN}
    # run: the command line's --shm-size wins over the environment's; arguments go before the image.
    options = with_run_options({"shm_size": None}, env.docker.run_options())
    command = docker_command("img", ["true"], workdir=tmp_path, docker="docker", **options)
    assert command[command.index("--shm-size") + 1] == "256m"
    assert command[-4:] == ["-e", "FROM_ARGUMENTS=yes", "img", "true"]
    assert with_run_options({"shm_size": "2g"}, env.docker.run_options())["shm_size"] == "2g"


def test_logs_of_a_failed_build_are_kept(home, capsys):
    from envbuild.cache import Index
    from tests.support.cli import run_main

    with Index(home) as index:
        index.failed_put("v1:0123abcd", "#7 ERROR: pip failed\n")
    code, out, _ = run_main(capsys, "logs", "--last-failed")
    assert code == 0 and "pip failed" in out
    code, out, _ = run_main(capsys, "logs", "0123ab")
    assert code == 0 and "pip failed" in out
    with pytest.raises(EnvbuildError):
        with Index(home) as index:
            index.find("ffff")


def test_interpreter_path_of_a_user_managed_environment_leads_path_in_the_image(home):
    from envbuild.bases import BaseImage
    from envbuild.errors import RenderError
    from envbuild.renderer import render
    from envbuild.resolver import resolve

    base = BaseImage("team/base:1", "sha256:" + "0" * 64, "3.11", "2.36", "team/base:1")
    env = Environment("managed-by-user")
    env.python.user_managed_dependencies = True
    plain = canonical_spec(env)
    env.python.interpreter_path = "/opt/venv/bin/python"
    spec = canonical_spec(env)
    assert spec.key != plain.key  # it changes the image: keyed
    plan = render(spec, resolve(spec, python_version="3.11"), base)
    assert "ENV PATH=/opt/venv/bin:$PATH" in plan.dockerfile
    env.python.interpreter_path = "venv/bin/python"
    with pytest.raises(RenderError, match="absolute path"):
        render(canonical_spec(env), resolve(canonical_spec(env), python_version="3.11"), base)
