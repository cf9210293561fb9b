"""A Kestra 2.0 Loop through the real executor and broker: each iteration is an execution
started through hw.commands, its end comes back to the parent's Loop, and iterations hold no
slot of the flow's concurrency limit (through the real admission step)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from engine.reducer.model import State
from tests.conformance.e2e_stack import Stack, stack_settings

pytestmark = pytest.mark.kafka

LOOP = """
id: loop
namespace: io.test
concurrency:
  limit: 1
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.Loop
    values: ["a", "b", "c"]
    concurrencyLimit: 2
    outputs:
      - id: up
        type: STRING
        value: "{{ outputs.ret.value }}"
    tasks:
      - id: ret
        type: io.kestra.plugin.core.debug.Return
        format: "{{ item.value | upper }}{{ item.index }}"
  - id: all
    type: io.kestra.plugin.core.debug.Return
    format: "{{ loopOutputs(outputs.each.outputs, 'up') | join(',') }}"
"""


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    s = await Stack(stack_settings()).start()
    try:
        yield s
    finally:
        await s.close()


async def test_a_loop_runs_its_iterations_as_executions(stack: Stack) -> None:
    await stack.deploy(LOOP)
    execution_id = await stack.start_execution("io.test", "loop")
    state = await stack.wait_terminal(execution_id)
    assert state.state == State.SUCCESS
    runs = {r.task_id: r for r in state.task_runs.values()}
    assert set(runs) == {"each", "all"}
    assert runs["each"].outputs["iterationCount"] == 3
    assert runs["all"].outputs["value"] == "A0,B1,C2"
    children = runs["each"].data["loop"]["iterations"]
    for index, child in children.items():
        iteration = stack.state(child["id"])
        assert iteration is not None
        assert iteration.state == State.SUCCESS
        assert iteration.loop is not None
        assert iteration.loop["index"] == int(index)
