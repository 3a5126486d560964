"""Load YAML into plain Python values while remembering the line of every key.

Error messages must name the line of the offending key, and PyYAML's `safe_load` forgets positions,
so we compose the node tree ourselves and build values and a `{key_path: line}` map in one walk.
Duplicate keys are an error here (PyYAML silently keeps the last one, which hides typos in reviews).
"""
from __future__ import annotations

from dataclasses import dataclass

import yaml

KeyPath = tuple  # of str (mapping keys) and int (sequence indexes)


@dataclass(frozen=True)
class YamlDocument:
    data: object
    lines: dict  # KeyPath -> 1-based line of the key (or item)

    def line_of(self, path: KeyPath) -> int | None:
        """The line of `path`, of its nearest ancestor that has one, or of the document itself."""
        return line_of(self.lines, path) or self.lines.get(())


def line_of(lines: dict, path: KeyPath) -> int | None:
    """The line of the nearest key on `path` that the file states, or None where it states none of them."""
    path = tuple(path)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


class YamlSyntaxError(Exception):
    def __init__(self, line: int | None, message: str, key: KeyPath = ()):
        self.line = line
        self.message = message
        self.key = key
        super().__init__(message)


MAX_BYTES = 1_000_000  # a spec is a page or two of YAML; far more is a mistake or an attack
MAX_VALUES = 100_000  # values after aliases are expanded: bounds "billion laughs" anchor bombs
MAX_DEPTH = 64
PLAIN_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "timestamp", "seq", "map")}


def load_yaml(text: str) -> YamlDocument:
    """Parse `text`, bounded: its size, the values its aliases expand to and its nesting depth are limited, and
    only plain YAML types are accepted (no language-specific tags), each breach a YamlSyntaxError with a line."""
    if len(text) > MAX_BYTES:
        raise YamlSyntaxError(None, f"the file is {len(text):,} characters, more than the {MAX_BYTES:,} a spec may have")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise YamlSyntaxError(line, f"YAML syntax error: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(None, f"YAML error: {exc}") from None
    except RecursionError:
        raise YamlSyntaxError(None, f"the YAML is nested too deeply (a spec needs at most {MAX_DEPTH} levels)") from None
    lines: dict = {}
    if node is None:
        return YamlDocument(None, lines)
    lines[()] = node.start_mark.line + 1
    return YamlDocument(_Builder(lines).build(node, ()), lines)


_scalar_loader = yaml.SafeLoader("")


class _Builder:
    """Builds plain values from the node tree, counting every value it makes: aliases point at shared nodes, so a
    few lines of anchors can expand to billions of values, and the count stops that within milliseconds."""

    def __init__(self, lines: dict):
        self.lines = lines
        self.values = 0

    def build(self, node: yaml.Node, path: KeyPath):
        self.values += 1
        line = node.start_mark.line + 1
        if self.values > MAX_VALUES:
            raise YamlSyntaxError(line, f"the YAML expands to more than {MAX_VALUES:,} values (aliases of anchors repeating "
                                        "each other?); write the values out instead", path)
        if len(path) > MAX_DEPTH:
            raise YamlSyntaxError(line, f"the YAML is nested more than {MAX_DEPTH} levels deep", path)
        if node.tag not in PLAIN_TAGS:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise YamlSyntaxError(line, f"the tag {tag} is not allowed: a spec holds plain values only", path)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.lines[path + (index,)] = item.start_mark.line + 1
                items.append(self.build(item, path + (index,)))
            return items
        # Scalars: reuse PyYAML's own resolver so 1.0, true, null, dates... mean what they mean in safe_load.
        try:
            return _scalar_loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise YamlSyntaxError(line, f"YAML value error: {getattr(exc, 'problem', None) or exc}", path) from None

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict:
        result = {}
        for key_node, value_node in node.value:
            key = self.build(key_node, path)
            if isinstance(key, (dict, list)):
                raise YamlSyntaxError(key_node.start_mark.line + 1, "a mapping key must be a plain value", path)
            if key in result:
                raise YamlSyntaxError(
                    key_node.start_mark.line + 1, f"duplicate key {key!r} (the first one would be ignored)", path + (key,)
                )
            self.lines[path + (key,)] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, path + (key,))
        return result
