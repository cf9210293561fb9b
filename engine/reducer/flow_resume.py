"""``io.kestra.plugin.core.execution.Resume``, run by the reducer (it only sends a command).

Kestra 0.20 (``plugin/core/execution/Resume``, ``PluginUtilsService
.executionFromTaskParameters``, ``ExecutionService.resume``): the target is ``executionId``
(rendered), else the current execution; ``namespace``/``flowId`` are allowed only with
``executionId``, and then both. The target is sent a Resume command with the rendered
``inputs``, as ``POST /executions/{id}/resume`` sends it; the task run ends SUCCESS with one
attempt. Resuming the current execution when none of its task runs is paused fails the task
("The execution is not paused"); another execution that is not paused logs that it ignored the
resume (Kestra fails the task there: the reducer cannot read another execution's state).
"""

from __future__ import annotations

from engine.errors import ExpressionError
from engine.reducer.commands import Resume
from engine.reducer.context import Ctx, Flowable, register
from engine.reducer.ids import make_id
from engine.reducer.model import JSON, Attempt, OutgoingCommand, TaskRun
from engine.reducer.scope import fail, finish
from engine.reducer.states import State


@register
class ResumeTask(Flowable):
    types = ("io.kestra.plugin.core.execution.Resume",)

    def start(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        ctx.set_state(run, State.RUNNING)
        run.attempts.append(Attempt(State.RUNNING, [[State.RUNNING.value, ctx.now]]))
        try:
            target, inputs = self._target(ctx, run, task)
        except (ExpressionError, ValueError) as exc:
            self._end(ctx, run, State.FAILED)
            fail(ctx, run, str(getattr(exc, "message", exc)))
            return
        st = ctx.state
        if target == st.execution_id and not any(
            r.state == State.PAUSED for r in st.task_runs.values()
        ):
            self._end(ctx, run, State.FAILED)
            fail(ctx, run, "The execution is not paused")
            return
        command = Resume(
            command_id=make_id("resume", run.id, len(run.attempts)),
            execution_id=target,
            inputs=inputs,
        )
        ctx.decision.commands.append(OutgoingCommand(command))
        self._end(ctx, run, State.SUCCESS)
        finish(ctx, run, task, State.SUCCESS)

    @staticmethod
    def _end(ctx: Ctx, run: TaskRun, state: State) -> None:
        attempt = run.attempts[-1]
        attempt.state = state
        attempt.history.append([state.value, ctx.now])

    @staticmethod
    def _target(ctx: Ctx, run: TaskRun, task: JSON) -> tuple[str, JSON]:
        variables = ctx.variables(run, task)
        namespace, flow_id = task.get("namespace"), task.get("flowId")
        if task.get("executionId") is None:
            if namespace is not None or flow_id is not None:
                raise ValueError(
                    "`namespace` and `flowId` should only be set when `executionId` is set."
                )
            target = ctx.state.execution_id
        else:
            if (namespace is None) != (flow_id is None):
                raise ValueError(
                    "Both `namespace` and `flowId` must be set when `executionId` is set."
                )
            target = str(ctx.renderer.render(task["executionId"], variables)).strip()
            if not target:
                raise ValueError("`executionId` rendered to nothing")
        inputs = ctx.renderer.render_value(task.get("inputs") or {}, variables)
        return target, inputs if isinstance(inputs, dict) else {}
