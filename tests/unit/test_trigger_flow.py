"""Flow trigger windows and preconditions (pure): the cases Kestra's source specifies that the
condition tests do not cover (optional upstream flow fields, filter types, two windows)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from triggers.flow_trigger import Outcome, evaluate

C = "io.kestra.plugin.core.condition."
NOW = datetime(2025, 1, 1, 12, tzinfo=UTC)


def ended(flow_id: str, namespace: str = "company.team", **extra: Any) -> dict[str, Any]:
    return {
        "id": f"e-{namespace}-{flow_id}",
        "namespace": namespace,
        "flow_id": flow_id,
        "state": extra.pop("state", "SUCCESS"),
        "labels": extra.pop("labels", {}),
        "end_date": "2025-01-01T11:59:00.000Z",
        **extra,
    }


def step(trigger: dict[str, Any], summary: dict[str, Any], windows: dict[str, Any]) -> Outcome:
    return evaluate("other", "down", trigger, summary, windows, NOW)


def test_upstream_flow_without_flow_id_matches_every_flow_of_its_namespace() -> None:
    trigger = {"preconditions": {"id": "p", "flows": [{"namespace": "company.team"}]}}
    assert step(trigger, ended("anything"), {}).fire
    assert not step(trigger, ended("anything", namespace="elsewhere"), {}).fire
    by_id = {"preconditions": {"id": "p", "flows": [{"flowId": "a"}]}}
    assert step(by_id, ended("a", namespace="any.where"), {}).fire
    assert not step(by_id, ended("b"), {}).fire


def test_upstream_flow_labels_and_states() -> None:
    trigger = {
        "preconditions": {
            "id": "p",
            "flows": [
                {"namespace": "company.team", "states": ["FAILED"], "labels": {"env": "prod"}}
            ],
        }
    }
    assert step(trigger, ended("a", state="FAILED", labels={"env": "prod"}), {}).fire
    assert not step(trigger, ended("a", state="FAILED", labels={"env": "dev"}), {}).fire
    assert not step(trigger, ended("a", labels={"env": "prod"}), {}).fire


@pytest.mark.parametrize(
    ("flt", "summary", "expected"),
    [
        ({"field": "EXPRESSION", "type": "IS_TRUE", "value": "{{ flow.id == 'down' }}"}, {}, True),
        (
            {"field": "EXPRESSION", "type": "IS_FALSE", "value": "{{ flow.id == 'down' }}"},
            {},
            False,
        ),
        (
            {"field": "EXPRESSION", "value": "{{ trigger.outputs.n > 1 }}"},
            {"outputs": {"n": 2}},
            True,
        ),
        ({"field": "EXPRESSION", "type": "IS_TRUE", "value": "{{ nope( }}"}, {}, False),
        ({"field": "FLOW_ID", "type": "NOT_EQUAL_TO", "value": "a"}, {}, False),
        ({"field": "FLOW_ID", "type": "REGEX", "value": "a|b"}, {}, True),
        ({"field": "STATE", "type": "NOT_IN", "values": ["FAILED"]}, {}, True),
        ({"field": "NAMESPACE", "type": "ENDS_WITH", "value": ".team"}, {}, True),
    ],
)
def test_where_filter_types(flt: dict[str, Any], summary: dict[str, Any], expected: bool) -> None:
    trigger = {"preconditions": {"id": "p", "where": [{"id": "w", "filters": [flt]}]}}
    assert step(trigger, ended("a", **summary), {}).fire is expected


def test_or_operand() -> None:
    filters = [
        {"field": "FLOW_ID", "type": "EQUAL_TO", "value": "x"},
        {"field": "FLOW_ID", "type": "EQUAL_TO", "value": "a"},
    ]
    where = {"id": "w", "filters": filters}
    assert not step({"preconditions": {"id": "p", "where": [where]}}, ended("a"), {}).fire
    either = {"preconditions": {"id": "p", "where": [{**where, "operand": "OR"}]}}
    assert step(either, ended("a"), {}).fire


def test_a_complete_window_is_dropped_even_while_another_is_incomplete() -> None:
    """FlowTriggerService purges every fulfilled window (resetOnSuccess), whether the trigger
    fired or not: with two windows, each must be completed again after the other."""
    trigger = {
        "conditions": [
            {
                "type": C + "MultipleCondition",
                "id": "m",
                "conditions": {
                    "a": {"type": C + "ExecutionFlow", "namespace": "company.team", "flowId": "a"}
                },
            }
        ],
        "preconditions": {"id": "p", "flows": [{"namespace": "company.team", "flowId": "b"}]},
    }
    first = step(trigger, ended("a"), {})
    assert not first.fire  # "m" is complete, "p" is not
    assert first.windows is None or "m" not in first.windows
    second = step(trigger, ended("b"), first.windows or {})
    assert not second.fire  # "m" was purged
    assert second.windows is None or "p" not in second.windows


def test_reset_on_success_false_keeps_firing_within_the_window() -> None:
    trigger = {
        "preconditions": {
            "id": "p",
            "resetOnSuccess": False,
            "flows": [{"namespace": "company.team", "flowId": "a"}, {"flowId": "b"}],
        }
    }
    one = step(trigger, ended("a"), {})
    two = step(trigger, ended("b"), one.windows or {})
    assert two.fire
    again = step(trigger, ended("a", id="e-a-2"), two.windows or {})
    assert again.fire
    assert again.coordinates != two.coordinates  # a new set of executions, a new execution


def test_one_end_decided_twice_fires_one_execution_and_a_later_end_another() -> None:
    """An executor that crashed between producing an execution's end and committing its
    input decides the end again at another time: the same state change (history length),
    another end date. A restart that ends the execution again is a later state change."""
    trigger = {"states": ["SUCCESS"]}
    history = [["CREATED", "t0"], ["RUNNING", "t1"], ["SUCCESS", "t2"]]
    first = evaluate("other", "down", trigger, ended("up", history=history), {}, NOW)
    redone = ended("up", end_date="2025-01-01T11:59:07.000Z", history=history)
    again = evaluate("other", "down", trigger, redone, {}, NOW)
    assert first.fire
    assert again.fire
    assert first.coordinates == again.coordinates
    longer = [*history, ["RESTARTED", "t3"], ["RUNNING", "t4"], ["SUCCESS", "t5"]]
    restarted = evaluate("other", "down", trigger, ended("up", history=longer), {}, NOW)
    assert restarted.coordinates != first.coordinates
