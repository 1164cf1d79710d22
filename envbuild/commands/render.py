"""render, base build: the Dockerfile envbuild would build, and envbuild's own base images."""

from __future__ import annotations

import json
import sys

from . import add_common, add_spec, err, load_spec, with_python


def register(sub) -> None:
    p = sub.add_parser("render", help="print the Dockerfile envbuild would build")
    add_spec(p)
    add_common(p)
    p.add_argument("--template", help="a Jinja2 template extending environment.Dockerfile.j2")
    p.add_argument("--gpu", action="store_true", help="on a GPU base (the newest stack consistent with the spec)")
    p.add_argument("--cuda", help="on the GPU stack of this CUDA version (MAJOR.MINOR, e.g. 12.4)")
    p.add_argument("--classic", action="store_true",
                   help="for the classic builder (no BuildKit: no cache mounts, no CA secret)")
    p.add_argument("--context", metavar="DIR", help="also write the whole build context (Dockerfile + files) here")
    p.add_argument("--python", help="Python version: conda environments get python=VERSION; pip-only ones are "
                                    "locked for it (their base image must have it)")
    p.set_defaults(func=cmd_render)

    base = sub.add_parser("base", help="envbuild's base images").add_subparsers(dest="base_command", required=True,
                                                                               metavar="SUBCOMMAND")
    p = base.add_parser("build", help="build a CPU (Debian + OpenMPI) or GPU (CUDA, cuDNN, NCCL, OpenMPI) base")
    add_common(p)
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--cpu", action="store_true", help="the CPU base with OpenMPI (default without --gpu/--cuda)")
    kind.add_argument("--gpu", action="store_true", help="the GPU base of the newest stack")
    kind.add_argument("--cuda", help="the GPU base of this CUDA version (MAJOR.MINOR)")
    p.add_argument("--source", choices=("pypi", "vendor"), default="pypi",
                   help="GPU libraries from PyPI wheels on Debian (default; works offline of registries) or from "
                        "the vendor's nvidia/cuda image")
    p.add_argument("--rebuild", action="store_true", help="build even if the engine has the tag")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="do not stream the build log")
    p.set_defaults(func=cmd_base_build)

    p = base.add_parser("matrix", help="print the GPU compatibility matrix (CUDA, cuDNN, NCCL, driver, frameworks)")
    p.add_argument("--json", action="store_true", help="print it as JSON")
    p.set_defaults(func=cmd_base_matrix)


def cmd_render(args) -> int:
    from ..api import render

    plan = render(with_python(load_spec(args), args.python), cache_dir=args.cache_dir, template=args.template,
                  gpu=args.gpu or None, cuda=args.cuda, buildkit=not args.classic, python_version=args.python,
                  on_progress=lambda stage, message: err(f"envbuild: {stage}: {message}") if args.debug else None,
                  on_log=_BaseBuildLog())
    if args.context:
        plan.write_context(args.context)
        err(f"envbuild: wrote the build context to {args.context} (build key {plan.key})")
    sys.stdout.write(plan.dockerfile)
    return 0


class _BaseBuildLog:
    """The log of a base image render has to build first (the 1.8 GB GPU base takes minutes): said once, then
    streamed to stderr, so that a command asked to print a Dockerfile never works for minutes without a word."""

    def __init__(self):
        self.started = False

    def __call__(self, line: str) -> None:
        if not self.started:
            self.started = True
            err("envbuild: render: the base image is not on this engine: building it first (once per engine; "
                "`envbuild base build` does it ahead); its log follows, then the Dockerfile")
        err(f"  | {line}")


def cmd_base_build(args) -> int:
    from ..bases import build_base
    from ..engine import Engine
    from ..gpu import stack_for_cuda

    gpu = bool(args.gpu or args.cuda)
    stack = stack_for_cuda(args.cuda) if gpu else None
    if stack is not None:
        err(f"envbuild: base: {stack.describe()}")
    base = build_base("gpu" if gpu else "cpu", Engine(), stack=stack, source=args.source, rebuild=args.rebuild,
                      on_log=None if args.quiet else (lambda line: err(f"  | {line}")))
    if args.json:
        print(json.dumps({"image": base.ref, "id": base.id, "from": base.from_ref, "python": base.python_version,
                          "cuda": stack.cuda if stack else None}, sort_keys=True))
    else:
        print(f"{base.ref} ({base.id[:19]})")
    return 0


def cmd_base_matrix(args) -> int:
    from ..gpu import stacks

    rows = [{"cuda": s.cuda, "cuda_runtime": s.cuda_runtime, "cudnn": s.cudnn, "nccl": s.nccl,
             "min_driver": s.min_driver, "vendor_image": s.vendor_image,
             "frameworks": {k: list(v) for k, v in s.frameworks.items()}} for s in stacks()]
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    for row in rows:
        frameworks = "; ".join(f"{k} {', '.join(v)}" for k, v in sorted(row["frameworks"].items()) if v)
        print(f"CUDA {row['cuda']:<5} runtime {row['cuda_runtime']:<9} cuDNN {row['cudnn']:<10} "
              f"NCCL {row['nccl']:<7} driver >= {row['min_driver']:<10} {frameworks}")
    return 0
