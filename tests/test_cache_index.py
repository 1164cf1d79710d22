"""The cache index on a scratch home: finding keys, counting hits and misses, the fast reader of the hit path. No
engine needed."""

from __future__ import annotations

import pytest

from envbuild.cache import Index, new_entry
from envbuild.errors import CacheError


def test_keys_are_found_by_prefix_tag_or_image_reference(tmp_path):
    with Index(tmp_path) as index:
        for key in ("v1:aaaa1111", "v1:aaaa2222"):
            index.put(key, new_entry(image=f"envbuild/env:{key.replace(':', '-')}", image_id="sha256:1", name=None,
                                     spec_key="", lock_key="", base_id="", build_seconds=1.0, size=1,
                                     source="built"), log="a log", detail={"dockerfile": "FROM x"})
        assert index.find("v1:aaaa1") == "v1:aaaa1111"
        assert index.find("v1-aaaa2") == "v1:aaaa2222"
        assert index.find("aaaa2") == "v1:aaaa2222"
        assert index.find("envbuild/env:v1-aaaa1111") == "v1:aaaa1111"
        with pytest.raises(CacheError, match="matches 2"):
            index.find("v1:aaaa")
        index.remember_request("v1:request", "v1:aaaa1111")
        index.delete("v1:aaaa1111")
        # An entry goes with its log, its details and the requests that led to it.
        assert index.get("v1:aaaa1111") is None and index.log_get("v1:aaaa1111") is None
        assert index.detail_get("v1:aaaa1111") is None and index.resolve_request("v1:request") is None
        assert index.log_get("v1:aaaa2222") == "a log"


def test_hits_and_misses_are_counted_with_the_seconds_they_saved(tmp_path):
    with Index(tmp_path) as index:
        index.put("v1:k", new_entry(image="i", image_id="sha256:1", name=None, spec_key="", lock_key="", base_id="",
                                    build_seconds=12.5, size=1, source="built"))
        index.record_miss(12.5)
        for _ in range(3):
            index.record_hit("v1:k")
        assert index.get("v1:k")["hits"] == 3 and index.get("v1:k")["last_hit"]
        assert index.stats() == {"hits": 3, "misses": 1, "builds": 1, "seconds_saved": 37.5, "build_seconds": 12.5}


def test_hits_journaled_by_the_fast_path_are_folded_in_once(tmp_path):
    from envbuild.cache import record_hit

    with Index(tmp_path) as index:
        index.put("v1:k", new_entry(image="i", image_id="sha256:1", name=None, spec_key="", lock_key="", base_id="",
                                    build_seconds=2.0, size=1, source="built"))
    record_hit(tmp_path, "v1:k")
    record_hit(tmp_path, "v1:k")
    with Index(tmp_path) as index:
        assert index.get("v1:k")["hits"] == 2 and index.stats()["seconds_saved"] == 4.0
    with Index(tmp_path) as index:  # folded once, not twice
        assert index.get("v1:k")["hits"] == 2
