"""Keys of existing specs do not move: each one names images already built and locks already cached.

Recorded with the release before the pipeline was split into values (CanonicalSpec): a refactoring that changes
one of these keys changes what envbuild considers "the same environment", which must instead bump KEY_FORMAT.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from envbuild.spec import Environment

CORPUS = Path(__file__).parent.parent.parent / "shared" / "corpus"

# One of each kind of input: conda + pip, `defaults` and comments, pip index options, a conda-lock file,
# Azure ML YAML with a build context, selectors and markers, variables.
RECORDED = {
    "conda/azex-spark-nyctaxi.yaml": "v1:22c8782f43cb806ca0e7c1dae2ec33b8",
    "conda/condalock-channel-comments-defaults-prefix.yaml": "v1:50130fbffeacd2ac50ba2210a890a834",
    "pip/dinov2-multiple-extra-index-url.txt": "v1:ed7515092d65adab97b7370530bdc3eb",
    "lock/pangeo-pytorch-notebook-multisource/conda-lock.yml": "v1:990a6a4ae322b9f1abb71dc54d01553e",
    "azureml/azex-nyc-taxi/env_train.yml": "v1:89fd9e86b3fc9ea2eb6a9aea6b6a70ac",
    "conda/unidep-sel-mappings-pip-markers.yaml": "v1:aa33807fa1d7f2ee29f631b4c23809e8",
    "conda/conda-channels-envvars.yml": "v1:62907d63272f92a9be36702566361cc2",
}


@pytest.mark.parametrize("relative", sorted(RECORDED))
def test_corpus_spec_keeps_its_key(relative):
    if not CORPUS.is_dir():
        pytest.skip(f"no spec corpus at {CORPUS} (it lives next to the repository)")
    assert Environment.from_file(CORPUS / relative).key == RECORDED[relative]


def test_gpu_environment_keeps_its_key():
    env = Environment(name="gpu")
    env.docker.gpu = True
    env.docker.cuda = "12.4"
    env.python.conda_dependencies.add_pip_package("torch==2.5.1")
    env.environment_variables["A"] = "1"
    assert env.key == "v1:34501b7c7b13edd2603f502a752c635c"


def test_gpu_environment_without_cuda_keeps_the_key_it_was_built_under():
    """A GPU request without a CUDA version was keyed with the stack chosen for it (the build decided it before
    keying); the spec key is now that key from the start."""
    env = Environment(name="gpu2")
    env.docker.gpu = True
    env.python.conda_dependencies.add_conda_package("pytorch=2.7")
    env.python.conda_dependencies.add_channel("conda-forge")
    assert env.key == "v1:06bd502b500061967e61c42b5e82cd7c"
