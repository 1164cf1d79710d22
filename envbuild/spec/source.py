"""Reading spec files so that errors can point at a line: text, YAML with its node tree, and `Origin`.

Every loader of the spec package reads through here, so a file that is missing, not UTF-8, not valid YAML or an
unrendered `{{template}}` fails the same way wherever it is read. yaml is imported inside functions: importing the
spec package costs no YAML parser.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import SpecError


@dataclass(frozen=True)
class Origin:
    """Where a value was written: shown in errors as ``file:line``."""

    path: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass
class YamlDocument:
    """A parsed YAML file with its node tree, so that every value can be traced back to its line."""

    path: Path
    text: str
    data: object
    node: object

    def line(self, node) -> int:
        return node.start_mark.line + 1

    def where(self, node=None) -> str:
        return f"{self.path}:{self.line(node)}" if node is not None else str(self.path)

    def child(self, node, key: str):
        """The value node under `key` of a mapping node (None when absent)."""
        if node is None or not hasattr(node, "value") or not isinstance(node.value, list):
            return None
        for item in node.value:
            if isinstance(item, tuple) and getattr(item[0], "value", None) == key:
                return item[1]
        return None

    def key_node(self, node, key: str):
        """The key node `key` of a mapping node; `key` as written, or as `str()` of its value (`None`, `True`)."""
        for item in getattr(node, "value", []) or []:
            if isinstance(item, tuple) and key in (getattr(item[0], "value", None), _key_text(item[0])):
                return item[0]
        return None

    def scalar_text(self, node) -> str:
        """A scalar as written (`1.10` stays `1.10`, not the float 1.1; null is '')."""
        import yaml

        if isinstance(node, yaml.ScalarNode):
            return "" if node.tag.endswith(":null") else node.value
        raise SpecError("expected a single value here, not a list or mapping", where=self.where(node),
                        fix="write a plain value (quote it if needed)")

    def string_map(self, node, what: str) -> dict[str, str]:
        """A mapping of names to values, each as written (tags, variables)."""
        import yaml

        if node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
            return {}
        if not isinstance(node, yaml.MappingNode):
            raise SpecError(f"`{what}` must be a mapping", where=self.where(node),
                            fix=f"write `{what}:` with `NAME: value` lines")
        return {self.scalar_text(k): self.scalar_text(v) for k, v in node.value}


def _key_text(node) -> str | None:
    """What `str()` of a null or boolean key's value is (the loaders name keys that way in their errors)."""
    tag = getattr(node, "tag", "")
    if tag.endswith(":null"):
        return "None"
    if tag.endswith(":bool"):
        return str(node.value.lower() in ("true", "yes", "on"))
    return None


def read_yaml(path: Path) -> YamlDocument:
    """The YAML file at `path` with its node tree, within envbuild's limits (envbuild.limits): size, depth,
    alias expansion and value length are checked before anything walks the document."""
    from ..limits import compose_yaml, construct_yaml

    text = read_text(path)
    node = compose_yaml(text, str(path))
    return YamlDocument(path, text, construct_yaml(node, text, str(path)), node)


def read_text(path: Path) -> str:
    """A spec file's text (UTF-8, a BOM dropped), refused before reading when over envbuild's size limit."""
    from ..limits import check_file_size, undecodable_line

    try:
        check_file_size(path.stat().st_size, str(path))
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SpecError(f"{path} does not exist", where=str(path), fix="check the path") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path} is not UTF-8 text", where=f"{path}:{undecodable_line(exc)}",
                        fix="save the file as UTF-8") from None
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror}", where=str(path), fix="check the path") from None


def find_placeholder(text: str) -> str | None:
    """The first `{{...}}` template placeholder in `text`, braces inside it included (`{{tag:\\d{6}}}`), else None.

    Two `str.find`s rather than a regular expression: linear whatever the text (`{{` repeated 200,000 times
    without a `}}` made a lazy pattern quadratic), and any braces between `{{` and the closing ones are kept.
    """
    start = text.find("{{")
    if start < 0:
        return None
    end = text.find("}}", start + 2)
    if end < 0:
        return None
    end += 2
    while end < len(text) and text[end] == "}":  # `{{a:{6}}}`: the closing pair is the last of the run
        end += 1
    return text[start:end]


def reject_placeholders(document: YamlDocument, node=None) -> None:
    """`{{asset.name}}`-style templates (azureml-assets, cookiecutter) are not specs until rendered.

    Walks each node once (an alias is the node it names: a node already seen is skipped), with a stack instead
    of recursion: linear in the document's size, however its aliases nest.
    """
    pending = [document.node if node is None else node]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current.value, str):
            found = find_placeholder(current.value)
            if found:
                raise SpecError(f"unrendered template placeholder {found}", where=document.where(current),
                                fix="render the template (replace every {{...}}) before loading it")
            continue
        for item in reversed(current.value):  # reversed: the first placeholder in the file is the one reported
            pending.extend(reversed(item) if isinstance(item, tuple) else (item,))


def is_file(path: Path) -> bool:
    """`path.is_file()`, False for a name no file system takes (over 255 bytes a part, a NUL) instead of OSError:
    such names come from spec files and are then reported as missing, at their line."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def is_dir(path: Path) -> bool:
    """`path.is_dir()`, False for a name no file system takes (see is_file)."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False
