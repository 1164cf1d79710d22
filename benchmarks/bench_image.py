"""P7 image size and P4 incremental rebuild: envbuild's rendered Dockerfile against a naive one, on the real engine.

The naive Dockerfile is what people write first, on the same base image: one RUN that installs pip from Debian
(with its recommended compilers), makes a venv and pip-installs the packages, keeping apt lists and the pip cache.
(It mounts the CA bundle as a secret only because PyPI is behind a TLS-intercepting proxy on these machines.)

P7: size of the rendered image / size of the naive one, same packages (target <= 0.7).
P4: rebuild after changing one pip package / cold build of the rendered image (target <= 0.25); the naive
    Dockerfile's same ratio is in the details. "Cold" is `--no-cache` (every layer rebuilt) with the engine's
    download caches as a normal machine has them, which makes cold faster and the ratio conservative.
    Each build of a run carries a nonce (a comment in the pip requirements, an `echo` in the naive RUN), so no
    build is served from the layers of an earlier run: only what the change touches is rebuilt.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from pathlib import Path

IDS = ("P4", "P7")
BASE = "envbuild/python:3.11-bookworm"
QUICK_PACKAGES = ["idna==3.10"]
FULL_PACKAGES = ["idna==3.10", "requests==2.32.3", "urllib3==2.2.3", "certifi==2024.8.30",
                 "charset-normalizer==3.4.0", "numpy==2.1.3"]
CHANGED = "six"
CHANGED_VERSIONS = ["1.16.0", "1.17.0", "1.15.0", "1.14.0"]  # first: the cold build's; then one per repetition

NAIVE_DOCKERFILE = """\
FROM {base}
RUN --mount=type=secret,id=ca apt-get update && apt-get install -y python3-pip \\
 && python3 -m venv /opt/env && PIP_CERT=/run/secrets/ca /opt/env/bin/pip install {packages} && echo {nonce}
ENV PATH=/opt/env/bin:$PATH
"""


def _environment(packages: list[str]):
    from envbuild.spec import Environment

    env = Environment(name="bench-image")
    for requirement in packages:
        env.python.conda_dependencies.add_pip_package(requirement)
    return env


def _build(context: Path, tag: str, *, cold: bool) -> float:
    from envbuild.builder import build_image
    from envbuild.config import host_ca_bundle

    ca = host_ca_bundle()
    started = time.perf_counter()
    build_image(context, tag, secrets={"ca": ca} if ca else None, extra_args=["--no-cache"] if cold else None)
    return time.perf_counter() - started


def _rendered(packages: list[str], directory: Path, tag: str, *, cold: bool, home: Path, nonce: str) -> float:
    import envbuild

    plan = envbuild.render(_environment(packages), cache_dir=home)
    context = plan.write_context(directory)
    with (context / "pip" / "requirements.txt").open("a") as requirements:
        requirements.write(f"# {nonce}\n")
    return _build(context, tag, cold=cold)


def _naive(packages: list[str], directory: Path, tag: str, *, cold: bool, nonce: str) -> float:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Dockerfile").write_text(NAIVE_DOCKERFILE.format(base=BASE, packages=" ".join(packages),
                                                                  nonce=nonce))
    return _build(directory, tag, cold=cold)


def _size_mb(tag: str) -> float:
    from envbuild.engine import Engine

    engine = Engine()
    try:
        return engine.inspect_image(tag)["Size"] / 1e6
    finally:
        engine.close()


def _remove(tags: list[str]) -> None:
    from envbuild.engine import Engine

    engine = Engine()
    try:
        for tag in tags:
            engine.remove(tag)
    finally:
        engine.close()


def run(quick: bool) -> list[dict]:
    from envbuild.bases import resolve_base
    from envbuild.engine import Engine

    engine = Engine()
    resolve_base(None, engine)
    engine.close()
    packages = QUICK_PACKAGES if quick else FULL_PACKAGES
    repetitions = 1 if quick else 3
    run_id = uuid.uuid4().hex[:8]
    rendered_tag, naive_tag = f"envbuild-bench/rendered:{run_id}", f"envbuild-bench/naive:{run_id}"
    pinned = lambda version: packages + [f"{CHANGED}=={version}"]  # noqa: E731
    times: dict[str, list[float]] = {"cold": [], "incremental": [], "naive_cold": [], "naive_incremental": []}
    tags = [rendered_tag, naive_tag]
    with tempfile.TemporaryDirectory(prefix="envbuild-bench-image-") as scratch:
        root = Path(scratch)
        home = root / "home"
        for rep in range(repetitions):
            changed = CHANGED_VERSIONS[1 + rep]
            nonce = f"{run_id}-{rep}"
            times["cold"].append(_rendered(pinned(CHANGED_VERSIONS[0]), root / f"r{rep}a", rendered_tag, cold=True,
                                           home=home, nonce=nonce))
            if rep == 0:
                rendered_size = _size_mb(rendered_tag)
            tags.append(f"{rendered_tag}-{rep}")
            times["incremental"].append(_rendered(pinned(changed), root / f"r{rep}b", tags[-1], cold=False, home=home,
                                                  nonce=nonce))
            # The naive cold build downloads Debian's compilers every time: in quick mode it is built once (from
            # the layer cache when this machine has seen it) for its size only.
            naive_cold = _naive(pinned(CHANGED_VERSIONS[0]), root / f"n{rep}a", naive_tag, cold=not quick,
                                nonce="naive" if quick else nonce)
            if rep == 0:
                naive_size = _size_mb(naive_tag)
            if not quick:
                times["naive_cold"].append(naive_cold)
                tags.append(f"{naive_tag}-{rep}")
                times["naive_incremental"].append(_naive(pinned(changed), root / f"n{rep}b", tags[-1], cold=False,
                                                         nonce=nonce))
    _remove(tags)
    median = {name: statistics.median(values) if values else None for name, values in times.items()}
    naive_ratio = (median["naive_incremental"] / median["naive_cold"]) if median["naive_cold"] else None
    common = {"packages": pinned(CHANGED_VERSIONS[0]), "base": BASE, "repetitions": repetitions}
    return [
        {"id": "P7", "name": "image size: rendered env vs naive one-RUN Dockerfile", "value": round(rendered_size, 1),
         "unit": "MB", "baseline": round(naive_size, 1), "baseline_name": "naive one-RUN Dockerfile, same base",
         "ratio": round(rendered_size / naive_size, 3), "target": "<= 0.7", "details": common},
        {"id": "P4", "name": f"rebuild after changing one pip package ({CHANGED}) vs cold build",
         "value": round(median["incremental"], 2), "unit": "s", "baseline": round(median["cold"], 2),
         "baseline_name": "cold build of the rendered Dockerfile (--no-cache)",
         "ratio": round(median["incremental"] / median["cold"], 3), "target": "<= 0.25",
         "details": {**common, "seconds": {k: [round(v, 2) for v in vs] for k, vs in times.items()},
                     "naive_cold_s": median["naive_cold"], "naive_incremental_s": median["naive_incremental"],
                     "naive_ratio": round(naive_ratio, 3) if naive_ratio else None}},
    ]


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
