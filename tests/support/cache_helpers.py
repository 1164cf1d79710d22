"""Helpers for the cache, registry and concurrency tests: unique images, cleaning up after a home."""

from __future__ import annotations

import uuid
from pathlib import Path

from envbuild.cache import Index


def unique_template(directory: Path, steps: str = "") -> Path:
    """A template giving images no other test (or earlier run) has: a variable with a fresh id, then `steps`.

    Tests that count builds or remove images must not meet images other tests or runs left on the shared engine.
    A variable (not a label) also changes the layer cache key of the `steps` after it: they really run.
    """
    path = directory / f"unique-{uuid.uuid4().hex[:12]}.Dockerfile.j2"
    path.write_text('{% extends "environment.Dockerfile.j2" %}\n'
                    f'{{% block user_steps %}}ENV ENVBUILD_TEST_RUN={uuid.uuid4().hex}\n{steps}{{% endblock %}}\n')
    return path


def entries(home: Path) -> dict[str, dict]:
    with Index(home) as index:
        return dict(index.entries())


def remove_images(home: Path) -> None:
    """Remove the images a test's home indexed (they are unique to it)."""
    if not (home / "index").exists():
        return
    refs = [entry["image"] for entry in entries(home).values()]
    if refs:
        from tests.conftest import docker

        docker("rmi", "-f", *refs, check=False)
