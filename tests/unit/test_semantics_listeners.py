"""Listeners (Kestra 0.20's deprecated flow ``listeners``: ConditionService.findValidListeners,
ExecutorService.handleListeners) and ``afterExecution``: tasks run once the execution ended,
the execution's state unchanged."""

from __future__ import annotations

from engine.reducer.states import State
from tests.unit.test_reducer_support import Sim, fail, flow, log

STATUS = "io.kestra.plugin.core.condition.ExecutionStatus"


def _listener(state: str, *tasks: dict[str, object]) -> dict[str, object]:
    return {"conditions": [{"type": STATUS, "in": [state]}], "tasks": list(tasks)}


def test_matching_listeners_run_in_order_after_the_end_and_others_do_not() -> None:
    sim = Sim()
    sim.start(
        flow(
            [log("a")],
            listeners=[
                _listener("SUCCESS", log("ok1"), log("ok2")),
                _listener("FAILED", log("ko")),
            ],
        )
    )
    sim.run()
    state = sim.state()
    assert state.state == State.SUCCESS
    runs = {r.task_id: r for r in state.task_runs.values()}
    assert set(runs) == {"a", "ok1", "ok2"}
    assert runs["ok1"].position < runs["ok2"].position
    assert all(r.state == State.SUCCESS for r in runs.values())
    assert runs["ok1"].branch == "listeners"
    assert [h[0] for h in state.history][-1] == "SUCCESS"  # the end did not move


def test_a_failing_listener_leaves_the_execution_state_alone() -> None:
    sim = Sim()
    sim.start(flow([fail("a")], listeners=[_listener("FAILED", fail("l1"), log("l2"))]))
    sim.run()
    state = sim.state()
    assert state.state == State.FAILED
    runs = {r.task_id: r.state for r in state.task_runs.values()}
    assert runs == {"a": State.FAILED, "l1": State.FAILED}  # sequential: l2 never starts


def test_after_execution_tasks_run_whatever_the_end() -> None:
    sim = Sim()
    sim.start(flow([fail("a")], afterExecution=[log("always")]))
    sim.run()
    assert {r.task_id: r.state for r in sim.state().task_runs.values()} == {
        "a": State.FAILED,
        "always": State.SUCCESS,
    }
    assert sim.state().state == State.FAILED
