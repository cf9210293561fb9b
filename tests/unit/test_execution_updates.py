"""execution.Exit, SetVariables and UnsetVariables through the pure reducer and the core task
executors (the conformance harness's in-process world: every command and state crosses JSON,
jobs run with the real executors on a virtual clock).

Exit: the execution ends at once in the asked state; the Exit task run and its parents take
it; KILLED stops running siblings, any other state lets them finish (their results are still
recorded) while nothing else starts (no next task, no errors/finally, no outputs).
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.reducer.model import ExecutionState, State
from engine.reducer.updates import deep_merge
from tests.conformance.harness import World


def deploy(world: World, source: str) -> None:
    from engine.flows import flow_to_dict, load_flow

    flow = flow_to_dict(load_flow(source))
    world.flows[(flow["namespace"], flow["id"])] = flow
    assert isinstance(world.triggers.flows, dict)
    world.triggers.flows[(flow["namespace"], flow["id"])] = []


async def run_flow(source: str, inputs: dict[str, Any] | None = None) -> tuple[World, str]:
    world = World()
    deploy(world, source)
    execution_id = world.start("company.team", "f", inputs)
    await world.run()
    assert not world.problems, world.problems
    return world, execution_id


def _ended(world: World, execution_id: str) -> bool:
    state = world.states.get(execution_id)
    return state is not None and state.state.is_terminal


def runs(state: ExecutionState) -> dict[str, State]:
    return {run.task_id: run.state for run in state.task_runs.values()}


def messages(world: World, execution_id: str) -> list[str]:
    return [r.message for r in world.logs_of(execution_id) if r.task_id is not None]


EXIT_IN_IF = """
id: f
namespace: company.team
inputs:
  - id: state
    type: STRING
    defaults: CONTINUE
tasks:
  - id: if
    type: io.kestra.plugin.core.flow.If
    condition: "{{ inputs.state == 'CONTINUE' }}"
    then:
      - id: hello
        type: io.kestra.plugin.core.log.Log
        message: I'm continuing
    else:
      - id: exit
        type: io.kestra.plugin.core.execution.Exit
        state: "{{ inputs.state }}"
  - id: end
    type: io.kestra.plugin.core.log.Log
    message: I'm ending
errors:
  - id: on_error
    type: io.kestra.plugin.core.log.Log
    message: error branch
finally:
  - id: always
    type: io.kestra.plugin.core.log.Log
    message: finally branch
outputs:
  - id: out
    type: STRING
    value: "{{ outputs.hello.nothing }}"
"""


@pytest.mark.parametrize(
    ("asked", "final"),
    [
        ("KILLED", State.KILLED),
        ("SUCCESS", State.SUCCESS),
        ("WARNING", State.WARNING),
        ("FAILED", State.FAILED),
        ("CANCELED", State.CANCELLED),
    ],
)
async def test_exit_ends_the_execution_in_its_state(asked: str, final: State) -> None:
    world, execution_id = await run_flow(EXIT_IN_IF, {"state": asked})
    state = world.states[execution_id]
    assert state.state == final
    assert runs(state) == {"if": final, "exit": final}  # no `end`, no errors, no finally
    assert state.outputs is None
    exit_run = next(r for r in state.task_runs.values() if r.task_id == "exit")
    assert exit_run.attempts[-1].state == final
    assert "I'm ending" not in messages(world, execution_id)


async def test_without_exit_the_flow_goes_on() -> None:
    world, execution_id = await run_flow(EXIT_IN_IF)
    state = world.states[execution_id]
    assert runs(state) == {
        "if": State.SUCCESS,
        "hello": State.SUCCESS,
        "end": State.SUCCESS,
        "always": State.SUCCESS,
    }
    # Here the flow's outputs are rendered at the end (and fail): an Exit skips them.
    assert state.state == State.FAILED


PARALLEL = """
id: f
namespace: company.team
tasks:
  - id: parallel
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: slow
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT1M
      - id: exit
        type: io.kestra.plugin.core.execution.Exit
        state: STATE
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: after
"""


async def test_exit_lets_a_running_sibling_finish_unless_killed() -> None:
    world = World()
    deploy(world, PARALLEL.replace("STATE", "FAILED"))
    execution_id = world.start("company.team", "f")
    await world.run(until=lambda: _ended(world, execution_id))
    state = world.states[execution_id]
    assert state.state == State.FAILED
    assert runs(state) == {"parallel": State.FAILED, "slow": State.RUNNING, "exit": State.FAILED}
    assert world.task_running(execution_id, "slow")
    await world.run()  # the sleep ends a minute later; its result is recorded, nothing starts
    assert not world.problems, world.problems
    state = world.states[execution_id]
    assert state.state == State.FAILED
    assert runs(state) == {"parallel": State.FAILED, "slow": State.SUCCESS, "exit": State.FAILED}


async def test_exit_killed_stops_running_siblings() -> None:
    world, execution_id = await run_flow(PARALLEL.replace("STATE", "KILLED"))
    state = world.states[execution_id]
    assert state.state == State.KILLED
    assert runs(state) == {"parallel": State.KILLED, "slow": State.KILLED, "exit": State.KILLED}
    slow = next(r for r in state.task_runs.values() if r.task_id == "slow")
    assert slow.attempts[-1].state == State.KILLED  # the job was stopped, not waited for


VARIABLES = """
id: f
namespace: company.team
variables:
  name: World
  db:
    host: localhost
    port: 5432
tasks:
  - id: set
    type: io.kestra.plugin.core.execution.SetVariables
    variables:
      message: Hello
      name: "{{ flow.id }}"
      db:
        port: 6543
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "{{ vars.message }} {{ vars.name }} {{ vars.db.host }}:{{ vars.db.port }}"
  - id: unset
    type: io.kestra.plugin.core.execution.UnsetVariables
    variables:
      - message
      - db.host
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "{{ vars.message ?? 'gone' }} {{ vars.db.host ?? 'no host' }} {{ vars.db.port }}"
"""


async def test_set_and_unset_variables() -> None:
    world, execution_id = await run_flow(VARIABLES)
    state = world.states[execution_id]
    assert state.state == State.SUCCESS
    assert messages(world, execution_id) == ["Hello f localhost:6543", "gone no host 6543"]
    assert state.variables == {"name": "f", "db": {"port": 6543}}


async def test_overwrite_false_and_missing_keys_fail_the_task() -> None:
    flow = VARIABLES.replace("  - id: set\n", "  - id: set\n    overwrite: false\n")
    world, execution_id = await run_flow(flow)
    state = world.states[execution_id]
    assert state.state == State.FAILED
    assert runs(state) == {"set": State.FAILED}
    assert state.variables is None
    errors = [r.message for r in world.logs_of(execution_id) if r.level == "ERROR"]
    assert errors[0] == (
        "`overwrite` is set to false and the following variables already exist: name,db"
    )
    flow = VARIABLES.replace("      - db.host\n", "      - db.host\n      - nope.deeper\n")
    world, execution_id = await run_flow(flow)
    state = world.states[execution_id]
    assert state.state == State.FAILED
    assert runs(state)["unset"] == State.FAILED
    flow = flow.replace("      - nope.deeper\n", "      - nope.deeper\n    ignoreMissing: true\n")
    world, execution_id = await run_flow(flow)
    assert world.states[execution_id].state == State.SUCCESS


def test_deep_merge_is_kestras() -> None:
    base = {"a": {"x": 1, "y": {"z": 2}}, "b": [1], "c": 3}
    extra = {"a": {"y": {"w": 4}}, "b": [2], "d": 5}
    assert deep_merge(base, extra) == {
        "a": {"x": 1, "y": {"z": 2, "w": 4}},
        "b": [2],
        "c": 3,
        "d": 5,
    }
    assert base == {"a": {"x": 1, "y": {"z": 2}}, "b": [1], "c": 3}
