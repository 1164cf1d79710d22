"""The resolver on real channels: local conda channels built by the tests (offline), PyPI for the pip side.

What a user checks: which package versions and files end up in the lock, that conda-lock's own tools read the
file, that errors name the packages at fault, that a lock is solved once and reused until something changes.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import subprocess
import threading
import zipfile
from functools import partial
from pathlib import Path

import pytest

import envbuild
from envbuild.errors import ResolveError, SpecError
from envbuild import keys, resolver
from envbuild.channels import channel_url, public_url
from envbuild.keys import canonical_spec
from envbuild.resolver import read_lock_set
from tests.conftest import write
from tests.support.cli import cli
from tests.support.conda_channel import add_package, make_mirror_channel


@pytest.fixture(scope="module")
def mirror_channel(tmp_path_factory) -> Path:
    return make_mirror_channel(tmp_path_factory.mktemp("mirror") / "mirror")


def conda_env(tmp_path: Path, channels: list, *dependencies: str, name: str = "environment.yml"):
    lines = ["channels:", *[f"  - {c}" for c in channels], "dependencies:", *[f"  - {d}" for d in dependencies]]
    return envbuild.Environment.from_file(write(tmp_path / name, "\n".join(lines) + "\n"))


def resolve(env, **options):
    return resolver.resolve(canonical_spec(env), **options)


def resolve_platforms(env, platforms):
    return resolver.resolve_platforms(canonical_spec(env), platforms)


def lock_request_key(env, **options) -> str:
    """The lock-cache key `envbuild.lock(env)` looks up (its own platform)."""
    spec = canonical_spec(env)
    return keys.lock_request_key(spec, [spec.platform], **options)


def versions(lock) -> dict[str, str]:
    return {p.name: p.version for p in lock.packages}


# -- conda side ---------------------------------------------------------------------------------------------------


def test_strict_channel_priority_takes_a_package_only_from_the_first_channel_that_has_it(
        tmp_path, conda_channel, mirror_channel):
    local, mirror = conda_channel.as_uri(), mirror_channel.as_uri()
    first_local = resolve(conda_env(tmp_path, [local, mirror], "libgreet", "mirror-only"))
    assert versions(first_local) == {"libgreet": "2.0", "mirror-only": "1.0"}
    assert next(p for p in first_local.packages if p.name == "libgreet").url.startswith(local + "/linux-64/")

    first_mirror = resolve(conda_env(tmp_path, [mirror, local], "libgreet"))
    assert versions(first_mirror) == {"libgreet": "9.0"}
    # hello-tool 1.0 needs libgreet 1.*: the mirror's libgreet shadows the local one, so it cannot be had.
    with pytest.raises(ResolveError, match="libgreet"):
        resolve(conda_env(tmp_path, [mirror, local], "hello-tool=1.0"))


def test_channels_as_plain_directories_and_names(tmp_path, conda_channel):
    # A directory path, absolute or relative to the spec file, is a local channel.
    relative = os.path.relpath(conda_channel, tmp_path)
    for channel in (str(conda_channel), relative):
        lock = resolve(conda_env(tmp_path, [channel], "hello-tool=1.0"))
        assert versions(lock) == {"hello-tool": "1.0", "libgreet": "1.0"}
        assert lock.channels == (conda_channel.resolve().as_uri(),)
    assert channel_url("conda-forge") == "https://conda.anaconda.org/conda-forge"
    assert channel_url("https://mirror.example.org/conda-forge/") == "https://mirror.example.org/conda-forge"


def test_multi_platform_lock_is_one_conda_lock_file_that_conda_lock_reads(tmp_path, home, conda_channel):
    from conda_lock.lockfile import parse_conda_lock_file, write_conda_lock_file

    env = conda_env(tmp_path, [conda_channel.as_uri()], "hello-tool", "greetpy")
    locks = envbuild.lock(env, platforms=["linux-64", "osx-arm64"])
    assert locks.platforms == ["linux-64", "osx-arm64"]
    for platform in locks.platforms:
        assert versions(locks[platform]) == {"hello-tool": "2.0", "libgreet": "2.0", "python": "3.11.0",
                                             "greetpy": "0.1"}
        assert {p.url.split("/")[-2] for p in locks[platform].conda} == {platform, "noarch"}
    path = locks.write(tmp_path / "conda-lock.yml")

    parsed = parse_conda_lock_file(path)
    assert parsed.metadata.platforms == ["linux-64", "osx-arm64"]
    hashes = parsed.metadata.content_hash
    assert set(hashes) == {"linux-64", "osx-arm64"} and hashes["linux-64"] != hashes["osx-arm64"]
    read_back = {(d.platform, d.name, d.version, d.url, d.hash.sha256) for d in parsed.package}
    written = {(lock.platform, p.name, p.version, p.url, p.sha256) for lock in locks.locks for p in lock.packages}
    assert read_back == written
    assert all(len(d.hash.sha256) == 64 and d.hash.md5 for d in parsed.package)
    # Byte for byte what conda-lock's own writer writes for what it read (only the help comment differs).
    write_conda_lock_file(parsed, tmp_path / "rewritten.yml", metadata_choices=None)
    rewritten = (tmp_path / "rewritten.yml").read_text()
    assert locks.text[locks.text.index("version: 1"):] == rewritten[rewritten.index("version: 1"):]


def test_lock_command_writes_one_file_for_all_platforms_and_reuses_it(tmp_path, home, conda_channel):
    spec = write(tmp_path / "environment.yml", f"channels: [{conda_channel.as_uri()}]\ndependencies: [hello-tool]\n")
    out = tmp_path / "out" / "conda-lock.yml"
    first = cli("lock", str(spec), "-p", "linux-64", "-p", "osx-arm64", "-o", str(out), "--debug")
    assert "solving for linux-64, osx-arm64" in first.stderr
    text = out.read_text()
    assert "platform: osx-arm64" in text and "platform: linux-64" in text
    again = cli("lock", str(spec), "-p", "linux-64", "-p", "osx-arm64", "--debug")
    assert "lock cache hit" in again.stderr
    assert again.stdout == text


def test_conda_lock_render_explicit_accepts_the_lock(tmp_path, conda_channel):
    lock = resolve(conda_env(tmp_path, [conda_channel.as_uri()], "hello-tool=1.0", "greetpy"))
    lock.write(tmp_path / "conda-lock.yml")
    done = subprocess.run(["conda-lock", "render", "-k", "explicit", "-p", "linux-64", "conda-lock.yml"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    explicit = (tmp_path / "conda-linux-64.lock").read_text()
    assert "@EXPLICIT" in explicit
    lines = [line for line in explicit.splitlines() if line.startswith("file://")]
    assert sorted(line.rsplit("/", 1)[1].split("#")[0] for line in lines) == [
        "greetpy-0.1-0.conda", "hello-tool-1.0-0.conda", "libgreet-1.0-0.conda", "python-3.11.0-0.conda"]


def test_cuda_request_lets_a_gpu_package_solve_without_a_gpu(tmp_path, conda_channel, monkeypatch):
    monkeypatch.delenv("CONDA_OVERRIDE_CUDA", raising=False)
    env = conda_env(tmp_path, [conda_channel.as_uri()], "gpu-kernel")
    with pytest.raises(ResolveError, match="__cuda"):
        resolve(env)
    env.docker.cuda = "12.4"
    assert versions(resolve(env)) == {"gpu-kernel": "1.0"}


@pytest.fixture
def growing_channel(tmp_path, conda_channel) -> Path:
    """A copy of the local channel that a test may publish more packages to."""
    import shutil

    return Path(shutil.copytree(conda_channel, tmp_path / "growing"))


def test_exclude_newer_ignores_packages_published_after_the_cut_off(tmp_path, growing_channel):
    import datetime as dt

    cut_off = dt.datetime.now(dt.timezone.utc)
    add_package(growing_channel, "hello-tool", "3.0", depends=["libgreet >=2"])
    env = conda_env(tmp_path, [growing_channel.as_uri()], "hello-tool")
    assert versions(resolve(env))["hello-tool"] == "3.0"
    assert versions(resolve(env, exclude_newer=cut_off.isoformat()))["hello-tool"] == "2.0"


def test_unsatisfiable_spec_names_the_conflict_and_leaves_no_lock_file(tmp_path, home, conda_channel):
    spec = write(tmp_path / "environment.yml", f"channels: [{conda_channel.as_uri()}]\ndependencies: [clash]\n")
    out = tmp_path / "conda-lock.yml"
    done = cli("lock", str(spec), "-o", str(out), check=False)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    assert "clash" in done.stderr and "libgreet <1" in done.stderr
    assert not out.exists() and not list(tmp_path.glob(".conda-lock.yml.*"))


def test_unknown_package_names_it_and_the_channels_searched(tmp_path, conda_channel, mirror_channel):
    channels = [conda_channel.as_uri(), mirror_channel.as_uri()]
    with pytest.raises(ResolveError) as caught:
        resolve(conda_env(tmp_path, channels, "no-such-package>=1"))
    message = str(caught.value)
    assert "no-such-package" in message and channels[0] in message and channels[1] in message


def test_unreachable_channel_is_named_without_its_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("CHANNEL_TOKEN", "s3cret-token")
    missing = (tmp_path / "no-channel-here").as_uri()
    with pytest.raises(ResolveError, match="cannot read the repodata") as caught:
        resolve(conda_env(tmp_path, [missing, "http://user:${CHANNEL_TOKEN}@127.0.0.1:9/conda"], "hello-tool"))
    assert missing in str(caught.value) and "s3cret" not in str(caught.value)


# -- lock cache ---------------------------------------------------------------------------------------------------


def test_lock_cache_hit_refresh_and_invalidation_when_the_channel_changes(tmp_path, home, growing_channel):
    env = conda_env(tmp_path, [growing_channel.as_uri()], "hello-tool")
    stages: list[str] = []

    def solve(**options):
        stages.clear()
        result = envbuild.lock(env, on_progress=lambda stage, message: stages.append(message), **options)
        return result, "lock cache hit" in stages

    first, hit = solve()
    assert not hit and versions(first)["hello-tool"] == "2.0"
    again, hit = solve()
    assert hit and again == first
    _, hit = solve(refresh=True)
    assert not hit
    _, hit = solve(platforms=["linux-64", "osx-arm64"])
    assert not hit  # other platforms: another lock
    _, hit = solve(exclude_newer="2100-01-01")
    assert not hit  # a cut-off: another lock

    # A new hello-tool published to the channel: the old lock is not served any more.
    add_package(growing_channel, "hello-tool", "3.0", depends=["libgreet >=2"])
    newer, hit = solve()
    assert not hit and versions(newer)["hello-tool"] == "3.0"


def test_failed_solve_caches_nothing(tmp_path, home, conda_channel):
    from envbuild.cache import Index

    env = conda_env(tmp_path, [conda_channel.as_uri()], "clash")
    stages: list[str] = []
    for _ in range(2):
        with pytest.raises(ResolveError):
            envbuild.lock(env, on_progress=lambda stage, message: stages.append(message))
    assert "lock cache hit" not in stages  # the second attempt solved (and failed) again
    with Index(home) as index:
        assert index.lock_get(lock_request_key(env)) is None


# -- a user's lock file as input ----------------------------------------------------------------------------------


def test_user_lock_file_is_used_as_is_and_validated(tmp_path, conda_channel):
    env = conda_env(tmp_path, [conda_channel.as_uri()], "hello-tool=1.0")
    original = resolve_platforms(env, ["linux-64"])
    path = original.write(tmp_path / "conda-lock.yml")
    given = read_lock_set(path)
    assert given.text == path.read_text()
    assert sorted((p.name, p.url, p.sha256) for p in given.locks[0].packages) == sorted(
        (p.name, p.url, p.sha256) for p in original.locks[0].packages)

    with pytest.raises(SpecError, match="no packages for osx-arm64"):
        read_lock_set(path, ["osx-arm64"])
    unknown = write(tmp_path / "v9.yml", path.read_text().replace("version: 1", "version: 9"))
    with pytest.raises(SpecError, match="version"):
        read_lock_set(unknown)
    text = path.read_text()
    sha = original.locks[0].packages[0].sha256
    md5 = original.locks[0].packages[0].md5
    unhashed = write(tmp_path / "unhashed.yml", text.replace(f"    sha256: {sha}\n", "")
                     .replace(f"    md5: {md5}\n", "    md5: ''\n"))
    with pytest.raises(SpecError, match="hash"):
        read_lock_set(unhashed)


def test_environment_with_a_lock_file_is_not_solved(tmp_path, home, conda_channel):
    env = conda_env(tmp_path, [conda_channel.as_uri()], "hello-tool=1.0")
    path = resolve(env).write(tmp_path / "given" / "conda-lock.yml")
    given = envbuild.Environment.from_file(path)
    assert given.lock_file
    locked = envbuild.lock(given)
    assert locked.text == path.read_text()
    assert versions(locked) == {"hello-tool": "1.0", "libgreet": "1.0"}


# -- pip side -----------------------------------------------------------------------------------------------------


@pytest.mark.network
def test_pip_lock_pins_the_right_wheel_with_sha256_for_each_target(tmp_path, home):
    env = envbuild.Environment.from_file(write(tmp_path / "requirements.txt", "six\ncharset-normalizer==3.4.2\n"))
    locks = envbuild.lock(env, platforms=["linux-64", "osx-arm64", "win-64"], python_version="3.11")
    wheels = {}
    for lock in locks.locks:
        assert {p.name for p in lock.pip} == {"six", "charset-normalizer"}
        assert all(len(p.sha256) == 64 and p.url.startswith("https://") for p in lock.pip)
        wheels[lock.platform] = next(p.filename for p in lock.pip if p.name == "charset-normalizer")
    assert "cp311" in wheels["linux-64"] and "manylinux" in wheels["linux-64"] and "x86_64" in wheels["linux-64"]
    assert "cp311" in wheels["osx-arm64"] and "macosx" in wheels["osx-arm64"]
    assert wheels["osx-arm64"].endswith(("arm64.whl", "universal2.whl"))
    assert wheels["win-64"].endswith("cp311-win_amd64.whl")


@pytest.mark.network
def test_pip_side_solves_for_the_python_conda_chose(tmp_path, conda_channel):
    # The stand-in python package is 3.11.0: the pip wheel must be for CPython 3.11.
    env = envbuild.Environment.from_file(write(tmp_path / "environment.yml", f"""\
channels: [{conda_channel.as_uri()}]
dependencies:
  - python
  - hello-tool
  - pip:
    - charset-normalizer==3.4.2
"""))
    lock = resolve(env, python_version="3.12")
    assert lock.python_version == "3.11.0"
    assert "-cp311-" in lock.pip[0].filename


@pytest.mark.network
def test_unknown_pip_package_is_named(tmp_path):
    env = envbuild.Environment.from_file(write(tmp_path / "requirements.txt", "no-such-package-envbuild-test\n"))
    with pytest.raises(ResolveError, match="no-such-package-envbuild-test"):
        resolve(env, python_version="3.11")


def _wheel(name: str, version: str) -> bytes:
    """A minimal, valid pure-Python wheel."""
    dist = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": "", f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{dist}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{dist}/RECORD"])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, content in files.items():
            archive.writestr(path, content)
    return buffer.getvalue()


class _PrivateIndex(http.server.SimpleHTTPRequestHandler):
    """A PEP 503 index that wants basic auth, with relative file links (so file URLs inherit the index's)."""

    def do_GET(self):
        import base64

        expected = "Basic " + base64.b64encode(b"builder:s3cret-token").decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="private"')
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


def test_credentials_of_a_private_index_never_reach_the_lock(tmp_path, monkeypatch):
    wheel = _wheel("privpkg", "1.0")
    root = tmp_path / "index"
    write(root / "simple" / "privpkg" / "index.html",
          f'<a href="../../files/privpkg-1.0-py3-none-any.whl#sha256={hashlib.sha256(wheel).hexdigest()}">'
          "privpkg-1.0-py3-none-any.whl</a>\n")
    (root / "files").mkdir()
    (root / "files" / "privpkg-1.0-py3-none-any.whl").write_bytes(wheel)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_PrivateIndex, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        index = f"http://builder:s3cret-token@127.0.0.1:{server.server_port}/simple"
        # From the environment, the way CI systems pass it ...
        monkeypatch.setenv("PIP_INDEX_URL", index)
        env = envbuild.Environment.from_file(write(tmp_path / "requirements.txt", "privpkg\n"))
        from_environment = resolve(env, python_version="3.11")
        # ... and written in the requirements file.
        env = envbuild.Environment.from_file(write(tmp_path / "b" / "requirements.txt", f"-i {index}\nprivpkg\n"))
        from_file = resolve(env, python_version="3.11")
    finally:
        server.shutdown()
    for lock in (from_environment, from_file):
        assert [p.name for p in lock.pip] == ["privpkg"]
        assert lock.pip[0].sha256 == hashlib.sha256(wheel).hexdigest()
        assert lock.pip[0].url == f"http://127.0.0.1:{server.server_port}/files/privpkg-1.0-py3-none-any.whl"
        assert "s3cret" not in lock.text and "builder@" not in lock.text


def test_private_conda_channel_credentials_from_the_environment_never_reach_the_lock(
        tmp_path, monkeypatch, conda_channel):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_PrivateIndex, directory=str(conda_channel)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("CHANNEL_USER", "builder")
    monkeypatch.setenv("CHANNEL_TOKEN", "s3cret-token")
    try:
        env = conda_env(tmp_path, [f"http://${{CHANNEL_USER}}:${{CHANNEL_TOKEN}}@127.0.0.1:{server.server_port}"],
                        "hello-tool=1.0")
        lock = resolve(env)
    finally:
        server.shutdown()
        server.server_close()
    assert versions(lock) == {"hello-tool": "1.0", "libgreet": "1.0"}
    assert {p.url.rsplit("/", 2)[0] for p in lock.packages} == {f"http://127.0.0.1:{server.server_port}"}
    assert "s3cret" not in lock.text and "builder" not in lock.text and "CHANNEL_TOKEN" not in lock.text


def test_public_url_strips_every_kind_of_credential():
    assert public_url("https://u:p@host/simple/x.whl") == "https://host/simple/x.whl"
    assert public_url("https://token@host/x") == "https://host/x"
    assert (public_url("https://conda.anaconda.org/t/tk-123-abc/private/linux-64/a-1-0.conda")
            == "https://conda.anaconda.org/private/linux-64/a-1-0.conda")
    assert public_url("file:///srv/channel/noarch/a.conda") == "file:///srv/channel/noarch/a.conda"


def test_variables_that_change_a_solve_change_the_lock_cache_key(tmp_path, monkeypatch):
    env = envbuild.Environment.from_file(write(tmp_path / "requirements.txt", "six\n"))
    for name in ("CONDA_OVERRIDE_CUDA", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)
    plain = lock_request_key(env, python_version="3.11")
    monkeypatch.setenv("CONDA_OVERRIDE_CUDA", "12.4")
    with_cuda = lock_request_key(env, python_version="3.11")
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example.org/simple")
    assert len({plain, with_cuda, lock_request_key(env, python_version="3.11")}) == 3
