"""Run envbuild's benchmarks: `python benchmarks/run.py [--quick] [--out FILE.json] [--only P1,P3]`.

Every benchmarks/bench_*.py module is a benchmark: its `run(quick: bool) -> list[dict]` returns entries
{"id", "name", "value", "unit", "baseline", "baseline_name", "ratio", "target", "details"}, each value a median of
several runs with its baseline measured in the same run. A module may also define
`plot(entries, directory, stem)` returning the PNG files it wrote (named `<stem>-….png`). This script prints one
table, saves the JSON (one entry per id, each with the machine and versions it was measured on) and the plots next
to it. A module that fails is a row in the table, not the end of the run.

`--only` picks modules by the ids they declare: a module-level `IDS` tuple, else the P-numbers named in its
docstring (read without importing it, so that skipped modules cost nothing). A module measuring several ids whose
`run` also takes `only` (a set of ids) is told which are wanted; the others are dropped from its results.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import inspect
import json
import os
import platform
import re
import subprocess
import sys
import textwrap
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
LIBRARIES = ("diskcache", "xxhash", "packaging", "PyYAML", "conda-lock", "py-rattler", "uv", "docker", "jinja2",
             "matplotlib")


def declared_ids(path: Path) -> set[str] | None:
    """The ids a module declares; None when its source does not parse (it is then run, and fails visibly)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "IDS" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return set(re.findall(r"\bP\d+\b", ast.get_docstring(tree) or ""))


def discover(only: set[str] | None) -> list[Path]:
    modules = sorted(HERE.glob("bench_*.py"))
    if only is None:
        return modules
    return [path for path in modules if (ids := declared_ids(path)) is None or ids & only]


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses and pickling look modules up by name
    sys.path.insert(0, str(HERE))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(HERE))
    return module


def machine() -> dict:
    """The machine and versions results are measured on."""
    from importlib import metadata

    import envbuild

    cpu = next((line.split(":", 1)[1].strip() for line in _read_lines("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    memory = next((int(line.split()[1]) * 1024 for line in _read_lines("/proc/meminfo")
                   if line.startswith("MemTotal:")), None)
    os_name = next((line.split("=", 1)[1].strip().strip('"') for line in _read_lines("/etc/os-release")
                    if line.startswith("PRETTY_NAME=")), platform.platform())
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_bytes": memory, "os": os_name,
            "kernel": platform.release(), "python": platform.python_version(), "envbuild": envbuild.__version__,
            "docker_engine": _docker_engine_version(), "libraries": versions}


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def _docker_engine_version() -> str | None:
    try:
        done = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                              text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def run_module(path: Path, quick: bool, only: set[str] | None) -> tuple[object | None, list[dict], str | None]:
    """(module, its entries, None) or (module or None, [], the error) — a failing module never stops the run."""
    module = None
    try:
        module = load(path)
        # A module measuring several ids may take `only` and skip the others (e.g. those needing an engine).
        wants_only = only is not None and "only" in inspect.signature(module.run).parameters
        entries = module.run(quick, only=only) if wants_only else module.run(quick)
        if only is not None:
            entries = [e for e in entries if e["id"] in only]
        return module, entries, None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit and friends from a benchmark are failures too
        traceback.print_exc()
        return module, [], f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


def table(rows: list[dict]) -> str:
    header = ("id", "benchmark", "value", "baseline", "ratio", "target", "status")
    lines = [[row.get("id", "?"), row.get("name", ""), _value(row.get("value"), row.get("unit")),
              _baseline(row), _number(row.get("ratio"), "x"), row.get("target", ""), row.get("status", "ran")]
             for row in rows]
    widths = [min(max(len(str(c)) for c in column), 60) for column in zip(header, *lines)]
    out = ["  ".join(str(c)[:w].ljust(w) for c, w in zip(header, widths)),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(str(c)[:w].ljust(w) for c, w in zip(line, widths)) for line in lines]
    return "\n".join(out)


def markdown_table(rows: list[dict], about: dict) -> str:
    """The table for benchmarks/README.md, with the machine it was measured on."""
    lines = ["| id | benchmark | envbuild | baseline | ratio | target |", "|---|---|---|---|---|---|"]
    for row in rows:
        value = _value(row.get("value"), row.get("unit")) if "value" in row else row.get("status", "")
        lines.append(f"| {row.get('id', '?')} | {row.get('name', '')} | {value} | {_baseline(row)} | "
                     f"{_number(row.get('ratio'), 'x')} | {row.get('target', '')} |")
    memory = f"{about['memory_bytes'] / 2**30:.0f} GiB" if about.get("memory_bytes") else "?"
    lines.append(f"\nMeasured on {about['cpu']} ({about['cores']} cores, {memory}), {about['os']}, "
                 f"Python {about['python']}, envbuild {about['envbuild']}, Docker Engine {about['docker_engine']}.")
    return "\n".join(lines) + "\n"


def _number(value, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)) and abs(value) >= 1000:
        return f"{value:,.0f}{unit}"
    return f"{value:.3g}{unit}" if isinstance(value, (int, float)) else str(value)


def _value(value, unit) -> str:
    return "-" if value is None else f"{_number(value)} {unit or ''}".strip()


def _baseline(row: dict) -> str:
    if row.get("baseline") is None:
        return "-"
    return f"{_number(row['baseline'])} ({row.get('baseline_name') or 'baseline'})"


def summary_plot(entries: list[dict], path: Path) -> Path | None:
    """One bar pair (envbuild vs its baseline) per entry that has a baseline."""
    pairs = [e for e in entries if isinstance(e.get("value"), (int, float)) and isinstance(e.get("baseline"),
                                                                                           (int, float))]
    if not pairs:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(4, len(pairs))
    rows = -(-len(pairs) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), constrained_layout=True,
                                squeeze=False)
    for axis, entry in zip(axes.flat, pairs):
        bars = axis.bar(["envbuild", "baseline"], [entry["value"], entry["baseline"]],
                        color=["tab:blue", "tab:gray"])
        axis.bar_label(bars, fmt="%.3g", fontsize=7)
        axis.set_title(textwrap.fill(f"{entry['id']}: {entry['name']}", 45), fontsize=8)
        axis.set_ylabel(entry.get("unit") or "", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.set_xlabel(textwrap.fill(f"baseline: {entry.get('baseline_name') or ''}", 50), fontsize=7)
    for axis in list(axes.flat)[len(pairs):]:
        axis.set_visible(False)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: seconds, not minutes (the smoke test)")
    parser.add_argument("--out", help="JSON results file (default: benchmarks/results/latest.json, or quick.json)")
    parser.add_argument("--only", help="comma-separated ids, e.g. P1,P3,replay")
    args = parser.parse_args(argv)
    only = {i.strip() for i in args.only.split(",") if i.strip()} if args.only else None
    out = Path(args.out) if args.out else RESULTS / ("quick.json" if args.quick else "latest.json")
    out.parent.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    about = machine()
    rows: list[dict] = []
    results: dict[str, dict] = {}
    plots: list[str] = []
    for path in discover(only):
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        module_started = time.perf_counter()
        module, entries, error = run_module(path, args.quick, only)
        seconds = time.perf_counter() - module_started
        if error:
            rows.append({"id": path.stem.removeprefix("bench_"), "name": path.name, "status": f"FAILED: {error}"})
            results[f"failed:{path.stem}"] = {"module": path.name, "error": error, "seconds": seconds}
            continue
        for entry in entries:
            entry_id = entry["id"] if entry["id"] not in results else f"{entry['id']}/{entry['name']}"
            results[entry_id] = {**entry, "module": path.name, "seconds": seconds, "quick": args.quick,
                                 "machine": about}
            rows.append(entry)
        if module is not None and hasattr(module, "plot") and entries:
            try:
                plots += [str(p) for p in module.plot(entries, out.parent, out.stem)]
            except Exception as exc:  # a broken plot must not lose the numbers
                print(f"{path.name}: plot failed: {exc}", file=sys.stderr)
    summary = summary_plot([r for r in rows if "value" in r], out.parent / f"{out.stem}-summary.png")
    if summary:
        plots.append(str(summary))
    document = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "quick": args.quick,
                "seconds": time.perf_counter() - started, "machine": about, "results": results,
                "plots": [os.path.relpath(p, out.parent) for p in plots]}
    out.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    markdown = out.with_suffix(".md")
    markdown.write_text(markdown_table(rows, about), encoding="utf-8")
    print(table(rows))
    print("".join(f"\nsaved {p}" for p in [out, markdown, *plots]))
    return 1 if not rows else 0


if __name__ == "__main__":
    sys.exit(main())
