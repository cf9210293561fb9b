"""SLAs as Kestra runs them (models/flows/sla/**, SLAService, ExecutorService.
handleExecutionChangedSLA/processViolation): EXECUTION_ASSERTION and MAX_DURATION, every
behaviour, labels."""

from __future__ import annotations

from typing import Any

import pytest

from engine.flows import flow_to_dict, load_flow
from engine.reducer.states import State
from tests.unit.test_reducer_support import Sim, flow, log

SLEEPY = {"id": "slow", "type": "io.kestra.plugin.core.flow.Sleep", "duration": "PT10S"}


def _logs(sim: Sim) -> list[tuple[str, str]]:
    return [
        (e.payload["level"], e.payload["message"])
        for d in sim.decisions
        for e in d.events
        if e.type == "LogEmitted"
    ]


def _assertion(behavior: str, expression: str, **extra: Any) -> dict[str, Any]:
    return {"id": "check", "type": "EXECUTION_ASSERTION", "behavior": behavior,
            "assert": expression, **extra}  # fmt: skip


@pytest.mark.parametrize(
    ("behavior", "final"), [("FAIL", State.FAILED), ("CANCEL", State.CANCELLED)]
)
def test_a_false_assertion_ends_the_execution(behavior: str, final: State) -> None:
    sim = Sim()
    sla = _assertion(behavior, "{{ outputs.a is not defined }}", labels={"sla": "broken"})
    sim.start(flow([log("a"), log("b"), log("c")], sla=[sla]))
    sim.run()
    state = sim.state()
    assert state.state == final
    assert state.labels["sla"] == "broken"
    logs = _logs(sim)
    reason = "assertion is false: {{ outputs.a is not defined }}."
    assert ("WARN", f"SLA 'check' violated: {reason}") in logs
    if behavior == "FAIL":
        assert ("ERROR", f"Execution failed due to SLA 'check' violated: {reason}") in logs
    assert "c" not in {r.task_id for r in state.task_runs.values()}


def test_behavior_none_only_adds_the_labels() -> None:
    sim = Sim()
    sim.start(flow([log("a"), log("b")], sla=[_assertion("NONE", "false", labels=[
        {"key": "late", "value": "yes"}])]))  # fmt: skip
    sim.run()
    assert sim.state().state == State.SUCCESS
    assert sim.state().labels["late"] == "yes"


def test_a_true_assertion_changes_nothing() -> None:
    sim = Sim()
    sim.start(flow([log("a")], sla=[_assertion("FAIL", "{{ 1 == 1 }}")]))
    sim.run()
    assert sim.state().state == State.SUCCESS
    assert not any("SLA" in m for _, m in _logs(sim))


def test_an_assertion_that_does_not_render_is_ignored_with_an_error_never_stuck() -> None:
    sim = Sim()
    sim.start(flow([log("a")], sla=[_assertion("FAIL", "{{ nope.nothing }}")]))
    sim.run()
    assert sim.state().state == State.SUCCESS  # Kestra: "Ignoring SLA ..." and goes on
    assert any(
        level == "ERROR" and m.startswith("Ignoring SLA 'check' because of the error:")
        for level, m in _logs(sim)
    )


def test_max_duration_violated_with_cancel() -> None:
    sim = Sim(worker=lambda job: None)  # the task never answers
    sla = {"id": "slow", "type": "MAX_DURATION", "behavior": "CANCEL", "duration": "PT5S"}
    sim.start(flow([log("a")], sla=[sla]))
    sim.run()
    assert sim.state().state == State.CANCELLED
    assert any("exceed the maximum duration of PT5S" in m for _, m in _logs(sim))


def test_the_assert_key_survives_deployment() -> None:
    source = """
id: f
namespace: ns
sla:
  - id: check
    type: EXECUTION_ASSERTION
    behavior: FAIL
    assert: "{{ true }}"
tasks:
  - id: a
    type: io.kestra.plugin.core.log.Log
    message: x
"""
    deployed = flow_to_dict(load_flow(source))
    assert deployed["sla"][0]["assert"] == "{{ true }}"
