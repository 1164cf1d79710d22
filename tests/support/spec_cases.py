"""The loader case folders, tests/specs/<kind>/<case>/: where they are and which entry of one is its input."""

from __future__ import annotations

from pathlib import Path

SPECS = Path(__file__).parent.parent / "specs"
EXPECTATIONS = ("expected.json", "error.txt")


def case_names() -> list[str]:
    """Every case as `kind/case`: a folder holding an expected.json or an error.txt."""
    return sorted(p.parent.relative_to(SPECS).as_posix() for name in EXPECTATIONS for p in SPECS.glob(f"*/*/{name}"))


def case_input(case: str) -> Path:
    """A case's input: its one file besides the expectation; where it holds no other file, its one directory (a
    build context, a conda prefix). Files the input refers to sit in subfolders."""
    folder = SPECS / case
    entries = [p for p in folder.iterdir() if p.name not in EXPECTATIONS]
    inputs = [p for p in entries if p.is_file()] or entries
    assert len(inputs) == 1, f"{folder} must hold one input file (or one directory) beside its expectation: {inputs}"
    return inputs[0]
