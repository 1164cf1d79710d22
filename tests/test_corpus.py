"""Every real public spec in ../shared/corpus/ loads, or fails with a clean EnvbuildError for a stated reason.

The corpus sits next to the repository (CI clones the repo beside shared/); without it these tests skip. Files
that load are also re-spelled (order, case, separators, padding, duplicates) and must keep their key, and changed
(a package dropped, a bound moved) and must not.
"""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

import pytest

from envbuild.errors import EnvbuildError
from envbuild.spec import Environment

CORPUS = Path(__file__).parent.parent.parent / "shared" / "corpus"
if not CORPUS.is_dir():
    pytest.skip(f"no spec corpus at {CORPUS} (it lives next to the repository)", allow_module_level=True)

FILES = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file() and p.name != "SOURCES.tsv")

# Files that must fail, and why (a substring of the error's message).
EXPECTED_FAILURES = {
    "azureml/azassets-designer-pytorch-2.3/asset.yaml": "asset descriptor",
    "azureml/azassets-designer-pytorch-2.3/spec.yaml": "placeholder {{asset.name}}",
    "azureml/azassets-designer-pytorch-2.3/environment.yaml": "`image` must be an image reference",
    "azureml/azassets-designer-pytorch-2.3/context/Dockerfile": "placeholder {{latest-image-tag}}",
    "conda/compvis-stable-diffusion-editable-git.yaml": "editable requirement",
    "conda/conda-advanced-pip/env_template.yml": "editable requirement",
    "pip/reqparser-crateio-editable-vcs.txt": "editable requirement",
    # Its `-r common.txt` is not in the corpus next to it (only in the vllm-cuda folder).
    "pip/vllm-xpu-extra-index-eq-local-version.txt": "common.txt does not exist",
    # conda-lock's own test file pins a placeholder; pins are enforced since issue 15.
    "conda/condalock-pip-triple-equals-hash.yml": "is not a sha256 hash",
}


def test_every_corpus_file_has_provenance():
    with open(CORPUS / "SOURCES.tsv", newline="", encoding="utf-8") as fh:
        listed = {row["local_file"] for row in csv.DictReader(fh, delimiter="\t")}
    assert set(FILES) <= listed, sorted(set(FILES) - listed)


@pytest.mark.parametrize("relative", FILES)
def test_corpus_file_loads_or_fails_cleanly(relative):
    path = CORPUS / relative
    reason = EXPECTED_FAILURES.get(relative)
    try:
        env = Environment.from_file(path)
    except EnvbuildError as exc:
        assert exc.where and str(path) in exc.where and exc.fix, exc  # what, where and the fix
        if reason is None:
            pytest.fail(f"{relative} should load, but: {exc}")
        assert reason in exc.what
        return
    assert reason is None, f"{relative} loaded, expected: {reason}"
    canonical = env.canonical()
    assert json.loads(json.dumps(canonical, sort_keys=True)) == canonical
    assert env.key.startswith("v1:") and Environment.from_file(path).key == env.key


# -- re-spelled and changed copies of the real files ----------------------------------------------------------------


def _loadable_package_specs() -> list[str]:
    out = []
    for relative in FILES:
        if relative in EXPECTED_FAILURES or "conda-lock" in relative or relative.endswith("Dockerfile"):
            continue
        env = Environment.from_file(CORPUS / relative)
        docker_only = env.docker.build_context or env.docker.base_dockerfile
        if docker_only or env.lock_file or env.python.conda_dependencies.is_empty:
            continue
        out.append(relative)
    return out


def _respell_pip(rng: random.Random, requirement: str) -> str:
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(requirement)
    except InvalidRequirement:  # pip's own forms (a bare VCS URL): kept as written
        return requirement
    if req.url:
        return requirement
    name = "".join(rng.choice("-_.") if c in "-_." else (c.upper() if rng.random() < 0.4 else c) for c in req.name)
    extras = [e.upper() for e in req.extras]
    specifiers = [f"{s.operator} {s.version}" + (".0" if s.operator in (">=", "<", "==", "<=", ">", "!=") and
                                                 re.fullmatch(r"\d+(\.\d+)*", s.version) else "")
                  for s in req.specifier]
    rng.shuffle(specifiers)
    out = name + (f"[{', '.join(extras)}]" if extras else "") + " " + " , ".join(specifiers)
    if req.marker:
        out += " ; " + str(req.marker).replace('"', "'")
    return out


def _respell_conda(rng: random.Random, spec: str) -> str:
    fuzzy = re.fullmatch(r"([\w.-]+)=(\d+(?:\.\d+)*)", spec)
    if fuzzy and rng.random() < 0.5:
        spec = f"{fuzzy.group(1)} {fuzzy.group(2)}.*"  # conda's `=1.2` is `1.2.*`
    head, sep, rest = spec.partition("::")
    if sep:
        return f"{head}::{rest[:1].upper()}{rest[1:]}"
    return spec[:1].upper() + spec[1:]


def _write_variant(env: Environment, directory: Path, seed: int, drop: int | None = None) -> Path:
    """The environment as an environment.yml spelled differently (order, case, padding, duplicates)."""
    import yaml

    rng = random.Random(seed)
    deps = env.python.conda_dependencies
    conda = [_respell_conda(rng, s) for s in deps.conda_packages]
    pip = [_respell_pip(rng, r) + "".join(f" --hash={h}" for h in deps.pip_hashes.get(r, ()))  # pins are keyed
           for r in deps.pip_packages]
    if drop is not None:
        (conda if drop < len(conda) else pip).pop(drop if drop < len(conda) else drop - len(conda))
    conda += rng.sample(conda, k=min(1, len(conda)))
    rng.shuffle(conda)
    rng.shuffle(pip)
    dependencies = conda + ([{"pip": [*deps.pip_options, *pip]}] if pip or deps.pip_options else [])
    document = {"name": f"variant-{seed}", "channels": [f"https://conda.anaconda.org/{c}/" if c == "conda-forge" else c
                                                        for c in deps.channels],
                "dependencies": dependencies, "variables": dict(reversed(list(env.environment_variables.items())))}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "environment.yml"
    path.write_text("# re-spelled\n" + yaml.safe_dump(document, sort_keys=bool(seed % 2)), encoding="utf-8")
    return path


@pytest.mark.parametrize("relative", _loadable_package_specs())
def test_respelled_real_specs_keep_their_key_and_changed_ones_do_not(tmp_path, relative):
    env = Environment.from_file(CORPUS / relative)
    env.docker.base_image = None  # compare package content only
    original = env.key
    for seed in range(3):
        variant = Environment.from_file(_write_variant(env, tmp_path / f"same-{seed}", seed))
        assert variant.key == original, (seed, variant.canonical(), env.canonical())
    total = len(env.python.conda_dependencies.conda_packages) + len(env.python.conda_dependencies.pip_packages)
    for seed, drop in enumerate(sorted({0, total // 2, total - 1})):
        changed = Environment.from_file(_write_variant(env, tmp_path / f"drop-{seed}", seed, drop=drop))
        assert changed.key != original
