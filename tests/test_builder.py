"""Builders without an engine: which one is chosen, and what a failed build tells the user (step, last lines)."""

from __future__ import annotations

import pytest

from envbuild.builder import _failure, find_builder, step_of
from envbuild.errors import BuildError


def test_a_buildkit_failure_names_the_failing_step_and_shows_the_last_lines():
    log = ["#5 [pip-installer 1/2] RUN python3 -m venv /opt/env", "#5 DONE 2.1s",
           "#6 [pip-installer 2/2] RUN pip install -r req.txt", "#6 1.2 ERROR: No matching distribution",
           "#6 ERROR: executor failed running [/bin/sh -c pip install -r req.txt]: exit code: 1"]
    message = str(_failure("envbuild/env:v1-x", log))
    assert "at step [pip-installer 2/2] RUN pip install -r req.txt" in message
    assert "No matching distribution" in message and "read the failing step" in message


def test_a_classic_failure_names_its_last_step():
    log = ["Step 1/3 : FROM base", " ---> abc", "Step 2/3 : RUN false", "The command '/bin/sh -c false' returned 1"]
    assert "at Step 2/3 : RUN false" in str(_failure("t", log))


def test_progress_shows_the_step_a_line_starts():
    assert step_of("#7 [final 3/4] COPY --from=pip-installer /opt/env /opt/env") == \
        "[final 3/4] COPY --from=pip-installer /opt/env /opt/env"
    assert step_of("Step 2/9 : RUN true") == "Step 2/9 : RUN true"
    assert step_of("#7 0.512 Collecting six") is None


def test_an_unknown_builder_is_refused_with_the_choices(monkeypatch):
    monkeypatch.setenv("ENVBUILD_BUILDER", "kaniko")
    with pytest.raises(BuildError, match="buildx, buildkit, classic"):
        find_builder()
