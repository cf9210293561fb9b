"""The core tasks that change their own execution: ``execution.Exit``, ``execution.SetVariables``
and ``execution.UnsetVariables`` (Kestra's ``ExecutionUpdatableTask``s).

Kestra runs them inside its executor; so do we (they are inline types of
:mod:`engine.executor.inline`; a worker runs them the same way when an expression needs it).
Each renders its properties, checks them, and returns ``TaskOutcome.update``; the reducer
applies it (:mod:`engine.reducer.updates`). From Kestra 1.x's classes:

- ``Exit``: ``state`` (SUCCESS by default; SUCCESS, WARNING, KILLED, FAILED or CANCELED) ->
  ``{"exit": STATE}`` (CANCELED is the execution state CANCELLED).
- ``SetVariables``: ``variables`` (a map, rendered), ``overwrite`` (true); with ``overwrite``
  false, a key that ``vars`` already holds fails the task ("`overwrite` is set to false and
  the following variables already exist: a,b") -> ``{"setVariables": {...}}``, deep-merged.
- ``UnsetVariables``: ``variables`` (a list of keys, dotted keys reach into nested maps),
  ``ignoreMissing`` (false) -> ``{"unsetVariables": [...]}``. A key that ``vars`` does not hold
  fails the task unless ``ignoreMissing``, as Kestra's documentation says (its code ignores a
  missing last part and fails on a missing map with a NullPointerException).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from executors.base import TaskContext, TaskError, TaskOutcome, as_bool, to_text

_EXIT = {
    "SUCCESS": "SUCCESS",
    "WARNING": "WARNING",
    "KILLED": "KILLED",
    "FAILED": "FAILED",
    "CANCELED": "CANCELLED",
    "CANCELLED": "CANCELLED",
}


class ExitTask:
    """io.kestra.plugin.core.execution.Exit."""

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        raw = task.get("state")
        name = (ctx.render_str(raw) if raw is not None else None) or "SUCCESS"
        state = _EXIT.get(name.strip().upper())
        if state is None:
            raise TaskError(
                f"property 'state': {name!r} is not one of SUCCESS, WARNING, KILLED, FAILED, "
                "CANCELED"
            )
        return TaskOutcome(state="SUCCESS", update={"exit": state})


def _current_vars(ctx: TaskContext) -> Mapping[str, Any]:
    current = ctx.variables.get("vars")
    return current if isinstance(current, Mapping) else {}


class SetVariablesTask:
    """io.kestra.plugin.core.execution.SetVariables."""

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        if task.get("variables") is None:
            raise TaskError("property 'variables' is required")
        rendered = ctx.render(task["variables"])
        if isinstance(rendered, str):
            try:
                rendered = orjson.loads(rendered)
            except orjson.JSONDecodeError:
                pass
        if not isinstance(rendered, Mapping):
            raise TaskError(f"property 'variables' must be a map, got {rendered!r}")
        values = {str(key): value for key, value in rendered.items()}
        if not as_bool(ctx.render(task.get("overwrite", True))):
            existing = [key for key in values if key in _current_vars(ctx)]
            if existing:
                raise TaskError(
                    "`overwrite` is set to false and the following variables already exist: "
                    + ",".join(existing)
                )
        return TaskOutcome(state="SUCCESS", update={"setVariables": values})


class UnsetVariablesTask:
    """io.kestra.plugin.core.execution.UnsetVariables."""

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        if task.get("variables") is None:
            raise TaskError("property 'variables' is required")
        rendered = ctx.render(task["variables"])
        if isinstance(rendered, str):
            try:
                rendered = orjson.loads(rendered)
            except orjson.JSONDecodeError:
                rendered = [rendered]
        if not isinstance(rendered, list):
            raise TaskError(f"property 'variables' must be a list of keys, got {rendered!r}")
        keys = [to_text(key) for key in rendered]
        if not as_bool(ctx.render(task.get("ignoreMissing", False))):
            missing = [key for key in keys if not _holds(_current_vars(ctx), key.split("."))]
            if missing:
                raise TaskError(
                    f"variables not found: {', '.join(missing)} (set ignoreMissing: true to "
                    "ignore keys that are not there)"
                )
        return TaskOutcome(state="SUCCESS", update={"unsetVariables": keys})


def _holds(node: Any, path: list[str]) -> bool:
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True
