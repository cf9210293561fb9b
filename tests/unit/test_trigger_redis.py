"""The Redis list trigger's parser and config (the source runs in tests/integration)."""

from __future__ import annotations

import pytest

from engine.flows import flow_to_dict, load_flow
from triggers.ids import redis_list_coordinates
from triggers.payloads import MalformedPayload
from triggers.redis import parse


def test_elements_become_trigger_value() -> None:
    assert parse(b'{"id": 1}', "JSON") == {"value": {"id": 1}}
    assert parse(b'{"id": 1}', "STRING") == {"value": '{"id": 1}'}
    with pytest.raises(MalformedPayload, match="cannot read 5 bytes as JSON"):
        parse(b"{oops", "JSON")


def test_the_identity_of_an_element_never_changes() -> None:
    assert redis_list_coordinates("products", 7, b"x") == (
        "redis-list-unique-id-products-7-2d711642b726b04401627ca9fbac32f5"
    )


def test_the_blueprint_trigger_and_kestras_older_name_validate() -> None:
    for type_name in ("io.kestra.plugin.redis.list.RealtimeTrigger",
                      "io.kestra.plugin.redis.RealtimeTrigger"):  # fmt: skip
        flow = flow_to_dict(load_flow(f"""
id: f
namespace: company.team
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{{{ trigger.value }}}}"
triggers:
  - id: watch
    type: {type_name}
    url: redis://localhost:6379/0
    key: products
""", "f.yaml"))  # fmt: skip
        assert flow["triggers"][0]["type"] == "io.kestra.plugin.redis.list.RealtimeTrigger"
