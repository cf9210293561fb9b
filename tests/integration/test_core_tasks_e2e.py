"""Core tasks through the real broker, the executor and the real worker (engine.worker.Worker,
its internal storage on disk): the Exit task runs inline in the executor, a shell task runs on
the worker as a real process.

- Exit KILLED next to a running `sleep 30` shell task: the process is killed, the execution
  ends KILLED in seconds, not 30.
- Exit FAILED next to a running shell task: the execution ends FAILED at once, the shell task
  still finishes and its result is recorded; the task after the Parallel never starts.
- SetVariables then a shell task (on the worker) reading ``vars``.
- storage.Write -> storage.Split -> namespace.UploadFiles, then a Log reading the uploaded
  namespace file with ``read()`` (on the worker: the executor declines read()).
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import AsyncIterator

import pytest

from engine.reducer.model import ExecutionState, State
from tests.conformance.e2e_stack import Stack, stack_settings

pytestmark = pytest.mark.kafka


@pytest.fixture
async def stack(tmp_path: pathlib.Path) -> AsyncIterator[Stack]:
    s = Stack(stack_settings(partitions=2))
    await s.start(real_worker=tmp_path)
    assert s.real is not None
    await s.real.wait_ready()
    try:
        yield s
    finally:
        await s.close()


def runs(state: ExecutionState) -> dict[str, State]:
    return {run.task_id: run.state for run in state.task_runs.values()}


def flow(exit_state: str, seconds: int) -> str:
    return f"""
id: exiting
namespace: company.team
tasks:
  - id: parallel
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: slow
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - sleep {seconds}
          - echo slept
      - id: wait_then_exit
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - id: started
            type: io.kestra.plugin.core.flow.Sleep
            duration: PT0.5S
          - id: exit
            type: io.kestra.plugin.core.execution.Exit
            state: {exit_state}
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: never
"""


async def test_exit_killed_kills_the_running_process(stack: Stack) -> None:
    await stack.deploy(flow("KILLED", 30))
    started = time.monotonic()
    execution_id = await stack.start_execution("company.team", "exiting")
    state = await stack.wait_terminal(execution_id, timeout_s=25)
    assert state.state == State.KILLED
    assert time.monotonic() - started < 25  # the 30 s sleep did not run to its end
    await stack.wait(lambda: runs(stack.state(execution_id))["slow"] == State.KILLED, "slow")  # type: ignore[arg-type]
    final = stack.state(execution_id)
    assert final is not None
    assert runs(final) == {
        "parallel": State.KILLED,
        "slow": State.KILLED,
        "wait_then_exit": State.KILLED,
        "started": State.SUCCESS,
        "exit": State.KILLED,
    }


async def test_exit_failed_lets_the_running_task_finish(stack: Stack) -> None:
    await stack.deploy(flow("FAILED", 3))
    execution_id = await stack.start_execution("company.team", "exiting")
    state = await stack.wait_terminal(execution_id)
    assert state.state == State.FAILED
    assert runs(state)["slow"] == State.RUNNING  # ended while the process still runs
    assert runs(state)["exit"] == State.FAILED

    def slow_done() -> bool:
        current = stack.state(execution_id)
        return current is not None and runs(current)["slow"].is_terminal

    await stack.wait(slow_done, "the shell task's result")
    final = stack.state(execution_id)
    assert final is not None
    assert final.state == State.FAILED
    assert runs(final) == {
        "parallel": State.FAILED,
        "slow": State.SUCCESS,
        "wait_then_exit": State.FAILED,
        "started": State.SUCCESS,
        "exit": State.FAILED,
    }


async def test_variables_set_in_the_executor_reach_the_worker(stack: Stack) -> None:
    await stack.deploy(
        """
id: variables
namespace: company.team
variables:
  greeting: Hi
tasks:
  - id: set
    type: io.kestra.plugin.core.execution.SetVariables
    variables:
      greeting: Hello
      who: "{{ flow.id }}"
  - id: shell
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo '::{"outputs":{"said":"{{ vars.greeting }} {{ vars.who }}"}}::'
"""
    )
    execution_id = await stack.start_execution("company.team", "variables")
    state = await stack.wait_terminal(execution_id)
    assert state.state == State.SUCCESS, runs(state)
    shell = next(r for r in state.task_runs.values() if r.task_id == "shell")
    assert shell.outputs["vars"] == {"said": "Hello variables"}
    assert state.variables == {"greeting": "Hello", "who": "variables"}


async def test_files_written_split_uploaded_and_read(stack: Stack) -> None:
    await stack.deploy(
        """
id: files
namespace: company.team
tasks:
  - id: write
    type: io.kestra.plugin.core.storage.Write
    content: "a\\nb\\nc\\n"
    extension: .txt
  - id: split
    type: io.kestra.plugin.core.storage.Split
    from: "{{ outputs.write.uri }}"
    rows: 2
  - id: upload
    type: io.kestra.plugin.core.namespace.UploadFiles
    filesMap:
      parts/first.txt: "{{ outputs.split.uris[0] }}"
      parts/second.txt: "{{ outputs.split.uris[1] }}"
  - id: show
    type: io.kestra.plugin.core.log.Log
    message: "{{ read('parts/first.txt') | trim }}+{{ read('nsfile:///parts/second.txt') | trim }}"
"""
    )
    execution_id = await stack.start_execution("company.team", "files")
    state = await stack.wait_terminal(execution_id)
    assert state.state == State.SUCCESS, runs(state)
    assert stack.real is not None
    logs = stack.real.logs

    def shown() -> bool:
        return any(line.task_id == "show" for line in logs.lines)

    await stack.wait(shown, "the Log line")
    line = next(line for line in logs.lines if line.task_id == "show")
    assert line.message == "a\nb+c"
    split = next(r for r in state.task_runs.values() if r.task_id == "split")
    assert len(split.outputs["uris"]) == 2
