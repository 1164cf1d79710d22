"""What envbuild accepts from a file it did not write, and the YAML reader that enforces it.

Specs come from other people (services embed envbuild), so no input may hang the process, crash it or make it use
memory out of proportion to the file. The limits, all checked before or while parsing, each failing as one
SpecError at file:line that names the limit:
- a spec, requirements or lock file is at most MAX_FILE_BYTES;
- YAML nests at most MAX_DEPTH collections deep (libyaml's composer recurses in C: 50,000 `[` overflowed the stack);
- aliases may not expand a document past MAX_EXPANDED_NODES nodes (the "billion laughs": 549 bytes of anchors
  nested 8 deep, 9 aliases each, are 43 million nodes to anything that walks them);
- a YAML scalar is at most MAX_SCALAR_CHARS characters; a name that reaches a command line, a path or a
  Dockerfile (package, channel, index option, image reference, file name) at most MAX_NAME_CHARS.

The reader composes with PyYAML's own Composer (Python) over libyaml's events: the composer is where depth and
alias expansion can be counted as nodes are made, which libyaml's C composer does not allow. The cost is a few
milliseconds per hundred kilobytes; nothing here is on the cache-hit path. yaml is imported inside functions.
"""

from __future__ import annotations

from .errors import SpecError

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
MAX_EXPANDED_NODES = 200_000
MAX_SCALAR_CHARS = 65_536
MAX_NAME_CHARS = 4_096


def check_file_size(size: int, where: str) -> None:
    if size > MAX_FILE_BYTES:
        raise SpecError(f"the file is {size:,} bytes, over envbuild's limit of {MAX_FILE_BYTES:,} bytes",
                        where=where, fix="split it, or check that this is the file you meant")


def check_name(value: str, what: str, where: str | None) -> str:
    """`value` (a package, channel, option, reference or file name) when it is at most MAX_NAME_CHARS long."""
    if len(value) > MAX_NAME_CHARS:
        raise SpecError(f"{what} is {len(value):,} characters long, over envbuild's limit of {MAX_NAME_CHARS:,}",
                        where=where, fix=f"shorten the {what}")
    return value


def undecodable_line(exc: UnicodeDecodeError) -> int:
    """The line (1-based) of the first byte that is not UTF-8."""
    return exc.object[:exc.start].count(b"\n") + 1


def compose_yaml(text: str, path: str):
    """The node tree of the single YAML document `text` (None when empty), within the limits above.

    Raises SpecError at file:line for invalid YAML, a limit passed, or a value the YAML types reject.
    """
    import yaml

    loader = _loader_class()(text)
    loader.limited_path = path
    try:
        return loader.get_single_node()
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, path, text) from None
    finally:
        loader.dispose()


def construct_yaml(node, text: str, path: str):
    """The Python value of `node` (composed by `compose_yaml`): aliases become shared objects, never copies."""
    import yaml

    if node is None:
        return None
    loader = _loader_class()("")
    try:
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, path, text) from None
    except (ValueError, TypeError, OverflowError) as exc:  # a date like 2020-13-45, an int of 100k digits, ...
        last = loader.last_node
        where = f"{path}:{last.start_mark.line + 1}" if last is not None else path
        raise SpecError(f"not a valid value: {exc}", where=where, fix="quote the value to keep it as text") from None
    finally:
        loader.dispose()


def load_yaml(text: str, path: str):
    """`text`'s Python value, within the limits, for a file read whole (a .condarc)."""
    return construct_yaml(compose_yaml(text, path), text, path)


def _yaml_error(exc, path: str, text: str) -> SpecError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark:
        where = f"{path}:{mark.line + 1}"
    elif isinstance(getattr(exc, "position", None), int):  # the reader's errors (a control character) have none
        where = f"{path}:{text.count(chr(10), 0, exc.position) + 1}"
    else:
        where = path
    problem = getattr(exc, "problem", None) or str(exc)
    hint = " (a `{{placeholder}}` template must be rendered first)" if "{{" in text else ""
    return SpecError(f"not valid YAML: {problem}{hint}", where=where, fix="fix the YAML syntax")


_LOADER = None


def _loader_class():
    """libyaml's parser (when PyYAML has it) under PyYAML's Python composer, counting depth and expansion."""
    global _LOADER
    if _LOADER is not None:
        return _LOADER
    from yaml.composer import Composer
    from yaml.constructor import SafeConstructor
    from yaml.resolver import Resolver

    try:
        from yaml.cyaml import CParser as parser
    except ImportError:  # PyYAML built without libyaml
        from yaml.parser import Parser
        from yaml.reader import Reader
        from yaml.scanner import Scanner

        class PythonParser(Reader, Scanner, Parser):
            def __init__(self, stream):
                Reader.__init__(self, stream)
                Scanner.__init__(self)
                Parser.__init__(self)

        parser = PythonParser

    class LimitedLoader(Composer, parser, SafeConstructor, Resolver):
        limited_path = "<yaml>"

        def __init__(self, stream):
            parser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self.depth = 0
            self.expanded: dict[int, int] = {}  # id(node) → nodes it stands for, aliases expanded
            self.last_node = None

        def compose_node(self, parent, index):
            event = self.peek_event()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise SpecError(f"the YAML nests more than {MAX_DEPTH} levels deep (envbuild's limit)",
                                where=f"{self.limited_path}:{event.start_mark.line + 1}",
                                fix="flatten the document: no spec needs this depth")
            try:
                node = super().compose_node(parent, index)
            finally:
                self.depth -= 1
            if id(node) not in self.expanded:  # an alias returns a node already counted
                self.expanded[id(node)] = self._expanded_size(node, event)
            return node

        def _expanded_size(self, node, event) -> int:
            if isinstance(node.value, str):
                if len(node.value) > MAX_SCALAR_CHARS:
                    raise SpecError(f"a value of {len(node.value):,} characters, over envbuild's limit of "
                                    f"{MAX_SCALAR_CHARS:,}", where=f"{self.limited_path}:{event.start_mark.line + 1}",
                                    fix="shorten it")
                return 1
            children = (n for item in node.value for n in (item if isinstance(item, tuple) else (item,)))
            size = 1 + sum(self.expanded[id(child)] for child in children)
            if size > MAX_EXPANDED_NODES:
                raise SpecError(f"YAML aliases expand this document past {MAX_EXPANDED_NODES:,} values "
                                "(envbuild's limit)", where=f"{self.limited_path}:{event.start_mark.line + 1}",
                                fix="write the values out, or use fewer nested `*alias` references")
            return size

        def construct_object(self, node, deep=False):
            self.last_node = node
            return super().construct_object(node, deep)

    _LOADER = LimitedLoader
    return _LOADER


def check_image_reference(ref: str, where: str | None) -> str:
    """`ref` when it is an image reference the engine can parse (NAME[:TAG][@DIGEST]), else SpecError at `where`.

    The grammar of distribution/reference (what every engine and registry applies), written out here because
    neither the docker SDK nor any other library at hand validates a reference: the engine's answer to a bad one is
    a raw HTTP 400 body, and a reference also becomes a path in the engine's API.
    """
    import re

    component = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    domain = r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*" \
             r"[a-zA-Z0-9]))*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
    pattern = (rf"(?:{domain}/)?{component}(?:/{component})*(?::[\w][\w.-]{{0,127}})?"
               r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?")
    if not isinstance(ref, str) or len(ref) > MAX_NAME_CHARS or not re.fullmatch(pattern, ref):
        raise SpecError(f"{str(ref)[:200]!r} is not a valid image reference", where=where,
                        fix="write it as [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST], the repository in lowercase, "
                            "e.g. mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest")
    return ref
