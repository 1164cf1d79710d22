"""The benchmark suite runs: `benchmarks/run.py --quick` on the benchmarks that need no engine (no timings checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# P1 shares its module (bench_cache) with the engine benchmarks P2/P8; its run() takes `only` and skips them.
NO_ENGINE = {"P1", "P3", "P5", "replay", "ui"}
ENTRY_FIELDS = {"id", "name", "value", "unit", "baseline", "baseline_name", "ratio", "target", "details", "machine"}


@pytest.mark.slow  # about 40 % of the unit tier's time
def test_quick_run_prints_a_table_and_saves_json_and_plots(tmp_path):
    out = tmp_path / "results.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--only",
                           ",".join(sorted(NO_ENGINE)), "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    header = next(line for line in done.stdout.splitlines() if line.startswith("id "))
    assert "baseline" in header and "target" in header

    document = json.loads(out.read_text())
    results = document["results"]
    failed = {name: entry["error"] for name, entry in results.items() if name.startswith("failed:")}
    assert not failed
    assert {"P3", "replay"} <= {entry["id"] for entry in results.values()} <= NO_ENGINE
    for entry_id, entry in results.items():
        assert ENTRY_FIELDS <= entry.keys(), entry_id
        assert isinstance(entry["value"], (int, float)) and entry["unit"] and entry["target"], entry_id
        assert entry["id"] in done.stdout
    machine = document["machine"]
    assert machine["cores"] >= 1 and machine["python"] and machine["envbuild"] and machine["cpu"]
    assert "conda-lock" in machine["libraries"]

    equivalence = results["P3"]["details"]
    assert set(equivalence["false_hits"]) == {"envbuild", "raw text (Azure ML CLI v2)", "sorted YAML (Azure ML SDK)",
                                              "conda-lock content_hash"}
    assert equivalence["keys"]["envbuild"]["equivalent_requests"] > 0
    assert len(results["replay"]["details"]["results"]) > 0
    for plot in document["plots"]:
        assert (out.parent / plot).read_bytes()[:4] == b"\x89PNG"
    assert any(p.endswith("-replay.png") for p in document["plots"])
