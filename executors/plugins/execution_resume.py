"""``io.kestra.plugin.core.execution.Resume``: resume a paused execution from a flow.

Kestra 0.20 (``plugin/core/execution/Resume``, ``PluginUtilsService
.executionFromTaskParameters``, ``ExecutionService.resume``): ``executionId`` names the
execution (default: the current one); ``namespace`` and ``flowId`` may only be given with
``executionId``, and then both ("Both `namespace` and `flowId` must be set when `executionId`
is set."); ``inputs`` (rendered) become the paused task's ``onResume`` outputs. No outputs.

The executor runs it (:mod:`engine.reducer.flow_resume`): a Resume command is sent to the
execution, as the API's resume does. This class declares the task (validation, JSON Schema,
``plugins list``); a worker never receives it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from executors.base import TaskContext, TaskError
from executors.plugin import TaskPlugin
from schemas.flow.common import Str


class ExecutionResume(TaskPlugin):
    """Resume a paused execution (the current one by default), with onResume inputs."""

    family: ClassVar[str] = "core"

    type: Literal["io.kestra.plugin.core.execution.Resume"]
    namespace: Str | None = None
    flowId: Str | None = None
    executionId: Str | None = None
    inputs: dict[str, Any] | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        raise TaskError("execution.Resume is run by the executor, not by a worker")


PLUGINS: list[type[TaskPlugin]] = [ExecutionResume]
