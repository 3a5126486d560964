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


def load_yaml(text: str) -> YamlDocument:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise YamlSyntaxError(line, f"YAML syntax error: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(None, f"YAML error: {exc}") from None
    lines: dict = {}
    if node is None:
        return YamlDocument(None, lines)
    lines[()] = node.start_mark.line + 1
    return YamlDocument(_build(node, (), lines), lines)


_scalar_loader = yaml.SafeLoader("")


def _build(node: yaml.Node, path: KeyPath, lines: dict):
    if isinstance(node, yaml.MappingNode):
        result = {}
        for key_node, value_node in node.value:
            key = _build(key_node, path, lines)
            if isinstance(key, (dict, list)):
                raise YamlSyntaxError(key_node.start_mark.line + 1, "a mapping key must be a plain value", path)
            if key in result:
                raise YamlSyntaxError(
                    key_node.start_mark.line + 1, f"duplicate key {key!r} (the first one would be ignored)", path + (key,)
                )
            lines[path + (key,)] = key_node.start_mark.line + 1
            result[key] = _build(value_node, path + (key,), lines)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            items.append(_build(item, path + (index,), lines))
        return items
    # Scalars: reuse PyYAML's own resolver so 1.0, true, null, dates... mean what they mean in safe_load.
    return _scalar_loader.construct_object(node, deep=True)
