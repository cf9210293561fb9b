"""Running a list of tasks: the part every flowable (and the flow itself) shares.

A *scope* is the children of one parent task run (or of the flow) in one iteration:
``tasks`` run first; when one of them fails, ``errors`` run; ``finally`` always runs last.
The scope ends in the worst state of its children (Kestra's ``guessFinalState``): an errors
branch that succeeds does not rescue the scope, it only reacts to the failure.

Disabled tasks are filtered out before anything else (no task run at all); ``runIf`` (Kestra
2.0: ``when``) that renders falsy gives a SKIPPED task run. Walking is idempotent: calling a
scope again with nothing new changes nothing, so every command simply re-walks from the root.
"""

from __future__ import annotations

from typing import Any

from engine.errors import ExpressionError
from engine.reducer.context import FLOWABLES, Ctx
from engine.reducer.ids import make_id, parse_duration
from engine.reducer.model import JSON, TaskRun
from engine.reducer.retry import RETRY_FAILED_TASK, RetryPolicy, next_retry, parse_retry
from engine.reducer.states import State, worst

SEQUENTIAL: int | None = None  # `limit` for one-at-a-time lists; 0 means unbounded parallel


# Task lists of the flows being run -> their enabled tasks. Every command re-walks the tree,
# and filtering each list again was a visible part of a decision. Keyed by the list's
# identity, holding the list itself so a recycled id can never match; cleared when full.
_ENABLED: dict[int, tuple[list[Any], list[JSON]]] = {}
ENABLED_CACHE = 4096  # distinct task lists (a big deployment's flows have a few thousand)


def enabled(tasks: Any) -> list[JSON]:
    if not isinstance(tasks, list):
        return []
    hit = _ENABLED.get(id(tasks))
    if hit is not None and hit[0] is tasks:
        return hit[1]
    out = [t for t in tasks if isinstance(t, dict) and not t.get("disabled", False)]
    if len(_ENABLED) >= ENABLED_CACHE:
        _ENABLED.clear()
    _ENABLED[id(tasks)] = (tasks, out)
    return out


def fail(ctx: Ctx, run: TaskRun, message: str) -> None:
    """Fail ``run`` with ``message`` (logged at ERROR so errorLogs() sees it)."""
    ctx.log("ERROR", message, run)
    ctx.stop(run, "failed")
    ctx.cancel_for(run)
    finish(ctx, run, ctx.task_of(run), State.FAILED)


def finish(ctx: Ctx, run: TaskRun, task: JSON, state: State) -> None:
    """End ``run`` in ``state``, after allowFailure (FAILED -> WARNING) and allowWarning
    (WARNING -> SUCCESS), which only change how the parent sees the run."""
    if state == State.FAILED and task.get("allowFailure") and not ctx.state.killing:
        state = State.WARNING
    if state == State.WARNING and task.get("allowWarning"):
        state = State.SUCCESS
    ctx.cancel_for(run)
    ctx.set_state(run, state)


def task_retry(ctx: Ctx, task: JSON) -> RetryPolicy | None:
    """The task's own retry policy, else the flow's (Kestra applies the flow's to every task)."""
    return parse_retry(task.get("retry") or ctx.state.flow.get("retry"))


def timeout_of(task: JSON) -> float | None:
    value = task.get("timeout")
    return parse_duration(value) if value not in (None, "") else None


def start_task(
    ctx: Ctx,
    task: JSON,
    parent: TaskRun | None,
    values: list[str],
    branch: str,
    iteration: int | None = None,
) -> TaskRun:
    """Create the task run of ``task`` and start it (a job, or the flowable's own start)."""
    run = ctx.new_run(task, parent, values, branch, iteration)
    try:
        # `when` is Kestra 2.0's name of runIf (a flow has one or the other, see dialect.py).
        condition = task.get("when", task.get("runIf"))
        if condition is not None and not ctx.renderer.is_true(condition, ctx.variables(run, task)):
            ctx.set_state(run, State.SKIPPED)
            return run
        handler = FLOWABLES.get(run.type)
        if handler is not None:
            handler.start(ctx, run, task)
        else:
            ctx.set_state(run, State.CREATED)
            ctx.dispatch(run, task, timeout_of(task))
    except (ExpressionError, ValueError, TypeError, KeyError) as exc:
        fail(ctx, run, f"task {run.task_id}: {_message(exc)}")
    return run


def step(ctx: Ctx, run: TaskRun, task: JSON) -> None:
    """Advance a live flowable run (runnables advance on worker results only)."""
    handler = FLOWABLES.get(run.type)
    if handler is None or run.state.is_terminal or run.state == State.RETRYING:
        return
    try:
        handler.step(ctx, run, task)
    except (ExpressionError, ValueError, TypeError, KeyError) as exc:
        fail(ctx, run, f"task {run.task_id}: {_message(exc)}")


def run_list(
    ctx: Ctx,
    parent: TaskRun | None,
    tasks: list[JSON],
    kids: dict[str, TaskRun],
    values: list[str],
    iteration: int | None,
    branch: str,
    limit: int | None,
) -> State | None:
    """Run ``tasks`` one after the other (``limit`` None) or side by side (``limit`` >= 0,
    0 unbounded). Returns the list's final state, or None while something still runs."""
    killing = ctx.state.killing
    if limit is None:
        states: list[State] = []
        for task in tasks:
            run = kids.get(task["id"])
            if run is None:
                if killing:
                    return State.KILLED
                run = start_task(ctx, task, parent, values, branch, iteration)
            elif not run.state.is_terminal:
                step(ctx, run, task)
            if not run.state.is_terminal:
                return None
            if run.state.is_failed:
                return run.state
            states.append(run.state)
        return worst(states)
    active = 0
    failed = False
    for task in tasks:
        run = kids.get(task["id"])
        if run is None:
            continue
        if not run.state.is_terminal:
            step(ctx, run, task)
        if not run.state.is_terminal:
            active += 1
        elif run.state.is_failed:
            failed = True
    blocked = False
    for task in tasks:
        if task["id"] in kids:
            continue
        if failed or killing or (limit and active >= limit):
            blocked = True
            continue
        run = start_task(ctx, task, parent, values, branch, iteration)
        if not run.state.is_terminal:
            active += 1
        elif run.state.is_failed:
            failed = True
    if active:
        return None
    final = worst([kids[t["id"]].state for t in tasks if t["id"] in kids])
    if killing and blocked and not final.is_failed:
        return State.KILLED
    return final


def run_scope(
    ctx: Ctx,
    parent: TaskRun | None,
    tasks: Any,
    errors: Any,
    finally_: Any,
    values: list[str],
    iteration: int | None = None,
    limit: int | None = SEQUENTIAL,
) -> State | None:
    """Run one scope (tasks, then errors on failure, then finally); None while running."""
    kids = ctx.children(parent.id if parent else None, values, iteration)
    main = run_list(ctx, parent, enabled(tasks), kids, values, iteration, "tasks", limit)
    return after_main(ctx, parent, main, errors, finally_, kids, values, iteration)


def after_main(
    ctx: Ctx,
    parent: TaskRun | None,
    main: State | None,
    errors: Any,
    finally_: Any,
    kids: dict[str, TaskRun],
    values: list[str],
    iteration: int | None,
) -> State | None:
    """Given the main list's outcome, run errors (on failure) and finally; None while running."""
    if main is None:
        return None
    if main.is_failed and not ctx.state.killing:
        errs = enabled(errors)
        if errs and run_list(ctx, parent, errs, kids, values, iteration, "errors", None) is None:
            return None
    fin = enabled(finally_)
    if fin and not ctx.state.killing:
        if run_list(ctx, parent, fin, kids, values, iteration, "finally", None) is None:
            return None
    if main == State.KILLED:
        return State.KILLED
    return worst([run.state for run in kids.values()])


def end_flowable(ctx: Ctx, run: TaskRun, task: JSON, state: State) -> None:
    """Finish a flowable run, unless it failed and its retry policy allows another try:
    then its failed descendants are restarted after the back-off (RETRYING meanwhile)."""
    if state == State.FAILED and not ctx.state.killing and task.get("retry"):
        policy = task_retry(ctx, task)
        if policy is not None and policy.behavior == RETRY_FAILED_TASK:
            tries = int(run.data.get("tries", 1))
            wait = next_retry(policy, tries, run.history[0][1], ctx.now, run.id)
            if wait is not None:
                run.data["tries"] = tries + 1
                ctx.set_state(run, State.RETRYING)
                ctx.arm(
                    make_id("flowretry", run.id, tries), wait, "flowable_retry", {"run": run.id}
                )
                return
    finish(ctx, run, task, state)


def _message(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc)
