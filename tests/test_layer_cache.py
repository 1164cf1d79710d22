"""Cache sources and sizes, as pure logic: stage keys of a rendered Dockerfile, the final stage's prefix, recipe
keys of bases, and what a removal frees when layers are shared (no engine)."""

from __future__ import annotations

from envbuild.disk_usage import Footprint, _chain_ids
from envbuild.keys import base_recipe_key
from envbuild.layer_cache import cache_sources, final_tag
from envbuild.policies import choose_evictions
from envbuild.renderer import BuildPlan, ContextFile

DOCKERFILE = """\
FROM envbuild/python:3.11-bookworm AS env-installer
RUN --mount=type=secret,id=ca python3 -m venv /opt/envbuild-installer && python3 -m venv /opt/env
FROM env-installer AS pip-installer
RUN --mount=type=bind,source=pip,target=/tmp/envbuild/pip uv pip install -r /tmp/envbuild/pip/requirements.txt
FROM envbuild/python:3.11-bookworm
COPY --from=env-installer /opt/env /opt/env
ENV PATH=/opt/env/bin:$PATH
COPY --from=pip-installer /opt/envbuild-pip /opt/env
{variables}COPY conda-lock.yml /opt/envbuild/conda-lock.yml
"""


def _plan(pip: str, variables: str = "", lock: str = "lock") -> BuildPlan:
    context = {"pip/requirements.txt": ContextFile(data=pip.encode()), "conda-lock.yml": ContextFile(data=lock.encode())}
    return BuildPlan(dockerfile=DOCKERFILE.format(variables=variables), context=context, base_id="sha256:b",
                     spec_key="s", lock_key="l", key="v1:k")


def _ids(ref: str) -> str | None:
    return {"envbuild/python:3.11-bookworm": "sha256:base"}.get(ref)


def test_a_pip_change_keeps_the_installer_and_the_final_prefix_and_renames_only_the_pip_stage():
    one, other = cache_sources(_plan("six"), _ids), cache_sources(_plan("six\nidna", "ENV A=1\n", "lock2"), _ids)
    assert [s.name for s in one.stages] == ["env-installer", "pip-installer"]
    assert one.stages[0] == other.stages[0]
    assert one.stages[1].key != other.stages[1].key
    assert one.final == other.final and final_tag(one.final).startswith("final-v1-")


def test_a_source_is_keyed_by_the_image_id_it_starts_from_not_its_tag():
    moved = cache_sources(_plan("six"), lambda ref: "sha256:other-base" if ref.startswith("envbuild/") else None)
    same = cache_sources(_plan("six"), _ids)
    assert moved.stages[0].key != same.stages[0].key and moved.final != same.final


def test_base_recipe_keys_name_what_a_base_is_made_from():
    key = base_recipe_key(dockerfile="FROM x\n", parent="p", build_args={"A": "1"})
    assert key == base_recipe_key(dockerfile="FROM x\n", parent="p", build_args={"A": "1"})
    assert key.startswith("v1:")
    for changed in (dict(dockerfile="FROM y\n", parent="p", build_args={"A": "1"}),
                    dict(dockerfile="FROM x\n", parent="q", build_args={"A": "1"}),
                    dict(dockerfile="FROM x\n", parent="p", build_args={"A": "2"}),
                    dict(dockerfile="FROM x\n", parent="p", build_args={"A": "1"}, context_digest="c")):
        assert base_recipe_key(**changed) != key


def test_a_removal_frees_only_layers_no_other_image_holds():
    base, a, b = _chain_ids(["sha256:1"]), _chain_ids(["sha256:1", "sha256:2"]), _chain_ids(["sha256:1", "sha256:3"])
    assert a[0] == base[0] and a[1] != b[1]
    layers = {"A": {a[0]: 270, a[1]: 5}, "B": {b[0]: 270, b[1]: 3}}
    footprint = Footprint(layers, {a[0]: {"A", "B", "BASE"}, a[1]: {"A"}, b[1]: {"B"}})
    assert (footprint.size("A"), footprint.unique("A")) == (275, 5)
    assert footprint.total(["A", "B"]) == 278 and footprint.frees(["A", "B"]) == 8
    # Without the base image, the shared layer goes with the last image that holds it.
    alone = Footprint(layers, {a[0]: {"A", "B"}, a[1]: {"A"}, b[1]: {"B"}})
    assert alone.frees(["A"]) == 5 and alone.frees(["A", "B"]) == 278


def test_gc_counts_what_stays_with_layers_counted_once():
    entries = {k: {"size": 275, "created": t, "last_hit": None, "hits": 0, "build_seconds": 1}
               for k, t in (("a", 1), ("b", 2), ("c", 3))}
    layers = {"a": {"base": 274, "a": 1}, "b": {"base": 274, "b": 1}, "c": {"base": 274, "c": 1}}
    footprint = Footprint(layers, {})
    occupied = lambda keys: footprint.total(keys)  # noqa: E731
    # Three images of 275 sharing 274: 277 together, under 600: nothing goes (counting the sum, 825, one would go).
    assert choose_evictions(entries, "lru", max_size=600, occupied=occupied) == []
    assert choose_evictions(entries, "lru", max_size=600) == ["a"]
    assert choose_evictions(entries, "lru", max_size=276, occupied=occupied) == ["a"]
