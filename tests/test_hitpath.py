"""The byte-for-byte fast path of `envbuild build SPEC`: which command lines it answers, and what a hit imports."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from envbuild.commands.build import cached_build
from tests.conftest import write
from tests.support.cache_helpers import remove_images, unique_template
from tests.support.cli import cli_json

# What the cache-hit path must never import: the brief's heavy modules, what the full path needs, and the standard
# library modules a hit used to load (benchmark P2 measures each of them in milliseconds): json and re (a hit reads
# its memo's request key and the engine's image id without json), typing, pathlib, hashlib, socket (the engine is
# reached through _socket), urllib, and sqlite3, pickle with the datetime they load, and even their C modules
# _sqlite3 and _pickle (a hit reads its memo and answer files, not the index).
HEAVY = ("argparse", "yaml", "packaging", "rattler", "docker", "requests", "jinja2", "logging", "dataclasses",
         "diskcache", "filelock", "envbuild.api", "envbuild.spec", "envbuild.resolver", "envbuild.renderer",
         "json", "re", "enum", "typing", "pathlib", "hashlib", "socket", "selectors", "ssl", "urllib", "sqlite3",
         "pickle", "datetime", "envbuild.channels", "_sqlite3", "_pickle")


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
        # Text output, as the benchmark's hit prints it (--json would load json to print the answer); the modules
        # listed are those the hit loaded, not those the interpreter started with.
        probe = ("import sys\nbefore = set(sys.modules)\nfrom envbuild.cli import main\n"
                 f"code = main(['build', {str(spec)!r}, '--template', {str(template)!r}])\n"
                 "print(sorted(set(sys.modules) - before), file=sys.stderr)\nsys.exit(code)\n")
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
        assert done.stdout.startswith(f"cache {first['image']} ({first['id'][:19]}) in "), done.stdout
        loaded = ast.literal_eval(done.stderr.splitlines()[-1])
        assert "envbuild.hitpath" in loaded
        assert [m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY] == []
    finally:
        remove_images(home)
