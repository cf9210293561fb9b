"""The loops' progress cache and narrow stepping change nothing but the cost.

Each flow runs twice through the executor's batch (tasks inline, so every result is decided
one after the other): once as shipped, once with the cache dropped before every decision and
narrow stepping off (the full walk of every iteration). Both must end identically.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.bus.consumer import Record
from engine.bus.wire import command_record
from engine.reducer import flow_each
from engine.reducer.commands import Command, Restart
from engine.reducer.decide import decide
from engine.reducer.model import Decision, ExecutionState
from tests.unit.test_executor_inline import TOPICS, _decider, _start

NOW = datetime(2024, 6, 1, tzinfo=UTC)
RET = "io.kestra.plugin.core.debug.Return"
FAIL = "io.kestra.plugin.core.execution.Fail"


def _each(limit: int, item_tasks: str, extra: str = "") -> str:
    return f"""
id: loop
namespace: t
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b", "c", "d", "e", "f"]
    concurrencyLimit: {limit}
    tasks:
{item_tasks}
{extra}
"""


ITEMS = f"""      - id: one
        type: {RET}
        format: "{{{{ taskrun.value }}}}"
      - id: two
        type: {RET}
        format: "{{{{ outputs.one[taskrun.value].value }}}}!"
"""
FAILING = f"""      - id: one
        type: {RET}
        format: "{{{{ taskrun.value }}}}"
      - id: maybe
        type: {FAIL}
        condition: "{{{{ taskrun.value == 'c' }}}}"
"""
NESTED = f"""      - id: inner
        type: io.kestra.plugin.core.flow.ForEach
        values: [1, 2, 3]
        concurrencyLimit: 0
        tasks:
          - id: leaf
            type: {RET}
            format: "{{{{ parent.taskrun.value }}}}-{{{{ taskrun.value }}}}"
"""
PARALLEL = f"""
id: loop
namespace: t
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.EachParallel
    value: ["a", "b", "c"]
    tasks:
      - id: x
        type: {RET}
        format: "{{{{ taskrun.value }}}}"
      - id: y
        type: {FAIL}
        condition: "{{{{ taskrun.value == 'b' }}}}"
"""
ERRORS = f"""errors:
  - id: handler
    type: {RET}
    format: handled
"""
FLOWS = {
    "unbounded": _each(0, ITEMS),
    "bounded": _each(2, ITEMS),
    "sequential": _each(1, ITEMS),
    "failing-unbounded": _each(0, FAILING, ERRORS),
    "failing-bounded": _each(2, FAILING, ERRORS),
    "nested": _each(0, NESTED),
    "parallel": PARALLEL,
}


def _run(flow: str, decide_fn: Any, restart: bool = False) -> dict[str, Any]:
    decider, store = _decider()
    decider._decide = decide_fn
    decider.run([_start(flow)], NOW)
    if restart:
        cmd = Restart(command_id="restart-1", execution_id="e1")
        decider.run([_record(cmd)], NOW)
    state = store.get("e1")
    assert state is not None
    runs = sorted(
        (r.task_id, tuple(r.values), r.state.value, [h[0] for h in r.history], str(r.outputs))
        for r in state.task_runs.values()
    )
    return {"state": state.state.value, "runs": runs}


def _record(cmd: Command) -> Record:
    return Record(TOPICS.commands.name, 0, 2, *command_record(cmd), None, 0)


@pytest.mark.parametrize("name", sorted(FLOWS))
@pytest.mark.parametrize("restart", [False, True])
def test_cached_stepping_ends_like_the_full_walk(
    name: str, restart: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = _run(FLOWS[name], decide, restart)

    def forgetful(state: ExecutionState | None, command: Command, now: datetime) -> Decision:
        if state is not None:
            state.loop_progress = None
        return decide(state, command, now)

    monkeypatch.setattr(flow_each, "_moved_iterations", lambda ctx, loop: None)
    walked = _run(FLOWS[name], forgetful, restart)
    assert shipped == walked
    if name.startswith("failing") or name == "parallel":
        assert shipped["state"] == "FAILED"
    else:
        assert shipped["state"] == "SUCCESS"
