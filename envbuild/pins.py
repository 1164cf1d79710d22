"""A user's hash pins: `--hash=sha256:...` on a requirement line and `#sha256=...` on a wheel URL.

They enter the spec key (keys.canonical_spec: a different pin is a different environment) and are enforced on
the lock (`check_pins`, after the solve): the file the lock chose must have one of the pinned hashes, or the lock
fails naming the line, the package and both hashes. uv's compile does not check them itself.
"""

from __future__ import annotations

import re
from collections import namedtuple

from .errors import ResolveError, SpecError

# name: canonical project name; hashes: sorted sha256 hex digests; where: file:line (or None); requirement: as written
Pin = namedtuple("Pin", ["name", "hashes", "where", "requirement"])

_FRAGMENT = re.compile(r"[#&]sha256=([0-9A-Fa-f]{64})\b")


def sha256_pins(hashes, where: str | None) -> tuple[str, ...]:
    """`sha256:HEX` options → HEX, sorted; another algorithm cannot be checked against a lock's sha256."""
    found = set()
    for value in hashes:
        algorithm, _, hexdigest = value.partition(":")
        if algorithm != "sha256" or not re.fullmatch(r"[0-9A-Fa-f]{64}", hexdigest):
            raise SpecError(f"--hash={value} is not a sha256 hash", where=where,
                            fix="pin with `--hash=sha256:<64 hex digits>` (the lock records sha256)")
        found.add(hexdigest.lower())
    return tuple(sorted(found))


def collect_pins(deps, records) -> tuple[Pin, ...]:
    """The pins of a CondaDependencies whose pip requirements parsed to `records` (in the same order)."""
    pins = []
    for requirement, record in zip(deps.pip_packages, records):
        where = deps.origins.get(requirement)
        where = str(where) if where else None
        hashes = set(sha256_pins(deps.pip_hashes.get(requirement, ()), where))
        fragment = _FRAGMENT.search(record.url or "")
        if fragment:
            hashes.add(fragment.group(1).lower())
        if hashes:
            pins.append(Pin(record.name, tuple(sorted(hashes)), where, requirement))
    return tuple(sorted(pins))


def check_pins(pins, packages) -> None:
    """Every pinned package is locked to a file with a pinned hash; else a ResolveError naming both hashes."""
    from packaging.utils import canonicalize_name

    locked = {canonicalize_name(p.name): p for p in packages if p.manager == "pip"}
    for pin in pins:
        package = locked.get(pin.name)
        if package is None or package.sha256 in pin.hashes:
            continue
        raise ResolveError(f"hash mismatch for {pin.name}: `{pin.requirement}` is pinned to sha256 "
                           f"{' or '.join(pin.hashes)}, but the file it resolves to ({package.url}) has sha256 "
                           f"{package.sha256}", where=pin.where,
                           fix="check where the package comes from; if the new file is the one you want, "
                               "pin its hash instead")
