"""CREATE_NEW_EXECUTION retries as Kestra runs them (ExecutorService's retry handling,
ExecutionService.markWithTaskRunAs and replay): the failed run, its parents and the
execution are RETRIED, and a new execution of the same flow follows."""

from __future__ import annotations

from engine.reducer.model import StartExecution
from engine.reducer.states import State
from tests.unit.test_reducer_support import Sim, fail, flow

RETRY = {
    "type": "constant",
    "interval": "PT1S",
    "maxAttempt": 2,
    "behavior": "CREATE_NEW_EXECUTION",
}


def test_the_failed_run_and_its_parents_are_retried_and_a_new_execution_follows() -> None:
    sim = Sim()
    sim.start(
        flow([{"id": "seq", "type": "io.kestra.plugin.core.flow.Sequential",
               "tasks": [fail("boom", retry=RETRY)]}]),
        labels={"team": "a"},
    )  # fmt: skip
    sim.run(route_children=False)
    state = sim.state()
    assert state.state == State.RETRIED
    assert {r.task_id: r.state for r in state.task_runs.values()} == {
        "seq": State.RETRIED,
        "boom": State.RETRIED,
    }
    (again,) = sim.outgoing
    assert isinstance(again, StartExecution)
    assert again.execution_id != "e1"
    assert (again.original_execution_id, again.retry_number) == ("e1", 1)
    assert again.labels["team"] == "a"
    assert again.scheduled is not None
