"""Flow trigger conditions (pure): Kestra's condition types and windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from triggers.flow_trigger import evaluate

C = "io.kestra.plugin.core.condition."
NOW = datetime(2025, 1, 1, 12, tzinfo=UTC)


def ended(flow_id: str = "up", state: str = "SUCCESS", **extra: Any) -> dict[str, Any]:
    return {
        "id": f"e-{flow_id}-{state}",
        "namespace": extra.pop("namespace", "company.team"),
        "flow_id": flow_id,
        "revision": 3,
        "state": state,
        "labels": extra.pop("labels", {}),
        "outputs": {"x": 1},
        "end_date": "2025-01-01T11:59:00.000Z",
        **extra,
    }


def fires(trigger: dict[str, Any], summary: dict[str, Any]) -> bool:
    return evaluate("company.team", "down", trigger, summary, {}, NOW).fire


def test_variables_and_derived_coordinates() -> None:
    outcome = evaluate("ns", "down", {}, ended(), {}, NOW)
    assert outcome.fire
    assert outcome.variables["executionId"] == "e-up-SUCCESS"
    assert outcome.variables["flowId"] == "up"
    assert outcome.variables["namespace"] == "company.team"
    assert outcome.variables["state"] == "SUCCESS"
    assert outcome.variables["flowRevision"] == 3
    again = evaluate("ns", "down", {}, ended(), {}, NOW + timedelta(hours=1))
    assert again.coordinates == outcome.coordinates  # a redelivered event, the same execution


def test_running_and_own_flow_never_fire() -> None:
    assert not fires({}, ended(state="RUNNING"))
    assert not fires({}, ended(flow_id="down"))


@pytest.mark.parametrize(
    ("condition", "summary", "expected"),
    [
        ({"type": C + "ExecutionStatus", "in": ["SUCCESS"]}, ended(), True),
        ({"type": C + "ExecutionStatus", "in": ["FAILED"]}, ended(), False),
        ({"type": C + "ExecutionStatus", "notIn": ["FAILED"]}, ended(state="FAILED"), False),
        ({"type": C + "ExecutionFlow", "namespace": "company.team", "flowId": "up"}, ended(), True),
        ({"type": C + "ExecutionFlow", "namespace": "company.team", "flowId": "x"}, ended(), False),
        ({"type": C + "ExecutionNamespace", "namespace": "company"}, ended(), False),
        (
            {"type": C + "ExecutionNamespace", "namespace": "company", "comparison": "PREFIX"},
            ended(),
            True,
        ),
        ({"type": C + "ExecutionNamespace", "namespace": "company", "prefix": True}, ended(), True),
        (
            {"type": C + "ExecutionNamespace", "namespace": ".team", "comparison": "SUFFIX"},
            ended(),
            True,
        ),
        (
            {"type": C + "ExecutionLabels", "labels": {"env": "prod"}},
            ended(labels={"env": "prod"}),
            True,
        ),
        (
            {"type": C + "ExecutionLabels", "labels": {"env": "prod"}},
            ended(labels={"env": "dev"}),
            False,
        ),
        (
            {"type": C + "Expression", "expression": "{{ trigger.outputs.x == 1 }}"},
            ended(),
            True,
        ),
        (
            {"type": C + "Expression", "expression": "{{ execution.state == 'FAILED' }}"},
            ended(),
            False,
        ),
        ({"type": C + "Expression", "expression": "{{ undefined_thing }}"}, ended(), False),
    ],
)
def test_conditions(condition: dict[str, Any], summary: dict[str, Any], expected: bool) -> None:
    assert fires({"conditions": [condition]}, summary) is expected


def test_states_filter() -> None:
    assert fires({"states": ["FAILED"]}, ended(state="FAILED"))
    assert not fires({"states": ["FAILED"]}, ended(state="SUCCESS"))


MULTIPLE = {
    "type": C + "MultipleCondition",
    "id": "both",
    "window": "PT1H",
    "conditions": {
        "a": {"type": C + "ExecutionFlow", "namespace": "company.team", "flowId": "a"},
        "b": {"type": C + "ExecutionFlow", "namespace": "company.team", "flowId": "b"},
    },
}


def test_multiple_condition_fires_once_both_flows_ended_in_the_window() -> None:
    trigger = {"conditions": [MULTIPLE]}
    first = evaluate("company.team", "down", trigger, ended("a"), {}, NOW)
    assert not first.fire
    assert first.windows is not None
    again = evaluate("company.team", "down", trigger, ended("a"), first.windows, NOW)
    assert not again.fire
    second = evaluate("company.team", "down", trigger, ended("b"), first.windows, NOW)
    assert second.fire
    assert second.windows is not None
    assert "both" not in second.windows  # resetOnSuccess: the fulfilled window is dropped


def test_multiple_condition_window_expires() -> None:
    trigger = {"conditions": [MULTIPLE]}
    first = evaluate("company.team", "down", trigger, ended("a"), {}, NOW)
    assert first.windows is not None
    later = evaluate(
        "company.team", "down", trigger, ended("b"), first.windows, NOW + timedelta(hours=1)
    )
    assert not later.fire


def test_preconditions_sliding_window_with_states() -> None:
    trigger = {
        "preconditions": {
            "id": "pre",
            "flows": [
                {"namespace": "company.team", "flowId": "a", "states": ["SUCCESS"]},
                {"namespace": "company.team", "flowId": "b"},
            ],
            "timeWindow": {"type": "SLIDING_WINDOW", "window": "PT10M"},
        }
    }
    failed_a = evaluate("company.team", "down", trigger, ended("a", "FAILED"), {}, NOW)
    assert not failed_a.fire
    ok_a = evaluate("company.team", "down", trigger, ended("a"), failed_a.windows or {}, NOW)
    late_b = evaluate(
        "company.team", "down", trigger, ended("b"), ok_a.windows or {}, NOW + timedelta(minutes=11)
    )
    assert not late_b.fire
    b = evaluate("company.team", "down", trigger, ended("b"), ok_a.windows or {}, NOW)
    assert b.fire


def test_preconditions_where_filters() -> None:
    trigger = {
        "preconditions": {
            "where": [
                {
                    "id": "prod",
                    "filters": [
                        {"field": "NAMESPACE", "type": "STARTS_WITH", "value": "company"},
                        {"field": "STATE", "type": "IN", "values": ["SUCCESS", "WARNING"]},
                    ],
                }
            ]
        }
    }
    assert fires(trigger, ended())
    assert not fires(trigger, ended(state="FAILED"))
