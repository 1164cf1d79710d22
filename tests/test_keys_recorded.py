"""Keys do not move: `envbuild key` of varied specs, recorded before the pipeline was reorganised (issue 11).

A key names images in caches and registries that outlive a release: if one of these changes, every user's cache
misses. A deliberate change of the key recipe bumps the key format (`v1` → `v2`) with its reason, and re-records
these. The specs are case folders of tests/specs/ (always here) and files of the public corpus beside the
repository (skipped where it is absent, as in test_corpus.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run_main
from tests.support.spec_cases import case_input

# Recorded with `envbuild key` at commit 41062b9.
RECORDED_CASES = {
    "conda/channels-pip-variables": "v1:cb29752a227b8a6be0d0678aec41ab25",
    "conda/bracket-version-and-build-number": "v1:604b08f1e56dad0cf4b5ed7d124bf3cd",
    "pip/index-options-hashes-markers": "v1:893b2a14b444f90c7129925f68603af6",
    "pip/vcs-egg-subdirectory": "v1:ddf5c38b87b634a349134b1a22828f7c",
    "azureml/image-and-conda-file": "v1:bcb01a088cc3832e2a72411c368f8d8f",
    "azureml/build-context": "v1:7fa061da0fd5c68fb9424f52a64b6f4e",
    "azureml/gpu-cuda-request": "v1:2214a2c3c3a2eb849633d563191f03f1",
    "dockerfile/plain": "v1:db0e9aab04cd4a7debd9566366e3abfe",
    "dockerfile/context-with-copy": "v1:783ad5ecee1d6a549db819a0fb03c53e",
    "lock/two-platforms": "v1:c2b6de48d23c180ca263b510e15dfd2c",
    "lock/conda-and-pip": "v1:ca291ebbfc9fdedcdab16ea117f1aebd",
    "prefix/conda-and-pip": "v1:d251da3ba0aa10dec4da40a65232a888",
}

CORPUS = Path(__file__).parent.parent.parent / "shared" / "corpus"
RECORDED_CORPUS = {
    "conda/condalock-pip-repositories-platforms.yaml": "v1:ff4bfdae82555c51dea3b9269d1dbcf7",
    "conda/rapids-cudf-all-cuda129-generated.yaml": "v1:0469648b2ccf27dfa2fe981aaa3622d1",
    "pip/vllm-cuda-extra-index-markers-extras/cuda.txt": "v1:184f28b12de0b29b2b8a894b7de8ade9",
    "pip/sigstore-pip-compile-hashes/requirements.txt": "v1:497e9630c48d379a420b63790dabf599",
    "azureml/azex-xgboost-sklearn/xgboost-sklearn-py38.yml": "v1:1a667011a05b4694f546c52a86fb2c0d",
    "azureml/azex-acpt-nebula/env.yml": "v1:9d82cd8fd0b24044afcd65f34c6039bb",
    "lock/pangeo-pytorch-notebook-multisource/conda-lock.yml": "v1:990a6a4ae322b9f1abb71dc54d01553e",
    "conda/azex-spark-nyctaxi.yaml": "v1:22c8782f43cb806ca0e7c1dae2ec33b8",
    "conda/condalock-channel-comments-defaults-prefix.yaml": "v1:50130fbffeacd2ac50ba2210a890a834",
    "pip/dinov2-multiple-extra-index-url.txt": "v1:ed7515092d65adab97b7370530bdc3eb",
    "azureml/azex-nyc-taxi/env_train.yml": "v1:89fd9e86b3fc9ea2eb6a9aea6b6a70ac",
    "conda/unidep-sel-mappings-pip-markers.yaml": "v1:aa33807fa1d7f2ee29f631b4c23809e8",
    "conda/conda-channels-envvars.yml": "v1:62907d63272f92a9be36702566361cc2",
}


def key(capsys, spec: Path) -> str:
    code, out, err = run_main(capsys, "key", str(spec))
    assert code == 0, err
    return out.strip()


@pytest.mark.parametrize("case, recorded", sorted(RECORDED_CASES.items()))
def test_case_keys_are_the_recorded_ones(case, recorded, capsys, home):
    assert key(capsys, case_input(case)) == recorded


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no spec corpus at {CORPUS} (it lives next to the repository)")
@pytest.mark.parametrize("relative, recorded", sorted(RECORDED_CORPUS.items()))
def test_corpus_keys_are_the_recorded_ones(relative, recorded, capsys, home):
    assert key(capsys, CORPUS / relative) == recorded


def test_gpu_environment_built_through_the_api_keeps_its_key():
    from envbuild.spec import Environment

    env = Environment(name="gpu")
    env.docker.gpu = True
    env.docker.cuda = "12.4"
    env.python.conda_dependencies.add_pip_package("torch==2.5.1")
    env.environment_variables["A"] = "1"
    assert env.key == "v1:34501b7c7b13edd2603f502a752c635c"


def test_gpu_environment_without_cuda_keeps_the_key_it_was_built_under():
    """A GPU request without a CUDA version was keyed with the stack chosen for it (the build decided it before
    keying); the spec key is now that key from the start."""
    from envbuild.spec import Environment

    env = Environment(name="gpu2")
    env.docker.gpu = True
    env.python.conda_dependencies.add_conda_package("pytorch=2.7")
    env.python.conda_dependencies.add_channel("conda-forge")
    assert env.key == "v1:06bd502b500061967e61c42b5e82cd7c"
