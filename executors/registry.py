"""Canonical task type name -> the executor that runs it.

A worker asks :meth:`Registry.run` to run a job's task: the type is looked up by any accepted
name (canonical, legacy alias or short name, see :mod:`schemas.types`), and an unknown type
becomes a FAILED outcome that names the close matches (or says it is a Kestra plugin nobody
provides) instead of a crash. :func:`add_plugins` adds every plugin type (:mod:`schemas.plugins`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from executors import core, core_execution, core_loop
from executors.base import TaskContext, TaskExecutor, TaskOutcome, run_task
from executors.plugin import PluginExecutor
from schemas.plugins import plugins
from schemas.types import canonical_type, known_names, unknown_type_problem


class Registry:
    """Executors by canonical type name; built once by the component that wires a worker."""

    def __init__(self, executors: Mapping[str, TaskExecutor] | None = None) -> None:
        self._executors: dict[str, TaskExecutor] = {}
        for name, executor in (executors or {}).items():
            self.register(name, executor)

    def register(self, type_name: str, executor: TaskExecutor) -> None:
        """Register under the canonical form of ``type_name`` (or as written when unknown)."""
        self._executors[canonical_type(type_name) or type_name] = executor

    def get(self, type_name: str) -> TaskExecutor | None:
        return self._executors.get(canonical_type(type_name) or type_name)

    def types(self) -> list[str]:
        return sorted(self._executors)

    def unknown(self, type_name: str) -> str:
        """Why this worker cannot run ``type_name``: a typo, or a plugin nobody provides."""
        if canonical_type(type_name) is not None:
            return f"task type '{type_name}': no task executor of this worker handles it"
        candidates = sorted(set(self._executors) | set(known_names("runnable")))
        return unknown_type_problem(type_name, "task", candidates)[0]

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        """Run ``task``; never raises (except the caller's own cancellation)."""
        type_name = task.get("type")
        executor = self.get(type_name) if isinstance(type_name, str) else None
        if executor is None:
            message = self.unknown(type_name) if isinstance(type_name, str) else "no type"
            message += f" (task '{task.get('id')}')"
            ctx.log("ERROR", message)
            return TaskOutcome(state="FAILED", error=message)
        return await run_task(executor, task, ctx)


def add_plugins(registry: Registry) -> Registry:
    """Register every plugin task type (schemas.plugins) in ``registry``; returns it.
    Polling triggers are the trigger runtime's (triggers.polling), not a worker's."""
    from executors.plugin import TaskPlugin

    for info in plugins():
        if issubclass(info.cls, TaskPlugin):
            registry.register(info.type, PluginExecutor(info.cls))
    return registry


def core_registry() -> Registry:
    """A registry holding the core runnable tasks (executors.core)."""
    return Registry(
        {
            "io.kestra.plugin.core.log.Log": core.LogTask(),
            "io.kestra.plugin.core.log.Fetch": core.FetchTask(),
            "io.kestra.plugin.core.debug.Return": core.ReturnTask(),
            "io.kestra.plugin.core.debug.Echo": core.EchoTask(),
            "io.kestra.plugin.core.output.OutputValues": core.OutputValuesTask(),
            "io.kestra.plugin.core.execution.Fail": core.FailTask(),
            "io.kestra.plugin.core.execution.Labels": core.LabelsTask(),
            "io.kestra.plugin.core.execution.Exit": core_execution.ExitTask(),
            "io.kestra.plugin.core.execution.SetVariables": core_execution.SetVariablesTask(),
            "io.kestra.plugin.core.execution.UnsetVariables": core_execution.UnsetVariablesTask(),
            "io.kestra.plugin.core.flow.Sleep": core.SleepTask(),
            "io.kestra.plugin.core.kv.Set": core.KVSetTask(),
            "io.kestra.plugin.core.kv.Get": core.KVGetTask(),
            "io.kestra.plugin.core.kv.Delete": core.KVDeleteTask(),
            "io.kestra.plugin.core.trigger.Toggle": core.ToggleTask(),
            # Reads a Loop's values from its file (the executor cannot read storage).
            "io.kestra.plugin.core.flow.Loop": core_loop.LoopValuesTask(),
        }
    )
