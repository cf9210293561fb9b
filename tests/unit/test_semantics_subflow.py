"""Subflows as Kestra runs them (Subflow.java, ExecutableUtils, ExecutorService.onEnd,
FlowInputOutput.typedOutputs): the parent task's outputs, typed flow outputs, and the child
that cannot start or whose outputs do not hold."""

from __future__ import annotations

from typing import Any

import pytest

from engine.reducer.flow_subflow import guess_state, resolve_child
from engine.reducer.model import ChildExecutionEnded, Command, StartExecution
from engine.reducer.states import State
from tests.unit.test_reducer_support import Sim, fail, flow, log

SUBFLOW = "io.kestra.plugin.core.flow.Subflow"


class Routed(Sim):
    """The processor's routing of a child start: resolve_child against deployed flows."""

    def __init__(self, flows: dict[str, dict[str, Any]], **kw: Any) -> None:
        super().__init__(**kw)
        self.flows = flows

    def _route(self) -> bool:
        if not self.outgoing:
            return False
        command: Command = self.outgoing.pop(0)
        if isinstance(command, StartExecution) and not command.flow:
            ref = {"namespace": command.namespace, "flowId": command.flow_id}
            command = resolve_child(command, self.flows.get(command.flow_id), ref)
        self.queue.append(command)
        return True


def _returns(task_id: str, value: str) -> dict[str, Any]:
    return {"id": task_id, "type": "io.kestra.plugin.core.debug.Return", "format": value}


def _worker(job: Any) -> tuple[str, dict[str, Any]] | None:
    if job.task["type"].endswith(".Fail"):
        return "FAILED", {}
    return "SUCCESS", {"value": job.task.get("format", job.task["id"])}


def _parent(**task: Any) -> dict[str, Any]:
    return flow([{"id": "call", "type": SUBFLOW, "namespace": "ns", "flowId": "child", **task}])


def _child(sim: Sim) -> Any:
    return next(s for k, s in sim.states.items() if k != "e1")


def test_parent_task_outputs_carry_the_typed_flow_outputs() -> None:
    child = flow(
        [_returns("r", "42")],
        outputs=[{"id": "n", "type": "INT", "value": "{{ outputs.r.value }}"}],
    )
    sim = Routed({"child": child}, worker=_worker)
    sim.start(_parent())
    sim.run()
    run = next(iter(sim.state().task_runs.values()))
    assert sim.state().state == State.SUCCESS
    assert run.outputs == {"executionId": _child(sim).execution_id, "state": "SUCCESS",
                           "outputs": {"n": 42}}  # fmt: skip
    assert _child(sim).outputs == {"n": 42}


def test_a_child_without_outputs_gives_no_outputs_key_and_legacy_outputs_render_in_it() -> None:
    sim = Routed({"child": flow([_returns("r", "x")])}, worker=_worker)
    sim.start(_parent())
    sim.run()
    assert "outputs" not in next(iter(sim.state().task_runs.values())).outputs
    legacy = Routed({"child": flow([_returns("r", "x")])}, worker=_worker)
    legacy.start(_parent(outputs={"got": "{{ outputs.r.value }}"}))
    legacy.run()
    assert next(iter(legacy.state().task_runs.values())).outputs["outputs"] == {"got": "x"}


def test_a_child_whose_output_fails_its_type_fails_and_so_does_the_parent_task() -> None:
    child = flow([_returns("r", "abc")], outputs=[{"id": "n", "type": "INT",
                                                  "value": "{{ outputs.r.value }}"}])  # fmt: skip
    sim = Routed({"child": child}, worker=_worker)
    sim.start(_parent())
    sim.run()
    kid = _child(sim)
    assert kid.state == State.FAILED
    assert kid.outputs is None
    run = next(iter(sim.state().task_runs.values()))
    assert run.state == State.FAILED
    assert run.outputs == {"executionId": kid.execution_id, "state": "FAILED"}
    logs = [e.payload["message"] for d in sim.decisions for e in d.events if e.type == "LogEmitted"]
    assert any(m.startswith("Failed to render output values: Invalid output for `n`") for m in logs)
    assert any(m.startswith("Failed to extract outputs with the error:") for m in logs)


def test_a_missing_output_fails_the_child() -> None:
    child = flow(
        [log("a")], outputs=[{"id": "n", "type": "STRING", "value": "{{ outputs.nope.value }}"}]
    )
    sim = Routed({"child": child}, worker=_worker)
    sim.start(_parent())
    sim.run()
    assert _child(sim).state == State.FAILED
    assert sim.state().state == State.FAILED


def test_transmit_failed_false_keeps_the_parent_going_with_the_child_state_in_outputs() -> None:
    sim = Routed({"child": flow([fail("boom")])}, worker=_worker)
    sim.start(_parent(transmitFailed=False))
    sim.run()
    run = next(iter(sim.state().task_runs.values()))
    assert run.state == State.SUCCESS
    assert run.outputs["state"] == "FAILED"
    assert sim.state().state == State.SUCCESS


@pytest.mark.parametrize(
    ("child", "transmit", "expected"),
    [
        (State.FAILED, True, State.FAILED),
        (State.WARNING, True, State.WARNING),
        (State.KILLED, True, State.KILLED),
        (State.CANCELLED, True, State.SUCCESS),
        (State.SUCCESS, True, State.SUCCESS),
        (State.FAILED, False, State.SUCCESS),
        (State.WARNING, False, State.SUCCESS),
    ],
)
def test_guess_state(child: State, transmit: bool, expected: State) -> None:
    assert guess_state(child, transmit) == expected


@pytest.mark.parametrize(
    ("flows", "inputs", "message"),
    [
        ({}, {}, "Unable to find flow 'ns'.'child' with revision '0'"),
        (
            {"child": {**flow([log("a")]), "disabled": True}},
            {},
            "Cannot execute a flow which is disabled",
        ),
        (
            {"child": flow([log("a")], inputs=[{"id": "need", "type": "INT"}])},
            {},
            "missing required input",
        ),
    ],
)
def test_a_child_that_cannot_start_fails_the_parent_task_with_the_reason(
    flows: dict[str, Any], inputs: dict[str, Any], message: str
) -> None:
    sim = Routed(flows, worker=_worker)
    sim.start(_parent(inputs=inputs))
    sim.run()
    run = next(iter(sim.state().task_runs.values()))
    assert run.state == State.FAILED
    logs = [e.payload for d in sim.decisions for e in d.events if e.type == "LogEmitted"]
    assert any(message in p["message"] and p.get("task_id") == "call" for p in logs)


def test_child_inputs_are_typed_against_the_child_flow() -> None:
    child = flow([log("a")], inputs=[{"id": "n", "type": "INT"}])
    sim = Routed({"child": child}, worker=_worker)
    sim.start(_parent(inputs={"n": "{{ 40 + 2 }}"}))
    sim.run()
    assert _child(sim).inputs == {"n": 42}


def test_wait_false_ends_at_once_with_the_child_created() -> None:
    sim = Routed({"child": flow([log("a")])}, worker=_worker)
    sim.start(_parent(wait=False))
    sim.run()
    run = next(iter(sim.state().task_runs.values()))
    assert run.state == State.SUCCESS
    assert run.outputs["state"] == "CREATED"


def test_an_unknown_child_end_is_never_a_crash() -> None:
    sim = Routed({"child": flow([log("a")])}, worker=_worker)
    sim.start(_parent())
    sim.run()
    run_id = next(iter(sim.state().task_runs))
    decision = sim.send(
        ChildExecutionEnded(
            command_id="late", execution_id="e1", child_execution_id="other",
            parent_task_run_id=run_id, state="FAILED",
        )
    )  # fmt: skip
    assert decision.state is not None
    assert decision.state.state == State.SUCCESS
