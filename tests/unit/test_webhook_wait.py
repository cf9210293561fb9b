"""The answer of a ``wait: true`` webhook once its execution ended (Kestra's
``Webhook.evaluate``): status from ``responseCode`` or the end state, body the execution or,
with ``returnOutputs``, the flow's outputs as JSON or ``text/plain``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.api.models import ExecutionOut
from engine.api.routes_webhooks import waited_response


def ended(state: str = "SUCCESS", outputs: Any = None) -> ExecutionOut:
    return ExecutionOut.model_validate(
        {
            "id": "e1",
            "namespace": "company.team",
            "flowId": "f",
            "flowRevision": 3,
            "state": {"current": state, "histories": []},
            "labels": [{"key": "team", "value": "data"}],
            "inputs": {"n": 2},
            "outputs": outputs,
            "taskRunList": [
                {
                    "id": "t1",
                    "taskId": "greet",
                    "type": "io.kestra.plugin.core.debug.Return",
                    "state": {"current": "SUCCESS", "histories": []},
                    "attempts": [],
                    "outputs": {"value": "Ada"},
                }
            ],
        }
    )


def test_the_execution_itself_with_200_or_500_by_its_end() -> None:
    answer = waited_response({"wait": True}, ended())
    assert answer.status_code == 200
    assert answer.media_type == "application/json"
    assert json.loads(bytes(answer.body))["state"]["current"] == "SUCCESS"
    assert waited_response({"wait": True}, ended("FAILED")).status_code == 500
    assert waited_response({"wait": True}, ended("KILLED")).status_code == 200  # isFailed()


def test_return_outputs_as_json_or_text() -> None:
    outputs = {"greeting": "Ada", "n": 2}
    as_json = waited_response({"wait": True, "returnOutputs": "true"}, ended(outputs=outputs))
    assert json.loads(bytes(as_json.body)) == outputs
    text = {"wait": True, "returnOutputs": True, "responseContentType": "text/plain"}
    as_text = waited_response(text, ended(outputs=outputs))
    assert as_text.media_type == "text/plain"
    assert json.loads(bytes(as_text.body)) == outputs  # a map is written as JSON text
    none = waited_response({"wait": True, "returnOutputs": True}, ended())
    assert json.loads(bytes(none.body)) == {}


@pytest.mark.parametrize(
    ("code", "state", "status"),
    [
        (201, "SUCCESS", 201),
        ("202", "FAILED", 202),
        ("{{ outputs.greet.value == 'Ada' ? 299 : 400 }}", "SUCCESS", 299),
        ("{{ inputs.n * 100 + labels.team | length }}", "SUCCESS", 204),
        ("{{ execution.state == 'FAILED' ? 503 : 200 }}", "FAILED", 503),
        ("not a number", "FAILED", 500),  # ignored (and logged): the default
        (999, "SUCCESS", 200),
    ],
)
def test_response_code_is_rendered_with_the_execution(code: Any, state: str, status: int) -> None:
    assert waited_response({"wait": True, "responseCode": code}, ended(state)).status_code == status
