"""P3 — equivalence: does a key say "same" exactly when two spec files build the same environment?

A generated trace of environment.yml files, each labelled with the environment it truly describes:
- seeds: real public specs from /work/shared/corpus (conda/*.yml, pip/*.txt; only the plain dependencies every
  parser under test accepts), plus generated ones;
- cosmetic variants of a seed (same environment): dependency order, name case, `_`/`-`/`.` spelling of pip
  names, whitespace, specifier order, comments, duplicate entries, metadata (name), YAML quoting/flow style;
- semantic variants (a different environment, possibly also reformatted): a version bound, a pip extra, a pip
  marker, channel order, an added package, an environment variable.
Every file is requested once, in a shuffled order. A request whose environment was seen before should hit; a hit
on a key first seen for another environment is a false hit (the cache would hand out the wrong image).

Keys compared, all measured in this run on the same files:
- envbuild: `Environment.from_file(path).key`;
- raw text: sha256 of the file's bytes (how Azure ML CLI v2 names anonymous environments);
- sorted YAML: sha256 of the parsed YAML dumped with sorted mapping keys (Azure ML SDK-style);
- conda-lock: `content_hash` of the LockSpecification its own environment.yml parser makes.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

CORPUS = Path("/work/shared/corpus")
PLATFORM = "linux-64"

# Semantic changes must change the environment: names added are ones no seed uses unchanged.
EXTRA_CONDA = ["zstd", "lz4-c", "libiconv", "tzdata", "ncurses", "xz"]
EXTRA_PIP = ["six", "idna", "tomli", "wheel", "attrs", "colorama"]
GENERATED_CONDA = ["numpy", "pandas", "scipy", "matplotlib", "scikit-learn", "pytorch", "xarray", "dask", "numba",
                   "pyarrow", "h5py", "netcdf4", "zarr", "seaborn", "statsmodels", "jupyterlab", "ipykernel"]
GENERATED_PIP = ["requests", "PyYAML", "typing_extensions", "python-dateutil", "Jinja2", "MarkupSafe",
                 "charset_normalizer", "huggingface_hub", "safetensors", "tokenizers", "azureml-mlflow",
                 "mlflow_skinny", "ruamel.yaml"]
_CONDA_CONSTRAINT = re.compile(r"^(>=|<=|==|!=|<|>|=)?\d[\w.*+]*$")
_CONDA_DEP = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*)\s*(.*)$")


@dataclass
class Dep:
    manager: str  # "conda" | "pip"
    name: str
    constraints: list[str] = field(default_factory=list)  # ">=1.2", "<2": an AND-list in both managers
    extras: list[str] = field(default_factory=list)
    marker: str | None = None


@dataclass
class Spec:
    name: str
    channels: list[str]
    deps: list[Dep]
    variables: dict[str, str] = field(default_factory=dict)


@dataclass
class Style:
    """How a spec is written: everything here leaves the environment unchanged."""

    indent: int = 2
    operator_spaces: bool = False
    name_spaces: bool = False
    reverse_constraints: bool = False
    comments: bool = False
    quote: bool = False
    flow_channels: bool = False
    blank_lines: bool = False
    duplicates: tuple[int, ...] = ()


# -- seeds --------------------------------------------------------------------------------------------------------

def corpus_seeds() -> list[Spec]:
    """The plain dependencies of each public spec in the corpus that envbuild and conda-lock both read."""
    from envbuild.spec import Environment

    seeds = []
    files = sorted(CORPUS.glob("conda/**/*.y*ml")) + sorted(CORPUS.glob("pip/**/*.txt"))
    for path in files:
        try:
            env = Environment.from_file(path)
        except Exception:  # a spec envbuild rejects is no seed for an equivalence test
            continue
        deps = env.python.conda_dependencies
        conda = [d for d in (_conda_dep(s) for s in deps.conda_packages) if d]
        pip = [d for d in (_pip_dep(r) for r in deps.pip_packages) if d]
        if len(conda) + len(pip) < 2:
            continue
        if pip and not any(d.name == "pip" for d in conda):
            conda.append(Dep("conda", "pip"))
        if pip and not any(d.name == "python" for d in conda):
            conda.insert(0, Dep("conda", "python", ["3.11.*"]))
        channels = [c for c in deps.channels if c not in ("nodefaults", "defaults")] or ["conda-forge"]
        if len(channels) < 2:  # so that channel order can change
            channels.append("bioconda" if "bioconda" not in channels else "pytorch")
        variables = dict(list(env.environment_variables.items())[:3])
        seeds.append(Spec(f"corpus-{path.stem}", channels, _unique(conda) + _unique(pip), variables))
    return seeds


def generated_seeds(count: int, rng: random.Random) -> list[Spec]:
    seeds = []
    for number in range(count):
        conda = [Dep("conda", "python", [f"3.{rng.choice([10, 11, 12])}.*"])] + [
            Dep("conda", name, _random_bounds(rng)) for name in rng.sample(GENERATED_CONDA, rng.randint(2, 8))]
        pip = [Dep("pip", name, _random_bounds(rng)) for name in rng.sample(GENERATED_PIP, rng.randint(0, 5))]
        if pip:
            conda.append(Dep("conda", "pip"))
        seeds.append(Spec(f"generated-{number}", ["conda-forge", rng.choice(["bioconda", "pytorch", "nvidia"])],
                          conda + pip, {"OMP_NUM_THREADS": str(rng.choice([1, 2, 4]))} if rng.random() < 0.5 else {}))
    return seeds


def _random_bounds(rng: random.Random) -> list[str]:
    major = rng.randint(1, 5)
    return rng.choice([[], [f">={major}.{rng.randint(0, 9)}"], [f">={major}.0", f"<{major + 1}"],
                       [f"=={major}.{rng.randint(0, 9)}.{rng.randint(0, 9)}"]])


def _unique(deps: list[Dep]) -> list[Dep]:
    seen: dict[tuple, Dep] = {}
    for dep in deps:
        seen.setdefault((dep.manager, _canonical_name(dep)), dep)
    return list(seen.values())


def _canonical_name(dep: Dep) -> str:
    return re.sub(r"[-_.]+", "-", dep.name).lower() if dep.manager == "pip" else dep.name.lower()


def _conda_dep(spec: str) -> Dep | None:
    match = _CONDA_DEP.match(spec.strip())
    if not match or "::" in spec or "[" in spec:
        return None
    # `==1.2.*` is conda's `1.2.*` (starts with 1.2), but rattler, envbuild's resolver, reads it so only as the
    # first constraint of a list and as `==1.2` after a comma: its meaning would hang on the order. Seeds use the
    # form whose meaning does not.
    constraints = [re.sub(r"^==(.*\.\*)$", r"\1", c.strip()) for c in match.group(2).split(",") if c.strip()]
    if not all(_CONDA_CONSTRAINT.match(c) for c in constraints):
        return None
    return Dep("conda", match.group(1).lower(), constraints)


def _pip_dep(text: str) -> Dep | None:
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(text)
    except InvalidRequirement:
        return None
    if req.url:
        return None
    return Dep("pip", req.name, sorted(str(s) for s in req.specifier), sorted(req.extras),
               str(req.marker) if req.marker else None)


# -- variants -----------------------------------------------------------------------------------------------------

def cosmetic(spec: Spec, style: Style, rng: random.Random, count: int) -> tuple[Spec, Style, tuple[str, ...]]:
    """`count` cosmetic changes of (spec, style), chosen at random: the same environment, and their names."""
    spec = replace(spec, deps=[replace(d) for d in spec.deps])
    changes = rng.sample(sorted(COSMETIC), min(count, len(COSMETIC)))
    for change in changes:
        spec, style = COSMETIC[change](spec, style, rng)
    return spec, style, tuple(changes)


def _reorder(spec, style, rng):
    conda = [d for d in spec.deps if d.manager == "conda"]
    pip = [d for d in spec.deps if d.manager == "pip"]
    rng.shuffle(conda)
    rng.shuffle(pip)
    return replace(spec, deps=conda + pip), style


def _case(spec, style, rng):
    for dep in rng.sample(spec.deps, max(1, len(spec.deps) // 2)):
        dep.name = rng.choice([dep.name.upper(), dep.name.title(), dep.name.capitalize()])
    return spec, style


def _spelling(spec, style, rng):
    for dep in spec.deps:
        if dep.manager == "pip" and re.search(r"[-_.]", dep.name):
            dep.name = re.sub(r"[-_.]", lambda _: rng.choice("-_."), dep.name)
    return spec, style


def _whitespace(spec, style, rng):
    return spec, replace(style, indent=rng.choice([1, 2, 4]), operator_spaces=rng.random() < 0.7,
                         name_spaces=True, blank_lines=rng.random() < 0.5)


def _specifier_order(spec, style, rng):
    return spec, replace(style, reverse_constraints=not style.reverse_constraints)


def _comments(spec, style, rng):
    return spec, replace(style, comments=True)


def _duplicates(spec, style, rng):
    return spec, replace(style, duplicates=tuple(rng.sample(range(len(spec.deps)), min(2, len(spec.deps)))))


def _metadata(spec, style, rng):
    return replace(spec, name=f"{spec.name}-{rng.choice(['dev', 'v2', 'copy', 'Final'])}"), style


def _yaml_style(spec, style, rng):
    return spec, replace(style, quote=not style.quote, flow_channels=not style.flow_channels)


COSMETIC = {"order": _reorder, "case": _case, "spelling": _spelling, "whitespace": _whitespace,
            "specifier order": _specifier_order, "comments": _comments, "duplicates": _duplicates,
            "metadata": _metadata, "yaml style": _yaml_style}


def semantic(spec: Spec, kind: str, rng: random.Random) -> Spec | None:
    """`spec` with one real change of kind `kind`, or None where that change does not apply to it."""
    spec = replace(spec, deps=[replace(d, constraints=list(d.constraints), extras=list(d.extras)) for d in spec.deps],
                   channels=list(spec.channels), variables=dict(spec.variables))
    pip = [d for d in spec.deps if d.manager == "pip" and not d.marker]
    if kind == "version bound":
        dep = rng.choice([d for d in spec.deps if d.name.lower() not in ("pip", "python")] or spec.deps)
        if dep.constraints and re.search(r"\d+", dep.constraints[0]):
            numbers = list(re.finditer(r"\d+", dep.constraints[0]))
            last = numbers[-1]
            dep.constraints[0] = (dep.constraints[0][:last.start()] + str(int(last.group()) + 1)
                                  + dep.constraints[0][last.end():])
        else:
            dep.constraints.append(">=1.0" if dep.manager == "pip" else ">=1.0")
    elif kind == "extra":
        if not pip:
            return None
        rng.choice(pip).extras.append("test-extra")
    elif kind == "marker":
        if not pip:
            return None
        rng.choice(pip).marker = 'sys_platform == "win32"'
    elif kind == "channel order":
        spec.channels[0], spec.channels[1] = spec.channels[1], spec.channels[0]
    elif kind == "added package":
        taken = {_canonical_name(d) for d in spec.deps}
        if pip and rng.random() < 0.5:
            spec.deps.append(Dep("pip", rng.choice([n for n in EXTRA_PIP if n not in taken])))
        else:
            spec.deps.insert(1, Dep("conda", rng.choice([n for n in EXTRA_CONDA if n not in taken])))
    elif kind == "env var":
        if spec.variables and rng.random() < 0.5:
            name = rng.choice(sorted(spec.variables))
            spec.variables[name] = spec.variables[name] + "-changed"
        else:
            spec.variables["ENVBUILD_BENCH_FLAG"] = "1"
    else:
        raise ValueError(kind)
    return spec


SEMANTIC = ["version bound", "extra", "marker", "channel order", "added package", "env var"]


# -- writing ------------------------------------------------------------------------------------------------------

def render(spec: Spec, style: Style) -> str:
    pad = " " * style.indent
    q = json.dumps if style.quote else (lambda s: s)  # a JSON string is a YAML double-quoted scalar
    lines = [f"name: {spec.name}"]
    if style.comments:
        lines.insert(0, "# generated for the envbuild equivalence benchmark")
    if style.flow_channels:
        lines.append("channels: [" + ", ".join(spec.channels) + "]")
    else:
        lines += ["channels:"] + [f"{pad}- {c}" for c in spec.channels]
    lines.append("dependencies:")
    conda = [(i, d) for i, d in enumerate(spec.deps) if d.manager == "conda"]
    pip = [(i, d) for i, d in enumerate(spec.deps) if d.manager == "pip"]
    for i, dep in conda:
        for _ in range(2 if i in style.duplicates else 1):
            comment = "  # pinned by the team" if style.comments and i % 3 == 0 else ""
            lines.append(f"{pad}- {q(_conda_text(dep, style))}{comment}")
    if style.blank_lines:
        lines.append("")
    if pip:
        lines.append(f"{pad}- pip:")
        for i, dep in pip:
            for _ in range(2 if i in style.duplicates else 1):
                lines.append(f"{pad}  {pad}- {q(_pip_text(dep, style))}")
    if spec.variables:
        lines.append("variables:")
        lines += [f"{pad}{k}: {json.dumps(v)}" for k, v in spec.variables.items()]
    trailing = "  " if style.blank_lines else ""
    return "\n".join(line + trailing if line else line for line in lines) + "\n"


def _constraints(dep: Dep, style: Style) -> list[str]:
    parts = list(reversed(dep.constraints)) if style.reverse_constraints else list(dep.constraints)
    if style.operator_spaces and dep.manager == "pip":
        parts = [re.sub(r"^([<>=!~]+)", r"\1 ", p) for p in parts]
    return parts


def _conda_text(dep: Dep, style: Style) -> str:
    constraints = ",".join(_constraints(dep, style))
    if not constraints:
        return dep.name
    # A bare version (`python 3.11.*`) needs the space; an operator may follow the name directly.
    spaced = style.name_spaces or constraints[0].isdigit()
    return f"{dep.name} {constraints}" if spaced else f"{dep.name}{constraints}"


def _pip_text(dep: Dep, style: Style) -> str:
    sep = " , " if style.operator_spaces else ","
    text = dep.name + (f"[{','.join(dep.extras)}]" if dep.extras else "")
    constraints = sep.join(_constraints(dep, style))
    if constraints:
        text += f" {constraints}" if style.name_spaces else constraints
    if dep.marker:
        text += f" ; {dep.marker}" if style.operator_spaces else f"; {dep.marker}"
    return text


# -- the trace and the keys -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Request:
    path: Path
    truth: str  # which environment the file really describes (see `truth`)
    kind: str  # "seed", or the semantic change made to the seed
    changes: tuple[str, ...] = ()  # the cosmetic changes written into this file


def make_trace(directory: Path, seeds: list[Spec], *, cosmetic_variants: int, semantic_rounds: int,
               rng: random.Random) -> list[Request]:
    """Files for each seed, its cosmetic variants, and its semantic variants (each also reformatted once)."""
    requests = []

    def emit(spec: Spec, style: Style, kind: str, changes: tuple[str, ...] = ()) -> None:
        path = directory / f"{len(requests):05d}.yml"
        path.write_text(render(spec, style), encoding="utf-8")
        requests.append(Request(path, truth(spec), kind, changes))

    for seed in seeds:
        emit(seed, Style(), "seed")
        for _ in range(cosmetic_variants):
            spec, style, changes = cosmetic(seed, Style(), rng, rng.randint(1, 3))
            emit(spec, style, "seed", changes)
        for _ in range(semantic_rounds):
            for kind in SEMANTIC:
                changed = semantic(seed, kind, rng)
                if changed is None:
                    continue
                emit(changed, Style(), kind)
                spec, style, changes = cosmetic(changed, Style(), rng, rng.randint(1, 2))
                emit(spec, style, kind, changes)
    first = requests[:1]
    rest = requests[1:]
    rng.shuffle(rest)
    return first + rest


def truth(spec: Spec) -> str:
    """The environment a generated spec describes, from the generator's own model (not from any key under test):
    channel order kept, dependencies as a set of (manager, canonical name, constraint set, extras, marker)."""
    deps = sorted({(d.manager, _canonical_name(d), tuple(sorted(d.constraints)), tuple(sorted(d.extras)),
                    d.marker or "") for d in spec.deps})
    return json.dumps([spec.channels, deps, sorted(spec.variables.items())])


def envbuild_key(path: Path) -> str:
    from envbuild.spec import Environment

    return Environment.from_file(path).key


def raw_text_key(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sorted_yaml_key(path: Path) -> str:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def conda_lock_key_function(scratch: Path):
    """conda-lock's content hash through its own environment.yml parser, offline (an empty PyPI→conda mapping)."""
    from conda_lock.content_hash import compute_content_hashes
    from conda_lock.src_parser.environment_yaml import parse_environment_file

    mapping = scratch / "pypi-to-conda-mapping.json"
    mapping.write_text("{}", encoding="utf-8")

    def key(path: Path) -> str:
        with warnings.catch_warnings():  # one warning per unsupported marker would drown the report
            warnings.simplefilter("ignore")
            spec = parse_environment_file(path, platforms=[PLATFORM], mapping_url=f"file://{mapping}")
        return compute_content_hashes(spec, None)[PLATFORM]

    return key


def score(requests: list[Request], key) -> dict:
    """Hit rate on requests for an environment seen before, and false hits, for one key function."""
    owner: dict[str, Request] = {}  # key → the request it was first computed for
    seen_truths: set[str] = set()
    equivalent = hits = false_hits = unreadable_equivalents = 0
    false_by_change: dict[str, int] = {}
    missed_by_change: dict[str, int] = {}
    examples: list[dict] = []
    errors: list[str] = []
    single_change: dict[str, list[int]] = {}  # change → [hits, files] over files with just that one change
    times = []
    for request in requests:
        started = time.perf_counter()
        try:
            value = key(request.path)
        except Exception as exc:  # a key that cannot read a valid spec misses it; the report says why
            value = None
            errors.append(f"{request.path.name}: {type(exc).__name__}: {exc}"[:300])
        times.append(time.perf_counter() - started)
        if request.truth in seen_truths:
            equivalent += 1
            unreadable_equivalents += value is None
        if value is None:
            value = f"unreadable: {request.path}"
        previous = owner.get(value)
        if previous is None:
            owner[value] = request
            if request.truth in seen_truths:
                for change in request.changes:
                    missed_by_change[change] = missed_by_change.get(change, 0) + 1
        elif previous.truth == request.truth:
            hits += 1
        else:
            false_hits += 1
            change = _semantic_change_between(previous, request)
            false_by_change[change] = false_by_change.get(change, 0) + 1
            if len(examples) < 3:
                examples.append({"change": change, "file": request.path.read_text(),
                                 "same_key_as": previous.path.read_text()})
        if request.truth in seen_truths and len(request.changes) == 1:
            tally = single_change.setdefault(request.changes[0], [0, 0])
            tally[0] += previous is not None and previous.truth == request.truth
            tally[1] += 1
        seen_truths.add(request.truth)
    return {"hit_rate": hits / equivalent if equivalent else 0.0, "hits": hits, "equivalent_requests": equivalent,
            "false_hits": false_hits, "false_hits_by_change": false_by_change,
            "misses_by_cosmetic_change": missed_by_change,
            "hit_rate_by_single_change": {change: round(100 * h / n, 1)
                                          for change, (h, n) in sorted(single_change.items())},
            "false_hit_examples": examples,
            "unreadable_files": len(errors), "unreadable_examples": errors[:3],
            "hit_rate_on_readable_files": hits / (equivalent - unreadable_equivalents)
            if equivalent > unreadable_equivalents else 0.0,
            "median_key_ms": 1000 * statistics.median(times)}


def _semantic_change_between(first: Request, second: Request) -> str:
    """The real change(s) that tell two environments apart."""
    kinds = sorted({first.kind, second.kind} - {"seed"})
    return " vs ".join(kinds) or "different seeds"


def run(quick: bool) -> list[dict]:
    rng = random.Random(8)
    seeds = corpus_seeds()
    seeds += generated_seeds(len(seeds), rng)
    if quick:
        seeds = seeds[:3] + seeds[-2:]
    with tempfile.TemporaryDirectory(prefix="envbuild-p3-") as scratch:
        requests = make_trace(Path(scratch), seeds, cosmetic_variants=4 if quick else 12,
                              semantic_rounds=1 if quick else 2, rng=rng)
        keys = {"envbuild": envbuild_key, "raw text (Azure ML CLI v2)": raw_text_key,
                "sorted YAML (Azure ML SDK)": sorted_yaml_key,
                "conda-lock content_hash": conda_lock_key_function(Path(scratch))}
        scores = {name: score(requests, key) for name, key in keys.items()}
    mine, raw = scores["envbuild"], scores["raw text (Azure ML CLI v2)"]
    conda_lock = scores["conda-lock content_hash"]
    return [{
        "id": "P3", "name": "equivalence: hit rate on equivalent specs",
        "value": 100 * mine["hit_rate"], "unit": "% hits", "baseline": 100 * raw["hit_rate"],
        "baseline_name": "raw-text hash (Azure ML CLI v2)",
        "ratio": mine["hit_rate"] / raw["hit_rate"] if raw["hit_rate"] else None,
        "target": "100 % hits on equivalents, 0 false hits",
        "details": {"requests": len(requests), "seeds": len(seeds),
                    "files_with_a_semantic_change": sum(r.kind != "seed" for r in requests),
                    "environments": len({r.truth for r in requests}),
                    "false_hits": {name: s["false_hits"] for name, s in scores.items()},
                    "hit_rate_percent": {name: round(100 * s["hit_rate"], 1) for name, s in scores.items()},
                    "keys": scores},
    }, {
        "id": "P3", "name": "equivalence: false hits on semantic changes", "value": mine["false_hits"],
        "unit": "false hits", "baseline": conda_lock["false_hits"], "baseline_name": "conda-lock content_hash",
        "ratio": None, "target": "0",
        "details": {"files_with_a_semantic_change": sum(r.kind != "seed" for r in requests),
                    "conda_lock_hit_rate_percent": round(100 * conda_lock["hit_rate"], 1),
                    "false_hits_by_change": {name: s["false_hits_by_change"] for name, s in scores.items()}},
    }]


def plot(entries: list[dict], directory: Path, stem: str) -> list[Path]:
    """Hit rate on equivalent specs and false hits, per key."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    details = entries[0]["details"]
    names = list(details["hit_rate_percent"])
    labels = [name.replace(" (", "\n(") for name in names]
    figure, (hits_axis, false_axis) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    hits_axis.bar(labels, [details["hit_rate_percent"][n] for n in names], color="tab:blue")
    hits_axis.set(ylabel="% hits on equivalent specs", ylim=(0, 105), title="equivalent specs found")
    false_axis.bar(labels, [details["false_hits"][n] for n in names], color="tab:red")
    false_axis.set(ylabel="false hits (wrong image handed out)", title=f"of {details['files_with_a_semantic_change']} "
                   "semantic changes")
    for axis in (hits_axis, false_axis):
        axis.tick_params(axis="x", labelsize=7)
    figure.suptitle(f"P3 equivalence: {details['requests']} spec files from {details['seeds']} seeds")
    path = Path(directory) / f"{stem}-equivalence.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return [path]
