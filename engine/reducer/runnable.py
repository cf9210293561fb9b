"""Runnable task runs: what workers report, retries, timeouts and lost workers.

A runnable run gets one job per attempt. The worker reports TaskStarted (the attempt is
RUNNING, the heartbeat watch and the ``timeout`` timer start), Heartbeats, then TaskResult.
A FAILED attempt is retried (RETRY_FAILED_TASK) after the policy's back-off through a timer;
``warningOnRetry`` turns a success after retries into WARNING. A ``timeout`` stops the job
and fails the attempt (then retry applies). A worker silent for HEARTBEAT_TIMEOUT seconds is
presumed lost: the same attempt's job is dispatched again (at-least-once, same idempotency
key), unless the execution is being killed, in which case the attempt is KILLED.
"""

from __future__ import annotations

import functools

from engine.reducer import updates
from engine.reducer.context import FLOWABLES, Ctx, worker_group
from engine.reducer.ids import make_id, seconds_between
from engine.reducer.model import JSON, Heartbeat, Job, TaskResult, TaskRun, TaskStarted, Timer
from engine.reducer.retry import RETRY_FAILED_TASK, next_retry
from engine.reducer.scope import finish, task_retry, timeout_of
from engine.reducer.states import State

# A worker heartbeats every few seconds while it runs a task; three missed beats (30 s) mean
# it is gone. Long enough to ride out a GC pause or a broker hiccup.
HEARTBEAT_TIMEOUT = 30.0
_RESULT_STATES = {"SUCCESS", "WARNING", "FAILED", "KILLED"}
# Attempts in flight at once on one executor, with room: a miss only costs a hash.
HEARTBEAT_ID_CACHE = 8192


def heartbeat_timer_id(run: TaskRun) -> str:
    return _heartbeat_id(run.id, len(run.attempts))


# Armed when an attempt starts and cancelled when it ends (often in the same batch): a
# cache hit is several times cheaper than hashing again. Ids are pure, so caching is safe.
@functools.lru_cache(maxsize=HEARTBEAT_ID_CACHE)
def _heartbeat_id(run_id: str, attempt: int) -> str:
    return make_id("heartbeat", run_id, attempt)


def live_attempt(ctx: Ctx, run_id: str, attempt: int, what: str) -> TaskRun | None:
    """The run if ``attempt`` is its current, unfinished attempt; else log and None."""
    run = ctx.state.task_runs.get(run_id)
    if run is None:
        ctx.log("WARN", f"{what} for unknown task run {run_id} (attempt {attempt}) dropped")
        return None
    if attempt != len(run.attempts) or run.attempts[-1].state.is_terminal:
        ctx.log(
            "WARN",
            f"{what} for stale attempt {attempt} of task run {run_id} ({run.task_id}) dropped; "
            f"current attempt is {len(run.attempts)}",
            run,
        )
        return None
    return run


def on_started(ctx: Ctx, cmd: TaskStarted) -> None:
    run = live_attempt(ctx, cmd.task_run_id, cmd.attempt, "TaskStarted")
    if run is None:
        return
    attempt = run.attempts[-1]
    if attempt.state != State.RUNNING:
        attempt.state = State.RUNNING
        attempt.history.append([State.RUNNING.value, ctx.now])
    attempt.worker_id = cmd.worker_id
    attempt.heartbeat = ctx.now
    ctx.set_state(run, State.RUNNING)
    ctx.touch(run)
    ctx.arm(heartbeat_timer_id(run), HEARTBEAT_TIMEOUT, "heartbeat", {"run": run.id})
    timeout = timeout_of(ctx.task_of(run))
    if timeout is not None:
        timer_id = make_id("timeout", run.id, len(run.attempts))
        ctx.arm(timer_id, timeout, "timeout", {"run": run.id, "attempt": len(run.attempts)})


def on_heartbeat(ctx: Ctx, cmd: Heartbeat) -> None:
    run = live_attempt(ctx, cmd.task_run_id, cmd.attempt, "Heartbeat")
    if run is None:
        return
    run.attempts[-1].heartbeat = ctx.now
    ctx.arm(heartbeat_timer_id(run), HEARTBEAT_TIMEOUT, "heartbeat", {"run": run.id})


def _end_attempt(ctx: Ctx, run: TaskRun, state: State, error: str | None) -> None:
    attempt = run.attempts[-1]
    attempt.state = state
    attempt.error = error
    attempt.history.append([state.value, ctx.now])
    ctx.cancel(heartbeat_timer_id(run))
    if ctx.task_of(run).get("timeout") not in (None, ""):  # else no timeout timer was armed
        ctx.cancel(make_id("timeout", run.id, len(run.attempts)))
    ctx.touch(run)


def on_result(ctx: Ctx, cmd: TaskResult) -> None:
    run = live_attempt(ctx, cmd.task_run_id, cmd.attempt, "TaskResult")
    if run is None:
        return
    state = State(cmd.state) if cmd.state in _RESULT_STATES else State.FAILED
    if cmd.state not in _RESULT_STATES:
        ctx.log("ERROR", f"worker reported non-terminal state {cmd.state!r}; failing", run)
    exiting = updates.exit_state(cmd.update) if state == State.SUCCESS else None
    _end_attempt(ctx, run, exiting or state, cmd.error)
    helper = FLOWABLES.get(run.type)
    if helper is not None and helper.takes_job_results:  # a flowable a worker helped
        if cmd.error and not cmd.error_logs:
            ctx.log("ERROR", cmd.error, run)
        helper.on_job_result(ctx, run, ctx.task_of(run), state, cmd.outputs, cmd.error)
        return
    run.attempts[-1].log_lines = cmd.log_lines
    ctx.state.error_logs.extend(cmd.error_logs)
    if cmd.outputs:
        ctx.set_outputs(run, cmd.outputs)
    if cmd.labels:
        _apply_labels(ctx, cmd.labels)
    if cmd.update and state == State.SUCCESS and not ctx.state.state.is_terminal:
        updates.apply_variables(ctx, cmd.update)
    if cmd.error and not cmd.error_logs:  # else the worker already logged it
        ctx.log("ERROR", cmd.error, run)
    if exiting is not None and not ctx.state.state.is_terminal:
        updates.exit_execution(ctx, run, exiting)
        return
    settle(ctx, run, state)


def settle(ctx: Ctx, run: TaskRun, state: State) -> None:
    """After an attempt ended in ``state``: retry it, or finish the run."""
    task = ctx.task_of(run)
    # After an Exit ended the execution, a task still running may report: no retry then.
    if state == State.FAILED and not ctx.state.killing and not ctx.state.state.is_terminal:
        try:
            policy = task_retry(ctx, task)
        except ValueError as exc:
            ctx.log("ERROR", f"task {run.task_id}: invalid retry: {exc}", run)
            policy = None
        if policy is not None and policy.behavior == RETRY_FAILED_TASK:
            first = run.attempts[0].history[0][1]
            wait = next_retry(policy, len(run.attempts), first, ctx.now, run.id)
            if wait is not None:
                ctx.set_state(run, State.RETRYING)
                ctx.arm(make_id("retry", run.id, len(run.attempts)), wait, "retry", {"run": run.id})
                return
    if state in (State.SUCCESS, State.WARNING) and len(run.attempts) > 1:
        policy = task_retry(ctx, task)
        if policy is not None and policy.warning_on_retry:
            state = State.WARNING
    finish(ctx, run, task, state)


def _apply_labels(ctx: Ctx, labels: JSON | list[JSON]) -> None:
    pairs = (
        labels.items()
        if isinstance(labels, dict)
        else ((str(e.get("key")), e.get("value")) for e in labels if isinstance(e, dict))
    )
    for key, value in pairs:
        ctx.state.labels[str(key)] = value if isinstance(value, str) else str(value)
    ctx.dirty_exec = True


def on_timer(ctx: Ctx, run: TaskRun, timer: Timer) -> None:
    task = ctx.task_of(run)
    if timer.kind == "retry":
        if run.state != State.RETRYING:
            return
        if ctx.state.killing:
            finish(ctx, run, task, State.KILLED)
            return
        ctx.set_state(run, State.RUNNING)
        job: Job = ctx.dispatch(run, task, timeout_of(task))
        del job
    elif timer.kind == "timeout":
        if timer.data.get("attempt") != len(run.attempts) or run.attempts[-1].state.is_terminal:
            return
        ctx.stop(run, "timeout")
        message = f"task {run.task_id} timed out after {task.get('timeout')}"
        _end_attempt(ctx, run, State.FAILED, message)
        ctx.log("ERROR", message, run)
        settle(ctx, run, State.FAILED)
    elif timer.kind == "heartbeat":
        attempt = run.attempts[-1] if run.attempts else None
        if attempt is None or attempt.state.is_terminal or run.state.is_terminal:
            return
        last = attempt.heartbeat or attempt.history[-1][1]
        if seconds_between(last, ctx.now) < HEARTBEAT_TIMEOUT:
            remaining = HEARTBEAT_TIMEOUT - seconds_between(last, ctx.now)
            ctx.arm(heartbeat_timer_id(run), remaining, "heartbeat", {"run": run.id})
            return
        if ctx.state.killing:
            _end_attempt(ctx, run, State.KILLED, "worker lost while killing")
            finish(ctx, run, task, State.KILLED)
            return
        ctx.log("WARN", f"worker {attempt.worker_id or '?'} lost: re-dispatching {run.id}", run)
        attempt.heartbeat = ctx.now
        ctx.decision.jobs.append(
            Job(
                ctx.state.execution_id,
                run.id,
                len(run.attempts),
                task,
                ctx.job_context(run, task),
                worker_group(task),  # the same worker group as the lost attempt's
                timeout_of(task),
            )
        )
        ctx.arm(heartbeat_timer_id(run), HEARTBEAT_TIMEOUT, "heartbeat", {"run": run.id})
