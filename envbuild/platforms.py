"""The platforms envbuild knows, in one table: conda's subdir names, Docker's names, what each solver needs.

A platform is named the conda way (`linux-64`, the subdir of a channel); Docker's `linux/amd64` spellings are
aliases of it. Each entry carries what the resolver's two solvers need of a target (rattler's `__archspec`,
uv's wheel tags) and conda-lock's selector names (`# [linux64]`, `# [osx]`), which the environment.yml loader
evaluates.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Platform:
    """One target platform: conda subdir `name`, Docker's `docker` name, and what solvers need of it."""

    name: str  # conda's subdir: linux-64
    docker: str | None  # Docker's --platform (linux/amd64); images are Linux, so only Linux has one
    arch: str  # __archspec build string, and the wheel-tag architecture
    os: str  # "linux" | "osx" | "win"
    os_version: str | None = None  # the macOS version wheels and __osx target
    selectors: frozenset[str] = frozenset()  # conda-lock's selector names that hold on it


PLATFORMS = {p.name: p for p in (
    Platform("linux-64", "linux/amd64", "x86_64", "linux", selectors=frozenset({"linux64", "unix", "linux"})),
    Platform("linux-aarch64", "linux/arm64", "aarch64", "linux", selectors=frozenset({"aarch64", "unix", "linux"})),
    Platform("linux-ppc64le", "linux/ppc64le", "ppc64le", "linux", selectors=frozenset({"ppc64le", "unix", "linux"})),
    Platform("linux-s390x", "linux/s390x", "s390x", "linux", selectors=frozenset({"s390x", "unix", "linux"})),
    Platform("osx-64", None, "x86_64", "osx", "12.0", frozenset({"osx64", "osx", "unix"})),
    Platform("osx-arm64", None, "arm64", "osx", "12.0", frozenset({"arm64", "osx", "unix"})),
    Platform("win-64", None, "x86_64", "win", selectors=frozenset({"win", "win64"})),
)}

# Docker's names, and the architecture spellings `uname -m` gives, for the conda name.
ALIASES = {**{p.docker: p.name for p in PLATFORMS.values() if p.docker},
           "linux/x86_64": "linux-64", "linux/aarch64": "linux-aarch64"}


def normalize_platform(platform: str) -> str:
    """`linux/amd64` → `linux-64`; a conda name stays as it is (lowercased)."""
    text = platform.strip().lower()
    return ALIASES.get(text, text)
