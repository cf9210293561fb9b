from __future__ import annotations

import ast
import json

from schemas.flow.jsonschema import REGENERATE, flow_json_schema, render
from tests.conftest import REPO

SCHEMA_FILE = REPO / "schemas" / "flow.schema.json"


def test_committed_schema_is_up_to_date() -> None:
    committed = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.exists() else ""
    assert committed == render(), f"schemas/flow.schema.json is stale; run: {REGENERATE}"


def test_plugin_types_accept_every_name_the_loader_accepts() -> None:
    defs = flow_json_schema()["$defs"]
    log = defs["LogTask"]["properties"]["type"]["enum"]
    assert log[0] == "io.kestra.plugin.core.log.Log"
    assert {"log", "io.kestra.core.tasks.log.Log"} <= set(log)
    assert defs["LogTask"]["additionalProperties"] is False
    assert "constant" in json.dumps(defs["ConstantRetry"])


def test_schema_names_the_top_level_keys() -> None:
    schema = flow_json_schema()
    assert schema["required"] == ["id", "namespace", "tasks"]
    assert {"finally", "pluginDefaults", "concurrency", "sla"} <= set(schema["properties"])


def test_equal_literals_are_spelled_in_one_order() -> None:
    # Python caches ``Literal[...] | str`` unions by equality, and Literals with the same values
    # in another order are equal: the first module imported would decide every such enum's order
    # in the schema (odoo's NONE-first fetchType once reordered every plugin's in CI).
    orders: dict[frozenset[object], dict[tuple[object, ...], str]] = {}
    for root in ("engine", "executors", "schemas", "triggers"):
        for path in sorted((REPO / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Subscript) and getattr(node.value, "id", "") == "Literal":
                    items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
                    values = tuple(i.value for i in items if isinstance(i, ast.Constant))
                    where = f"{path.relative_to(REPO)}:{node.lineno}"
                    orders.setdefault(frozenset(values), {}).setdefault(values, where)
    mixed = [spellings for spellings in orders.values() if len(spellings) > 1]
    assert not mixed, mixed
