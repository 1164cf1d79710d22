"""Hypothesis strategies for hostile and clumsy spec files: every input form envbuild loads, as a (file name,
bytes) pair, plus what the fuzz tests count.

The documents are built from each format's own field names with values of the wrong type, of extreme length,
with template braces, and from byte-level damage to valid files, so that most inputs get past the first check
and reach the code behind it.
"""

from __future__ import annotations

import collections

import yaml
from hypothesis import strategies as st

CONDA_KEYS = ["name", "channels", "dependencies", "variables", "prefix", "platforms", "category", "pip-repositories"]
AZURE_KEYS = ["$schema", "name", "version", "description", "tags", "properties", "image", "conda_file", "build",
              "os_type", "inference_config", "envbuild"]
EXTENSION_KEYS = ["platform", "gpu", "cuda", "user_managed_dependencies", "interpreter_path", "base_dockerfile",
                  "base_dockerfile_file", "pip_options", "environment_variables", "lock_file"]
LOCK_METADATA_KEYS = ["platforms", "channels", "content_hash", "sources"]
LOCK_PACKAGE_KEYS = ["name", "version", "manager", "platform", "dependencies", "url", "hash", "category", "optional"]

_words = st.sampled_from(["numpy", "python=3.11", "pip", "conda-forge", "linux-64", "{{name}}", "{{a:\\d{6}}}",
                          "https://example.invalid/simple", "-r other.txt", "--index-url", "*", "./local",
                          "git+https://example.invalid/x.git", "numpy>=1 ; python_version<'3'", "sel(linux): x",
                          "", " ", "#", "\t", "😀", "a" * 300, "osx-arm64", "file:conda.yml", "conda.yaml",
                          "Dockerfile", "mcr.microsoft.com/azureml/base:latest", "UPPER:latest", "a@sha256:zz"])
_long = st.sampled_from([1_000, 5_000, 70_000, 200_000]).map(lambda n: "x" * n)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True), _words,
                    st.text(max_size=40), _long)


def values(depth: int = 3):
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                         st.dictionaries(st.one_of(_words, st.text(max_size=8)),
                                                                         inner, max_size=4)),
                        max_leaves=12)


def _mapping(keys: list[str], extra: dict | None = None):
    known = st.dictionaries(st.sampled_from(keys), values(), max_size=len(keys))
    return st.tuples(known, st.fixed_dictionaries(extra or {})).map(lambda kv: {**kv[0], **kv[1]})


def _dump(data) -> bytes:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode("utf-8")


conda_docs = st.one_of(_mapping(CONDA_KEYS), st.fixed_dictionaries({
    "channels": st.lists(st.one_of(_words, _long), max_size=3),
    "dependencies": st.lists(st.one_of(_words, _long, st.fixed_dictionaries({"pip": st.lists(st.one_of(_words, _long),
                                                                                              max_size=4)})),
                             max_size=5)})).map(_dump)
extension = _mapping(EXTENSION_KEYS)
azure_docs = st.one_of(
    _mapping(AZURE_KEYS),
    st.fixed_dictionaries({"name": _words, "image": st.one_of(_words, values())}, optional={"envbuild": extension,
                                                                                             "conda_file": values()}),
    st.fixed_dictionaries({"$schema": st.just("x"), "envbuild": extension}),
).map(_dump)
lock_docs = st.fixed_dictionaries({
    "version": st.one_of(st.sampled_from([1, 2]), values()),
    "metadata": st.one_of(_mapping(LOCK_METADATA_KEYS), values()),
    "package": st.one_of(st.lists(_mapping(LOCK_PACKAGE_KEYS), max_size=3), values())}).map(_dump)
requirement_lines = st.lists(st.one_of(_words, st.text(max_size=30), _long,
                                       st.sampled_from(["-i", "-e", "-c", "--hash", "-f"]).flatmap(
                                           lambda flag: st.one_of(_words, _long).map(lambda v: f"{flag} {v}"))),
                             max_size=8).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass"))

VALID = {
    "environment.yml": b"name: x\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  - pip:\n"
                       b"    - requests==2.31.0\n",
    "env.yaml": b"$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json\nname: x\n"
                b"image: python:3.11\nconda_file: conda.yaml\nenvbuild:\n  pip_options: [--pre]\n",
    "requirements.txt": b"numpy==1.26.4\n--extra-index-url https://example.invalid/simple\nrequests>=2\n",
    "conda-lock.yml": b"version: 1\nmetadata:\n  platforms: [linux-64]\n  channels: [{url: conda-forge, "
                      b"used_env_vars: []}]\n  content_hash: {linux-64: x}\n  sources: [e.yml]\npackage: []\n",
}


@st.composite
def damaged(draw):
    """A valid file of each form with bytes flipped, inserted, deleted or cut off."""
    name = draw(st.sampled_from(sorted(VALID)))
    data = bytearray(VALID[name])
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        if action == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "insert":
            data[at:at] = draw(st.sampled_from([b"[", b"{", b"&a ", b"*a", b"\x00", b"\xff", b": ", b"- ", b"\t",
                                                b"{{", b"}}", b"\n  ", b"!!python/object:os.system ", b"!!binary "]))
        elif action == "delete" and data:
            del data[at]
        elif action == "cut":
            del data[at:]
    return name, bytes(data)


documents = st.one_of(
    conda_docs.map(lambda b: ("environment.yml", b)),
    azure_docs.map(lambda b: ("environment.yaml", b)),
    lock_docs.map(lambda b: ("conda-lock.yml", b)),
    requirement_lines.map(lambda b: ("requirements.txt", b)),
    st.binary(max_size=300).flatmap(lambda b: st.sampled_from(["environment.yml", "requirements.txt",
                                                               "conda-lock.yml", "x.yaml"]).map(lambda n: (n, b))),
    damaged(),
)


class Tally:
    """What a fuzz run saw: inputs tried, outcomes by kind (error class; `no line` when a file error has none)."""

    def __init__(self):
        self.tried = 0
        self.kinds: collections.Counter[str] = collections.Counter()

    def add(self, kind: str) -> None:
        self.tried += 1
        self.kinds[kind] += 1

    def __str__(self) -> str:
        return f"{self.tried} inputs: " + ", ".join(f"{k} {n}" for k, n in self.kinds.most_common())
