"""Every real public file in ../shared/corpus/ through canonical, key, lock and render, each outcome recorded next to
the test (tests/corpus_expected.json), so that a change in what envbuild makes of any real file shows.

Unit tier, no network: a lock file locks as it is; an environment that installs nothing locks to nothing; one that
needs a conda channel or a package index records that class (`needs conda channels` / `needs a pip index`) instead,
checked against the spec, and renders with its packages left out (variables, GPU stack, labels still render).
Render runs on a nominal BaseImage, as tests/test_run.py does.

After a deliberate change, re-record with `UPDATE_GOLDEN=1 python3 -m pytest tests/test_corpus_outcomes.py` and
read the diff of corpus_expected.json before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from envbuild.bases import BaseImage
from envbuild.errors import EnvbuildError
from envbuild.keys import canonical_spec
from envbuild.lockfile import Lock
from envbuild.renderer import render
from envbuild.resolver import resolve
from envbuild.spec import Environment

CORPUS = Path(__file__).parent.parent.parent / "shared" / "corpus"
EXPECTED = Path(__file__).parent / "corpus_expected.json"
if not CORPUS.is_dir():
    pytest.skip(f"no spec corpus at {CORPUS} (it lives next to the repository)", allow_module_level=True)

FILES = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file() and p.name != "SOURCES.tsv")
NOMINAL = BaseImage(ref="base:nominal", id="nominal", python_version="3.11", glibc="2.36", from_ref="base:nominal")


def _error(exc: EnvbuildError) -> str:
    """The error as recorded: its class and the first line of what it says, without this machine's paths."""
    first = exc.what.strip().splitlines()[0].replace(str(CORPUS), "<corpus>")
    assert exc.fix, f"{type(exc).__name__} without a fix: {exc}"
    return f"{type(exc).__name__}: {first[:160]}"


def outcome(relative: str) -> dict:
    """What envbuild makes of one corpus file at each stage; a stage after a failed one is not run."""
    path = CORPUS / relative
    try:
        spec = canonical_spec(Environment.from_file(path))
    except EnvbuildError as exc:
        assert exc.where and str(path) in exc.where, f"the error names no place in {relative}: {exc}"
        return {"load": _error(exc)}
    assert json.loads(json.dumps(spec.form, sort_keys=True)) == spec.form
    result = {"load": "ok", "key": spec.key}
    if spec.lock_file or spec.user_managed or not (spec.conda or spec.pip):
        try:
            lock = resolve(spec, python_version=NOMINAL.python_version, glibc=NOMINAL.glibc)
        except EnvbuildError as exc:
            return {**result, "lock": _error(exc)}
        result["lock"] = f"ok: {len(lock.packages)} packages"
    else:
        result["lock"] = "needs conda channels" if spec.conda else "needs a pip index"
        lock = Lock(platform=spec.platform, spec_key=spec.key, python_version=NOMINAL.python_version, channels=(),
                    packages=(), key="v1:unlocked", text="version: 1\n")
    try:
        dockerfile = render(spec, lock, NOMINAL).dockerfile
    except EnvbuildError as exc:
        return {**result, "render": _error(exc)}
    result["render"] = f"ok: {sum(line.startswith('FROM ') for line in dockerfile.splitlines())} stages"
    return result


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(EXPECTED.read_text()) if EXPECTED.exists() else {}


@pytest.mark.parametrize("relative", FILES)
def test_corpus_file_outcome_is_the_recorded_one(relative, recorded, home):
    found = outcome(relative)
    if os.environ.get("UPDATE_GOLDEN"):
        recorded[relative] = found
        EXPECTED.write_text(json.dumps(dict(sorted(recorded.items())), indent=1) + "\n")
        return
    assert found == recorded.get(relative), f"{relative}: recorded {recorded.get(relative)}, now {found}"


def test_every_corpus_file_has_a_recorded_outcome(recorded):
    assert sorted(recorded) == FILES, "re-record with UPDATE_GOLDEN=1 (see the module docstring)"
