"""The executor through the real broker, with the simulated worker of tests/conformance."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from engine.bus.wire import result_command_id
from engine.reducer.commands import TaskResult
from engine.reducer.model import Job, State
from tests.conformance.e2e_stack import Stack, stack_settings

pytestmark = pytest.mark.kafka

HELLO = """
id: hello
namespace: io.test
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "hello {{ inputs.name ?? 'world' }}"
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.log is defined }}-done"
"""


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    s = await Stack(stack_settings()).start()
    try:
        yield s
    finally:
        await s.close()


async def test_a_flow_runs_end_to_end(stack: Stack) -> None:
    await stack.deploy(HELLO)
    execution_id = await stack.start_execution("io.test", "hello")
    state = await stack.wait_terminal(execution_id)
    assert state.state == State.SUCCESS
    runs = {r.task_id: r for r in state.task_runs.values()}
    assert runs["log"].state == State.SUCCESS
    assert runs["ret"].outputs["value"].endswith("-done")
    assert stack.worker is not None
    assert all(n == 1 for n in stack.worker.ran.values())
    assert stack.executor is not None
    assert stack.executor.healthy()


async def test_a_duplicated_command_changes_nothing(stack: Stack) -> None:
    await stack.deploy(HELLO)
    execution_id = await stack.start_execution("io.test", "hello")
    state = await stack.wait_terminal(execution_id)
    before = state.to_dict()
    run = next(r for r in state.task_runs.values() if r.task_id == "ret")
    assert stack.executor is not None
    duplicates = stack.executor.duplicates
    # The very TaskResult the executor made when it ran the task inline, produced again.
    command_id = result_command_id(Job(execution_id, run.id, 1, {}, {}))
    again = TaskResult(
        command_id=command_id, execution_id=execution_id, task_run_id=run.id, attempt=1,
        state="FAILED", error="late duplicate",
    )  # fmt: skip
    await stack.send_command(again)
    await stack.send_command(again)
    await stack.wait(lambda: stack.executor.duplicates >= duplicates + 2, "the duplicates")  # type: ignore[union-attr]
    after = stack.state(execution_id)
    assert after is not None
    assert after.to_dict() == before
