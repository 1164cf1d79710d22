"""The official Azure ML SDKs (azure-ai-ml for v2, azureml-core for v1), driven as their users drive them.

They pin versions envbuild's own dependencies conflict with, so they live in a virtual environment of their own,
made once per machine and reused (ENVBUILD_AZURE_SDK_VENV, default /var/cache/envbuild-tests/azure-sdk-venv;
about a minute to make with a reachable index). Tests run Python scripts in it that print one JSON document; a
test that needs the SDKs calls `sdk_python()`, which skips it with the reason only when the environment cannot be
made (no package index reachable).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

REQUIREMENTS = ("azure-ai-ml==1.35.*", "azureml-core==1.61.*")
VENV = Path(os.environ.get("ENVBUILD_AZURE_SDK_VENV", "/var/cache/envbuild-tests/azure-sdk-venv"))
_MARKER = "envbuild-requirements.txt"  # written last: a venv without it is unfinished


def sdk_python() -> Path:
    """The interpreter of the SDKs' virtual environment, made now if there is none with REQUIREMENTS."""
    python = VENV / "bin" / "python"
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if _ready(wanted):
        return python
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(VENV) + ".lock"):
        if _ready(wanted):
            return python
        partial = VENV.with_name(VENV.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        made = subprocess.run([sys.executable, "-m", "venv", str(partial)], capture_output=True, text=True)
        installed = made.returncode == 0 and subprocess.run(
            [str(partial / "bin" / "python"), "-m", "pip", "install", "--quiet", *REQUIREMENTS],
            capture_output=True, text=True)
        if not installed or installed.returncode != 0:
            detail = (installed.stderr if installed else made.stderr).strip().splitlines()[-1:] or ["?"]
            shutil.rmtree(partial, ignore_errors=True)
            pytest.skip(f"cannot install {', '.join(REQUIREMENTS)} into a virtual environment: {detail[0]}")
        (partial / _MARKER).write_text(wanted, encoding="utf-8")
        shutil.rmtree(VENV, ignore_errors=True)
        os.replace(partial, VENV)  # bin/python is a link to the base interpreter: the venv works where it lands
    return python


def _ready(wanted: str) -> bool:
    marker = VENV / _MARKER
    return (VENV / "bin" / "python").exists() and marker.is_file() and marker.read_text(encoding="utf-8") == wanted


def run_sdk(script: str, *args: str, cwd: Path | None = None):
    """Run `script` (Python source) with the SDKs' interpreter and ARGS; its last stdout line is JSON."""
    done = subprocess.run([str(sdk_python()), "-c", script, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    if done.returncode != 0:
        raise AssertionError(f"the SDK script failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])
