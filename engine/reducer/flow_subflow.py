"""Subflow: start another flow's execution and (with ``wait``, the default) wait for its end.

Kestra 0.20: ``plugin/core/flow/Subflow.java``, ``runners/ExecutableUtils.java``
(``subflowExecution``, ``guessState``), ``ExecutorService.handleExecutableTask`` and
``JdbcExecutor.sendSubflowExecutionResult``.

- The child: ``namespace``/``flowId`` rendered (``revision`` pinned when given), ``inputs``
  rendered then validated and typed against the child flow's inputs like any execution's
  (:func:`resolve_child`; a missing required input, an unknown or disabled flow fails the
  parent's task run with Kestra's message, logged at ERROR on it), labels: the parent's when
  ``inheritLabels``, else only its system labels, plus the task's ``labels`` rendered;
  ``scheduleDate`` rendered (the child waits until then). Its ``trigger`` is
  ``{id: <task id>, type: <task type>, variables: {executionId, namespace, flowId,
  flowRevision}}`` of the parent.
- The reducer cannot read the flow store, so it emits an :class:`OutgoingCommand` with
  ``resolve_flow``; the processor fills in the child's flow (:func:`resolve_child`) and
  produces the StartExecution. The child's end comes back as ChildExecutionEnded. Every try
  is one attempt with its own deterministic child execution id, so a retry starts a fresh
  child.
- The task run's outputs: ``executionId``, ``state`` (the child's final state) and
  ``outputs``: the child flow's ``outputs`` (rendered and typed in the child when it ends),
  or, for a child flow without outputs, the task's deprecated ``outputs`` map rendered in the
  child; absent when neither exists. When they cannot be extracted, Kestra logs "Failed to
  extract outputs with the error: '...'" (WARN) and the task run fails (allowFailure:
  WARNING, with allowWarning: SUCCESS) with outputs ``executionId`` and ``state`` only.
- The task run's state is ``guessState``: with ``transmitFailed`` (default true) a FAILED,
  PAUSED, KILLED or WARNING child gives that state (FAILED -> WARNING with allowFailure,
  WARNING -> SUCCESS with allowWarning); any other end, or ``transmitFailed: false``, gives
  SUCCESS. A FAILED child with a task ``retry`` (RETRY_FAILED_TASK) starts a new child.
- ``wait: false``: the task run ends SUCCESS at once with ``executionId`` and ``state``
  CREATED.
- ``system.correlationId`` always names the top execution of the chain.
"""

from __future__ import annotations

from engine.flows.inputs import InputValidationError, flow_default_renderer, resolve_inputs
from engine.reducer.commands import ChildExecutionEnded, Command
from engine.reducer.context import Ctx, Flowable, register
from engine.reducer.ids import child_execution_id, make_id
from engine.reducer.model import (
    JSON,
    Attempt,
    Kill,
    OutgoingCommand,
    ParentRef,
    StartExecution,
    TaskRun,
    Timer,
)
from engine.reducer.retry import RETRY_FAILED_TASK, next_retry
from engine.reducer.scope import finish, task_retry
from engine.reducer.states import State
from engine.reducer.trigger import execution_trigger

FLOW = "io.kestra.plugin.core.flow."
CORRELATION_LABEL = "system.correlationId"


def child_id_of(run: TaskRun) -> str | None:
    value = run.data.get("child")
    return str(value) if value else None


@register
class SubflowTask(Flowable):
    types = (f"{FLOW}Subflow",)

    def start(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        ctx.set_state(run, State.RUNNING)
        self._launch(ctx, run, task)

    def _launch(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        st = ctx.state
        variables = ctx.variables(run, task)
        namespace = ctx.renderer.render(task.get("namespace", st.namespace), variables)
        flow_id = ctx.renderer.render(task.get("flowId"), variables)
        inputs = ctx.renderer.render_value(task.get("inputs") or {}, variables)
        labels: JSON = dict(st.labels) if task.get("inheritLabels") else {}
        extra = ctx.renderer.render_value(task.get("labels") or {}, variables)
        if isinstance(extra, list):
            extra = {str(e.get("key")): e.get("value") for e in extra if isinstance(e, dict)}
        labels.update(extra if isinstance(extra, dict) else {})
        root = st.labels.get(CORRELATION_LABEL) or st.execution_id
        labels[CORRELATION_LABEL] = root
        scheduled = task.get("scheduleDate")
        if scheduled is not None:
            scheduled = _instant(str(ctx.renderer.render(scheduled, variables)))
        run.attempts.append(Attempt(State.RUNNING, [[State.RUNNING.value, ctx.now]]))
        child = child_execution_id(st.execution_id, run.id, len(run.attempts))
        run.data["child"] = child
        wait = bool(task.get("wait", True))
        parent = ParentRef(
            execution_id=st.execution_id,
            task_run_id=run.id,
            namespace=st.namespace,
            flow_id=st.flow_id,
            wait=wait,
            transmit_failed=bool(task.get("transmitFailed", True)),
            outputs=task.get("outputs") if isinstance(task.get("outputs"), dict) else None,
            root_execution_id=str(root),
        )
        command = StartExecution(
            command_id=make_id("start", child),
            execution_id=child,
            namespace=namespace,
            flow_id=flow_id,
            flow={},
            inputs=inputs if isinstance(inputs, dict) else {},
            labels=labels,
            trigger=execution_trigger(
                run.task_id,
                run.type,
                {
                    "executionId": st.execution_id,
                    "namespace": st.namespace,
                    "flowId": st.flow_id,
                    "flowRevision": st.flow.get("revision"),
                },
            ),
            parent=parent,
            created=ctx.now,
            scheduled=scheduled,
        )
        resolve: JSON = {"namespace": namespace, "flowId": flow_id}
        if task.get("revision") is not None:
            resolve["revision"] = task["revision"]
        ctx.decision.commands.append(OutgoingCommand(command, resolve))
        if not wait:
            ctx.set_outputs(run, {"executionId": child, "state": State.CREATED.value})
            run.attempts[-1].state = State.SUCCESS
            run.attempts[-1].history.append([State.SUCCESS.value, ctx.now])
            finish(ctx, run, task, State.SUCCESS)
        else:
            ctx.set_outputs(run, {"executionId": child})

    def on_child_ended(
        self, ctx: Ctx, run: TaskRun, task: JSON, ended: ChildExecutionEnded
    ) -> None:
        child, state = ended.child_execution_id, State(ended.state)
        if child != child_id_of(run) or run.state.is_terminal:
            ctx.log("WARN", f"ignoring the end of child execution {child}: not awaited", run)
            return
        attempt = run.attempts[-1]
        if ended.error is not None:  # the child never started
            ctx.log("ERROR", ended.error, run)
            attempt.state = State.FAILED
            attempt.history.append([State.FAILED.value, ctx.now])
            ctx.set_outputs(run, {"executionId": child})
            finish(ctx, run, task, State.FAILED)
            return
        attempt.state = state
        attempt.history.append([state.value, ctx.now])
        outputs: JSON = {"executionId": child, "state": state.value}
        if ended.outputs_error is not None:
            ctx.set_outputs(run, outputs)
            ctx.log(
                "WARN", f"Failed to extract outputs with the error: '{ended.outputs_error}'", run
            )
            finish(ctx, run, task, State.FAILED)
            return
        if ended.outputs is not None:
            outputs["outputs"] = ended.outputs
        ctx.set_outputs(run, outputs)
        if state == State.FAILED and not ctx.state.killing:
            policy = task_retry(ctx, task)
            if policy is not None and policy.behavior == RETRY_FAILED_TASK:
                wait = next_retry(policy, len(run.attempts), run.history[0][1], ctx.now, run.id)
                if wait is not None:
                    ctx.set_state(run, State.RETRYING)
                    timer_id = make_id("subretry", run.id, len(run.attempts))
                    ctx.arm(timer_id, wait, "subflow_retry", {"run": run.id})
                    return
        finish(ctx, run, task, guess_state(state, bool(task.get("transmitFailed", True))))

    def on_timer(self, ctx: Ctx, run: TaskRun, task: JSON, timer: Timer) -> None:
        if run.state == State.RETRYING and not ctx.state.killing:
            ctx.set_state(run, State.RUNNING)
            self._launch(ctx, run, task)


def guess_state(child: State, transmit_failed: bool) -> State:
    """ExecutableUtils.guessState (allowFailure/allowWarning are applied by ``finish``)."""
    if transmit_failed and child in (State.FAILED, State.PAUSED, State.KILLED, State.WARNING):
        return child
    return State.SUCCESS


def _instant(text: str) -> str:
    """A rendered ``scheduleDate`` as the reducer's UTC time text."""
    from datetime import UTC, datetime

    from engine.reducer.ids import iso

    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return iso(value if value.tzinfo else value.replace(tzinfo=UTC))


def resolve_child(cmd: StartExecution, flow: JSON | None, ref: JSON) -> Command:
    """The processor's part of starting a subflow child (it alone reads the flow store):
    the StartExecution with its flow and typed inputs, or, when the child cannot start, the
    ChildExecutionEnded that fails the parent's task run with Kestra's message."""
    namespace = str(ref.get("namespace"))
    flow_id = str(ref.get("flowId") or ref.get("flow_id"))
    error: str | None = None
    if flow is None:
        revision = ref.get("revision") or 0
        error = f"Unable to find flow '{namespace}'.'{flow_id}' with revision '{revision}'"
    elif flow.get("disabled") is True:
        error = "Cannot execute a flow which is disabled"
    else:
        try:
            cmd.inputs = resolve_inputs(
                flow.get("inputs"),
                cmd.inputs,
                mode="typed",
                render_default=flow_default_renderer(flow),
                flow_id=flow_id,
            )
        except InputValidationError as exc:
            error = exc.message
    if error is None:
        assert flow is not None
        cmd.flow = flow
        return cmd
    if cmd.parent is None:
        raise ValueError(f"subflow {namespace}.{flow_id} of a command without parent: {error}")
    return ChildExecutionEnded(
        command_id=make_id("unresolved", cmd.execution_id),
        execution_id=cmd.parent.execution_id,
        child_execution_id=cmd.execution_id,
        parent_task_run_id=cmd.parent.task_run_id,
        state=State.FAILED.value,
        outputs=None,
        error=error,
    )


def kill_child(ctx: Ctx, run: TaskRun) -> None:
    """Ask a running child execution to stop (the parent is being killed)."""
    child = child_id_of(run)
    if child:
        command = Kill(command_id=make_id("kill", child, ctx.now), execution_id=child)
        ctx.decision.commands.append(OutgoingCommand(command))
