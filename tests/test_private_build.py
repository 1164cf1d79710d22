"""Private sources on the real engine (issue 15): an authenticated index (pypiserver with htpasswd) reached from
build steps at the docker0 gateway, a private wheel from a local path, a private base image from a registry with
htpasswd auth, and the docker section's run options in a real `run`. The token is searched for, byte by byte, in
everything envbuild and the engine keep."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import DOCKER, docker
from tests.support.cli import cli
from tests.support.private_index import GATEWAY, make_wheel, running_index
from tests.support.registry import running_registry

TOKEN = "idx-token-7Qw2Zr"
REGISTRY_PASSWORD = "reg-pass-K4pT9s"


def _secret_forms(user: str, secret: str) -> list[bytes]:
    """The secret as it could leak: in clear, and inside a Basic authorization header."""
    return [secret.encode(), base64.b64encode(f"{user}:{secret}".encode())]


def _files_holding(root: Path, needles: list[bytes]) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and any(n in p.read_bytes() for n in needles)]


def _saved_layers(image: str, tmp_path: Path) -> tuple[bytes, list[tuple[str, bytes]]]:
    """`docker save` of `image`: the whole archive's bytes, and (member name, bytes) of every file in its layers."""
    archive = subprocess.run([DOCKER, "save", image], capture_output=True, check=True).stdout
    files = []
    with tarfile.open(fileobj=io.BytesIO(archive)) as outer:
        for member in outer.getmembers():
            if member.isfile() and member.name.endswith((".tar", "layer.tar")) or "/blobs/" in member.name:
                data = outer.extractfile(member).read()
                try:
                    with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                        files += [(m.name, layer.extractfile(m).read()) for m in layer.getmembers() if m.isfile()]
                except tarfile.TarError:
                    continue  # a config or manifest blob
    return archive, files


def test_private_index_and_private_wheel_build_and_leave_no_secret(engine, home, tmp_path):
    make_wheel(tmp_path / "index", "thepackage", "1.0", code="WHERE = 'from the private index'\n")
    wheel = make_wheel(tmp_path / "spec" / "dist", "privpkg", "1.0", code="WHERE = 'from a private wheel'\n")
    spec = tmp_path / "spec" / "requirements.txt"
    with running_index(tmp_path / "index", tmp_path / "server", "alice", TOKEN) as port:
        spec.write_text(f"--index-url http://alice:${{PRIV_TOKEN}}@{GATEWAY}:{port}/simple\n"
                        "thepackage\n./dist/privpkg-1.0-py3-none-any.whl\n")
        lock_text = cli("lock", str(spec), env={"PRIV_TOKEN": TOKEN}).stdout
        assert "thepackage" in lock_text and "file:///tmp/envbuild/wheels/" in lock_text

        # With a wrong token the lock comes from the cache and the build's pip step is refused: the failed
        # build keeps its log, which holds no token.
        failed = cli("build", str(spec), env={"PRIV_TOKEN": "wrong-token-x"}, check=False)
        assert failed.returncode != 0 and "wrong-token-x" not in failed.stdout + failed.stderr
        kept = cli("logs", "--last-failed").stdout
        assert "thepackage" in kept and "wrong-token-x" not in kept

        image = json.loads(cli("build", str(spec), "--json", env={"PRIV_TOKEN": TOKEN}).stdout)["image"]
        cli("env", "create", "--file", str(spec), "--name", "private-env", env={"PRIV_TOKEN": TOKEN})
    ran = docker("run", "--rm", image, "python", "-c", "import thepackage, privpkg; "
                 "print(thepackage.WHERE, privpkg.WHERE, sep=';')")
    assert ran.stdout.strip() == "from the private index;from a private wheel"

    secrets = _secret_forms("alice", TOKEN)
    archive, layer_files = _saved_layers(image, tmp_path)
    assert not any(s in archive for s in secrets)
    history = docker("history", "--no-trunc", image).stdout + docker("image", "inspect", image).stdout
    assert TOKEN not in history
    shown = cli("show", image).stdout  # the Dockerfile: the credentials are a secret of the pip step only
    assert "--mount=type=secret,id=netrc" in shown and TOKEN not in shown
    assert not any(s in lock_text.encode() for s in secrets)
    assert _files_holding(home, secrets) == []  # index, lock cache, logs, wheel store, catalog
    assert (home / "wheels").is_dir() and any(home.rglob("catalog*"))
    # The wheel was installed from a mount: neither its file nor its bytes are in a layer.
    assert not [name for name, _ in layer_files if name.endswith(wheel.name)]
    assert not any(wheel.read_bytes() in data for _, data in layer_files)


def test_private_base_image_is_pulled_with_its_login_and_keeps_it_nowhere(engine, home, tmp_path, monkeypatch):
    from envbuild.errors import BuildError
    from envbuild.spec import Environment

    with running_registry(tmp_path / "registry", users={"ci": REGISTRY_PASSWORD}) as address:
        ref = f"{address}/private/tiny:1"
        rootfs = io.BytesIO()
        with tarfile.open(fileobj=rootfs, mode="w") as tar:
            info = tarfile.TarInfo("hello.txt")
            info.size = 6
            tar.addfile(info, io.BytesIO(b"hello\n"))
        subprocess.run([DOCKER, "import", "-", ref], input=rootfs.getvalue(), capture_output=True, check=True)
        config = tmp_path / "docker-config"  # the test's own login for the push, not the user's
        subprocess.run([DOCKER, "--config", str(config), "login", address, "-u", "ci", "--password-stdin"],
                       input=REGISTRY_PASSWORD.encode(), capture_output=True, check=True)
        subprocess.run([DOCKER, "--config", str(config), "push", ref], capture_output=True, check=True)
        docker("rmi", ref)

        env = Environment("private-base")
        env.docker.base_image = "private/tiny:1"
        env.docker.base_image_registry.address = address
        env.docker.base_image_registry.username = "ci"
        env.docker.base_image_registry.password = "${REGISTRY_PASSWORD}"
        env.python.user_managed_dependencies = True
        monkeypatch.setenv("REGISTRY_PASSWORD", "not-the-password")
        with pytest.raises(BuildError) as refused:
            env.build()
        assert "not-the-password" not in str(refused.value)

        monkeypatch.setenv("REGISTRY_PASSWORD", REGISTRY_PASSWORD)
        image = env.build()
        assert docker("image", "inspect", ref).returncode == 0
        env.save_to_directory(tmp_path / "saved")
    secrets = _secret_forms("ci", REGISTRY_PASSWORD)
    assert _files_holding(home, secrets) == [] and _files_holding(tmp_path / "saved", secrets) == []
    assert REGISTRY_PASSWORD not in docker("history", "--no-trunc", image.image).stdout
    user_config = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"
    assert not user_config.is_file() or address not in user_config.read_text()  # no `docker login` behind the back


def test_shm_size_and_arguments_apply_to_run(engine, home, tmp_path):
    from envbuild.spec import Environment

    env = Environment("run-options")
    env.python.user_managed_dependencies = True
    env.docker.shm_size = "256m"
    env.docker.arguments = ["-e", "FROM_ARGUMENTS=yes"]
    env.save_to_directory(tmp_path / "env")
    spec = str(tmp_path / "env" / "environment.yaml")
    probe = ["--", "sh", "-c", "df -k /dev/shm | tail -n 1; echo $FROM_ARGUMENTS"]

    def shm_kib(*options: str) -> tuple[int, str]:
        out = cli("run", spec, "-q", *options, *probe, cwd=tmp_path).stdout.split("\n")
        return int(out[0].split()[1]), out[1]

    assert shm_kib() == (256 * 1024, "yes")
    assert shm_kib() == (256 * 1024, "yes")  # a cache hit (no parsing) applies them too
    assert shm_kib("--shm-size", "128m") == (128 * 1024, "yes")  # the command line wins
