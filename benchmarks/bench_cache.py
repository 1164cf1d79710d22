"""P1, P2, P8 — what the cache saves.

- P1: the in-process hit decision for a pip spec of 10, 100 and 1000 packages: normalize + key the parsed
  Environment, then the index lookups (request key → build key → entry); the details split the two. Also the
  decision the CLI makes for a spec file seen before, byte for byte: digest of its bytes → its memo file → the
  request's answer file (no parsing, no normalizing, no index). The engine check that follows on a real hit (one
  Engine API call) is measured apart, in the details.
- P2: `envbuild build SPEC` on a spec seen before, whole process, as a user runs it: a clean virtual environment
  with a regular (non-editable, bytecode-compiled) install of this checkout, run from outside the checkout, both
  as the `envbuild` console script and as `python -m envbuild`. Side by side in the same run, interleaved: a bare
  interpreter start of the same venv (`python -c pass`, the floor), `docker build` of the same rendered Dockerfile
  with the engine's layer cache warm (a no-op build), and the same envbuild command with its caches bypassed
  (`--rebuild --refresh-lock`: re-lock + no-op build). The details say where the hit's milliseconds go: the
  top-level imports of one hit under `python -X importtime`, and the hit's own reported time.
- P8: registry bytes for 10 related environments (one base, the same few packages, one package each of their
  own) pushed to a real registry, against one full image each (the sum of each image's manifest: config + every
  layer, compressed, as a registry without shared layers would store them).
Run as a script: prints the entries as JSON.
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

IDS = ("P1", "P2", "P8")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Ten related environments: the same two packages, and one of their own each.
SHARED = ["six", "idna"]
OWN = ["attrs", "packaging", "certifi", "urllib3", "pyparsing", "toml", "wheel", "zipp", "tomli", "iniconfig"]


def entry(id_: str, name: str, value: float, unit: str, target: str, baseline: float | None = None,
          baseline_name: str | None = None, details: dict | None = None) -> dict:
    ratio = baseline / value if baseline and value else None
    return {"id": id_, "name": name, "value": value, "unit": unit, "baseline": baseline,
            "baseline_name": baseline_name, "ratio": ratio, "target": target, "details": details or {}}


def median_time(action, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# -- P1 ---------------------------------------------------------------------------------------------------------
def hit_decision(packages: int, repeat: int, directory: Path) -> dict:
    """Median seconds of the hit decision from a parsed Environment, with its two parts, and of the decision the
    CLI makes from the spec file's bytes (its memo and answer files: no parsing, no normalizing, no index)."""
    from envbuild.cache import Index, new_entry
    from envbuild.keys import file_memo_key, request_key
    from envbuild.engine import Engine
    from envbuild.hitpath import _ANSWER, _MEMO, _answer_path, _memo_path, _read, _write
    from envbuild.spec import Environment

    spec = directory / f"requirements-{packages}.txt"
    spec.write_text("".join(f"Package_{i:04d}>=1.{i % 7},<{3 + i % 5}\n" for i in range(packages)))
    env = Environment.from_pip_requirements(f"p1-{packages}", spec)
    base_id = "sha256:" + "0" * 64
    index = Index(directory / f"home-{packages}")
    build_key = f"v1:{uuid.uuid4().hex}"
    index.put(build_key, new_entry(image="envbuild/env:none", image_id=base_id, name=env.name, spec_key=env.key,
                                   lock_key="", base_id=base_id, build_seconds=1.0, size=1, source="built"))
    requested = request_key(env.key, base_id, None)
    index.remember_request(requested, build_key)
    # What the full path writes for the CLI's fast path (envbuild.hitpath): the file's memo, the request's answer.
    _write(_memo_path(index.home, file_memo_key(spec, None)), {
        "spec_key": env.key, "platform": "linux-64", "base_ref": "base", "base_id": base_id, "request_key": requested})
    _write(_answer_path(index.home, requested), {"key": build_key, "image": "envbuild/env:none", "id": base_id,
                                                 "spec_key": env.key, "lock_key": ""})

    def lookup(spec_key: str) -> None:
        assert index.get(index.resolve_request(request_key(spec_key, base_id, None))) is not None

    def from_file() -> None:
        memo = _read(_memo_path(index.home, file_memo_key(spec, None)), _MEMO)
        assert _read(_answer_path(index.home, memo["request_key"]), _ANSWER) is not None

    spec_key = env.key
    timings = {
        "seconds": median_time(lambda: lookup(env.key), repeat),
        "normalize_and_key_seconds": median_time(lambda: env.key, repeat),
        "index_lookup_seconds": median_time(lambda: lookup(spec_key), repeat),
        "from_file_memo_seconds": median_time(from_file, repeat),
    }
    engine = Engine()
    if engine.ping():  # P1 itself needs no engine; the check that follows a real hit is measured when there is one
        timings["engine_check_seconds"] = median_time(lambda: engine.image_id("envbuild/python:3.11-bookworm"),
                                                      max(repeat // 10, 5))
    engine.close()
    index.close()
    return {**timings, "runs": repeat}


# -- P2 ---------------------------------------------------------------------------------------------------------
def installed_like(**extra: str) -> dict:
    """The environment of an installed envbuild for commands run from the checkout: bytecode cached under a prefix
    outside it (a checkout run with PYTHONDONTWRITEBYTECODE would recompile every module on every start)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": os.path.join(tempfile.gettempdir(), "envbuild-bench-pycache"), **extra}


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "envbuild", *args], capture_output=True, text=True, check=True,
                          env=installed_like(ENVBUILD_HOME=str(home)), cwd=ROOT)


def clean_venv(directory: Path) -> Path:
    """A fresh venv holding a regular install of this checkout (a wheel, bytecode compiled, as pip installs it)
    and xxhash, the one dependency of the cache-hit path: a miss there fails loudly instead of being measured."""
    import shutil

    source = directory / "source"  # building a wheel writes build/ and *.egg-info next to the sources
    shutil.copytree(ROOT / "envbuild", source / "envbuild", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(directory / "wheel"), str(source)], check=True,
                   capture_output=True)
    venv = directory / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--compile",
                    *map(str, (directory / "wheel").glob("envbuild-*.whl")), "xxhash"], check=True,
                   capture_output=True)
    package = Path(subprocess.run([str(python), "-c", "import envbuild, os; print(os.path.dirname(envbuild.__file__))"],
                                  check=True, capture_output=True, text=True, cwd=directory,
                                  env=outside_checkout()).stdout.strip())
    sources = {p.relative_to(package).with_suffix("") for p in package.rglob("*.py")}
    compiled = {p.parent.parent.relative_to(package) / p.name.split(".")[0] for p in package.rglob("*.pyc")}
    assert package.is_relative_to(venv) and sources <= compiled, sources - compiled
    return venv


def outside_checkout(**extra: str) -> dict:
    """The environment of a user's shell: nothing pointing into the checkout, bytecode read where pip wrote it."""
    drop = ("PYTHONPATH", "PYTHONPYCACHEPREFIX", "PYTHONHOME", "VIRTUAL_ENV")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def interleaved_medians(commands: dict[str, list[str]], repeat: int, **options) -> dict[str, float]:
    """Median seconds of each command, run in turn round after round, so that every one sees the same load."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, **options)
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def import_breakdown(command: list[str], **options) -> dict[str, float]:
    """Milliseconds per top-level import of one run of `command` (`python -X importtime`), largest first."""
    done = subprocess.run([command[0], "-X", "importtime", *command[1:]], check=True, capture_output=True,
                          text=True, **options)
    top = {}
    for line in done.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if len(fields) == 3 and fields[2].startswith(" ") and not fields[2].startswith("  ") and \
                fields[1].strip().isdigit():
            top[fields[2].strip()] = top.get(fields[2].strip(), 0) + int(fields[1]) / 1000
    return dict(sorted(top.items(), key=lambda item: -item[1]))


def seen_spec_timings(repeat: int, directory: Path) -> dict:
    from envbuild import api, config
    from envbuild.builder import find_builder
    from envbuild.spec import Environment

    directory.mkdir(parents=True, exist_ok=True)
    spec = directory / "requirements.txt"
    spec.write_text("six\nidna\n")
    home = directory / "home"
    started = time.perf_counter()
    first = json.loads(cli(home, "build", str(spec), "--json", "-q").stdout)
    first_seconds = time.perf_counter() - started

    venv = clean_venv(directory)
    python, script = str(venv / "bin" / "python"), str(venv / "bin" / "envbuild")
    user = {"env": outside_checkout(ENVBUILD_HOME=str(home)), "cwd": directory}
    answered = json.loads(subprocess.run([script, "build", str(spec), "--json"], check=True, capture_output=True,
                                         text=True, **user).stdout)
    assert answered["source"] == "cache" and answered["key"] == first["key"], answered

    plan = api.render(Environment.from_pip_requirements("p2", spec), cache_dir=home)
    context = plan.write_context(directory / "context")
    builder = find_builder()
    # Tagged apart: retagging the plan's image with a differently labelled build would make the next hit a miss.
    command = builder.build_command() + ["-q", "-t", "envbuild-bench/p2-noop:latest", "--label",
                                         f"org.envbuild.build-key={plan.key}", "--build-arg", "BUILDKIT_INLINE_CACHE=1"]
    ca = config.host_ca_bundle()
    command += ["--secret", f"id=ca,src={ca}"] if ca else []
    command.append(str(context))
    subprocess.run(command, check=True, capture_output=True, env=builder.environment())  # the layer cache is warm

    medians = interleaved_medians({"bare": [python, "-c", "pass"], "hit": [script, "build", str(spec), "-q"],
                                   "hit_module": [python, "-m", "envbuild", "build", str(spec), "-q"]},
                                  repeat * 3, **user)
    docker_build = median_time(lambda: subprocess.run(command, check=True, capture_output=True,
                                                      env=builder.environment()), repeat)
    bypassed = median_time(lambda: cli(home, "build", str(spec), "-q", "--rebuild", "--refresh-lock"),
                           max(repeat // 2, 2))
    reported = subprocess.run([script, "build", str(spec), "--json"], check=True, capture_output=True, text=True,
                              **user).stdout
    return {"first_build_seconds": first_seconds, "first_source": first["source"], **medians,
            "bypassed": bypassed, "docker_build": docker_build, "builder": builder.kind, "runs": repeat * 3,
            "hit_in_process_seconds": json.loads(reported)["seconds"],
            "hit_imports_ms": import_breakdown([python, "-m", "envbuild", "build", str(spec), "-q"], **user),
            "bare_imports_ms": import_breakdown([python, "-c", "pass"], **user),
            "install": "clean venv, regular install (wheel, compiled), run outside the checkout"}


# -- P8 ---------------------------------------------------------------------------------------------------------
def registry_bytes(count: int, directory: Path) -> dict:
    import envbuild
    from envbuild.registry import Registry
    from tests.support.registry import running_registry, stored_bytes

    with running_registry(directory / "registry") as address:
        location = f"{address}/p8"
        shared = Registry(location)
        manifests_total = 0
        for own in OWN[:count]:
            spec = directory / own / "requirements.txt"
            spec.parent.mkdir(parents=True, exist_ok=True)
            spec.write_text("\n".join(SHARED + [own]) + "\n")
            image = envbuild.build(envbuild.Environment.from_pip_requirements(f"p8-{own}", spec),
                                   cache_dir=directory / "home", registry=location)
            manifests_total += _manifest_bytes(shared, image.key)
        stored = stored_bytes(directory / "registry")
    return {"stored": stored, "one_full_image_each": manifests_total, "environments": count}


def _manifest_bytes(shared, build_key: str) -> int:
    """Bytes one image takes in a registry on its own: config + layers (compressed) + the manifest itself."""
    import urllib.request

    from envbuild.keys import tag_of

    request = urllib.request.Request(f"{shared.scheme}://{shared.host}/v2/{shared.repository}/manifests/"
                                     f"{tag_of(build_key)}",
                                     headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    manifest = json.loads(body)
    return len(body) + manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])


def run(quick: bool = False, only: set[str] | None = None) -> list[dict]:
    """The entries of the ids in `only` (default all); P1 needs no engine, P2 and P8 do."""
    wanted = set(IDS) if only is None else set(IDS) & set(only)
    results = []
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-cache-") as tmp:
        directory = Path(tmp)
        for packages in (10, 100, 1000) if "P1" in wanted else ():
            measured = hit_decision(packages, (20 if quick else 200) if packages < 1000 else (5 if quick else 30),
                                    directory)
            results.append(entry("P1", f"hit decision, {packages}-package spec (normalize + key + index)",
                                 measured["seconds"] * 1000, "ms", "<= 1 ms median for 100 packages",
                                 details=measured))
            if packages == 100:
                results.append(entry("P1", "hit decision, 100-package spec file seen before (memo + answer files)",
                                     measured["from_file_memo_seconds"] * 1000, "ms", "<= 1 ms median",
                                     measured["seconds"] * 1000, "normalize + key + index", measured))

        if "P2" in wanted:
            results += seen_spec_entries(seen_spec_timings(3 if quick else 9, directory / "p2"))
        if "P8" in wanted:
            measured = registry_bytes(2 if quick else len(OWN), directory / "p8")
            results.append(entry("P8", f"registry bytes for {measured['environments']} related environments",
                                 measured["stored"] / 1e6, "MB", "far below one full image each",
                                 measured["one_full_image_each"] / 1e6, "one full image each (sum of manifests)",
                                 measured))
    return results


def seen_spec_entries(timings: dict) -> list[dict]:
    details = {**timings, "hit_minus_bare_ms": (timings["hit"] - timings["bare"]) * 1000,
               "hit_module_minus_bare_ms": (timings["hit_module"] - timings["bare"]) * 1000}
    return [
        entry("P2", "envbuild build on a seen spec vs docker build (warm layer cache)", timings["hit"], "s",
              ">= 3x faster", timings["docker_build"], "docker build of the rendered Dockerfile, warm layer cache",
              details),
        entry("P2", "envbuild build on a seen spec vs caches bypassed (re-lock + no-op build)", timings["hit"], "s",
              ">= 10x faster", timings["bypassed"], "envbuild build --rebuild --refresh-lock", details),
        entry("P2", "envbuild build on a seen spec vs a bare interpreter start", timings["hit"], "s",
              "within 10 ms of the bare start", timings["bare"], "python -c pass (same venv)", details),
        entry("P2", "python -m envbuild build on a seen spec vs a bare interpreter start", timings["hit_module"], "s",
              "within 10 ms of the bare start", timings["bare"], "python -c pass (same venv)", details),
    ]


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=1))
