"""``decide(state, command, now) -> Decision``: the executor's pure core.

No I/O, no clock, no randomness, and it never raises: an error in a user's expression fails
that task run with the message; a bug of ours fails the execution with an ERROR log event.
One ``_apply_<command>`` per command type; an unknown type is answered with a log event.

Ownership: ``decide`` changes ``state`` in place and returns it in the decision (copying the
whole execution per command would cost more than deciding). A caller that needs the previous
state keeps ``state.to_dict()``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from engine.reducer import (  # registers flowables
    flow_basic,
    flow_each,
    flow_loop,
    flow_resume,
    flow_subflow,
    flow_wait,
    lifecycle,
    runnable,
    sla,
)
from engine.reducer.context import FLOWABLES, Ctx, index_tasks
from engine.reducer.ids import iso
from engine.reducer.model import (
    DEDUP_WINDOW,
    Admitted,
    ChildExecutionEnded,
    Command,
    Decision,
    Event,
    ExecutionState,
    Heartbeat,
    Kill,
    Replay,
    Restart,
    Resume,
    SetLabels,
    StartExecution,
    TaskResult,
    TaskStarted,
    TimerFired,
)
from engine.reducer.scope import end_flowable
from engine.reducer.states import State

_REGISTERED = (flow_basic, flow_each, flow_loop, flow_resume, flow_subflow, flow_wait)


def decide(
    state: ExecutionState | None,
    command: Command,
    now: datetime,
    *,
    env: dict[str, Any] | None = None,
) -> Decision:
    """``env``: the ``envs`` and ``globals`` variables of the process (:func:`run_env`)."""
    try:
        return _decide(state, command, now, env)
    except Exception as exc:  # the contract: never raise, a failure becomes data
        return _internal_failure(state, command, now, exc)


def run_env(
    environ: dict[str, str], prefix: str, redacted: list[str], globals_: dict[str, Any]
) -> dict[str, Any]:
    """Kestra's RunContextCache: environment variables named ``prefix...`` (minus the
    redacted ones) as ``envs`` (prefix dropped, lower case), and the configured ``globals``."""
    envs = {
        name[len(prefix) :].lower(): value
        for name, value in environ.items()
        if name.startswith(prefix) and name not in redacted
    }
    return {"envs": envs, "globals": globals_}


def _log_only(execution_id: str, now: datetime, level: str, message: str) -> Decision:
    event = Event("LogEmitted", execution_id, 0, iso(now), {"level": level, "message": message})
    return Decision(None, events=[event])


def _decide(
    state: ExecutionState | None, command: Command, now: datetime, env: dict[str, Any] | None
) -> Decision:
    if state is None:
        if not isinstance(command, StartExecution):
            return _log_only(
                command.execution_id,
                now,
                "WARN",
                f"{command.type} {command.command_id} for unknown execution "
                f"{command.execution_id} dropped",
            )
        state = lifecycle.new_state(command, iso(now))
        ctx = _context(state, command, now, env)
        ctx.dirty_exec = True
        for run in state.task_runs.values():  # a replay's copied runs are news to the reader
            ctx.touch(run)
        _remember(state, command.command_id)
        _apply_start(ctx, command)
        return ctx.finish()
    if state.seen_index is None:
        state.seen_index = set(state.seen)
    if command.command_id in state.seen_index:
        return Decision(state, duplicate=True)
    _remember(state, command.command_id)
    ctx = _context(state, command, now, env)
    ctx.narrow = isinstance(command, _NARROW)
    handler = _HANDLERS.get(type(command))
    if handler is None:
        ctx.log("ERROR", f"unknown command type {type(command).__name__}: ignored")
    else:
        handler(ctx, command)
    return ctx.finish()


def _context(
    state: ExecutionState, command: Command, now: datetime, env: dict[str, Any] | None
) -> Ctx:
    if state.task_index is None:
        state.task_index = index_tasks(state.flow)
    return Ctx(state, now, command.command_id, state.task_index, env)


def _remember(state: ExecutionState, command_id: str) -> None:
    if state.seen_index is None:
        state.seen_index = set(state.seen)
    state.seen.append(command_id)
    state.seen_index.add(command_id)
    if len(state.seen) > DEDUP_WINDOW:
        state.seen_index.discard(state.seen.pop(0))


def _internal_failure(
    state: ExecutionState | None, command: Command, now: datetime, exc: Exception
) -> Decision:
    message = f"internal error deciding {command.type} {command.command_id}: {exc!r}"
    if state is None:
        return _log_only(getattr(command, "execution_id", "?"), now, "ERROR", message)
    try:
        ctx = Ctx(state, now, command.command_id, state.task_index or {})
        ctx.log("ERROR", message)
        if not state.state.is_terminal:
            for timer_id in list(state.timers):
                ctx.cancel(timer_id)
            if not state.set_state(State.FAILED, ctx.now):
                state.state = State.FAILED
                state.history.append([State.FAILED.value, ctx.now])
            ctx.dirty_exec = True
        return ctx.finish()
    except Exception:  # even reporting failed: hand back the bare facts
        return _log_only(state.execution_id, now, "ERROR", message)


# --- one function per command ------------------------------------------------------------


def _apply_start(ctx: Ctx, cmd: StartExecution) -> None:
    for note in cmd.notes:
        ctx.log("WARN", note)
    if cmd.error is not None:
        ctx.log("ERROR", cmd.error)
        ctx.set_exec_state(State.FAILED)
        return
    admission = cmd.admission.upper()
    if admission in ("CANCELLED", "FAILED"):
        ctx.log("WARN", f"flow concurrency limit reached: execution {admission}")
        ctx.set_exec_state(State(admission))
        return
    if admission == "QUEUED":
        ctx.set_exec_state(State.QUEUED)
        return
    if cmd.scheduled and cmd.scheduled > ctx.now:
        from engine.reducer.ids import seconds_between

        ctx.arm(
            f"start:{ctx.state.execution_id}", seconds_between(ctx.now, cmd.scheduled), "start", {}
        )
        return
    lifecycle.begin(ctx)


def _apply_duplicate_start(ctx: Ctx, cmd: StartExecution) -> None:
    ctx.log("WARN", f"StartExecution for existing execution {cmd.execution_id} ignored")


def _apply_admitted(ctx: Ctx, cmd: Admitted) -> None:
    if ctx.state.state == State.QUEUED:
        lifecycle.begin(ctx)


def _apply_task_started(ctx: Ctx, cmd: TaskStarted) -> None:
    runnable.on_started(ctx, cmd)


def _apply_task_result(ctx: Ctx, cmd: TaskResult) -> None:
    runnable.on_result(ctx, cmd)
    lifecycle.advance(ctx)


def _apply_heartbeat(ctx: Ctx, cmd: Heartbeat) -> None:
    runnable.on_heartbeat(ctx, cmd)


def _apply_timer_fired(ctx: Ctx, cmd: TimerFired) -> None:
    timer = ctx.state.timers.pop(cmd.timer_id, None)
    if timer is None:
        return  # cancelled after the wheel had already sent it
    if timer.kind == "start":
        if ctx.state.state == State.CREATED:
            lifecycle.begin(ctx)
        return
    if timer.kind == "sla":
        ending = sla.on_timer(ctx, timer)
        if ending is not None:
            lifecycle.end(ctx, ending)
        return
    run = ctx.state.task_runs.get(str(timer.data.get("run")))
    if run is None:
        ctx.log("WARN", f"timer {timer.timer_id} ({timer.kind}) for a task run that is gone")
        return
    task = ctx.task_of(run)
    if timer.kind in ("retry", "timeout", "heartbeat"):
        runnable.on_timer(ctx, run, timer)
    elif timer.kind == "flowable_retry":
        if run.state == State.RETRYING and not ctx.state.killing:
            lifecycle.restart_subtree(ctx, run)
            ctx.set_state(run, State.RUNNING)
    else:
        handler = FLOWABLES.get(run.type)
        if handler is not None:
            try:
                handler.on_timer(ctx, run, task, timer)
            except (ValueError, TypeError, KeyError) as exc:
                ctx.log("ERROR", f"task {run.task_id}: {exc}", run)
                end_flowable(ctx, run, task, State.FAILED)
    lifecycle.advance(ctx)


def _apply_kill(ctx: Ctx, cmd: Kill) -> None:
    lifecycle.kill(ctx)


def _apply_resume(ctx: Ctx, cmd: Resume) -> None:
    paused = [
        r
        for r in ctx.state.task_runs.values()
        if r.state == State.PAUSED and (cmd.task_run_id in (None, r.id))
    ]
    if not paused:
        ctx.log("WARN", f"resume ignored: no paused task run ({cmd.task_run_id or 'any'})")
        return
    for run in paused:
        handler = FLOWABLES.get(run.type)
        refused = (
            handler.on_resume(ctx, run, ctx.task_of(run), dict(cmd.inputs)) if handler else "?"
        )
        if refused:
            ctx.log("ERROR", f"resume refused: {refused}", run)
    lifecycle.advance(ctx)


def _apply_restart(ctx: Ctx, cmd: Restart) -> None:
    lifecycle.restart(ctx)


def _apply_replay(ctx: Ctx, cmd: Replay) -> None:
    lifecycle.replay(ctx, cmd.task_run_id, cmd.new_execution_id)


def _apply_set_labels(ctx: Ctx, cmd: SetLabels) -> None:
    for key, value in cmd.labels.items():
        ctx.state.labels[str(key)] = value
    ctx.dirty_exec = True


def _apply_child_ended(ctx: Ctx, cmd: ChildExecutionEnded) -> None:
    run = ctx.state.task_runs.get(cmd.parent_task_run_id)
    handler = FLOWABLES.get(run.type) if run else None
    if run is None or handler is None:
        ctx.log("WARN", f"end of child {cmd.child_execution_id} for unknown task run dropped")
        return
    handler.on_child_ended(ctx, run, ctx.task_of(run), cmd)
    lifecycle.advance(ctx)


_HANDLERS: dict[type[Command], Callable[[Ctx, Any], None]] = {
    StartExecution: _apply_duplicate_start,
    Admitted: _apply_admitted,
    TaskStarted: _apply_task_started,
    TaskResult: _apply_task_result,
    Heartbeat: _apply_heartbeat,
    TimerFired: _apply_timer_fired,
    Kill: _apply_kill,
    Resume: _apply_resume,
    Restart: _apply_restart,
    Replay: _apply_replay,
    SetLabels: _apply_set_labels,
    ChildExecutionEnded: _apply_child_ended,
}
# Commands about one task run only (see Ctx.narrow).
_NARROW = (TaskStarted, TaskResult, Heartbeat)
