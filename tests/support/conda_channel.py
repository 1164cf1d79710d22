"""A local conda channel of tiny, real packages, built offline and byte-stably for the tests.

Packages (all real .conda archives made with rattler-build's assemble_package, indexed with rattler):
- libgreet 1.0, 2.0: a data file the tools read.
- hello-tool 1.0 (needs libgreet 1.*), 2.0 (needs libgreet >=2): a shell tool `hello-tool` in bin/.
- clash 1.0: needs libgreet <1, which no channel has: unsatisfiable on purpose.
- python 3.11.0: a stand-in interpreter package, so a noarch: python package has a python to install with.
- greetpy 0.1 (noarch: python, needs python): a python module.
- gpu-kernel 1.0: needs the virtual package `__cuda >=12`, so it solves only for a CUDA target.
- libgreet 2.0, hello-tool 2.0 and python 3.11.0 for osx-arm64 too: a second platform to lock.

`make_mirror_channel` builds a second channel that also has libgreet (9.0, higher than the first's) and a
package of its own, for strict channel priority.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from pathlib import Path

STAMP = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
TOOL = "#!/bin/sh\necho \"hello-tool {v} says $(cat \"$(dirname \"$0\")/../share/libgreet/greeting\")\"\n"


def _package(out: Path, staging: Path, name: str, version: str, subdir: str, files: dict[str, str],
             depends: list[str] | None = None, noarch: str | None = None, build: str = "0") -> None:
    from rattler_build import assemble_package

    root = staging / f"{name}-{version}"
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        if rel.startswith("bin/"):
            path.chmod(0o755)
    (out / subdir).mkdir(parents=True, exist_ok=True)
    assemble_package(name=name, version=version, target_platform=subdir, build_string=build,
                     output_dir=str(out / subdir), files_dir=str(root), depends=depends or [], noarch=noarch,
                     timestamp=STAMP, license="MIT", summary=f"{name} test package")


def make_channel(directory: str | os.PathLike) -> Path:
    """Build (once) and index the channel in `directory`; return its path."""
    from rattler.index import index_fs

    out = Path(directory)
    if (out / "noarch" / "repodata.json").exists():
        return out
    staging = out.parent / f".{out.name}-staging"
    for version in ("1.0", "2.0"):
        _package(out, staging, "libgreet", version, "linux-64", {"share/libgreet/greeting": f"hello {version}\n"})
    _package(out, staging, "hello-tool", "1.0", "linux-64", {"bin/hello-tool": TOOL.format(v="1.0")},
             depends=["libgreet 1.*"])
    _package(out, staging, "hello-tool", "2.0", "linux-64", {"bin/hello-tool": TOOL.format(v="2.0")},
             depends=["libgreet >=2"])
    _package(out, staging, "clash", "1.0", "linux-64", {"share/clash/README": "never installable\n"},
             depends=["libgreet <1"])
    _package(out, staging, "python", "3.11.0", "linux-64",
             {"bin/python3.11": "#!/bin/sh\necho stand-in python\n", "lib/python3.11/site-packages/.keep": ""})
    _package(out, staging, "greetpy", "0.1", "noarch",
             {"site-packages/greetpy/__init__.py": "GREETING = 'hello from greetpy'\n"},
             depends=["python >=3.8"], noarch="python")
    _package(out, staging, "gpu-kernel", "1.0", "linux-64", {"share/gpu-kernel/README": "needs a GPU\n"},
             depends=["__cuda >=12"])
    mac = staging / "osx-arm64"
    _package(out, mac, "libgreet", "2.0", "osx-arm64", {"share/libgreet/greeting": "hello 2.0\n"})
    _package(out, mac, "hello-tool", "2.0", "osx-arm64", {"bin/hello-tool": TOOL.format(v="2.0")},
             depends=["libgreet >=2"])
    _package(out, mac, "python", "3.11.0", "osx-arm64",
             {"bin/python3.11": "#!/bin/sh\necho stand-in python\n", "lib/python3.11/site-packages/.keep": ""})
    (out / "noarch").mkdir(exist_ok=True)
    asyncio.run(index_fs(out, force=True))
    return out


def add_package(channel: Path, name: str, version: str, depends: list[str] | None = None) -> None:
    """Publish one more linux-64 package to an indexed channel: the others keep their upload time
    (`indexed_timestamp`, what exclude-newer cut-offs compare), the new one is uploaded now."""
    from rattler.index import index_fs

    _package(channel, channel.parent / f".{channel.name}-staging-more", name, version, "linux-64",
             {f"share/{name}/VERSION": f"{version}\n"}, depends=depends)
    asyncio.run(index_fs(channel))


def make_mirror_channel(directory: str | os.PathLike) -> Path:
    """A second channel: libgreet 9.0 (outranked by the first channel's libgreet when that one comes first)
    and mirror-only 1.0 (found here whatever the order)."""
    from rattler.index import index_fs

    out = Path(directory)
    if (out / "noarch" / "repodata.json").exists():
        return out
    staging = out.parent / f".{out.name}-staging"
    _package(out, staging, "libgreet", "9.0", "linux-64", {"share/libgreet/greeting": "hello 9.0\n"})
    _package(out, staging, "mirror-only", "1.0", "linux-64", {"share/mirror-only/README": "from the mirror\n"})
    (out / "noarch").mkdir(exist_ok=True)
    asyncio.run(index_fs(out, force=True))
    return out
