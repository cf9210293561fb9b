"""YAML loading that remembers where every value came from.

The document is composed into PyYAML's node tree (which carries start marks), then
constructed into plain Python data; the node tree is kept so that a path into the data
(``tasks[0].retry.interval``) can be mapped back to a line and column. Duplicate keys, which
PyYAML silently resolves to the last one, are collected as problems.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_BOOL_TAG = "tag:yaml.org,2002:bool"
# YAML 1.2's booleans, as Kestra's YAML parser (Jackson) reads them: ``on``, ``off``, ``yes``
# and ``no`` stay text (the polling triggers' ``on: CREATE`` is a key, not True).
_BOOL_12 = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")


@dataclass(frozen=True, slots=True)
class DuplicateKey:
    key: str
    line: int
    column: int
    first_line: int


# libyaml's parser is several times faster than the pure-Python one and reports the same marks.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _MarkedLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that records duplicate keys and keeps dates as strings.

    Kestra reads ``start: 2024-01-01`` as text and parses it where a date is expected;
    PyYAML would turn it into a ``date`` object that no string property accepts.
    """

    duplicates: list[DuplicateKey]

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            first = seen.get(key_node.value)
            if first is not None:
                mark = key_node.start_mark
                self.duplicates.append(
                    DuplicateKey(key_node.value, mark.line + 1, mark.column + 1, first)
                )
            else:
                seen[key_node.value] = key_node.start_mark.line + 1
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


_MarkedLoader.yaml_implicit_resolvers = {
    first: [
        (tag, _BOOL_12 if tag == _BOOL_TAG else regexp)
        for tag, regexp in resolvers
        if tag != _TIMESTAMP_TAG
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass
class MarkedDocument:
    """The constructed data, its node tree, and the duplicate keys found on the way."""

    data: Any
    root: Node | None
    duplicates: list[DuplicateKey] = field(default_factory=list)


def load_marked(text: str) -> MarkedDocument:
    """Parse one YAML document; raises ``yaml.YAMLError`` on invalid syntax."""
    loader = _MarkedLoader(text)
    loader.duplicates = []
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()
    return MarkedDocument(data, root, loader.duplicates)


def locate(
    root: Node | None, path: tuple[str | int, ...], *, at_key: bool = False
) -> tuple[int, int]:
    """1-based (line, column) of the value at ``path`` (or of its key, with ``at_key``).

    A path that goes further than the document (a missing property) points at the deepest
    node that exists, which is where the property should be added.
    """
    if root is None:
        return 1, 1
    node: Node = root
    key_node: Node | None = None
    for part in path:
        found = _child(node, part)
        if found is None:
            key_node = None
            break
        key_node, node = found
    target = key_node if at_key and key_node is not None else node
    return target.start_mark.line + 1, target.start_mark.column + 1


def _child(node: Node, part: str | int) -> tuple[Node | None, Node] | None:
    if isinstance(node, SequenceNode):
        if isinstance(part, int) and 0 <= part < len(node.value):
            return None, node.value[part]
        return None
    if not isinstance(node, MappingNode):
        return None
    found: tuple[Node | None, Node] | None = None
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and key_node.tag == _MERGE_TAG:
            continue
        if isinstance(key_node, ScalarNode) and key_node.value == str(part):
            found = (key_node, value_node)  # the last duplicate wins, as in the data
    if found is None and part == "id":
        # Legacy inputs say `name:` where the normalized flow says `id:`.
        return _child(node, "name")
    if found is None:
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == _MERGE_TAG:
                merged = [value_node] if isinstance(value_node, MappingNode) else value_node.value
                for source in merged:
                    if isinstance(source, MappingNode) and (hit := _child(source, part)):
                        return hit
    return found
