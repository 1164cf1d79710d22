"""P9 and P10: a second machine that shares the first one's registry, against a cold build there.

Machine A is the main engine; machine B a second dockerd started here with its own empty data root
(tests/support/second_engine.py), both pointed at one real registry (tests/support/registry.py). A builds an
environment (pip: six, idna) and shares it; B, with an empty envbuild home, then:
- P9: asks for the same environment: a registry hit (target <= 0.1 of the cold build);
- P10: builds it with one pip package more: A's installer stage comes from the registry as a layer-cache source,
  only the pip step runs (target <= 0.3 of the cold build);
- baseline: the same one-package-more environment built cold on B: BuildKit's cache (downloads included) pruned,
  no registry, its image gone.
All three are wall-clock seconds of `python -m envbuild build --json` on B, measured side by side in each round,
with envbuild's default base already on B (pulled from the registry once, before the first round; how long that
took is in the details: a cold machine would otherwise spend minutes making its own). P10's value includes the
push of what B built (`push_seconds`, in the details); the cold build pushes nothing.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

IDS = ("P9", "P10")
ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["six", "idna"]
ONE_MORE = "attrs"


def entry(id_: str, name: str, value: float, target: str, baseline: float, details: dict) -> dict:
    return {"id": id_, "name": name, "value": value, "unit": "s", "baseline": baseline,
            "baseline_name": "cold build on B", "ratio": baseline / value if value else None, "target": target,
            "details": {**details, "fraction_of_cold": value / baseline if baseline else None}}


def _envbuild(*args: str, env: dict) -> tuple[float, dict]:
    """Wall seconds and JSON result of `python -m envbuild ARGS --json` (the checkout under test first)."""
    merged = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                                                  if p)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "envbuild", *args, "--json"], capture_output=True, text=True,
                          env=merged)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"envbuild {' '.join(args)} failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    return seconds, json.loads(done.stdout)


def _round(directory: Path, registry: str, b, on_b: dict) -> dict:
    """One round: A builds and shares; B hits, changes one package, and builds that change cold."""
    nonce = uuid.uuid4().hex[:12]
    b.docker("builder", "prune", "-af")  # every round on a B whose BuildKit has seen nothing (as in the first)
    template = directory / f"round-{nonce}.Dockerfile.j2"  # images no earlier round or run has
    template.write_text('{% extends "environment.Dockerfile.j2" %}\n'
                        f'{{% block user_steps %}}ENV ENVBUILD_BENCH_ROUND={nonce}\n{{% endblock %}}\n')
    spec = directory / nonce / "same" / "requirements.txt"
    changed = directory / nonce / "changed" / "requirements.txt"
    for path, packages in ((spec, PACKAGES), (changed, PACKAGES + [ONE_MORE])):
        path.parent.mkdir(parents=True)
        path.write_text("".join(f"{p}\n" for p in packages))
    homes = {name: str(directory / nonce / f"home-{name}") for name in ("a", "b", "cold")}
    _, built = _envbuild("build", str(spec), "--template", str(template), "-q",
                         env={"ENVBUILD_HOME": homes["a"], "ENVBUILD_REGISTRY": registry})
    hit_seconds, hit = _envbuild("build", str(spec), "--template", str(template), "-q",
                                 env={**on_b, "ENVBUILD_HOME": homes["b"]})
    assert hit["source"] == "registry", hit
    change_seconds, change = _envbuild("build", str(changed), "--template", str(template), "-q",
                                       env={**on_b, "ENVBUILD_HOME": homes["b"]})
    assert change["source"] == "built", change
    b.docker("rmi", change["image"])
    b.docker("builder", "prune", "-af")
    cold_env = {k: v for k, v in on_b.items() if k != "ENVBUILD_REGISTRY"}
    cold_seconds, cold = _envbuild("build", str(changed), "--template", str(template), "-q",
                                   env={**cold_env, "ENVBUILD_HOME": homes["cold"]})
    assert cold["source"] == "built" and cold["key"] == change["key"], cold
    for result in (hit, change, cold):
        b.docker("rmi", result["image"], check=False)
    subprocess.run(["/usr/bin/docker", "rmi", built["image"]], capture_output=True)
    return {"hit": hit_seconds, "change": change_seconds, "cold": cold_seconds,
            "change_push": change.get("push_seconds") or 0.0}


def run(quick: bool = False, only: set[str] | None = None) -> list[dict]:
    sys.path.insert(0, str(ROOT))
    from tests.support.registry import running_registry
    from tests.support.second_engine import second_engine

    wanted = set(IDS) if only is None else set(IDS) & set(only)
    rounds = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-team-") as tmp:
        directory = Path(tmp)
        with running_registry(directory / "registry") as address, \
                second_engine(directory / "machine-b", tls=False) as b:
            registry = f"{address}/team"
            on_b = {"DOCKER_HOST": b.socket, "ENVBUILD_REGISTRY": registry}
            # A shares its default base (pushed by its first build with the registry), B pulls it once.
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "from envbuild.bases import ensure_default_base as e; "
                            "from envbuild.engine import Engine; from envbuild.registry import configured; "
                            "e(Engine(), shared=configured())"], check=True, capture_output=True,
                           env={**os.environ, "ENVBUILD_REGISTRY": registry, "PYTHONPATH": str(ROOT)})
            subprocess.run([sys.executable, "-c", "from envbuild.bases import ensure_default_base as e; "
                            "from envbuild.engine import Engine; from envbuild.registry import configured; "
                            "e(Engine(), shared=configured())"], check=True, capture_output=True,
                           env={**os.environ, **on_b, "PYTHONPATH": str(ROOT)})
            base_seconds = time.perf_counter() - started
            measured = [_round(directory, registry, b, on_b) for _ in range(rounds)]
    median = {name: statistics.median(m[name] for m in measured) for name in measured[0]}
    details = {"rounds": measured, "packages": PACKAGES, "one_more": ONE_MORE,
               "base_shared_then_pulled_seconds": base_seconds}
    results = []
    if "P9" in wanted:
        results.append(entry("P9", "machine B: registry hit of an environment A built", median["hit"],
                             "<= 0.1 of a cold build on B", median["cold"], details))
    if "P10" in wanted:
        results.append(entry("P10", "machine B: one pip package more than an environment A built", median["change"],
                             "<= 0.3 of a cold build on B", median["cold"],
                             {**details, "push_seconds": median["change_push"]}))
    return results


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=1))
