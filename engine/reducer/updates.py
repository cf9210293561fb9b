"""Tasks that change their own execution (Kestra's ``ExecutionUpdatableTask``).

The task itself runs like any runnable (in the executor's inline runner, or on a worker): it
renders its properties, checks them against the variables it was given, and reports what to
change as ``TaskResult.update``, which is applied here when the result is decided:

- ``{"setVariables": {...}}`` (execution.SetVariables): deep-merged into the execution's
  variables (``vars``), which start as the flow's ``variables``;
- ``{"unsetVariables": ["a", "b.c"]}`` (execution.UnsetVariables): those keys removed (a dotted
  key walks into nested maps; a key that is gone already is ignored here);
- ``{"exit": STATE}`` (execution.Exit): the execution ends now in STATE (SUCCESS, WARNING,
  FAILED, KILLED or CANCELLED). The Exit task run and every task run above it take STATE. With
  KILLED the execution is killed (running task runs are stopped, nothing else starts). Any
  other state ends the execution at once without touching task runs that are still running
  (their results are still recorded when they come), and nothing else starts: no further task,
  no ``errors`` or ``finally`` branch, no flow ``outputs``, no retry as a new execution; a
  subflow's parent is told, as for any end.
"""

from __future__ import annotations

from typing import Any

from engine.reducer import lifecycle
from engine.reducer.context import Ctx
from engine.reducer.model import JSON, TaskRun
from engine.reducer.states import State

EXIT_STATES = frozenset({State.SUCCESS, State.WARNING, State.FAILED, State.KILLED, State.CANCELLED})


def exit_state(update: JSON | None) -> State | None:
    """The state an Exit update ends the execution in (None: not an exit)."""
    if not update or "exit" not in update:
        return None
    try:
        state = State(str(update["exit"]))
    except ValueError:
        return State.FAILED
    return state if state in EXIT_STATES else State.FAILED


def current_variables(ctx: Ctx) -> JSON:
    """The execution's variables: the flow's until a task changed them."""
    st = ctx.state
    if st.variables is not None:
        return st.variables
    flow_vars = st.flow.get("variables")
    return flow_vars if isinstance(flow_vars, dict) else {}


def apply_variables(ctx: Ctx, update: JSON) -> None:
    values = update.get("setVariables")
    keys = update.get("unsetVariables")
    if not isinstance(values, dict) and not isinstance(keys, list):
        return
    variables = _copy(current_variables(ctx))
    if isinstance(values, dict):
        variables = deep_merge(variables, values)
    if isinstance(keys, list):
        for key in keys:
            _remove(variables, str(key).split("."))
    ctx.state.variables = variables
    ctx.dirty_exec = True


def deep_merge(base: JSON, extra: JSON) -> JSON:
    """Kestra's ``MapUtils.deepMerge``: nested maps merge, any other value replaces."""
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        out[key] = (
            deep_merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
        )
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


def _remove(node: JSON, path: list[str]) -> None:
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            return
        node = child
    node.pop(path[-1], None)


def exit_execution(ctx: Ctx, run: TaskRun, state: State) -> None:
    """End the execution in ``state`` from the Exit task run ``run`` (already ended)."""
    ctx.cancel_for(run)
    ctx.set_state(run, state)
    parent = ctx.state.task_runs.get(run.parent_id) if run.parent_id else None
    while parent is not None:
        if not parent.state.is_terminal:
            ctx.cancel_for(parent)
            ctx.set_state(parent, state)
        parent = ctx.state.task_runs.get(parent.parent_id) if parent.parent_id else None
    if state == State.KILLED:
        lifecycle.kill(ctx)
        return
    lifecycle.end(ctx, state, exited=True)
