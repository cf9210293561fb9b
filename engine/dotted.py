"""Dotted keys as nested maps, as Kestra's ``MapUtils.flattenToNestedMap`` makes them.

A leaf module (no imports of the flow model): plugins import it while the flow model is still
being built from them.
"""

from __future__ import annotations

from typing import Any


def nest_dotted(values: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys become nested maps (``a.b`` -> ``{"a": {"b": ...}}``); a map without dotted
    keys is returned as it is."""
    if not any("." in key for key in values):
        return values
    out: dict[str, Any] = {}
    for key, value in values.items():
        *heads, last = key.split(".")
        node = out
        for head in heads:
            child = node.get(head)
            if not isinstance(child, dict):
                child = node[head] = {}
            node = child
        node[last] = value
    return out
