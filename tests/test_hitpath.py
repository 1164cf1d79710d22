"""The byte-for-byte fast path of `envbuild build SPEC`: which command lines it answers, and what a hit imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from envbuild.commands.build import cached_build
from tests.conftest import write
from tests.support.cache_helpers import remove_images, unique_template
from tests.support.cli import cli_json

# What the cache-hit path must never import (the brief's heavy modules, and what the full path needs).
HEAVY = ("argparse", "yaml", "packaging", "rattler", "docker", "requests", "jinja2", "logging", "dataclasses",
         "diskcache", "filelock", "envbuild.api", "envbuild.spec", "envbuild.resolver", "envbuild.renderer")


@pytest.mark.parametrize("argv", [[], ["--help"], ["spec.yml", "--rebuild"], ["spec.yml", "--refresh-lock"],
                                  ["spec.yml", "--registry", "r/x"], ["a.yml", "b.yml"], ["spec.yml", "--cache-dir"],
                                  ["spec.yml", "--template", "--json"], ["spec.yml", "--name", "x"],
                                  ["spec.yml", "--debug"], ["--json"]])
def test_command_lines_it_does_not_read_go_to_argparse(argv, tmp_path, capsys):
    assert cached_build(argv) is None
    assert capsys.readouterr().out == ""


def test_a_spec_never_built_is_not_answered(tmp_path, capsys):
    spec = write(tmp_path / "requirements.txt", "six\n")
    assert cached_build([str(spec), "--json", "-q", "--cache-dir", str(tmp_path / "no-home")]) is None
    assert capsys.readouterr().out == ""


@pytest.mark.engine
def test_a_hit_answers_without_heavy_imports(engine, home, tmp_path):
    spec = write(tmp_path / "requirements.txt", "six\n")
    template = unique_template(tmp_path)
    try:
        first = cli_json("build", str(spec), "--template", str(template), "-q")
        probe = ("import json, sys\nfrom envbuild.cli import main\n"
                 f"code = main(['build', {str(spec)!r}, '--template', {str(template)!r}, '--json'])\n"
                 "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\nsys.exit(code)\n")
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
        image = json.loads(done.stdout)
        assert image["source"] == "cache" and (image["key"], image["id"]) == (first["key"], first["id"])
        loaded = json.loads(done.stderr.splitlines()[-1])
        assert [m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY] == []
    finally:
        remove_images(home)
