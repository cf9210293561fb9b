"""Webhook trigger (pure): key matching, trigger variables, conditions, inputs, ids, answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.reducer.commands import StartExecution
from triggers import webhook as hook
from triggers.webhook import find_webhook, parse_body, webhook_start

C = "io.kestra.plugin.core.condition."
W = "io.kestra.plugin.core.trigger.Webhook"
NOW = datetime(2025, 1, 1, 12, tzinfo=UTC)

FLOW: dict[str, Any] = {
    "id": "hook",
    "namespace": "ns",
    "inputs": [
        {"id": "who", "type": "STRING"},
        {"id": "count", "type": "INT", "defaults": 2},
    ],
    "tasks": [],
    "triggers": [
        {
            "id": "w",
            "type": W,
            "key": "s3cret",
            "inputs": {"who": "{{ trigger.body.name }}"},
            "conditions": [{"type": C + "Expression", "expression": "{{ trigger.body.ok }}"}],
        }
    ],
}


def call(body: bytes, flow: dict[str, Any] = FLOW, **kw: Any) -> hook.WebhookResult:
    trigger = find_webhook(flow, kw.pop("key", "s3cret"))
    assert trigger is not None
    return webhook_start(
        str(flow["namespace"]), str(flow["id"]), flow, trigger, body=body,
        headers=kw.pop("headers", {}), parameters=kw.pop("parameters", {"a": "1"}), now=NOW, **kw,
    )  # fmt: skip


def test_starts_with_body_headers_parameters_and_typed_inputs() -> None:
    result = call(
        b'{"name": "ada", "ok": true}',
        headers=[("X-Id", "7"), ("x-id", "8"), ("Authorization", "Basic c2VjcmV0")],
        parameters=[("a", "1"), ("a", "2")],
    )
    assert result.status == hook.STARTED
    cmd = result.command
    assert isinstance(cmd, StartExecution)
    assert cmd.trigger == {  # Kestra's ExecutionTrigger
        "id": "w",
        "type": "io.kestra.plugin.core.trigger.Webhook",
        "variables": {
            "body": {"name": "ada", "ok": True},
            # Canonical names (an ASGI server lower-cases them); credentials never travel.
            "headers": {"X-Id": ["7", "8"]},
            "parameters": {"a": ["1", "2"]},
        },
    }
    assert cmd.inputs == {"who": "ada", "count": 2}  # typed, with the declared default
    again = call(b'{"name": "ada", "ok": true}').command
    assert again is not None
    assert again.execution_id != cmd.execution_id  # no Idempotency-Key: a new execution


def test_conditions_not_met_answer_204_without_an_execution() -> None:
    result = call(b'{"name": "ada", "ok": false}')
    assert (result.status, result.command) == (hook.CONDITIONS_NOT_MET, None)
    assert "Expression" in str(result.reason)
    # A condition that cannot evaluate (no body) is not met either, never an error.
    assert call(b"").status == hook.CONDITIONS_NOT_MET


def test_disabled_flow_or_trigger_answers_like_an_unknown_key() -> None:
    refused = call(b'{"name": "a", "ok": true}', enabled=False)
    assert (refused.status, refused.command) == (hook.NOT_FOUND, None)
    assert "disabled" in str(refused.reason)
    off = {**FLOW, "triggers": [{**FLOW["triggers"][0], "disabled": True}]}
    assert call(b'{"name": "a", "ok": true}', off).status == hook.NOT_FOUND
    # A toggle wins over the YAML both ways.
    assert call(b'{"name": "a", "ok": true}', off, enabled=True).status == hook.STARTED
    assert call(b'{"name": "a", "ok": true}', {**FLOW, "disabled": True}).status == hook.NOT_FOUND


def test_inputs_that_do_not_validate_answer_422() -> None:
    flow = {**FLOW, "inputs": [{"id": "who", "type": "INT"}]}
    result = call(b'{"name": "ada", "ok": true}', flow)
    assert (result.status, result.command) == (hook.INVALID_INPUTS, None)
    assert result.problems[0]["input"] == "who"
    broken = {**FLOW, "triggers": [{**FLOW["triggers"][0], "inputs": {"who": "{{ nope( }}"}}]}
    assert call(b'{"name": "ada", "ok": true}', broken).status == hook.INVALID_INPUTS


def test_idempotency_key_gives_the_same_execution() -> None:
    one = call(b'{"name": "a", "ok": true}', headers={"Idempotency-Key": "k1"}).command
    two = call(b'{"name": "a", "ok": true}', headers=[("idempotency-key", "k1")]).command
    other = call(b'{"name": "a", "ok": true}', headers={"Idempotency-Key": "k2"}).command
    assert one is not None
    assert two is not None
    assert other is not None
    assert one.execution_id == two.execution_id != other.execution_id


def test_keys_are_rendered_and_compared_exactly() -> None:
    flow = {
        "id": "dyn",
        "namespace": "ns",
        "tasks": [],
        "triggers": [
            {"id": "a", "type": W, "key": " {{ flow.id }}-{{ flow.namespace }} "},
            {"id": "b", "type": W, "key": "{{ nope( }}"},  # does not render: never matches
            {"id": "c", "type": "io.kestra.plugin.core.trigger.Schedule", "key": "dyn-ns"},
        ],
    }
    found = find_webhook(flow, "dyn-ns")
    assert found is not None
    assert found["id"] == "a"
    assert find_webhook(flow, "{{ flow.id }}-{{ flow.namespace }}") is None
    assert find_webhook(flow, "dyn-n") is None
    assert find_webhook(flow, "{{ nope( }}") is None
    assert find_webhook(FLOW, "s3cret ") is None
    assert find_webhook({"id": "x", "namespace": "y"}, "k") is None


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        (b'{"a": 1}', {"a": 1}),
        (b"[1, 2]", [1, 2]),
        (b"42", "42"),  # Kestra parses objects and arrays only
        (b"plain text", "plain text"),
        (b"\xff\xfe", "\ufffd\ufffd"),
        (b"", None),
    ],
)
def test_body_parsing_follows_kestra(raw: bytes, parsed: Any) -> None:
    assert parse_body(raw) == parsed
