"""envbuild's environments and the official Azure ML SDKs, exchanged both ways as their users would.

azure-ai-ml (v2) loads every directory envbuild saves, as it is, with the same fields; environments made and
dumped by azure-ai-ml load in envbuild with the key of the same environment made in envbuild; azureml-core (v1)
directories load in envbuild, and envbuild's v1 saves load in azureml-core. The SDKs run in their own virtual
environment (tests/support/azure_sdks.py), one script per test module where it can.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from envbuild import CondaDependencies, Environment
from envbuild.spec.azureml import AZURE_DEFAULT_IMAGES
from tests.support.azure_sdks import run_sdk
from tests.support.cli import run_main

pytestmark = pytest.mark.slow

ROUTES = {"liveness_route": {"path": "/live", "port": 5001}, "readiness_route": {"path": "/ready", "port": 5001},
          "scoring_route": {"path": "/score", "port": 5001}}

LOAD_V2 = """
import json, os, sys
from azure.ai.ml import load_environment
out = {}
for directory in sys.argv[1:]:
    e = load_environment(os.path.join(directory, "environment.yaml"))
    ic = e.inference_config
    out[directory] = {
        "name": e.name, "version": e.version, "description": e.description, "tags": e.tags, "image": e.image,
        "conda_file": e.conda_file, "os_type": e.os_type,
        "build": e.build and {"path": os.path.normpath(os.path.join(directory, str(e.build.path))),
                              "dockerfile_path": e.build.dockerfile_path},
        "inference_config": ic and {k: {"path": r.path, "port": r.port} for k, r in
                                    (("liveness_route", ic.liveness_route), ("readiness_route", ic.readiness_route),
                                     ("scoring_route", ic.scoring_route))},
    }
print(json.dumps(out))
"""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _cases(root: Path) -> dict[str, Environment]:
    deps = CondaDependencies.create(conda_packages=["numpy>=1.20,<2"], pip_packages=["six==1.16.0"],
                                    python_version="3.11", channels=["conda-forge"],
                                    pip_options=["--extra-index-url https://download.pytorch.org/whl/cpu"])
    image = Environment("image")
    image.docker.base_image = "python:3.11-slim"
    conda = Environment("conda")
    conda.docker.base_image = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
    conda.python.conda_dependencies = deps
    _write(root / "ctx" / "docker" / "Train.Dockerfile", "FROM python:3.11\nCOPY app.py /app.py\n")
    _write(root / "ctx" / "app.py", "print(1)\n")
    context = Environment.from_build_context("context", root / "ctx", dockerfile_path="docker/Train.Dockerfile")
    metadata = Environment("metadata", version="7", description="all the metadata", tags={"team": "ml", "n": "1.10"})
    metadata.docker.base_image = "python:3.11"
    gpu = Environment("gpu")
    gpu.docker.base_image = "nvidia/cuda:12.1.0-runtime-ubuntu22.04"
    gpu.docker.gpu, gpu.docker.cuda = True, "12.1"
    gpu.environment_variables["NCCL_DEBUG"] = "INFO"
    default = Environment("no-image")
    default.python.conda_dependencies = CondaDependencies.create(conda_packages=["numpy"], python_version="3.11",
                                                                 channels=["conda-forge"])
    dockerfile = Environment("dockerfile")
    dockerfile.docker.base_dockerfile = "FROM python:3.11\nRUN echo hi\n"
    serving = Environment("serving", inference_config=ROUTES)
    serving.docker.base_image = "python:3.11"
    return {"image": image, "conda": conda, "context": context, "metadata": metadata, "gpu": gpu,
            "no-image": default, "dockerfile": dockerfile, "serving": serving}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Every case saved by envbuild, and what azure-ai-ml's load_environment made of each directory."""
    root = tmp_path_factory.mktemp("saved")
    cases = _cases(root)
    for case, env in cases.items():
        env.save_to_directory(root / case)
    loaded = run_sdk(LOAD_V2, *(root / case for case in cases))
    return root, cases, {Path(k).name: v for k, v in loaded.items()}


@pytest.mark.parametrize("case", ["image", "conda", "context", "metadata", "gpu", "no-image", "dockerfile",
                                  "serving"])
def test_azure_ai_ml_loads_every_saved_directory_as_it_is(saved, case):
    root, cases, loaded = saved
    env, azure = cases[case], loaded[case]
    assert azure["name"] == env.name and azure["version"] == env.version
    assert azure["description"] == env.description and azure["tags"] == env.tags
    assert azure["os_type"] == "linux"
    expected_image = env.docker.base_image or (None if env.docker.build_context or env.docker.base_dockerfile
                                               else AZURE_DEFAULT_IMAGES[env.docker.gpu])
    assert azure["image"] == expected_image
    if env.docker.build_context:
        assert azure["build"] == {"path": str(root / "ctx"), "dockerfile_path": "docker/Train.Dockerfile"}
    elif env.docker.base_dockerfile:
        assert azure["build"] == {"path": str(root / case), "dockerfile_path": "Dockerfile"}
        assert (root / case / "Dockerfile").read_text() == env.docker.base_dockerfile
    else:
        assert azure["build"] is None
    deps = env.python.conda_dependencies
    if deps.is_empty:
        assert azure["conda_file"] is None
    else:
        pip = [*deps.pip_options, *deps.pip_packages]
        assert azure["conda_file"] == {"channels": deps.channels,
                                       "dependencies": [*deps.conda_packages, *([{"pip": pip}] if pip else [])]}
    assert azure["inference_config"] == env.inference_config
    assert Environment.load_from_directory(root / case) == env


def test_saving_names_what_azure_ml_will_not_see(tmp_path, caplog):
    env = _cases(tmp_path)["gpu"]
    env.save_to_directory(tmp_path / "gpu")
    [notice] = [r.getMessage() for r in caplog.records if "Azure ML will not see" in r.getMessage()]
    assert "NCCL_DEBUG" in notice and "GPU" in notice and "12.1" in notice
    caplog.clear()
    _cases(tmp_path)["conda"].save_to_directory(tmp_path / "conda")
    assert not [r for r in caplog.records if "Azure ML will not see" in r.getMessage()]


DUMP_V2 = """
import json, sys
from azure.ai.ml.entities import BuildContext, Environment
out, routes = sys.argv[1], json.loads(sys.argv[2])
Environment(name="image", image="python:3.11-slim").dump(out + "/image.yaml")
Environment(name="conda", image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest",
            conda_file=out + "/conda.yaml").dump(out + "/conda-env.yaml")
Environment(name="context", build=BuildContext(path=out + "/ctx", dockerfile_path="docker/Train.Dockerfile"),
            version="3", tags={"a": "b"}).dump(out + "/context.yaml")
Environment(name="serving", image="python:3.11", inference_config=routes).dump(out + "/serving.yaml")
print(json.dumps("ok"))
"""


def test_environments_dumped_by_azure_ai_ml_load_with_envbuilds_own_keys(tmp_path):
    cases = _cases(tmp_path)
    _write(tmp_path / "conda.yaml", yaml.safe_dump(cases["conda"].python.conda_dependencies.as_dict()))
    run_sdk(DUMP_V2, tmp_path, json.dumps(ROUTES))
    for case, dumped in (("image", "image.yaml"), ("conda", "conda-env.yaml"), ("context", "context.yaml"),
                         ("serving", "serving.yaml")):
        loaded = Environment.from_file(tmp_path / dumped)
        assert loaded.key == cases[case].key, case
    assert Environment.from_file(tmp_path / "serving.yaml").inference_config == ROUTES
    # an image-only environment: azure-ai-ml's dump says nothing of user-managed; envbuild's default says False
    assert cases["image"].python.user_managed_dependencies is False
    assert Environment.from_file(tmp_path / "image.yaml").python.user_managed_dependencies is True


ROUND_TRIP_V2 = """
import sys
from azure.ai.ml import load_environment
load_environment(sys.argv[1] + "/environment.yaml").dump(sys.argv[2])
print('"ok"')
"""


def test_a_round_trip_through_azure_ai_ml_keeps_the_key(tmp_path):
    env = _cases(tmp_path)["conda"]
    env.save_to_directory(tmp_path / "saved")
    run_sdk(ROUND_TRIP_V2, tmp_path / "saved", tmp_path / "dumped.yaml")
    assert Environment.from_file(tmp_path / "dumped.yaml").key == env.key


SAVE_V1 = """
import json, sys
from azureml.core import Environment
from azureml.core.conda_dependencies import CondaDependencies
out = sys.argv[1]
e = Environment("v1-image")
e.docker.base_image = "python:3.11"
cd = CondaDependencies.create(conda_packages=["numpy=1.26"], pip_packages=["six==1.16.0"], python_version="3.11")
cd.set_pip_option("--extra-index-url https://download.pytorch.org/whl/cpu")
e.python.conda_dependencies = cd
e.environment_variables["MODE"] = "fast"
e.save_to_directory(out + "/image", overwrite=True)
d = Environment("v1-dockerfile")
d.docker.base_image = None
d.docker.base_dockerfile = "FROM python:3.11\\nRUN echo hi\\n"
d.python.user_managed_dependencies = True
d.save_to_directory(out + "/dockerfile", overwrite=True)
print(json.dumps({"channels": list(cd.conda_channels), "conda": list(cd.conda_packages),
                  "pip": list(cd.pip_packages), "pip_options": list(cd.pip_options)}))
"""


def test_a_v1_directory_saved_by_azureml_core_loads(tmp_path, capsys, home):
    v1 = run_sdk(SAVE_V1, tmp_path)
    env = Environment.load_from_directory(tmp_path / "image")
    assert env.name == "v1-image" and env.docker.base_image == "python:3.11"
    deps = env.python.conda_dependencies
    assert deps.conda_packages == v1["conda"] and deps.pip_packages == v1["pip"] and deps.channels == v1["channels"]
    assert deps.pip_options == v1["pip_options"]
    assert env.environment_variables == {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE", "MODE": "fast"}  # v1 adds the first
    assert env.python.user_managed_dependencies is False
    dockerfile = Environment.load_from_directory(tmp_path / "dockerfile")
    assert dockerfile.docker.base_dockerfile == "FROM python:3.11\nRUN echo hi\n"
    assert dockerfile.docker.base_image is None and dockerfile.python.user_managed_dependencies is True
    for given in (tmp_path / "image", tmp_path / "image" / "azureml_environment.json"):
        code, out, err = run_main(capsys, "key", str(given))
        assert code == 0, err
        assert out.strip() == env.key


LOAD_V1 = """
import json, sys
from azureml.core import Environment
out = {}
for directory in sys.argv[1:]:
    e = Environment.load_from_directory(directory)
    cd = e.python.conda_dependencies
    out[directory] = {"name": e.name, "image": e.docker.base_image, "dockerfile": e.docker.base_dockerfile,
                      "variables": e.environment_variables, "user_managed": e.python.user_managed_dependencies,
                      "channels": list(cd.conda_channels), "conda": list(cd.conda_packages),
                      "pip": list(cd.pip_packages), "pip_options": list(cd.pip_options)}
print(json.dumps(out))
"""


def test_a_v1_directory_saved_by_envbuild_loads_in_azureml_core(tmp_path):
    cases = _cases(tmp_path)
    conda = cases["conda"]
    conda.environment_variables["MODE"] = "fast"
    for case in ("conda", "dockerfile", "no-image"):
        cases[case].save_to_directory(tmp_path / "v1" / case, format="v1")
    loaded = {Path(k).name: v for k, v in run_sdk(LOAD_V1, *(tmp_path / "v1" / c for c in
                                                              ("conda", "dockerfile", "no-image"))).items()}
    deps = conda.python.conda_dependencies
    assert loaded["conda"] == {"name": "conda", "image": conda.docker.base_image, "dockerfile": None,
                               "variables": {"MODE": "fast"}, "user_managed": False, "channels": deps.channels,
                               "conda": deps.conda_packages, "pip": deps.pip_packages,
                               "pip_options": deps.pip_options}
    assert loaded["dockerfile"]["dockerfile"] == cases["dockerfile"].docker.base_dockerfile
    assert loaded["dockerfile"]["image"] is None and loaded["dockerfile"]["user_managed"] is False
    assert loaded["no-image"]["image"] == AZURE_DEFAULT_IMAGES[False]
    for case in ("conda", "dockerfile", "no-image"):  # and back: the same environment
        assert Environment.load_from_directory(tmp_path / "v1" / case) == cases[case]
