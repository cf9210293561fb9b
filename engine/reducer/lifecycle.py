"""The execution's own life: start, walk, end, kill, restart and replay.

After every command the whole tree is walked again from the flow's root scope (the walk is
idempotent), then the execution state follows: PAUSED while a task run is paused, and a
terminal state once the root scope has one. At the end, flow outputs are rendered (only for
a successful end), a CREATE_NEW_EXECUTION retry may turn FAILED into RETRIED and start the
next execution, and a subflow child tells its parent.
"""

from __future__ import annotations

from engine.errors import ExpressionError
from engine.flows.input_types import InvalidValue, parse_value
from engine.reducer import sla
from engine.reducer.context import FLOWABLES, Ctx
from engine.reducer.flow_loop import iteration_notice
from engine.reducer.flow_subflow import CORRELATION_LABEL, kill_child
from engine.reducer.ids import make_id, retry_execution_id, seconds_between
from engine.reducer.model import (
    JSON,
    Attempt,
    ChildExecutionEnded,
    ExecutionState,
    OutgoingCommand,
    StartExecution,
    TaskRun,
)
from engine.reducer.retry import CREATE_NEW_EXECUTION, RetryPolicy, next_retry, parse_retry
from engine.reducer.scope import enabled, run_list, run_scope, timeout_of
from engine.reducer.states import State


def new_state(cmd: StartExecution, now: str) -> ExecutionState:
    # Kestra: the flow's labels, then the execution's own (which win).
    flow_labels = cmd.flow.get("labels")
    if isinstance(flow_labels, list):
        flow_labels = {
            str(e.get("key")): e.get("value") for e in flow_labels if isinstance(e, dict)
        }
    labels: JSON = (
        {str(k): v for k, v in (flow_labels or {}).items()} if isinstance(flow_labels, dict) else {}
    )
    labels.update(cmd.labels)
    root = cmd.parent.root_execution_id if cmd.parent else None
    labels.setdefault(CORRELATION_LABEL, root or cmd.execution_id)
    created = cmd.created or now
    state = ExecutionState(
        execution_id=cmd.execution_id,
        namespace=cmd.namespace,
        flow_id=cmd.flow_id,
        flow=cmd.flow,
        state=State.CREATED,
        history=[[State.CREATED.value, created]],
        inputs=dict(cmd.inputs),
        labels=labels,
        trigger=cmd.trigger,
        parent=cmd.parent,
        scheduled=cmd.scheduled,
        original_execution_id=cmd.original_execution_id,
        original_start=cmd.original_start or created,
        retry_number=cmd.retry_number,
        loop=cmd.loop,
    )
    for data in cmd.seed_task_runs or []:
        run = TaskRun.from_dict(data)
        run.position = state.next_position
        state.next_position += 1
        state.task_runs[run.id] = run
    return state


def begin(ctx: Ctx) -> None:
    ctx.set_exec_state(State.RUNNING)
    if ctx.state.flow.get("sla") and ctx.state.loop is None:  # the parent holds the SLA
        sla.arm(ctx)
    advance(ctx)


def advance(ctx: Ctx) -> None:
    """Walk the tree from the root; follow with the execution's state."""
    st = ctx.state
    if st.state.is_terminal:
        if st.after:
            _run_after(ctx)
        return
    if st.state in (State.CREATED, State.QUEUED):
        return
    if st.state == State.RESTARTED:  # ExecutorService.handleRestart, before handleEnd
        ctx.set_exec_state(State.RUNNING)
    if st.flow.get("sla") and st.loop is None:
        ending = sla.check_assertions(ctx)
        if ending is not None:
            end(ctx, ending)
            return
    # A Loop iteration runs only the Loop's tasks (Kestra 2.0's LOOP sub-execution).
    root = ctx.tasks.get(str(st.loop["task_id"]), {}) if st.loop is not None else st.flow
    final = run_scope(ctx, None, root.get("tasks"), root.get("errors"), root.get("finally"), [])
    if final is not None:
        end(ctx, final)
        return
    if st.state == State.KILLING:
        return
    paused = any(r.state == State.PAUSED for r in st.task_runs.values())
    if paused and st.state == State.RUNNING:
        ctx.set_exec_state(State.PAUSED)
        if st.loop is not None:
            ctx.decision.commands.append(iteration_notice(st, State.PAUSED, None, None))
    elif not paused and st.state == State.PAUSED:
        ctx.set_exec_state(State.RUNNING)
        if st.loop is not None:
            ctx.decision.commands.append(iteration_notice(st, State.RUNNING, None, None))


def _render_outputs(ctx: Ctx) -> JSON | None:
    """The flow's ``outputs``, rendered and typed (ExecutorService.onEnd +
    FlowInputOutput.typedOutputs); raises ValueError/ExpressionError with Kestra's message."""
    specs = ctx.state.flow.get("outputs")
    if not isinstance(specs, list) or not specs:
        return None
    variables = ctx.variables(None)
    out: JSON = {}
    for spec in specs:
        if isinstance(spec, dict) and "id" in spec:
            value = ctx.renderer.render_value(spec.get("value"), variables)
            out[str(spec["id"])] = typed_output(spec, value)
    return out


# Output types whose value may be null (FlowInputOutput.parseType passes them through).
_NULLABLE = frozenset({"STRING", "ENUM", "SELECT", "EMAIL"})


def typed_output(spec: JSON, value: object) -> object:
    """One flow output of its declared ``type`` (Kestra's parseType; no type: as rendered)."""
    kind = str(spec.get("type") or "").upper()
    if not kind:
        return value
    name = spec.get("id")
    if value is None:
        if kind in _NULLABLE:
            return None
        raise ValueError(f"Invalid output for `{name}`, Expected `{kind}` but received `null`")
    try:
        return parse_value(spec, value)
    except InvalidValue as exc:
        raise ValueError(
            f"Invalid output for `{name}`, {exc.message}, but received `{value}`"
        ) from exc


def _new_execution_policy(ctx: Ctx) -> RetryPolicy | None:
    st = ctx.state
    flow_policy = parse_retry(st.flow.get("retry"))
    if flow_policy is not None and flow_policy.behavior == CREATE_NEW_EXECUTION:
        return flow_policy
    for run in st.task_runs.values():
        if run.state == State.FAILED:
            policy = parse_retry(ctx.task_of(run).get("retry"))
            if policy is not None and policy.behavior == CREATE_NEW_EXECUTION:
                return policy
    return None


def end(ctx: Ctx, final: State, *, exited: bool = False) -> None:
    """End the execution: its flow outputs (any end; a failure to render or type them fails
    the execution, as ExecutorService.onEnd does), a CREATE_NEW_EXECUTION retry, and the
    parent of a subflow child told. ``exited`` (an Exit task, see updates.py) skips the flow
    outputs and the retry as a new execution, as Kestra's executor does."""
    st = ctx.state
    if st.killing:
        final = State.KILLED
    if st.loop is not None:
        _end_iteration(ctx, final)
        return
    outputs_error: str | None = None
    if not exited:
        try:
            st.outputs = _render_outputs(ctx)
        except (ExpressionError, ValueError, TypeError) as exc:
            outputs_error = str(getattr(exc, "message", exc))
            ctx.log("ERROR", f"Failed to render output values: {outputs_error}")
            st.outputs = None
            if final != State.KILLED:
                final = State.FAILED
    if final == State.FAILED and not exited and _retry_as_new_execution(ctx):
        final = State.RETRIED
        _mark_retried(ctx)
    ctx.set_exec_state(final)
    for timer_id in list(st.timers):
        ctx.cancel(timer_id)
    if final != State.RETRIED:
        st.after = [str(t["id"]) for t in _after_end_tasks(ctx) if isinstance(t.get("id"), str)]
        if st.after:
            _run_after(ctx)
    parent = st.parent
    if parent is not None and parent.wait and final != State.RETRIED:
        sent, error = _outputs_for_parent(ctx, outputs_error)
        command = ChildExecutionEnded(
            command_id=make_id("ended", st.execution_id, len(st.history)),
            execution_id=parent.execution_id,
            child_execution_id=st.execution_id,
            parent_task_run_id=parent.task_run_id,
            state=final.value,
            outputs=sent,
            outputs_error=error,
        )
        ctx.decision.commands.append(OutgoingCommand(command))


def _end_iteration(ctx: Ctx, final: State) -> None:
    """A Loop iteration ended: its declared ``outputs`` (a failure to render or type them
    fails it), then its parent's Loop is told. No flow outputs, listeners, afterExecution or
    retry as a new execution: those belong to the parent (Kestra's LOOP kind)."""
    st = ctx.state
    loop = ctx.tasks.get(str(st.loop["task_id"] if st.loop else ""), {})
    outputs: JSON | None = None
    error: str | None = None
    specs = loop.get("outputs")
    if isinstance(specs, list) and specs and final != State.KILLED:
        try:
            variables = ctx.variables(None)
            outputs = {}
            for spec in specs:
                if isinstance(spec, dict) and "id" in spec:
                    value = ctx.renderer.render_value(spec.get("value"), variables)
                    outputs[str(spec["id"])] = typed_output(spec, value)
        except (ExpressionError, ValueError, TypeError) as exc:
            error = str(getattr(exc, "message", exc))
            ctx.log("ERROR", f"Failed to render output values: {error}")
            outputs = None
            final = State.FAILED
    st.outputs = outputs
    ctx.set_exec_state(final)
    for timer_id in list(st.timers):
        ctx.cancel(timer_id)
    ctx.decision.commands.append(iteration_notice(st, final, outputs, error))


def _after_end_tasks(ctx: Ctx) -> list[JSON]:
    """The tasks run once the execution ended: those of each listener whose conditions hold
    (ConditionService.findValidListeners, conditions tested on the ended execution), then
    ``afterExecution`` (Kestra 0.21+)."""
    from triggers.conditions import condition_scope, simple_holds  # pure; only needed here

    st = ctx.state
    out: list[JSON] = []
    listeners = st.flow.get("listeners")
    if isinstance(listeners, list) and listeners:
        summary = st.summary()
        flow_ref = {"id": st.flow_id, "namespace": st.namespace}
        scope = condition_scope(flow_ref, summary, {})
        for listener in listeners:
            if not isinstance(listener, dict):
                continue
            conditions = [c for c in listener.get("conditions") or [] if isinstance(c, dict)]
            if all(simple_holds(c, summary, scope) for c in conditions):
                out.extend(t for t in listener.get("tasks") or [] if isinstance(t, dict))
    after = st.flow.get("afterExecution")
    out.extend(t for t in (after if isinstance(after, list) else []) if isinstance(t, dict))
    return out


def _run_after(ctx: Ctx) -> None:
    """Advance the after-end tasks, one after the other (ExecutorService.handleListeners:
    resolveSequentialNexts); the execution's state no longer changes."""
    st = ctx.state
    tasks = [ctx.tasks[t] for t in st.after if t in ctx.tasks]
    kids = ctx.children(None, [], None)
    run_list(ctx, None, enabled(tasks), kids, [], None, "listeners", None)


def _outputs_for_parent(ctx: Ctx, outputs_error: str | None) -> tuple[JSON | None, str | None]:
    """Subflow.createSubflowExecutionResult, rendered in the child: the flow's typed outputs,
    else the parent task's deprecated ``outputs`` map; (outputs or None, error or None)."""
    st = ctx.state
    if outputs_error is not None:
        return None, outputs_error
    if st.outputs is not None:
        return dict(st.outputs), None
    legacy = st.parent.outputs if st.parent else None
    if not legacy:
        return None, None
    try:
        rendered = ctx.renderer.render_value(legacy, ctx.variables(None))
    except (ExpressionError, ValueError, TypeError) as exc:
        return None, str(getattr(exc, "message", exc))
    return (rendered if isinstance(rendered, dict) else {}), None


def _mark_retried(ctx: Ctx) -> None:
    """markWithTaskRunAs(RETRIED, markParents): each failed runnable (or Subflow) run and
    the runs above it are RETRIED, as the execution is."""
    st = ctx.state
    for run in list(st.task_runs.values()):
        if run.state != State.FAILED:
            continue
        if FLOWABLES.get(run.type) is not None and not run.type.endswith(".Subflow"):
            continue
        node: TaskRun | None = run
        while node is not None:
            ctx.set_state(node, State.RETRIED)
            node = st.task_runs.get(node.parent_id) if node.parent_id else None


def _retry_as_new_execution(ctx: Ctx) -> bool:
    st = ctx.state
    if st.killing:
        return False
    try:
        policy = _new_execution_policy(ctx)
    except ValueError:
        return False
    if policy is None:
        return False
    first = st.original_start or st.history[0][1]
    wait = next_retry(policy, st.retry_number + 1, first, ctx.now, st.execution_id)
    if wait is None:
        return False
    original = st.original_execution_id or st.execution_id
    new_id = retry_execution_id(original, st.retry_number + 1)
    command = StartExecution(
        command_id=make_id("start", new_id),
        execution_id=new_id,
        namespace=st.namespace,
        flow_id=st.flow_id,
        flow=st.flow,
        inputs=st.inputs,
        labels=st.labels,
        trigger=st.trigger,
        parent=st.parent,
        created=ctx.now,
        scheduled=_plus(ctx, wait),
        original_execution_id=original,
        original_start=first,
        retry_number=st.retry_number + 1,
    )
    ctx.decision.commands.append(OutgoingCommand(command))
    ctx.log("INFO", f"execution failed: retrying as new execution {new_id} in {wait}s")
    return True


def _plus(ctx: Ctx, seconds: float) -> str:
    from engine.reducer.ids import add_seconds

    return add_seconds(ctx.now, seconds)


def kill(ctx: Ctx) -> None:
    st = ctx.state
    if st.state.is_terminal:
        ctx.log("WARN", f"kill ignored: execution {st.execution_id} is already {st.state.value}")
        return
    st.killing = True
    if st.state in (State.CREATED, State.QUEUED):
        ctx.set_exec_state(State.KILLED)
        return
    ctx.set_exec_state(State.KILLING)
    for run in list(st.task_runs.values()):
        if run.state.is_terminal:
            continue
        handler = FLOWABLES.get(run.type)
        if handler is not None:
            if handler.on_kill(ctx, run):
                ctx.set_state(run, State.KILLED)
                continue
            if run.state in (State.PAUSED, State.RETRYING) or run.data.get("waiting"):
                ctx.set_state(run, State.KILLED)
                ctx.cancel_for(run)
            if run.data.get("child") and not run.state.is_terminal:
                kill_child(ctx, run)
                ctx.set_state(run, State.KILLED)
            continue
        attempt = run.attempts[-1] if run.attempts else None
        if attempt is not None and attempt.state == State.RUNNING:
            ctx.stop(run, "killed")
            continue
        if attempt is not None and attempt.state == State.CREATED:
            ctx.stop(run, "killed")
            attempt.state = State.KILLED
            attempt.history.append([State.KILLED.value, ctx.now])
        ctx.cancel_for(run)
        ctx.set_state(run, State.KILLED)
    advance(ctx)


def restart(ctx: Ctx) -> None:
    """Restart a FAILED/KILLED execution from its failed task runs, in place."""
    st = ctx.state
    if st.state not in (State.FAILED, State.KILLED):
        ctx.log("WARN", f"restart refused: execution is {st.state.value}, not FAILED or KILLED")
        return
    st.killing = False
    st.generation += 1
    st.after = []
    ctx.set_exec_state(State.RESTARTED)
    restart_subtree(ctx, None)
    advance(ctx)


def restart_subtree(ctx: Ctx, root: TaskRun | None) -> None:
    """Put failed runs under ``root`` (None: the whole execution) back to work: runnables get
    a new attempt, failed flowables run again, errors/finally runs of failed scopes go."""
    st = ctx.state
    scope = ctx.descendants(root.id) if root else list(st.task_runs.values())
    failed = [r for r in scope if r.state.is_failed]
    failed_ids = {r.id for r in failed} | ({root.id} if root else set())
    doomed = [
        r
        for r in scope
        if (
            r.branch in ("errors", "finally") and (r.parent_id in failed_ids or r.parent_id is None)
        )
        or r.branch == "listeners"  # run again, after the new end
    ]
    for run in doomed:
        for gone in [run, *ctx.descendants(run.id)]:
            ctx.remove_run(gone)
    for run in failed:
        if run.id not in st.task_runs:
            continue
        handler = FLOWABLES.get(run.type)
        has_failed_child = any(
            k.state.is_failed for k in st.task_runs.values() if k.parent_id == run.id
        )
        ctx.set_state(run, State.RESTARTED)
        if handler is None:
            task = ctx.task_of(run)
            ctx.dispatch(run, task, timeout_of(task))
        elif handler.on_restart(ctx, run):  # it restarts its own children (a Loop)
            ctx.set_state(run, State.RUNNING)
        elif has_failed_child or run.type.endswith(".Pause"):
            ctx.set_state(run, State.RUNNING)
            run.data.pop("waiting", None)
        else:  # the flowable itself failed (bad condition, values...): make it anew
            for gone in [run, *ctx.descendants(run.id)]:
                ctx.remove_run(gone)


def replay(ctx: Ctx, task_run_id: str | None, new_execution_id: str) -> None:
    """Start ``new_execution_id`` from a copy of this execution up to ``task_run_id``."""
    st = ctx.state
    seed: list[JSON] = []
    if task_run_id is not None:
        target = st.task_runs.get(task_run_id)
        if target is None:
            ctx.log("ERROR", f"replay refused: unknown task run {task_run_id}")
            return
        dropped = {target.id} | {r.id for r in ctx.descendants(target.id)}
        ancestors: set[str] = set()
        parent_id = target.parent_id
        while parent_id:
            ancestors.add(parent_id)
            parent = st.task_runs.get(parent_id)
            parent_id = parent.parent_id if parent else None
        order = list(st.task_runs)
        cut = order.index(target.id)
        for index, run_id in enumerate(order):
            run = st.task_runs[run_id]
            if run_id in dropped or (index > cut and run.parent_id not in ancestors | {None}):
                continue
            if index > cut:
                continue
            data = run.to_dict()
            if run_id in ancestors:
                data["state"] = State.RUNNING.value
                data["history"].append([State.RUNNING.value, ctx.now])
            seed.append(data)
    command = StartExecution(
        command_id=make_id("start", new_execution_id),
        execution_id=new_execution_id,
        namespace=st.namespace,
        flow_id=st.flow_id,
        flow=st.flow,
        inputs=st.inputs,
        labels=st.labels,
        trigger=st.trigger,
        created=ctx.now,
        seed_task_runs=seed,
        original_execution_id=st.execution_id,
        loop=st.loop,  # a replayed Loop iteration replaces the iteration in its loop
    )
    ctx.decision.commands.append(OutgoingCommand(command))
    ctx.log("INFO", f"replayed into execution {new_execution_id} ({len(seed)} task runs kept)")


def elapsed_since_start(ctx: Ctx) -> float:
    return seconds_between(ctx.state.history[0][1], ctx.now)


__all__ = ["Attempt", "advance", "begin", "end", "kill", "new_state", "replay", "restart"]
