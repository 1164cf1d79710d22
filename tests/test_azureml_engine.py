"""Azure ML's .amlignore in a real build, and the SDK v1 verbs that reach the engine (build_local,
get_image_details)."""

from __future__ import annotations

from pathlib import Path

from envbuild import Environment
from envbuild.bases import DEFAULT_BASE
from envbuild.runner import run_image


def test_an_amlignored_file_never_reaches_the_image_and_v1_sees_the_image(engine, home, tmp_path):
    root = tmp_path / "ctx"
    (root / "notes").mkdir(parents=True)
    (root / "Dockerfile").write_text(f"FROM {DEFAULT_BASE}\nCOPY . /ctx\n")
    (root / "keep.txt").write_text("kept\n")
    (root / "notes" / "draft.txt").write_text("not for the image\n")
    (root / ".amlignore").write_text("notes/\n")
    env = Environment.from_build_context("amlignore", root)
    before = env.get_image_details(str(home))
    assert before["imageExistsInRegistry"] is False and "FROM " in before["dockerfile"]
    image = env.build_local(str(home))
    listing = run_image(image, ["sh", "-c", "cd /ctx && find . -type f | sort"]).check().stdout.split()
    assert listing == ["./.amlignore", "./Dockerfile", "./keep.txt"]
    after = env.get_image_details(str(home))
    assert after["imageExistsInRegistry"] is True and after["dockerImage"]["name"] == image.image
    assert Path(root / "notes" / "draft.txt").exists()  # the user's directory is left as it was
