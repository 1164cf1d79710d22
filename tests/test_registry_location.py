"""Where a shared registry cache is: a location's host, repository and scheme, and the image names under it. No
registry needed (test_registry.py runs a real one)."""

from __future__ import annotations

import pytest

from envbuild.errors import CacheError
from envbuild.registry import Registry


def test_registry_locations_are_host_and_repository():
    local = Registry("http://127.0.0.1:5000/team/envs/")
    assert (local.host, local.repository, local.scheme) == ("127.0.0.1:5000", "team/envs", "http")
    assert local.build_ref("v1:abc") == "127.0.0.1:5000/team/envs:v1-abc"
    assert local.request_ref("v1:def") == "127.0.0.1:5000/team/envs:req-v1-def"
    assert Registry("registry.example.com/envs").scheme == "https"
    for bad in ("registry.example.com", "host/UPPER"):
        with pytest.raises(CacheError):
            Registry(bad)
