"""Generate the JSON Schema of the flow format, for editors and for API consumers.

    python -m schemas.flow.jsonschema > schemas/flow.schema.json

The schema comes from the pydantic models, with one change: a plugin's ``type`` accepts every
name the loader accepts (canonical, legacy alias and short name), not only the canonical one,
so the discriminator mappings that list canonical names only are dropped in favour of
``oneOf`` over those enums.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from schemas.flow.flow import Flow
from schemas.types import canonical_type, known_names

SCHEMA_ID = "https://headwater.dev/schemas/flow.schema.json"
REGENERATE = "python -m schemas.flow.jsonschema > schemas/flow.schema.json"


def flow_json_schema() -> dict[str, Any]:
    """The JSON Schema of a flow document."""
    schema = Flow.model_json_schema(by_alias=True)
    names: dict[str, list[str]] = {}
    for name in known_names():
        canonical = canonical_type(name)
        if canonical is not None:
            names.setdefault(canonical, []).append(name)
    for definition in schema.get("$defs", {}).values():
        type_prop = definition.get("properties", {}).get("type", {})
        const = type_prop.get("const")
        if const in names:
            type_prop.pop("const")
            type_prop["enum"] = [const, *sorted(n for n in names[const] if n != const)]
    _drop_plugin_discriminators(schema, set(names))
    _mark_dialects(schema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }


# What only one of Kestra's flow languages has (engine.flows.dialect decides a flow's):
# editors show it beside the description, and may grey out the other dialect.
_V2_PROPERTIES = frozenset(
    {"when", "dependsOn", "window", "mode", "minSatisfied", "onMiss", "jsonSchema", "fetchType"}
)
_V1_PROPERTIES = frozenset(
    {
        "conditions",
        "preconditions",
        "scheduleConditions",
        "pluginDefaults",
        "taskDefaults",
        "listeners",
    }
)
_V2_TYPES = frozenset({"io.kestra.plugin.core.flow.Loop"})


def _mark_dialects(schema: dict[str, Any]) -> None:
    from engine.flows.dialect import REMOVED_IN_2

    for definition in schema.get("$defs", {}).values():
        kind = (definition.get("properties", {}).get("type") or {}).get("enum", [None])[0]
        if kind in REMOVED_IN_2 or str(kind).startswith("io.kestra.plugin.core.condition."):
            _mark(definition, "1.x", "removed in Kestra 2.0")
        elif kind in _V2_TYPES:
            _mark(definition, "2.0", "Kestra 2.0")
        for name, prop in (definition.get("properties") or {}).items():
            if name in _V2_PROPERTIES and "x-kestra-dialect" not in prop:
                prop["x-kestra-dialect"] = "2.0"
            elif name in _V1_PROPERTIES:
                prop["x-kestra-dialect"] = "1.x"
    for name in ("pluginDefaults", "taskDefaults", "listeners"):
        prop = schema.get("properties", {}).get(name)
        if isinstance(prop, dict):
            prop["x-kestra-dialect"] = "1.x"


def _mark(definition: dict[str, Any], dialect: str, note: str) -> None:
    definition["x-kestra-dialect"] = dialect
    text = definition.get("description") or ""
    if note not in text:
        definition["description"] = f"{text} ({note})".strip()


def _drop_plugin_discriminators(node: Any, plugin_types: set[str]) -> None:
    if isinstance(node, dict):
        discriminator = node.get("discriminator")
        if (
            isinstance(discriminator, dict)
            and set(discriminator.get("mapping", {})) <= plugin_types
        ):
            del node["discriminator"]
        for value in node.values():
            _drop_plugin_discriminators(value, plugin_types)
    elif isinstance(node, list):
        for value in node:
            _drop_plugin_discriminators(value, plugin_types)


def render() -> str:
    """The schema file's exact text."""
    return json.dumps(flow_json_schema(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
