"""Loader cases as folders: what `envbuild canonical` prints for every input form envbuild reads. No engine.

Each folder tests/specs/<kind>/<case>/ holds one input and what must come of it:
- the input: the folder's one file besides the expectation, or, where it holds no other file, its one directory
  (a build context, a conda prefix). Files the input refers to (`-r sub/common.txt`, `conda_file: deps/conda.yml`)
  sit in subfolders.
- `expected.json`: the exact output of `envbuild canonical INPUT`; or
- `error.txt`: fragments, one a line, that the error `envbuild canonical INPUT` prints must all contain (where,
  what); the error must also say the fix, with no traceback.

A new input form is a new folder, no code: put the input and an empty expected.json in it and run
`UPDATE_GOLDEN=1 python3 -m pytest tests/test_spec_cases.py`, which writes what envbuild prints; read it before
committing. The same command rewrites every expected.json after a deliberate change of the canonical form.
"""

from __future__ import annotations

import os

import pytest

from tests.support.cli import run_main
from tests.support.spec_cases import SPECS, case_input, case_names

CASES = case_names()


@pytest.mark.parametrize("name", CASES)
def test_case_folder_gives_its_canonical_form_or_its_error(name, capsys, home):
    case = SPECS / name
    expected, error = case / "expected.json", case / "error.txt"
    assert expected.exists() != error.exists(), f"{name}: one of expected.json or error.txt, not both"
    code, out, err = run_main(capsys, "canonical", str(case_input(name)))
    if error.exists():
        assert code != 0 and not out, f"{name} loaded, but error.txt expects it to fail"
        for fragment in filter(None, error.read_text().splitlines()):
            assert fragment in err, f"{name}: {fragment!r} not in the error:\n{err}"
        assert "fix:" in err and "Traceback" not in err
        return
    assert code == 0, f"{name} should load, but:\n{err}"
    if os.environ.get("UPDATE_GOLDEN"):
        expected.write_text(out)
    assert out == expected.read_text()


def test_the_case_folders_are_found():
    kinds = {name.split("/")[0] for name in CASES}
    assert {"conda", "pip", "azureml", "lock", "dockerfile"} <= kinds
    assert len([n for n in CASES if (SPECS / n / "error.txt").exists()]) >= 10
    assert len([n for n in CASES if (SPECS / n / "expected.json").exists()]) >= 20
