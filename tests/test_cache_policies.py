"""Eviction policies: pure functions, no engine."""

from __future__ import annotations

import pytest

from envbuild.policies import POLICIES, choose_evictions, eviction_order, parse_age, parse_size

GB = 10**9

# old-big-cheap: built long ago, never hit, large, fast to rebuild.
# hot-small-slow: hit often and recently, small, slow to rebuild.
# warm-mid: hit once, a while ago, medium size, medium build.
ENTRIES = {
    "old-big-cheap": {"size": 5 * GB, "build_seconds": 20, "hits": 0, "last_hit": None, "created": 1000},
    "hot-small-slow": {"size": 1 * GB, "build_seconds": 600, "hits": 40, "last_hit": 9000, "created": 2000},
    "warm-mid": {"size": 2 * GB, "build_seconds": 120, "hits": 1, "last_hit": 5000, "created": 3000},
    "fresh-unused": {"size": 2 * GB, "build_seconds": 300, "hits": 0, "last_hit": None, "created": 8000},
}


def test_lru_evicts_the_least_recently_used_counting_creation_as_a_use():
    assert eviction_order(ENTRIES, "lru") == ["old-big-cheap", "warm-mid", "fresh-unused", "hot-small-slow"]


def test_lfu_evicts_the_least_hit_first_and_breaks_ties_by_recency():
    assert eviction_order(ENTRIES, "lfu") == ["old-big-cheap", "fresh-unused", "warm-mid", "hot-small-slow"]


def test_cost_keeps_what_is_expensive_to_rebuild_per_byte():
    order = eviction_order(ENTRIES, "cost")
    assert order[0] == "old-big-cheap" and order[-1] == "hot-small-slow"
    # A freshly built, slow-to-build image outranks a cheap one that was hit once.
    assert order.index("warm-mid") < order.index("fresh-unused")


@pytest.mark.parametrize("policy", POLICIES)
def test_choose_evictions_frees_just_enough_in_policy_order(policy):
    chosen = choose_evictions(ENTRIES, policy, max_size=6 * GB)
    kept = sum(e["size"] for k, e in ENTRIES.items() if k not in chosen)
    assert kept <= 6 * GB
    assert chosen == eviction_order(ENTRIES, policy)[:len(chosen)]
    # Evicting one entry fewer would not have fitted.
    assert kept + ENTRIES[chosen[-1]]["size"] > 6 * GB


def test_nothing_is_evicted_when_everything_fits_or_no_limit_is_given():
    assert choose_evictions(ENTRIES, "lru", max_size=100 * GB) == []
    assert choose_evictions(ENTRIES, "lru") == []


def test_older_than_evicts_unused_entries_whatever_the_size():
    chosen = choose_evictions(ENTRIES, "lfu", older_than=4000, now=9500)
    assert chosen == ["old-big-cheap", "warm-mid"]  # unused since 1000 and 5000; the others were used after 5500
    assert choose_evictions(ENTRIES, "lru", max_size=0, older_than=4000, now=9500) == eviction_order(ENTRIES, "lru")


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="lru, lfu, cost"):
        eviction_order(ENTRIES, "random")


def test_sizes_and_ages_read_like_people_write_them():
    assert parse_size("50GB") == 50 * GB
    assert parse_size("1.5 GiB") == int(1.5 * 2**30)
    assert parse_size("1024") == 1024
    assert parse_age("30d") == 30 * 86400 and parse_age("12h") == 12 * 3600
    with pytest.raises(ValueError):
        parse_size("lots")
    with pytest.raises(ValueError):
        parse_age("30 days")
