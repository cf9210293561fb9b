"""Kestra 2.0's Loop through the pure reducer and the core executors (the conformance
harness's in-process world: commands and states cross JSON, jobs run for real on a virtual
clock): each iteration is an execution of its own, its end reaches the parent's Loop."""

from __future__ import annotations

from typing import Any

import pytest

from engine.reducer.commands import Kill, Replay, Restart, Resume
from engine.reducer.model import ExecutionState, State
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


def run_of(state: ExecutionState, task_id: str) -> Any:
    return next(r for r in state.task_runs.values() if r.task_id == task_id)


def iterations(world: World, parent: str) -> list[ExecutionState]:
    found = [s for s in world.states.values() if s.loop and s.loop["execution_id"] == parent]
    return sorted(found, key=lambda s: int(s.loop["index"]) if s.loop else 0)


def errors(world: World, execution_id: str) -> list[str]:
    return [r.message for r in world.logs_of(execution_id) if r.level == "ERROR"]


HEAD = "id: f\nnamespace: company.team\n"


async def test_each_value_runs_in_its_own_execution_with_item_and_parent_outputs() -> None:
    world, ex = await run_flow(
        HEAD
        + """
tasks:
  - id: before
    type: io.kestra.plugin.core.debug.Return
    format: outer
  - id: loop
    type: io.kestra.plugin.core.flow.Loop
    values: ["a", 2, {"k": "{{ outputs.before.value }}"}]
    tasks:
      - id: inner
        type: io.kestra.plugin.core.flow.If
        condition: "{{ item.index == 1 }}"
        then:
          - id: deep
            type: io.kestra.plugin.core.debug.Return
            format: "{{ item.value }}|{{ taskrun.value }}|{{ outputs.before.value }}|\\
              {{ execution.id }}"
"""
    )
    parent = world.states[ex]
    assert parent.state == State.SUCCESS
    # The parent holds the Loop task run only, never the iterations' task runs.
    assert sorted(r.task_id for r in parent.task_runs.values()) == ["before", "loop"]
    loop = run_of(parent, "loop")
    assert loop.outputs == {
        "iterationCount": 3,
        "runningIterations": 0,
        "terminatedIterations": 3,
    }
    its = iterations(world, ex)
    assert [s.loop["value"] for s in its if s.loop] == ["a", "2", '{"k":"outer"}']
    assert all(s.state == State.SUCCESS for s in its)
    deep = run_of(its[1], "deep")
    # taskrun.value is null inside an iteration; execution is the parent's.
    assert deep.outputs["value"] == f"2||outer|{ex}"
    assert all(s.summary()["kind"] == "LOOP" for s in its)
    assert its[0].summary()["parent"]["execution_id"] == ex


async def test_map_values_give_keys_and_outputs_are_collected_in_order() -> None:
    world, ex = await run_flow(
        HEAD
        + """
tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.Loop
    values:
      dev: http://dev
      prod: http://prod
    concurrencyLimit: 0
    outputs:
      - id: line
        type: STRING
        value: "{{ outputs.t.value }}"
    tasks:
      - id: t
        type: io.kestra.plugin.core.debug.Return
        format: "{{ item.key }}={{ item.value }}"
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ loopOutputs(outputs.loop.outputs, 'line') | join(',') }}"
"""
    )
    parent = world.states[ex]
    assert parent.state == State.SUCCESS
    assert run_of(parent, "after").outputs["value"] == "dev=http://dev,prod=http://prod"
    entries = run_of(parent, "loop").outputs["outputs"]
    assert entries[1] == {
        "item": {"value": "http://prod", "iteration": 1, "key": "prod"},
        "outputs": {"line": "prod=http://prod"},
    }


@pytest.mark.parametrize(("limit", "most"), [(1, 1), (2, 2), (0, 4)])
async def test_concurrency_limit_bounds_the_iterations_running_at_once(
    limit: int, most: int
) -> None:
    world = World()
    deploy(
        world,
        HEAD
        + f"""
tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.Loop
    values: [1, 2, 3, 4]
    concurrencyLimit: {limit}
    tasks:
      - id: wait
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT1S
""",
    )
    ex = world.start("company.team", "f")
    seen = 0

    def watch() -> bool:
        nonlocal seen
        running = [s for s in world.states.values() if s.loop and not s.state.is_terminal]
        seen = max(seen, len(running))
        return False

    await world.run(watch)
    assert world.states[ex].state == State.SUCCESS
    assert seen == most


FAILING = (
    HEAD
    + """
inputs:
  - id: bad
    type: STRING
    defaults: b
tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.Loop
    values: ["a", "b", "c"]
    transmitFailed: TRANSMIT
    tasks:
      - id: t
        type: io.kestra.plugin.core.execution.Fail
        condition: "{{ item.value == inputs.bad }}"
"""
)


async def test_transmit_failed_ends_the_loop_and_starts_nothing_more() -> None:
    world, ex = await run_flow(FAILING.replace("TRANSMIT", "true"))
    assert world.states[ex].state == State.FAILED
    assert [s.state for s in iterations(world, ex)] == [State.SUCCESS, State.FAILED]
    assert run_of(world.states[ex], "loop").state == State.FAILED


async def test_without_transmit_failed_every_iteration_runs() -> None:
    world, ex = await run_flow(FAILING.replace("TRANSMIT", "false"))
    assert world.states[ex].state == State.SUCCESS
    assert [s.state for s in iterations(world, ex)] == [
        State.SUCCESS,
        State.FAILED,
        State.SUCCESS,
    ]


async def test_restart_restarts_the_failed_iteration_and_carries_on() -> None:
    world, ex = await run_flow(FAILING.replace("TRANSMIT", "true"))
    failed = iterations(world, ex)[1]
    # Fix the cause as a restart would find it: the next run of `t` must not fail.
    world.states[failed.execution_id].inputs["bad"] = "none"
    world.send(Restart, ex)
    await world.run()
    assert world.states[ex].state == State.SUCCESS
    its = iterations(world, ex)
    assert [s.state for s in its] == [State.SUCCESS] * 3
    assert its[1].execution_id == failed.execution_id  # restarted in place


async def test_restarting_one_iteration_reopens_its_failed_parent() -> None:
    world, ex = await run_flow(FAILING.replace("TRANSMIT", "true"))
    failed = iterations(world, ex)[1]
    world.states[failed.execution_id].inputs["bad"] = "none"
    world.send(Restart, failed.execution_id)
    await world.run()
    assert world.states[ex].state == State.SUCCESS
    assert len(iterations(world, ex)) == 3


async def test_replaying_one_iteration_replaces_it_in_its_loop() -> None:
    world, ex = await run_flow(FAILING.replace("TRANSMIT", "true"))
    failed = iterations(world, ex)[1]
    world.states[failed.execution_id].inputs["bad"] = "none"
    world.send(Replay, failed.execution_id, task_run_id=None, new_execution_id="replayed")
    await world.run()
    assert world.states["replayed"].state == State.SUCCESS
    assert world.states[ex].state == State.SUCCESS
    record = run_of(world.states[ex], "loop").data["loop"]["iterations"]["1"]
    assert record["id"] == "replayed"


async def test_a_paused_iteration_pauses_the_parent_until_resumed() -> None:
    world = World()
    deploy(
        world,
        HEAD
        + """
tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.Loop
    values: ["a"]
    tasks:
      - id: pause
        type: io.kestra.plugin.core.flow.Pause
      - id: done
        type: io.kestra.plugin.core.debug.Return
        format: "{{ item.value }}"
""",
    )
    ex = world.start("company.team", "f")
    await world.run()
    assert world.states[ex].state == State.PAUSED
    assert run_of(world.states[ex], "loop").state == State.PAUSED
    world.send(Resume, ex)
    await world.run()
    assert world.states[ex].state == State.SUCCESS
    assert run_of(iterations(world, ex)[0], "done").outputs["value"] == "a"


async def test_killing_the_parent_kills_its_iterations() -> None:
    world = World()
    deploy(
        world,
        HEAD
        + """
tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.Loop
    values: ["a", "b"]
    concurrencyLimit: 0
    tasks:
      - id: wait
        type: io.kestra.plugin.core.flow.Sleep
        duration: PT1H
""",
    )
    ex = world.start("company.team", "f")
    await world.run(lambda: len([s for s in world.states.values() if s.task_runs]) >= 3)
    world.send(Kill, ex)
    await world.run()
    assert world.states[ex].state == State.KILLED
    assert [s.state for s in iterations(world, ex)] == [State.KILLED, State.KILLED]


async def test_nested_loops_see_their_parents_items() -> None:
    world, ex = await run_flow(
        HEAD
        + """
tasks:
  - id: outer
    type: io.kestra.plugin.core.flow.Loop
    values: [1, 2]
    tasks:
      - id: middle
        type: io.kestra.plugin.core.flow.Loop
        values: ["x"]
        tasks:
          - id: inner
            type: io.kestra.plugin.core.flow.Loop
            values: ["a"]
            tasks:
              - id: t
                type: io.kestra.plugin.core.debug.Return
                format: "{{ item.parents[0].value }}-{{ item.parent.value }}-{{ item.value }}"
"""
    )
    assert world.states[ex].state == State.SUCCESS
    leaves = [run_of(s, "t").outputs["value"] for s in world.states.values() if _has(s, "t")]
    assert sorted(leaves) == ["1-x-a", "2-x-a"]


def _has(state: ExecutionState, task_id: str) -> bool:
    return any(r.task_id == task_id for r in state.task_runs.values())


async def test_an_iteration_whose_outputs_do_not_render_fails() -> None:
    world, ex = await run_flow(
        HEAD
        + """
tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.Loop
    values: ["a"]
    outputs:
      - id: n
        type: INT
        value: "{{ item.value }}"
    tasks:
      - id: t
        type: io.kestra.plugin.core.debug.Return
        format: x
"""
    )
    assert world.states[ex].state == State.FAILED
    its = iterations(world, ex)
    assert its[0].state == State.FAILED
    assert any("Failed to render output values" in m for m in errors(world, its[0].execution_id))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ("[1, null]", "Found a null value inside the iteration values="),
        ("[true]", "Unknown value element type"),
        ("'not json'", "is not a JSON array or object"),
        ("'nsfile:///some/file.ion'", "reads its values from an internal-storage"),
    ],
)
async def test_values_that_cannot_be_iterated_fail_the_loop(values: str, message: str) -> None:
    world, ex = await run_flow(
        HEAD
        + f"""
tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.Loop
    values: {values}
    tasks:
      - id: t
        type: io.kestra.plugin.core.debug.Return
        format: x
"""
    )
    assert world.states[ex].state == State.FAILED
    assert any(message in m for m in errors(world, ex)), errors(world, ex)
    assert iterations(world, ex) == []


async def test_empty_values_end_the_loop_at_once() -> None:
    world, ex = await run_flow(
        HEAD
        + """
tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.Loop
    values: "[]"
    tasks:
      - id: t
        type: io.kestra.plugin.core.debug.Return
        format: x
"""
    )
    assert world.states[ex].state == State.SUCCESS
    assert run_of(world.states[ex], "loop").outputs["iterationCount"] == 0


async def test_when_skips_a_task_like_run_if() -> None:
    world, ex = await run_flow(
        HEAD
        + """
tasks:
  - id: skipped
    type: io.kestra.plugin.core.debug.Return
    format: x
    when: "{{ 1 == 2 }}"
  - id: kept
    type: io.kestra.plugin.core.debug.Return
    format: y
    when: "{{ true }}"
"""
    )
    state = world.states[ex]
    assert run_of(state, "skipped").state == State.SKIPPED
    assert run_of(state, "kept").state == State.SUCCESS


async def test_iterations_hold_no_concurrency_slot_and_no_sla() -> None:
    # With a limit of 1, iterations taking slots would wait for their own parent forever.
    world, ex = await run_flow(
        HEAD
        + """
concurrency:
  limit: 1
sla:
  - id: quick
    type: MAX_DURATION
    behavior: FAIL
    duration: PT1H
tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.Loop
    values: ["a", "b"]
    concurrencyLimit: 0
    tasks:
      - id: t
        type: io.kestra.plugin.core.debug.Return
        format: "{{ item.value }}"
"""
    )
    assert world.states[ex].state == State.SUCCESS
    its = iterations(world, ex)
    assert [s.state for s in its] == [State.SUCCESS, State.SUCCESS]
    assert all(not s.timers for s in its)


async def test_values_in_a_storage_file_give_one_iteration_per_line() -> None:
    world = World()
    deploy(
        world,
        HEAD
        + """
inputs:
  - id: file
    type: STRING
tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.Loop
    values: "{{ inputs.file }}"
    concurrencyLimit: 0
    outputs:
      - id: v
        type: STRING
        value: "{{ item.value }}"
    tasks:
      - id: t
        type: io.kestra.plugin.core.debug.Return
        format: "{{ item.index }}={{ item.value }}"
""",
    )
    uri = world.storage.put_sync("x", "rows.ion", b'"a"\n42\n{id:1,name:"b"}\n')
    ex = world.start("company.team", "f", {"file": uri})
    await world.run()
    assert not world.problems, world.problems
    assert world.states[ex].state == State.SUCCESS
    loop = run_of(world.states[ex], "loop")
    values = [e["outputs"]["v"] for e in loop.outputs["outputs"]]
    assert values == ["a", "42", '{"id":1,"name":"b"}']
    missing = world.start("company.team", "f", {"file": "kestra:///nope.ion"})
    await world.run()
    assert world.states[missing].state == State.FAILED
    assert iterations(world, missing) == []
