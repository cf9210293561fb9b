from __future__ import annotations

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


def test_schema_does_not_depend_on_which_plugin_was_imported_first() -> None:
    # odoo spells fetchType's Literal NONE-first, most plugins STORE-first; Python caches
    # ``Literal[...] | str`` by equality, so the first import decided every plugin's enum order
    import subprocess
    import sys

    code = (
        "import executors.plugins.odoo\n"
        "from schemas.flow.jsonschema import render\n"
        "import sys; sys.stdout.write(render())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert out == render()
