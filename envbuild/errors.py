"""One exception family for everything envbuild reports to its users.

Every message says what went wrong, where (file:line when there is one) and what to do about it. The CLI turns
these into a one-paragraph message and a non-zero exit code; anything else escaping is a bug.
"""

from __future__ import annotations


class EnvbuildError(Exception):
    """Base of every error envbuild raises on purpose."""

    exit_code = 1

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None):
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text

    def __str__(self) -> str:
        return self.message


class SpecError(EnvbuildError):
    """A specification file or API call that cannot be understood."""

    exit_code = 2


class ResolveError(EnvbuildError):
    """The resolver could not produce a lock (unsatisfiable, unknown package, unreachable channel)."""

    exit_code = 3


class RenderError(EnvbuildError):
    """A value that cannot be put into a Dockerfile safely, or a broken user template."""

    exit_code = 4


class BuildError(EnvbuildError):
    """The container build failed, or no usable builder/engine was found."""

    exit_code = 5


class EngineError(BuildError):
    """The Docker Engine could not be reached or refused a request."""


class CacheError(EnvbuildError):
    """The cache index or the shared registry cache misbehaved."""

    exit_code = 6


class CatalogError(EnvbuildError):
    """A catalog operation that is not allowed (unknown name/version, immutable field)."""

    exit_code = 7
