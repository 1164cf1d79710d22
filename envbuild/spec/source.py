"""Reading spec files so that errors can point at a line: text, YAML with its node tree, and `Origin`.

Every loader of the spec package reads through here, so a file that is missing, not UTF-8, not valid YAML or an
unrendered `{{template}}` fails the same way wherever it is read. yaml is imported inside functions: importing the
spec package costs no YAML parser.
"""

from __future__ import annotations

import re
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
        for item in getattr(node, "value", []) or []:
            if isinstance(item, tuple) and getattr(item[0], "value", None) == key:
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


def read_yaml(path: Path) -> YamlDocument:
    import yaml

    text = read_text(path)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)  # libyaml when present: same nodes, faster
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        hint = " (a `{{placeholder}}` template must be rendered first)" if "{{" in text else ""
        raise SpecError(f"not valid YAML: {problem}{hint}", where=where, fix="fix the YAML syntax") from None
    finally:
        loader.dispose()
    return YamlDocument(path, text, data, node)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SpecError(f"{path} does not exist", where=str(path), fix="check the path") from None
    except UnicodeDecodeError:
        raise SpecError(f"{path} is not UTF-8 text", where=str(path), fix="save the file as UTF-8") from None
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror}", where=str(path), fix="check the path") from None


PLACEHOLDER = re.compile(r"\{\{[^}]*\}\}")


def reject_placeholders(document: YamlDocument, node=None) -> None:
    """`{{asset.name}}`-style templates (azureml-assets, cookiecutter) are not specs until rendered."""
    node = document.node if node is None else node
    if node is None:
        return
    if isinstance(node.value, str):
        found = PLACEHOLDER.search(node.value)
        if found:
            raise SpecError(f"unrendered template placeholder {found.group(0)}", where=document.where(node),
                            fix="render the template (replace every {{...}}) before loading it")
        return
    for item in node.value:
        for child in (item if isinstance(item, tuple) else (item,)):
            reject_placeholders(document, child)
