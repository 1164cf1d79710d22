"""The P3 trace generator and scorer (benchmarks/bench_equivalence.py): its labels and its counts, no engine."""

from __future__ import annotations

import hashlib
import importlib.util
import random
import sys
from pathlib import Path

import pytest
import yaml

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_equivalence.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_equivalence", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_equivalence"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def trace(bench, tmp_path):
    rng = random.Random(1)
    seeds = bench.generated_seeds(3, rng)
    return bench.make_trace(tmp_path, seeds, cosmetic_variants=5, semantic_rounds=1, rng=rng)


def test_every_file_is_valid_yaml_and_cosmetic_variants_share_their_seeds_truth(bench, trace):
    for request in trace:
        assert isinstance(yaml.safe_load(request.path.read_text()), dict)
    by_truth: dict[str, set[str]] = {}
    for request in trace:
        by_truth.setdefault(request.truth, set()).add(request.kind)
    seeds = [kinds for kinds in by_truth.values() if "seed" in kinds]
    assert len(seeds) == 3 and all(kinds == {"seed"} for kinds in seeds)
    assert sum(r.kind == "seed" and r.changes != () for r in trace) == 15


def test_semantic_changes_make_new_environments(bench):
    rng = random.Random(2)
    seed = bench.generated_seeds(1, rng)[0]
    seed.deps.append(bench.Dep("pip", "requests", [">=2"]))
    for kind in bench.SEMANTIC:
        changed = bench.semantic(seed, kind, rng)
        assert bench.truth(changed) != bench.truth(seed), kind
        spec, style, _ = bench.cosmetic(changed, bench.Style(), rng, 3)
        assert bench.truth(spec) == bench.truth(changed), kind


def test_scoring_counts_hits_misses_and_false_hits(bench, trace):
    raw = bench.score(trace, bench.raw_text_key)
    assert raw["false_hits"] == 0 and raw["hit_rate"] < 0.5

    def ignores_variables(path: Path) -> str:
        data = yaml.safe_load(path.read_text())
        data.pop("variables", None)
        data.pop("name", None)
        return hashlib.sha256(repr(sorted(data.items())).encode()).hexdigest()

    careless = bench.score(trace, ignores_variables)
    assert careless["false_hits"] > 0
    assert set(careless["false_hits_by_change"]) == {"env var"}

    def constant(path: Path) -> str:
        return "same"

    # One key for everything: only the first file's own environment hits; every other file gets its image.
    one_key = bench.score(trace, constant)
    assert one_key["hits"] == sum(r.truth == trace[0].truth for r in trace[1:])
    assert one_key["false_hits"] == len(trace) - 1 - one_key["hits"]
