"""Kestra's taskRunList order (Execution.withTaskRun appends a new run at the end of the list):
task runs keep their creation order, parents before children, and the read model and the API
list them so, never by start time."""

from __future__ import annotations

from typing import Any

from engine.projector.rows import _task_run_tuple
from engine.reducer.model import ExecutionState
from tests.unit.test_reducer_support import Sim, fail, flow, log

FLOW = "io.kestra.plugin.core.flow."


def _ordered(state: ExecutionState) -> list[str]:
    runs = sorted(state.task_runs.values(), key=lambda r: r.position)
    return [r.task_id + (f"[{r.value}]" if r.value else "") for r in runs]


def test_positions_follow_creation_parents_first() -> None:
    sim = Sim()
    sim.start(
        flow(
            [
                {
                    "id": "waitfor",
                    "type": f"{FLOW}WaitFor",
                    "condition": "{{ true }}",
                    "tasks": [log("inner")],
                },
                {"id": "each", "type": f"{FLOW}ForEach", "values": ["a", "b"], "tasks": [log("x")]},
                log("last"),
            ]
        )
    )
    sim.run()
    state = sim.state()
    assert _ordered(state) == ["waitfor", "inner", "each", "x[a]", "x[b]", "last"]
    positions = [r.position for r in state.task_runs.values()]
    assert positions == sorted(positions) == list(range(len(positions)))


def test_positions_survive_the_snapshot_and_restart_appends() -> None:
    sim = Sim()
    sim.start(flow([log("a"), {"id": "seq", "type": f"{FLOW}Sequential", "tasks": [fail("b")]}]))
    sim.run()
    state = ExecutionState.from_dict(sim.state().to_dict())
    assert _ordered(state) == ["a", "seq", "b"]
    assert state.next_position == 3


def test_a_snapshot_without_positions_takes_its_list_order() -> None:
    sim = Sim()
    sim.start(flow([log("a"), log("b")]))
    sim.run()
    data: dict[str, Any] = sim.state().to_dict()
    for run in data["task_runs"]:
        del run["position"]
    del data["next_position"]
    state = ExecutionState.from_dict(data)
    assert [r.position for r in state.task_runs.values()] == [0, 1]
    assert state.next_position == 2


def test_the_read_model_row_carries_the_position() -> None:
    sim = Sim()
    sim.start(flow([log("a"), log("b")]))
    sim.run()
    rows = [_task_run_tuple("e", 1, r.to_dict()) for r in sim.state().task_runs.values()]
    assert [row[-1] for row in rows] == [0, 1]
