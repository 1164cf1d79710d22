"""Canonical form and keys: pure logic, no engine.

Equivalent spellings share a key, and only where they match exactly the same packages (checked against
packaging's and rattler's own matchers); any semantic change gives a new key (tables and hypothesis properties).
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envbuild import keys
from envbuild.explain import diff_canonical, format_differences
from envbuild.packages import canonical_conda_spec, canonical_pip_requirement
from envbuild.spec import Environment
from tests.conftest import write
from tests.support.cli import run_main


def key_of_requirements(tmp_path, text: str, name: str = "r") -> str:
    return Environment.from_pip_requirements(name, write(tmp_path / f"{name}.txt", text)).key


def key_of_file(tmp_path, name: str, text: str) -> str:
    return Environment.from_file(write(tmp_path / name, text)).key


def test_cosmetic_variants_share_a_key(tmp_path):
    base = key_of_requirements(tmp_path, "numpy>=1,<2\nScikit_Learn\n", "a")
    assert key_of_requirements(tmp_path, "scikit-learn\nnumpy<2,>=1\n", "b") == base
    assert key_of_requirements(tmp_path, "# comment\n  NumPy <2 , >=1  \nscikit.learn\nnumpy<2,>=1\n", "c") == base


def test_semantic_changes_change_the_key(tmp_path):
    base = key_of_requirements(tmp_path, "numpy>=1,<2\n", "a")
    assert key_of_requirements(tmp_path, "numpy>=1,<3\n", "b") != base
    assert key_of_requirements(tmp_path, "numpy[extra]>=1,<2\n", "c") != base
    assert key_of_requirements(tmp_path, "numpy>=1,<2; python_version>'3.8'\n", "d") != base


def test_conda_channel_order_matters_but_dependency_order_does_not(tmp_path):
    def key(text: str, name: str) -> str:
        return Environment.from_conda_specification(name, write(tmp_path / f"{name}.yml", text)).key

    a = key("channels: [a, b]\ndependencies:\n  - numpy>=1.20,<2\n  - Python=3.11\n", "a")
    assert key("name: other\nchannels: [a, b]\ndependencies:\n  - python=3.11\n  - numpy <2,>=1.20\n", "b") == a
    assert key("channels: [b, a]\ndependencies:\n  - numpy>=1.20,<2\n  - python=3.11\n", "c") != a


def test_metadata_never_enters_the_key(tmp_path):
    env = Environment.from_pip_requirements("x", write(tmp_path / "r.txt", "six\n"))
    key = env.key
    env.name, env.version, env.description, env.tags = "other", "7", "described", {"team": "a"}
    assert env.key == key
    env.environment_variables["MODE"] = "fast"
    assert env.key != key


def test_keys_are_versioned(tmp_path):
    assert key_of_requirements(tmp_path, "six\n").startswith("v1:")


# -- tables: what is the same, what is not --------------------------------------------------------------------

CONDA = "channels: [conda-forge]\ndependencies:\n  - {}\n"

EQUIVALENT = [
    ("requirements.txt", "numpy==1.21.5\n", "numpy==1.21.5.0\n"),
    ("requirements.txt", "foo==1.0\n", "foo==1.0.0\n"),
    ("requirements.txt", "numpy>=1.20,<2\n", "numpy <2.0, >=1.20.0\n"),
    ("requirements.txt", "pkg[extra]\n", "PKG[Extra]\n"),
    ("requirements.txt", "requests[socks,security]\n", "requests[security, socks]\n"),
    ("requirements.txt", "Scikit_Learn\n", "scikit-learn\n"),
    ("requirements.txt", "six; python_version < '3.8'\n", 'six ;python_version<"3.8"\n'),
    ("requirements.txt", "six\nsix\n", "six\n"),
    ("requirements.txt", "torch==2.1.0+cpu\n", "torch==2.1+cpu\n"),
    ("requirements.txt", "git+https://github.com/a/b.git@v1#egg=b\n", "b @ git+https://github.com/a/b.git@v1\n"),
    ("requirements.txt", "-i https://x.org/simple\nsix\n", "--index-url=\"https://x.org/simple/\"\nsix\n"),
    ("environment.yml", CONDA.format("numpy=1.21"), CONDA.format("numpy 1.21.*")),
    ("environment.yml", CONDA.format("numpy==1.21.5"), CONDA.format("numpy 1.21.5")),
    ("environment.yml", CONDA.format("numpy>=1.20,<2"), CONDA.format("'numpy <2,>=1.20'")),
    ("environment.yml", CONDA.format("python=3.11"), CONDA.format("python 3.11.*")),
    ("environment.yml", CONDA.format("numpy==1.21"), CONDA.format("numpy==1.21.0")),
    ("environment.yml", CONDA.format("numpy"), CONDA.format("NumPy *")),
    ("environment.yml", CONDA.format("conda-forge::numpy"),
     CONDA.format("https://conda.anaconda.org/conda-forge::numpy")),
    ("environment.yml", CONDA.format("numpy[build=py39*]"), CONDA.format("numpy * py39*")),
    ("environment.yml", "channels: [conda-forge]\ndependencies: [six]\n",
     "channels: ['https://conda.anaconda.org/conda-forge/', nodefaults]\ndependencies: [six, six]\n"),
    ("environment.yml", CONDA.format("six"), "name: x  # metadata\nprefix: /opt/x\n" + CONDA.format("six  # why")),
    ("environment.yml", "channels: [defaults]\ndependencies: [six]\n",
     "channels: [pkgs/main, 'https://repo.anaconda.com/pkgs/r/']\ndependencies: [six]\n"),
]


@pytest.mark.parametrize("file, a, b", EQUIVALENT)
def test_equivalent_spellings_share_a_key(tmp_path, file, a, b):
    assert key_of_file(tmp_path / "a", file, a) == key_of_file(tmp_path / "b", file, b)


DIFFERENT = [
    ("requirements.txt", "numpy>=1.20\n", "numpy>=1.21\n"),
    ("requirements.txt", "numpy~=1.4\n", "numpy~=1.4.0\n"),
    ("requirements.txt", "numpy==1.*\n", "numpy==1.0.*\n"),
    ("requirements.txt", "pkg\n", "pkg[extra]\n"),
    ("requirements.txt", "pkg\n", "pkg; python_version < '3.8'\n"),
    ("requirements.txt", "pkg==1.0\n", "pkg===1.0\n"),
    ("requirements.txt", "pkg==1.0\n", "pkg==1.0.post0\n"),
    ("requirements.txt", "--extra-index-url https://a\n--extra-index-url https://b\nsix\n",
     "--extra-index-url https://b\n--extra-index-url https://a\nsix\n"),
    ("requirements.txt", "six\n", "--pre\nsix\n"),
    # PyPI named is not PyPI by default: PIP_INDEX_URL may point elsewhere.
    ("requirements.txt", "six\n", "--index-url https://pypi.org/simple/\nsix\n"),
    ("requirements.txt", "b @ git+https://github.com/a/b.git@v1\n", "b @ git+https://github.com/a/b.git@v2\n"),
    ("environment.yml", CONDA.format("numpy=1.21"), CONDA.format("numpy==1.21")),
    ("environment.yml", CONDA.format("numpy=1.21"), CONDA.format("numpy=1.21.0")),
    ("environment.yml", CONDA.format("numpy"), CONDA.format("conda-forge::numpy")),
    ("environment.yml", CONDA.format("numpy 1.21.* py39*"), CONDA.format("numpy 1.21.* py310*")),
    ("environment.yml", CONDA.format("cf_xarray"), CONDA.format("cf-xarray")),  # two conda packages
    ("environment.yml", "channels: [conda-forge, defaults]\ndependencies: [six]\n",
     "channels: [defaults, conda-forge]\ndependencies: [six]\n"),
    ("environment.yml", "channels: [conda-forge]\ndependencies: [six]\n",
     "channels: [conda-forge, defaults]\ndependencies: [six]\n"),
    ("environment.yml", "channels: [defaults]\ndependencies: [six]\n", "channels: [pkgs/main]\ndependencies: [six]\n"),
    ("environment.yml", CONDA.format("six") + "variables: {A: '1'}\n", CONDA.format("six") + "variables: {A: '1.0'}\n"),
    ("environment.yml", CONDA.format("six"), CONDA.format("six") + "platforms: [linux-aarch64]\n"),
]


@pytest.mark.parametrize("file, a, b", DIFFERENT)
def test_different_specs_get_different_keys(tmp_path, file, a, b):
    assert key_of_file(tmp_path / "a", file, a) != key_of_file(tmp_path / "b", file, b)


def test_docker_settings_and_versions_enter_the_key(tmp_path, monkeypatch):
    env = Environment.from_pip_requirements("x", write(tmp_path / "r.txt", "six\n"))
    seen = {env.key}

    def changed(mutate) -> None:
        other = env.copy()
        mutate(other)
        assert other.key not in seen
        seen.add(other.key)

    changed(lambda e: setattr(e.docker, "platform", "linux-aarch64"))
    changed(lambda e: setattr(e.docker, "gpu", True))
    changed(lambda e: (setattr(e.docker, "gpu", True), setattr(e.docker, "cuda", "12.1")))
    changed(lambda e: (setattr(e.docker, "gpu", True), setattr(e.docker, "cuda", "12.3")))
    changed(lambda e: setattr(e.docker, "base_image", "python:3.11"))
    changed(lambda e: setattr(e.docker, "base_image", "python:3.12"))
    changed(lambda e: setattr(e.docker, "base_image", "python@sha256:" + "a" * 64))
    changed(lambda e: setattr(e.docker, "base_dockerfile", "FROM python:3.11\n"))
    changed(lambda e: setattr(e.python, "user_managed_dependencies", True))
    changed(lambda e: e.environment_variables.update(A="1"))
    monkeypatch.setattr(keys, "TEMPLATE_VERSION", "999")
    changed(lambda e: None)
    monkeypatch.setattr(keys, "KEY_FORMAT", "v999")
    assert env.key.startswith("v999:")


def test_spellings_of_the_same_docker_settings_share_a_key():
    def key(**docker) -> str:
        env = Environment("x")
        for name, value in docker.items():
            setattr(env.docker, name, value)
        return env.key

    assert key(base_image="python") == key(base_image="docker.io/library/python:latest") == key(
        base_image="index.docker.io/library/python:latest")
    assert key(base_image="envbuild/python:3.11-bookworm") == key(base_image="docker.io/envbuild/python:3.11-bookworm")
    assert key(base_image="python:3.11@sha256:" + "a" * 64) == key(base_image="python@sha256:" + "A" * 64)
    assert key(base_image="localhost:5000/x") == key(base_image="localhost:5000/x:latest")
    assert key(gpu=True, cuda="12.1") == key(gpu=True, cuda="12.1.0") == key(cuda="12.1")
    assert key(platform="linux/amd64") == key(platform="linux-64")


# -- merges are sound: each merged pair matches exactly the same versions ------------------------------------------

PIP_VERSIONS = ["0.9", "1.0", "1.0.0", "1.0.1", "1.0.post1", "1.0a1", "1.0+cpu", "1.0.0+cpu", "1.1", "1.4", "1.4.5",
                "1.5", "2.0", "2.0.0", "2.0rc1", "2.1.0+cpu", "2.1.1"]


@pytest.mark.parametrize("specifier", ["==1.0.0", "!=1.0.0", ">=1.0.0", "<=1.0.0", ">1.0.0", "<2.0.0", "==2.1.0+cpu",
                                       "~=1.4.0", "==1.0.*", ">=1.0.0,<2.0.0,!=1.0.1", "<2.0.0rc1"])
def test_pip_spellings_merged_by_the_key_match_the_same_versions(specifier):
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    canonical = canonical_pip_requirement(f"pkg{specifier}")
    written, merged = SpecifierSet(specifier), Requirement(canonical).specifier
    for version in PIP_VERSIONS:
        for prereleases in (None, True):
            expected = written.contains(version, prereleases=prereleases)
            assert merged.contains(version, prereleases=prereleases) == expected, (specifier, canonical, version)


CONDA_VERSIONS = ["1", "1.0", "1.0.0", "1.0.1", "1.20", "1.20.0", "1.20.1", "1.21", "1.21.0", "1.21.5", "1.21.5.1",
                  "1.22", "2", "2.0", "2.0.0", "2.1", "3.0a1", "3"]


@pytest.mark.parametrize("spec", ["numpy=1.21", "numpy==1.21.0", "numpy>=1.20.0,<2.0", "numpy !=1.20.0",
                                  "numpy >=3|>=1.20,<2.0.0", "numpy 1.21.*", "numpy >1.0.0,<=2.0.0"])
def test_conda_spellings_merged_by_the_key_match_the_same_versions(spec):
    from rattler import MatchSpec, Version, VersionSpec

    written = VersionSpec(str(MatchSpec(spec).version))
    merged = VersionSpec(str(MatchSpec(canonical_conda_spec(spec)).version))
    for version in CONDA_VERSIONS:
        assert written.matches(Version(version)) == merged.matches(Version(version)), (spec, version)


def test_canonical_spellings_are_fixed_points():
    for spec in ["numpy[version='>=1.2', build_number=3]", "ucx-proc=*=gpu", "numpy >=3|>=1.20,<2",
                 "https://104.17.92.24:443::flask=1.0.2", "numpy[subdir=linux-64]"]:
        once = canonical_conda_spec(spec)
        assert canonical_conda_spec(once) == once
    for requirement in ["Foo_Bar[B,a]>=1.0,!=1.5.0; python_version >= '3.8'", "b @ git+https://x/b.git#egg=b"]:
        once = canonical_pip_requirement(requirement)
        assert canonical_pip_requirement(once) == once


# -- properties: re-spelling never changes a key, a semantic change always does -----------------------------------

PIP_NAMES = ["scikit-learn", "typing-extensions", "zope-interface", "numpy", "requests", "six", "pyyaml", "torch"]
CONDA_NAMES = ["numpy", "scipy", "python", "libblas", "pytorch", "zlib", "cudatoolkit"]
CHANNELS = ["conda-forge", "bioconda", "pytorch", "nvidia"]
MARKERS = [("python_version", ">=", "3.8"), ("sys_platform", "==", "linux"), ("platform_machine", "!=", "aarch64")]
BOUNDS = [(">=", "1.2"), ("<", "3"), ("!=", "2.1"), ("<=", "2.5"), (">", "0.9")]


@st.composite
def environments(draw) -> dict:
    """A semantic model of an environment: what must decide the key, and nothing else."""
    pip = {}
    for name in draw(st.lists(st.sampled_from(PIP_NAMES), unique=True, max_size=5)):
        pip[name] = {"bounds": sorted(draw(st.lists(st.sampled_from(BOUNDS), unique_by=lambda b: b[0], max_size=3))),
                     "extras": sorted(draw(st.lists(st.sampled_from(["socks", "security", "cpu"]), unique=True,
                                                    max_size=2))),
                     "marker": draw(st.sampled_from([None, *MARKERS]))}
    conda = {}
    for name in draw(st.lists(st.sampled_from(CONDA_NAMES), unique=True, max_size=5)):
        conda[name] = draw(st.sampled_from([None, ("fuzzy", "1.21"), ("fuzzy", "3.11"), ("range", ">=1.20", "<2"),
                                            ("exact", "1.2.3"), ("build", "2.0", "py311*")]))
    return {"pip": pip, "conda": conda,
            "channels": draw(st.lists(st.sampled_from(CHANNELS), unique=True, max_size=3)),
            "variables": draw(st.dictionaries(st.sampled_from(["A", "B", "MODE"]), st.sampled_from(["1", "x", ""]),
                                              max_size=2)),
            "index": draw(st.sampled_from([None, "https://download.pytorch.org/whl/cpu"])),
            "platform": draw(st.sampled_from([None, "linux-64", "linux-aarch64"]))}


def _respell_name(rng: random.Random, name: str) -> str:
    return "".join(rng.choice("-_.") if c == "-" else (c.upper() if rng.random() < 0.3 else c) for c in name)


def _pad(rng: random.Random, version: str) -> str:
    return version + ".0" * rng.randint(0, 2)


def _pip_line(rng: random.Random, name: str, spec: dict) -> str:
    out = _respell_name(rng, name)
    if spec["extras"]:
        extras = [e.upper() if rng.random() < 0.5 else e for e in spec["extras"]]
        rng.shuffle(extras)
        out += "[" + rng.choice([",", ", "]).join(extras) + "]"
    bounds = [f"{op}{rng.choice(['', ' '])}{_pad(rng, v)}" for op, v in spec["bounds"]]
    rng.shuffle(bounds)
    out += rng.choice(["", " "]) + rng.choice([",", " , "]).join(bounds)
    if spec["marker"]:
        var, op, value = spec["marker"]
        quote = rng.choice("'\"")
        before, after = rng.choice(["", " "]), rng.choice(["", " "])
        out += rng.choice([";", " ; "]) + f"{var}{before}{op}{after}{quote}{value}{quote}"
    return out


def _conda_line(rng: random.Random, name: str, spec) -> str:
    written = name.upper() if rng.random() < 0.3 else name
    if spec is None:
        return written + rng.choice(["", " *", "=*"])
    kind = spec[0]
    if kind == "fuzzy":
        return written + rng.choice([f"={spec[1]}", f" {spec[1]}.*", f"={spec[1]}.*"])
    if kind == "range":
        bounds = [f"{spec[1]}{'.0' * rng.randint(0, 1)}", f"{spec[2]}{'.0' * rng.randint(0, 1)}"]
        rng.shuffle(bounds)
        return written + rng.choice(["", " "]) + ",".join(bounds)
    if kind == "exact":
        return written + rng.choice([f"=={spec[1]}", f" {spec[1]}", f" =={spec[1]}"])
    return written + rng.choice([f" {spec[1]}.* {spec[2]}", f"={spec[1]}.*[build={spec[2]}]"])


def render(model: dict, seed: int) -> str:
    """environment.yml text for `model`, spelled one of many equivalent ways (order, case, padding, comments)."""
    rng = random.Random(seed)
    conda = [_conda_line(rng, n, s) for n, s in model["conda"].items()]
    conda += rng.sample(conda, k=min(len(conda), rng.randint(0, 1)))  # a duplicate
    rng.shuffle(conda)
    pip = [_pip_line(rng, n, s) for n, s in model["pip"].items()]
    rng.shuffle(pip)
    if model["index"]:
        pip.insert(rng.randint(0, len(pip)), f"--extra-index-url {model['index']}" + rng.choice(["", "/"]))
    channels = [rng.choice([c, f"https://conda.anaconda.org/{c}/"]) for c in model["channels"]]
    variables = list(model["variables"].items())
    rng.shuffle(variables)
    lines = [f"name: {rng.choice(['a', 'b'])}", "channels:" + ("" if channels else " []")]
    lines += [f"  - {c!r}" for c in channels]
    lines.append("dependencies:" + ("" if conda or pip else " []"))
    lines += [f"  - {c!r}" + rng.choice(["", "  # comment"]) for c in conda]
    if pip:
        lines.append("  - pip:")
        lines += [f"      - {p!r}" for p in pip]
    if variables:
        lines.append("variables:")
        lines += [f"  {k}: {v!r}" for k, v in variables]
    if model["platform"]:  # conda-lock's `platforms:`; linux-64 is also the default
        lines.append(f"platforms: [{model['platform']}" + rng.choice(["", ", osx-arm64"]) + "]")
    return "\n".join(lines) + "\n"


def key_of_text(text: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        return Environment.from_file(write(Path(tmp) / "environment.yml", text)).key


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(environments(), st.integers(0, 2**32), st.integers(0, 2**32))
def test_respelling_never_changes_the_key(model, seed_a, seed_b):
    assert key_of_text(render(model, seed_a)) == key_of_text(render(model, seed_b))


def render_requirements(model: dict, seed: int) -> str:
    """The pip part of `model` as a requirements.txt: comments, blank lines, continuations, `-i`/`=` options."""
    rng = random.Random(seed)
    lines = [_pip_line(rng, n, s) for n, s in model["pip"].items()]
    lines = [line.replace(",", ", \\\n    ", 1) if rng.random() < 0.3 else line for line in lines]
    lines += ["# a comment", ""]
    rng.shuffle(lines)
    if model["index"]:
        lines.insert(0, rng.choice(["--extra-index-url ", "--extra-index-url="]) + model["index"])
    return "\n".join(lines) + "\n"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(environments(), st.integers(0, 2**32), st.integers(0, 2**32))
def test_a_requirements_file_and_a_pip_only_environment_yml_share_a_key(model, seed_a, seed_b):
    model = {**model, "conda": {}, "channels": [], "variables": {}, "platform": None}
    with tempfile.TemporaryDirectory() as tmp:
        requirements = write(Path(tmp) / "requirements.txt", render_requirements(model, seed_a))
        from_requirements = Environment.from_file(requirements)
    assert from_requirements.key == key_of_text(render(model, seed_b))


def _mutations(model: dict) -> list:
    """Every semantic change we can make to `model` (each must change the key)."""
    out = []
    for name, spec in model["pip"].items():
        out.append(("drop pip", lambda m, n=name: m["pip"].pop(n)))
        out.append(("extra", lambda m, n=name: m["pip"][n].update(extras=sorted({*m["pip"][n]["extras"], "zz"}))))
        out.append(("marker", lambda m, n=name: m["pip"][n].update(
            marker=None if m["pip"][n]["marker"] else MARKERS[0])))
        if spec["bounds"]:
            out.append(("bound", lambda m, n=name: m["pip"][n].update(
                bounds=[(op, v + ".1") for op, v in m["pip"][n]["bounds"]])))
    for name, spec in model["conda"].items():
        out.append(("drop conda", lambda m, n=name: m["conda"].pop(n)))
        out.append(("conda version", lambda m, n=name: m["conda"].update(
            {n: ("exact", "9.9.9") if m["conda"][n] != ("exact", "9.9.9") else None})))
    if len(model["channels"]) > 1:
        out.append(("channel order", lambda m: m["channels"].reverse()))
    out.append(("channel", lambda m: m["channels"].append("my-channel")))
    out.append(("variable", lambda m: m["variables"].update(NEW="1")))
    out.append(("index", lambda m: m.update(index=None if m["index"] else "https://example.org/simple")))
    out.append(("pip added", lambda m: m["pip"].setdefault("brand-new", {"bounds": [], "extras": [], "marker": None})))
    out.append(("platform", lambda m: m.update(platform="linux-aarch64" if m["platform"] != "linux-aarch64"
                                               else "linux-64")))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(environments(), st.integers(0, 2**32), st.data())
def test_any_semantic_change_changes_the_key(model, seed, data):
    import copy

    name, mutate = data.draw(st.sampled_from(_mutations(model)), label="mutation")
    changed = copy.deepcopy(model)
    mutate(changed)
    assert key_of_text(render(changed, seed)) != key_of_text(render(model, seed)), name


# -- explain --------------------------------------------------------------------------------------------------------


def test_diff_canonical_names_each_difference(tmp_path):
    a = Environment.from_file(write(tmp_path / "a.yml", "channels: [a, b]\ndependencies:\n  - numpy>=1.20\n  - six\n"
                                                         "  - pip:\n    - idna\nvariables: {MODE: fast}\n"))
    b = Environment.from_file(write(tmp_path / "b.yml", "channels: [b, a]\ndependencies:\n  - numpy>=1.21\n  - zlib\n"
                                                         "  - pip:\n    - idna[all]\nvariables: {MODE: slow}\n"))
    b.docker.base_image = "python:3.11"
    found = {(d.field, d.item, d.change) for d in diff_canonical(a.canonical(), b.canonical())}
    assert found == {("channels", None, "reordered"), ("conda", "numpy", "changed"), ("conda", "six", "removed"),
                     ("conda", "zlib", "added"), ("pip", "idna", "changed"), ("variables.MODE", None, "changed"),
                     ("docker.base_image", None, "added")}
    text = format_differences(diff_canonical(a.canonical(), b.canonical()), "a.yml", "b.yml")
    assert "conda numpy: 'numpy >=1.20' → 'numpy >=1.21'" in text
    assert diff_canonical(a.canonical(), a.copy().canonical()) == []
    assert "same key" in format_differences([], "a", "b")


# -- command line ---------------------------------------------------------------------------------------------------


def run_cli(capsys, *argv: str) -> str:
    code, out, err = run_main(capsys, *argv)
    assert code == 0, err
    return out


def test_key_and_canonical_accept_every_input_kind(tmp_path, capsys):
    write(tmp_path / "ctx" / "Dockerfile", "FROM python:3.11\nCOPY a /a\n")
    write(tmp_path / "ctx" / "a", "a\n")
    write(tmp_path / "azure" / "conda.yml", "channels: [conda-forge]\ndependencies: [six]\n")
    inputs = [
        write(tmp_path / "requirements.txt", "six\n"),
        write(tmp_path / "environment.yml", "channels: [conda-forge]\ndependencies: [six]\n"),
        write(tmp_path / "azure" / "env.yml", "name: a\nimage: python:3.11\nconda_file: conda.yml\n"),
        write(tmp_path / "plain" / "Dockerfile", "FROM python:3.11\n"),
        tmp_path / "ctx",
        write(tmp_path / "prefix" / "conda-meta" / "six.json",
              '{"name": "six", "version": "1.16.0", "build": "py_0", "channel": "conda-forge", "subdir": "noarch"}'),
    ]
    inputs[-1] = tmp_path / "prefix"
    keys_seen = set()
    for spec in inputs:
        key = run_cli(capsys, "key", str(spec)).strip()
        assert key == Environment.from_file(spec).key
        canonical = run_cli(capsys, "canonical", str(spec))
        assert json.loads(canonical) == Environment.from_file(spec).canonical()
        assert canonical == json.dumps(json.loads(canonical), indent=2, sort_keys=True) + "\n"  # sorted, stable
        keys_seen.add(key)
    assert len(keys_seen) == len(inputs)


def test_explain_two_specs(tmp_path, capsys):
    a = write(tmp_path / "a.txt", "numpy>=1.20\nsix\n")
    b = write(tmp_path / "b.txt", "numpy>=1.21\nsix\n")
    out = run_cli(capsys, "explain", str(a), str(b))
    assert "1 difference(s)" in out and "pip numpy: 'numpy>=1.20' → 'numpy>=1.21'" in out
    found = json.loads(run_cli(capsys, "explain", str(a), str(b), "--json"))
    assert [(d["field"], d["item"], d["change"]) for d in found] == [("pip", "numpy", "changed")]
    respelled = write(tmp_path / "c.txt", "SIX\nnumpy >= 1.20.0\n")
    assert "same canonical form" in run_cli(capsys, "explain", str(a), str(respelled))


def test_explain_against_the_cache_names_the_nearest_built_spec(tmp_path, capsys):
    from envbuild.cache import Index

    home = tmp_path / "home"
    built = {name: Environment.from_file(write(tmp_path / name, text)) for name, text in [
        ("near.txt", "numpy>=1.20\nsix\n"), ("far.txt", "torch\nrequests\nidna\n")]}
    index = Index(home)
    for env in built.values():
        index.canonical_put(env.key, env.canonical())
    index.put("v1:build", {"image": "envbuild/near:v1-build", "id": "sha256:1", "spec_key": built["near.txt"].key,
                           "base_id": "sha256:base"})
    index.close()
    spec = write(tmp_path / "spec.txt", "numpy>=1.20\nsix\nidna\n")
    out = run_cli(capsys, "explain", str(spec), "--cache-dir", str(home))
    assert f"the nearest is {built['near.txt'].key}" in out and "pip idna: only in B" in out
    report = json.loads(run_cli(capsys, "explain", str(spec), "--cache-dir", str(home), "--json"))
    assert report["nearest"] == built["near.txt"].key and not report["built"]
    out = run_cli(capsys, "explain", str(tmp_path / "near.txt"), "--cache-dir", str(home))
    assert "has been built" in out and "envbuild/near:v1-build on base sha256:base" in out
    assert "built nothing yet" in run_cli(capsys, "explain", str(spec), "--cache-dir", str(tmp_path / "empty"))


def test_build_context_key_follows_its_content(tmp_path):
    write(tmp_path / "ctx" / "Dockerfile", "FROM python:3.11\nCOPY . /app\n")
    script = write(tmp_path / "ctx" / "run.sh", "echo hi\n")
    env = Environment.from_build_context("ctx", tmp_path / "ctx")
    original = env.key
    assert Environment.from_build_context("ctx", tmp_path / "ctx", dockerfile_path="./Dockerfile").key == original
    keys_seen = [original]
    # Each change alters what COPY puts in the image: content, the executable bit, an empty directory.
    for change in (lambda: script.write_text("echo bye\n"), lambda: script.chmod(0o755),
                   lambda: (tmp_path / "ctx" / "empty").mkdir()):
        change()
        keys_seen.append(env.key)
    assert len(set(keys_seen)) == 4
    script.write_text("echo hi\n")
    script.chmod(0o644)
    (tmp_path / "ctx" / "empty").rmdir()
    assert env.key == original


def test_what_dockerignore_keeps_out_of_the_build_does_not_count(tmp_path):
    write(tmp_path / "ctx" / "Dockerfile", "FROM python:3.11\nCOPY . /app\n")
    write(tmp_path / "ctx" / ".dockerignore", "# not sent to the builder\n.git\n**/__pycache__\n")
    write(tmp_path / "ctx" / "pkg" / "app.py", "print(1)\n")
    write(tmp_path / "ctx" / ".git" / "HEAD", "ref: refs/heads/main\n")
    env = Environment.from_build_context("ctx", tmp_path / "ctx")
    original = env.key
    write(tmp_path / "ctx" / ".git" / "HEAD", "ref: refs/heads/other\n")
    write(tmp_path / "ctx" / "pkg" / "__pycache__" / "app.cpython-311.pyc", "junk")
    assert env.key == original
    write(tmp_path / "ctx" / "pkg" / "app.py", "print(2)\n")
    assert env.key != original


def test_relative_local_channels_are_keyed_by_where_they_are(tmp_path):
    keys = []
    for project in ("a", "b"):
        (tmp_path / project / "chan").mkdir(parents=True)
        spec = write(tmp_path / project / "environment.yml", "channels:\n  - ./chan\ndependencies:\n  - tool\n")
        keys.append(Environment.from_file(spec).key)
    assert keys[0] != keys[1]


def test_credentials_never_enter_the_key_and_a_rotated_token_keeps_it(tmp_path):
    def env(token: str, name: str) -> Environment:
        return Environment.from_file(write(tmp_path / name / "environment.yml", f"""\
channels:
  - https://conda.anaconda.org/t/{token}/private
  - https://me:{token}@conda.example.org/chan
dependencies:
  - tool
  - pip:
    - --extra-index-url https://me:{token}@pypi.example.org/simple
    - six
"""))

    first, rotated = env("SECRET-1", "a"), env("SECRET-2", "b")
    assert first.key == rotated.key
    assert "SECRET" not in json.dumps(first.canonical())
