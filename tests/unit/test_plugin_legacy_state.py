"""The legacy state store tasks (io.kestra.plugin.core.state.*), against the KV store."""

from __future__ import annotations

from typing import Any

import pytest

from executors.base import TaskContext, TaskError
from executors.core import InMemoryKV
from executors.plugin import PluginExecutor
from executors.plugins.legacy_state import StateDelete, StateGet, StateSet, murmur3_128_hex

S = "io.kestra.plugin.core.state."


def _ctx(kv: InMemoryKV, value: str | None = None) -> TaskContext:
    variables: dict[str, Any] = {
        "flow": {"id": "My_Flow", "namespace": "company.team"},
        "taskrun": {"id": "tr", "value": value},
        "inputs": {"n": 2},
    }
    return TaskContext.for_job(
        execution_id="e", task_run_id="tr", attempt=1, task={"id": "t"}, variables=variables, kv=kv
    )


async def _run(cls: Any, task: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    outcome = await PluginExecutor(cls).run({"id": "t", **task}, ctx)
    return dict(outcome.outputs)


async def test_set_merges_into_the_flow_state_and_get_reads_it() -> None:
    kv = InMemoryKV()
    first = await _run(StateSet, {"type": S + "Set", "data": {"a": 1, "m": {"x": 1}}}, _ctx(kv))
    assert first == {"count": 2, "key": "my-flow_states_tasks-states_default"}
    data = {"b": "{{ inputs.n }}", "m": {"y": 2}, "a": None}
    second = await _run(StateSet, {"type": S + "Set", "data": data}, _ctx(kv))
    assert second["count"] == 3
    got = await _run(StateGet, {"type": S + "Get"}, _ctx(kv))
    assert got == {"count": 3, "data": {"a": 1, "b": "2", "m": {"x": 1, "y": 2}}}
    assert kv.entries[("company.team", "my-flow_states_tasks-states_default")]["b"] == "2"


async def test_names_namespace_scope_and_loop_values_make_separate_states() -> None:
    kv = InMemoryKV()
    await _run(StateSet, {"type": S + "Set", "name": "n", "namespace": True, "data": {"k": 1}},
               _ctx(kv))  # fmt: skip
    await _run(StateSet, {"type": S + "Set", "data": {"k": 2}}, _ctx(kv, value="v1"))
    keys = {key for _, key in kv.entries}
    assert keys == {
        "states_tasks-states_n",
        f"my-flow_states_tasks-states_default_{murmur3_128_hex('v1')}",
    }
    empty = await _run(StateGet, {"type": S + "Get"}, _ctx(kv))
    assert empty == {"count": 0, "data": {}}


async def test_missing_state_and_delete() -> None:
    kv = InMemoryKV()
    with pytest.raises(TaskError, match="not found"):
        await _run(StateGet, {"type": S + "Get", "errorOnMissing": True}, _ctx(kv))
    assert await _run(StateDelete, {"type": S + "Delete"}, _ctx(kv)) == {"deleted": False}
    with pytest.raises(TaskError, match="Unable to find the state file 'default'"):
        await _run(StateDelete, {"type": S + "Delete", "errorOnMissing": True}, _ctx(kv))
    await _run(StateSet, {"type": S + "Set", "data": {"a": 1}}, _ctx(kv))
    assert await _run(StateDelete, {"type": S + "Delete"}, _ctx(kv)) == {"deleted": True}


def test_murmur3_matches_the_reference_vectors() -> None:
    # SMHasher's MurmurHash3_x64_128 (seed 0) output bytes, which Guava's HashCode prints.
    assert murmur3_128_hex("") == "0" * 32
    assert murmur3_128_hex("The quick brown fox jumps over the lazy dog") == (
        "6c1b07bc7bbc4be347939ac4a93c437a"
    )
