"""Re-render the Dockerfile (and build context) shipped with each curated environment.

    python envbuild/curated/render_curated.py [NAME ...]

For every envbuild/curated/NAME/VERSION/ (the definition: environment.yaml + conda.yaml as
`Environment.save_to_directory` writes them, read by `envbuild.curated.load_curated`), lock it with envbuild's
resolver and render it with envbuild's template into that folder: Dockerfile, conda-lock.yml and the context files
the Dockerfile reads (pip/requirements.txt). The folder then builds as it is:
`DOCKER_BUILDKIT=1 docker build envbuild/curated/NAME/VERSION`. CPU environments render on envbuild's default base
(as the engine has it); GPU ones name envbuild's GPU base for their CUDA stack (`envbuild base build --cuda X`
makes it), which need not exist here. An environment that cannot be locked where this runs (an unreachable index)
keeps its hand-written Dockerfile; the script says so.
"""

from __future__ import annotations

import sys
from pathlib import Path

from envbuild import curated
from envbuild.errors import EnvbuildError
from envbuild.spec import CONDA_FILE, ENVIRONMENT_FILE


def render_one(folder: Path) -> str:
    from envbuild.api import lock
    from envbuild.bases import BaseImage, gpu_base_tag, resolve_base
    from envbuild.engine import Engine
    from envbuild.keys import canonical_spec
    from envbuild.renderer import render

    spec = canonical_spec(curated.load_curated(f"curated:{folder.parent.name}:{folder.name}"))
    stack = spec.gpu
    if stack is not None:
        tag = gpu_base_tag(stack)
        # Described as gpu.Dockerfile labels it, so that the rendering need not build it (CUDA wheels: GBs).
        base = BaseImage(ref=tag, id=f"unbuilt:{tag}", python_version="3.11", glibc="2.36", from_ref=tag,
                         cuda=stack.cuda_runtime)
    else:
        base = resolve_base(spec.base_image, Engine())
    resolved = lock(spec, python_version=base.python_version, glibc=base.glibc)
    plan = render(spec, resolved, base)
    for stale in sorted(folder.rglob("*"), reverse=True):  # the previous rendering, files before their folders
        if stale.name not in (ENVIRONMENT_FILE, CONDA_FILE):
            stale.rmdir() if stale.is_dir() else stale.unlink()
    plan.write_context(folder)
    return f"rendered on {base.ref}, {len(resolved.packages)} locked packages"


def main(names: list[str]) -> int:
    failed = 0
    for name in names or curated.curated_names():
        for version in curated.curated_versions(name):
            folder = curated.CURATED / name / str(version)
            try:
                print(f"curated:{name}:{version}: {render_one(folder)}")
            except EnvbuildError as exc:
                failed += 1
                print(f"curated:{name}:{version}: not rendered, the shipped Dockerfile stays: {exc}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
