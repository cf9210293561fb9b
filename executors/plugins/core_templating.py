"""``io.kestra.plugin.core.templating.TemplatedTask``: render a task's YAML, then run that task.

From Kestra 1.x's ``TemplatedTask`` (alias ``io.kestra.core.tasks.templating.TemplatedTask``):
``spec`` (required) is rendered, read as the YAML of one task and run in this task's place
(same variables, working directory, storage, logs); its outputs are this task's. The task
must be runnable (a flowable one is refused, and so is another TemplatedTask). The rendered
task is validated exactly as a task of a flow, so a mistake names the property; an ``id``
left out of the spec is this task's own.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import yaml

from executors.base import TaskContext, TaskError, TaskOutcome
from executors.plugin import TaskPlugin, render_str
from schemas.flow.common import Str

_SELF = "io.kestra.plugin.core.templating.TemplatedTask"


class TemplatedTask(TaskPlugin):
    """Render a task specification (YAML) and run it."""

    family: ClassVar[str] = "core"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.core.tasks.templating.TemplatedTask",)
    short: ClassVar[str | None] = "templated_task"

    type: Literal["io.kestra.plugin.core.templating.TemplatedTask"]
    spec: Str

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        # Imported here: the flow loader imports every plugin module, this one included.
        from engine.flows import FlowValidationError, flow_to_dict, load_flow
        from schemas.types import canonical_type, type_kind

        text = render_str(ctx, self.spec, "spec", required=True) or ""
        try:
            task = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise TaskError(f"property 'spec' is not valid YAML: {exc}") from None
        if not isinstance(task, dict) or not isinstance(task.get("type"), str):
            raise TaskError("property 'spec' must render to the YAML map of one task with a type")
        task.setdefault("id", self.id)
        canonical = canonical_type(task["type"])
        if canonical == _SELF:
            raise TaskError(f"The templated task cannot be of type '{_SELF}'")
        if canonical is not None and type_kind(canonical) == "flowable":
            raise TaskError("The templated task must be a runnable task")
        wrapper = {"id": "templated", "namespace": ctx.namespace or "templated", "tasks": [task]}
        try:
            flow = load_flow(yaml.safe_dump(wrapper, sort_keys=False), "spec")
        except FlowValidationError as exc:
            problems = "; ".join(
                f"{p.path.removeprefix('tasks[0].')}: {p.message}" for p in exc.problems
            )
            raise TaskError(f"the templated task is invalid: {problems}") from None
        rendered: dict[str, Any] = flow_to_dict(flow)["tasks"][0]
        if ctx.registry is None:
            raise TaskError("TemplatedTask needs the worker's task executors, and has none here")
        ctx.log("DEBUG", f"Running the templated task {rendered['id']} ({rendered['type']})")
        # The inner run logs its own error; its outcome (outputs, or failure) is this task's.
        outcome: TaskOutcome = await ctx.registry.run(rendered, ctx)
        return outcome


PLUGINS = [TemplatedTask]
