"""The cache-tuning harness: traces and replays, pure logic over a real scratch Index (no engine)."""

from __future__ import annotations

import json
import random

import pytest

from envbuild import policies, replay, trace
from envbuild.cache import Index
from envbuild.cli import main
from envbuild.trace import Request

GB = 10**9


def requests_for(keys: str, size: int = GB, seconds: float = 60.0) -> list[Request]:
    """One request per letter, a second apart: "AAB" asks for A twice, then B."""
    return [Request(1000.0 + i, key, seconds, size) for i, key in enumerate(keys)]


def test_with_room_for_everything_only_first_requests_miss(tmp_path):
    requests = trace.synthetic(3000, environments=200, seed=3)
    unique = {r.key: r for r in requests}
    result = replay.replay(requests, sum(r.size for r in unique.values()), "lru", home=tmp_path)
    assert result.hits == len(requests) - len(unique)
    assert result.hit_rate == pytest.approx(1 - len(unique) / len(requests))
    assert result.evictions == 0
    assert result.bytes_stored == sum(r.size for r in unique.values())
    first_seen = set()
    saved = 0.0
    for request in requests:
        if request.key in first_seen:
            saved += request.build_seconds
        first_seen.add(request.key)
    assert result.seconds_saved == pytest.approx(saved)


def test_a_smaller_cache_hits_less_and_one_smaller_than_every_image_never_hits():
    requests = trace.synthetic(3000, environments=200, seed=3)
    big = replay.replay(requests, 1000 * GB, "lru")
    small = replay.replay(requests, 5 * GB, "lru")
    none = replay.replay(requests, min(r.size for r in requests) - 1, "lru")
    assert small.hits < big.hits
    assert small.bytes_stored <= 5 * GB and small.peak_bytes <= 5 * GB
    assert none.hits == 0 and none.bytes_stored == 0 and none.builds == len(requests)


def test_lru_and_lfu_evict_differently():
    # Room for two images. A is hit twice, then B and C arrive: lru drops A (least recent), lfu drops B (never
    # hit). The next A hits only under lfu.
    requests = requests_for("AAABCAB")
    lru = replay.replay(requests, 2 * GB, "lru")
    lfu = replay.replay(requests, 2 * GB, "lfu")
    assert (lru.hits, lfu.hits) == (2, 3)


def test_the_cost_policy_keeps_what_is_slow_to_rebuild():
    slow = [Request(1.0, "slow", 3600.0, GB), Request(2.0, "fast", 10.0, GB), Request(3.0, "new", 10.0, GB),
            Request(4.0, "slow", 3600.0, GB)]
    assert replay.replay(slow, 2 * GB, "cost").hits == 1
    assert replay.replay(slow, 2 * GB, "lru").hits == 0


@pytest.mark.parametrize("policy", policies.POLICIES)
def test_replay_evicts_in_the_order_gc_would(policy):
    """Reference: per request, ask envbuild.policies which entries go (the new image stays, as in the replay)."""
    rng = random.Random(policy)
    requests = [Request(float(t), f"env-{rng.randint(0, 25)}", rng.choice([30.0, 300.0, 3000.0]),
                        rng.choice([1, 2, 3]) * GB) for t in range(400)]
    capacity = 8 * GB
    cache: dict[str, dict] = {}
    hits = 0
    for request in requests:
        entry = cache.get(request.key)
        if entry:
            hits += 1
            entry["hits"] += 1
            entry["last_hit"] = request.t
            continue
        for victim in policies.choose_evictions(cache, policy, max_size=capacity - request.size):
            del cache[victim]
        cache[request.key] = {"created": request.t, "build_seconds": request.build_seconds, "size": request.size,
                              "hits": 0, "last_hit": None}
    result = replay.replay(requests, capacity, policy)
    assert result.hits == hits
    assert result.bytes_stored == policies.total_size(cache.values())


def test_the_surviving_cache_is_written_to_a_real_index(tmp_path):
    result = replay.replay(requests_for("ABBC"), 2 * GB, "lru", home=tmp_path / "scratch")
    index = Index(tmp_path / "scratch")
    try:
        entries = dict(index.entries())
    finally:
        index.close()
    assert sorted(entries) == ["B", "C"]
    assert entries["B"]["hits"] == 1 and entries["B"]["last_hit"] == 1002.0
    assert result.bytes_stored == 2 * GB


def test_replay_refuses_an_unknown_policy():
    with pytest.raises(ValueError, match="lru"):
        replay.replay(requests_for("A"), GB, "fifo")


def test_synthetic_traces_are_reproducible_from_their_seed():
    assert trace.synthetic(500, seed=1) == trace.synthetic(500, seed=1)
    assert trace.synthetic(500, seed=1) != trace.synthetic(500, seed=2)
    requests = trace.synthetic(500, seed=1)
    assert len(requests) == 500
    assert all(a.t <= b.t for a, b in zip(requests, requests[1:]))


def test_bursts_repeat_one_environment():
    requests = trace.synthetic(2000, burst=0.2, burst_size=10, drift=0, seed=4)
    longest = run = 1
    for previous, current in zip(requests, requests[1:]):
        run = run + 1 if current.key == previous.key else 1
        longest = max(longest, run)
    assert longest >= 10


def test_trace_files_round_trip_and_name_environments_by_spec(tmp_path):
    path = tmp_path / "trace.jsonl"
    requests = trace.synthetic(50, seed=5)
    trace.write(requests, path)
    assert [(r.key, r.size) for r in trace.read(path)] == [(r.key, r.size) for r in requests]

    (tmp_path / "a.txt").write_text("Requests>=2,<3\nsix\n")
    (tmp_path / "b.txt").write_text("six\nrequests<3,>=2  # same environment\n")
    (tmp_path / "c.txt").write_text("six\n")
    by_spec = tmp_path / "specs.jsonl"
    by_spec.write_text("".join(json.dumps({"t": t, "spec": name, "build_seconds": 10, "size": GB}) + "\n"
                               for t, name in enumerate(["a.txt", "b.txt", "c.txt"])))
    keys = [r.key for r in trace.read(by_spec)]
    assert keys[0] == keys[1] != keys[2]


def test_a_broken_trace_line_is_reported_with_its_line(tmp_path):
    path = tmp_path / "trace.jsonl"
    path.write_text('{"t": 1, "key": "a", "build_seconds": 1, "size": 1}\n{"t": 2, "key": "b"}\n')
    with pytest.raises(trace.TraceError, match=r"trace.jsonl:2"):
        trace.read(path)


def test_export_turns_index_entries_into_requests(tmp_path):
    index = Index(tmp_path)
    try:
        index.put("v1:aaa", {"created": 100.0, "hits": 2, "last_hit": 300.0, "build_seconds": 42.0, "size": 7})
        index.put("v1:bbb", {"created": 150.0, "hits": 0, "last_hit": None, "build_seconds": 5.0, "size": 3})
        requests = trace.export_index(index)
    finally:
        index.close()
    assert [(r.t, r.key) for r in requests] == [(100.0, "v1:aaa"), (150.0, "v1:bbb"), (200.0, "v1:aaa"),
                                                (300.0, "v1:aaa")]
    assert replay.replay(requests, 100, "lru").hits == 2


def test_cli_generates_replays_and_plots(tmp_path, capsys):
    trace_file, results, plot = tmp_path / "t.jsonl", tmp_path / "r.json", tmp_path / "r.png"
    assert main(["bench", "trace", "--requests", "2000", "--seed", "1", "-o", str(trace_file)]) == 0
    assert main(["bench", "replay", str(trace_file), "--size", "5GB,50GB", "--policy", "lru,cost",
                 "--out", str(results), "--plot", str(plot)]) == 0
    table = capsys.readouterr().out
    assert "hit rate" in table and "cost" in table
    document = json.loads(results.read_text())
    assert document["requests"] == 2000
    assert [(r["policy"], r["capacity"]) for r in document["results"]] == [
        ("lru", 5 * GB), ("lru", 50 * GB), ("cost", 5 * GB), ("cost", 50 * GB)]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_reports_bad_sizes_without_a_traceback(tmp_path, capsys):
    trace_file = tmp_path / "t.jsonl"
    trace.write(trace.synthetic(10), trace_file)
    assert main(["bench", "replay", str(trace_file), "--size", "lots"]) != 0
    assert "--size" in capsys.readouterr().err


def test_cli_exports_the_index_of_a_home(tmp_path):
    index = Index(tmp_path / "home")
    try:
        index.put("v1:aaa", {"created": 100.0, "hits": 1, "last_hit": 200.0, "build_seconds": 4.0, "size": 9})
    finally:
        index.close()
    out = tmp_path / "history.jsonl"
    assert main(["bench", "export", "--cache-dir", str(tmp_path / "home"), "-o", str(out)]) == 0
    assert [r.t for r in trace.read(out)] == [100.0, 200.0]
