"""The shared cache in a real OCI registry (Debian's docker-registry on 127.0.0.1): push after a build, pull
instead of building on another "machine" (an empty envbuild home, the local image gone)."""

from __future__ import annotations

import pytest

import envbuild
from envbuild.keys import tag_of
from envbuild.registry import Registry
from tests.conftest import docker, write
from tests.support.cache_helpers import entries, remove_images, unique_template
from tests.support.cli import cli, cli_json
from tests.support.registry import image_config, running_registry

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with running_registry(tmp_path_factory.mktemp("registry")) as address:
        yield f"{address}/envbuild-cache"


def test_registry_location_is_checked_and_answers_head_requests(registry):
    shared = Registry(registry)
    assert shared.scheme == "http" and shared.repository == "envbuild-cache"
    assert shared.has("v1-does-not-exist") is False
    with pytest.raises(envbuild.CacheError, match="HOST/REPOSITORY"):
        Registry("just-a-host")
    # A registry that is down is a miss (logged), not a failure: the build goes on locally.
    assert Registry("127.0.0.1:9/envbuild-cache").has("anything") is False


def test_another_machine_pulls_instead_of_building(engine, home, tmp_path, registry):
    spec = write(tmp_path / "requirements.txt", "six\n")
    template = unique_template(tmp_path)
    first = cli_json("build", str(spec), "--template", str(template), "--registry", registry, "-q")
    assert first["source"] == "built" and first["digest"].startswith("sha256:")
    assert Registry(registry).has(first["key"].replace(":", "-"))
    # BuildKit's inline cache metadata travels with the image: --cache-from can reuse its layers elsewhere.
    assert "moby.buildkit.cache.v0" in image_config(registry, tag_of(first["key"]))

    # "Another machine": an empty envbuild home, and the engine no longer has the image.
    docker("rmi", "-f", first["image"])
    other_home = tmp_path / "other-machine"
    pulled = cli_json("build", str(spec), "--template", str(template), "-q", env={"ENVBUILD_HOME": str(other_home),
                                                                                   "ENVBUILD_REGISTRY": registry})
    assert pulled["source"] == "registry" and pulled["cached"] is True
    assert (pulled["key"], pulled["id"], pulled["image"]) == (first["key"], first["id"], first["image"])
    assert docker("image", "inspect", first["image"], check=False).returncode == 0
    stats = cli_json("stats", env={"ENVBUILD_HOME": str(other_home)})
    assert stats["builds"] == 0 and stats["misses"] == 1
    assert cli_json("build", str(spec), "--template", str(template),
                    env={"ENVBUILD_HOME": str(other_home)})["source"] == "cache"
    remove_images(other_home)


def test_an_image_shared_under_its_build_key_alone_is_found_after_locking(engine, home, tmp_path, registry):
    # Pushed without the request tag (as another spec locking to the same plan would leave it): the lookup
    # by request key misses, the one by build key (after lock and render) hits.
    template = unique_template(tmp_path)
    env = envbuild.Environment.from_pip_requirements("a", write(tmp_path / "requirements.txt", "six\nidna\n"))
    first = envbuild.build(env, template=template)
    Registry(registry).push(first.image, [tag_of(first.key)])
    docker("rmi", "-f", first.image)
    pulled = envbuild.build(env, template=template, registry=registry, cache_dir=tmp_path / "other-machine")
    assert pulled.source == "registry" and pulled.key == first.key and pulled.id == first.id
    remove_images(tmp_path / "other-machine")


def test_image_deleted_behind_the_cache_comes_back_from_the_registry(engine, home, tmp_path, registry):
    env = envbuild.Environment.from_pip_requirements("six", write(tmp_path / "requirements.txt", "six\n"))
    template = unique_template(tmp_path)
    first = envbuild.build(env, template=template, registry=registry)
    docker("rmi", "-f", first.image)
    again = envbuild.build(env, template=template, registry=registry)
    assert again.source == "registry" and again.id == first.id
    assert entries(home)[first.key]["source"] == "registry"
    remove_images(home)


def test_unreachable_registry_still_builds_and_says_the_image_was_not_shared(engine, home, tmp_path):
    spec = write(tmp_path / "requirements.txt", "six\n")
    done = cli("build", str(spec), "--template", str(unique_template(tmp_path)), "--registry",
               "127.0.0.1:9/envbuild-cache", "-q")
    assert done.stdout.startswith("built ")
    assert "not shared" in done.stderr
    remove_images(home)


def test_an_image_already_on_the_engine_is_shared_when_a_registry_is_named(engine, home, tmp_path, registry):
    env = envbuild.Environment.from_pip_requirements("six", write(tmp_path / "requirements.txt", "six\n"))
    template = unique_template(tmp_path)
    local = envbuild.build(env, template=template)  # no registry yet
    found = envbuild.build(env, template=template, registry=registry, cache_dir=tmp_path / "second-home")
    assert found.source == "engine" and found.digest and found.digest.startswith("sha256:")
    assert Registry(registry).has(tag_of(local.key))
    remove_images(home)


def test_a_private_registry_is_a_shared_cache_with_the_users_docker_credentials(engine, home, tmp_path, monkeypatch):
    import base64
    import json

    with running_registry(tmp_path / "private", users={"ci": "s3cret"}) as address:
        location = f"{address}/private-cache"
        assert Registry(location).has("anything") is False  # no credentials yet: 401, a miss
        # What `docker login` writes; the docker CLI (push, pull) reads the same file.
        config = tmp_path / "docker-config"
        config.mkdir()
        (config / "config.json").write_text(json.dumps(
            {"auths": {address: {"auth": base64.b64encode(b"ci:s3cret").decode()}}}))
        monkeypatch.setenv("DOCKER_CONFIG", str(config))

        env = envbuild.Environment.from_pip_requirements("six", write(tmp_path / "requirements.txt", "six\n"))
        template = unique_template(tmp_path)
        first = envbuild.build(env, template=template, registry=location)
        assert first.source == "built" and first.digest and Registry(location).has(tag_of(first.key))
        docker("rmi", "-f", first.image)
        pulled = envbuild.build(env, template=template, registry=location, cache_dir=tmp_path / "other-machine")
        assert pulled.source == "registry" and pulled.id == first.id
        remove_images(tmp_path / "other-machine")
