"""Why two environments have different keys: a field-by-field diff of their canonical forms.

Packages are compared by name, so `numpy >=1.20` against `numpy >=1.21` reads as one change, not an addition and
a removal; channels and index options are ordered lists, so a different order is reported as such (it changes
priority, hence the key). `envbuild explain A B`, `envbuild explain A` (against what the cache has built) and the
catalog's `envbuild diff NAME:1 NAME:2` all print through `format_differences`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Lists whose order means nothing: compared as sets of packages, paired by package name.
_PACKAGE_FIELDS = {"conda", "pip"}


@dataclass(frozen=True)
class Difference:
    """One difference: `field` is a dotted path (`docker.base_image`, `variables.MODE`, `conda`), `item` the
    package name for package fields; `change` is added, removed, changed or reordered."""

    field: str
    change: str
    a: object = None
    b: object = None
    item: str | None = None

    def __str__(self) -> str:
        label = f"{self.field} {self.item}" if self.item else self.field
        if self.change == "added":
            return f"{label}: only in B: {_show(self.b)}"
        if self.change == "removed":
            return f"{label}: only in A: {_show(self.a)}"
        if self.change == "reordered":
            return f"{label}: same entries, different order (it is priority): {_show(self.a)} vs {_show(self.b)}"
        return f"{label}: {_show(self.a)} → {_show(self.b)}"


def _show(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return repr(value) if isinstance(value, str) or value is None else str(value)


def diff_canonical(a: dict, b: dict, prefix: str = "") -> list[Difference]:
    """Every difference between two canonical forms (keys.CanonicalSpec.form, live or stored in the index), in a
    stable order."""
    out: list[Difference] = []
    for field in sorted(set(a) | set(b)):
        left, right = a.get(field), b.get(field)
        name = prefix + field
        if left == right:
            continue
        if isinstance(left, dict) and isinstance(right, dict):
            out.extend(diff_canonical(left, right, prefix=name + "."))
        elif field in _PACKAGE_FIELDS and not prefix and isinstance(left, list) and isinstance(right, list):
            out.extend(_diff_packages(name, left, right))
        elif isinstance(left, list) and isinstance(right, list):
            out.extend(_diff_ordered(name, left, right))
        elif left is None and not isinstance(right, (dict, list)):
            out.append(Difference(name, "added", None, right))
        elif right is None and not isinstance(left, (dict, list)):
            out.append(Difference(name, "removed", left, None))
        else:
            out.append(Difference(name, "changed", left, right))
    return out


def _package_name(field: str, spelling: str) -> str:
    """The package a canonical spelling names, by the record it parses to (packages.conda_package/pip_package);
    a spelling this release cannot parse (a form stored by another one) is named by itself."""
    from .errors import SpecError
    from .packages import conda_package, pip_package

    try:
        return (conda_package if field == "conda" else pip_package)(spelling).name
    except SpecError:
        return spelling


def _diff_packages(field: str, left: list[str], right: list[str]) -> list[Difference]:
    by_name: dict[str, tuple[list[str], list[str]]] = {}
    for side, specs in ((0, left), (1, right)):
        for spec in specs:
            by_name.setdefault(_package_name(field, spec), ([], []))[side].append(spec)
    out = []
    for name, (ours, theirs) in sorted(by_name.items()):
        if sorted(ours) == sorted(theirs):
            continue
        if not ours:
            out.append(Difference(field, "added", None, ", ".join(theirs), item=name))
        elif not theirs:
            out.append(Difference(field, "removed", ", ".join(ours), None, item=name))
        else:
            out.append(Difference(field, "changed", ", ".join(ours), ", ".join(theirs), item=name))
    return out


def _diff_ordered(field: str, left: list, right: list) -> list[Difference]:
    out = [Difference(field, "removed", item, None) for item in left if item not in right]
    out += [Difference(field, "added", None, item) for item in right if item not in left]
    common_left = [item for item in left if item in right]
    common_right = [item for item in right if item in left]
    if common_left != common_right:
        out.append(Difference(field, "reordered", left, right))
    return out


def compared_form(env, entry=None) -> tuple[dict, str]:
    """The canonical form and key `envbuild diff` compares for `env`: a catalog version's own, as registered
    (`entry.canonical`, whatever its files have become since), else the environment's as it is now."""
    if entry is not None and entry.canonical is not None:
        return entry.canonical, entry.key
    return env.canonical(), env.key


def diff_environments(old, new, old_form: dict, new_form: dict) -> tuple[list[Difference], list[Difference]]:
    """What `envbuild diff` reports of two Environments: the differences of their canonical forms (`compared_form`:
    why their keys differ), and of their metadata, which never reaches a key but which a reviewer wants to see."""
    changes = diff_canonical(old_form, new_form)
    metadata = diff_canonical({"description": old.description, "tags": old.tags},
                              {"description": new.description, "tags": new.tags})
    return changes, metadata


def diff_locked(old: Iterable, new: Iterable) -> list[Difference]:
    """Packages added, removed or moved to another version between two locks (lockfile.LockedPackage values),
    paired by manager and name: `field` is the manager, `item` the package, a and b its versions."""
    sides: dict[tuple[str, str], list] = {}
    for side, packages in ((0, old), (1, new)):
        for package in packages:
            sides.setdefault((package.manager, package.name), [None, None])[side] = package.version
    out = []
    for (manager, name), (a, b) in sorted(sides.items()):
        if a != b:
            change = "added" if a is None else "removed" if b is None else "changed"
            out.append(Difference(manager, change, a, b, item=name))
    return out


def format_differences(differences: list[Difference], label_a: str = "A", label_b: str = "B") -> str:
    """Text for a person: one line per difference, A and B named."""
    if not differences:
        return f"{label_a} and {label_b} have the same canonical form: same key, same image"
    lines = [f"{len(differences)} difference(s) between {label_a} (A) and {label_b} (B):"]
    lines += [f"  {d}" for d in differences]
    return "\n".join(lines)


@dataclass(frozen=True)
class NearestMatch:
    spec_key: str
    canonical: dict
    differences: list[Difference]


def nearest(canonical: dict, candidates: Iterable[tuple[str, dict]], limit: int = 1) -> list[NearestMatch]:
    """The cached canonical forms closest to `canonical` (fewest differences first, then by key)."""
    scored = [NearestMatch(key, other, diff_canonical(other, canonical)) for key, other in candidates]
    scored.sort(key=lambda match: (len(match.differences), match.spec_key))
    return scored[:limit]


def explain_miss(canonical: dict, spec_key: str, candidates: Iterable[tuple[str, dict]],
                 images: Iterable[dict] = ()) -> str:
    """Why an environment is (or would be) a cache miss: the nearest built environment and what differs.

    `images` are the index entries built for `spec_key` (image, base_id): a spec that was built can still miss
    when its base image moved to a new id or a template changed.
    """
    candidates = list(candidates)
    if not candidates:
        return "the cache has built nothing yet (or nothing since envbuild started recording canonical forms)"
    for key, _ in candidates:
        if key == spec_key:
            built = (f"{spec_key} has been built: a build of it hits the cache unless the base image's id, the "
                     "template or the engine's copy of the image changed")
            return "\n".join([built] + [f"  {entry.get('image')} on base {entry.get('base_id')}" for entry in images])
    best = nearest(canonical, candidates)[0]
    return (f"no cached environment has key {spec_key}; the nearest is {best.spec_key}\n"
            + format_differences(best.differences, "cached", "this spec"))
