"""Loops: ForEach and the legacy EachSequential / EachParallel.

Each value becomes an iteration: the loop's ``tasks`` run (one after the other) as children of
the loop's task run, with ``taskrun.value`` the value and ``parent``/``parents`` the enclosing
loops. Outputs nest by value (``outputs.task[value]``). ``concurrencyLimit`` (ForEach, default
1; 0 = no bound) or ``concurrent`` (EachParallel, default no bound) caps the iterations running
at once; after a failure no new iteration starts. ``errors``/``finally`` of the loop run once,
at the loop level. EachParallel runs the tasks of one iteration side by side as well.
"""

from __future__ import annotations

import json
from typing import Any

from engine.reducer.context import Ctx, Flowable, register
from engine.reducer.model import JSON, LoopProgress, TaskRun
from engine.reducer.scope import after_main, enabled, end_flowable, fail, run_list
from engine.reducer.states import State, worst

FLOW = "io.kestra.plugin.core.flow."
FOREACH_DEFAULT_LIMIT = 1  # Kestra's ForEach default: one iteration at a time
UNBOUNDED = 0


def _java_str(value: Any) -> str:
    """Java's toString of JSON-ish data, as Kestra's error messages print values."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_java_str(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_java_str(v) for v in value) + "]"
    return str(value)


def _as_value(item: Any) -> str:
    if isinstance(item, str):
        return item
    return json.dumps(item, separators=(",", ":"))


def loop_values(ctx: Ctx, run: TaskRun, raw: Any) -> list[str]:
    """The iteration values: a list, or a JSON array in a string (both may be templated)."""
    value = ctx.renderer.render_value(raw, ctx.variables(run))
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"values {value!r} is neither a list nor a JSON array") from exc
    if not isinstance(value, list):
        raise ValueError(f"values must be a list or a JSON array, got {value!r}")
    nulls = sum(1 for v in value if v is None)
    if nulls:
        raise ValueError(f"Found '{nulls}' null values on Each, with values={_java_str(value)}")
    return [_as_value(v) for v in value]


class _Loop(Flowable):
    values_key = "values"
    limit_key = "concurrencyLimit"
    default_limit = FOREACH_DEFAULT_LIMIT
    inner_limit: int | None = None  # None: the tasks of one iteration run one after the other

    def start(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        ctx.set_state(run, State.RUNNING)
        raw = task.get(self.values_key, task.get("value", task.get("values")))
        try:
            run.data["values"] = loop_values(ctx, run, raw)
        except ValueError as exc:
            fail(ctx, run, str(exc))
            return
        self.step(ctx, run, task)

    def step(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        values: list[str] = run.data.get("values", [])
        limit = task.get(self.limit_key, self.default_limit)
        limit = self.default_limit if limit is None else int(limit)
        tasks = enabled(task.get("tasks"))
        progress = ctx.loop_progress(run)
        moved = _moved_iterations(ctx, run)
        if moved is not None and len(progress.ended) + len(progress.running) == len(values):
            # Every iteration has started and only the moved ones can have changed.
            for value in moved & progress.running:
                self._iteration(ctx, run, tasks, value, progress)
            if not progress.running:
                self._finish(ctx, run, task, list(progress.ended.values()), blocked=False)
            return
        active = 0
        failed = False
        started: list[State] = []  # the final state of each iteration that ran
        blocked = False
        for value in values:
            done = progress.ended.get(value)
            if done is not None:
                started.append(done)
                failed = failed or done.is_failed
                continue
            if moved is not None and value in progress.running and value not in moved:
                active += 1  # still running, and nothing in it moved: stepping it does nothing
                continue
            fresh = not ctx.children(run.id, [*run.values, value], None)
            # Unbounded loops start every iteration together (Kestra creates them all at
            # once), so a failure only stops new iterations of a bounded loop.
            if fresh and (ctx.state.killing or (limit and (failed or active >= limit))):
                blocked = True
                continue
            state = self._iteration(ctx, run, tasks, value, progress)
            if state is None:
                active += 1
                continue
            final = progress.ended.get(value)
            if final is None:  # ended by a kill: its runs' states, as for any other
                kids = ctx.children(run.id, [*run.values, value], None)
                final = worst([k.state for k in kids.values()])
            started.append(final)
            failed = failed or state.is_failed
        if not active:
            self._finish(ctx, run, task, started, blocked)

    def _iteration(
        self, ctx: Ctx, run: TaskRun, tasks: list[JSON], value: str, progress: LoopProgress
    ) -> State | None:
        """Step one iteration and note its progress; its final state, None while it runs."""
        values = [*run.values, value]
        kids = ctx.children(run.id, values, None)
        state = run_list(ctx, run, tasks, kids, values, None, "tasks", self.inner_limit)
        if state is None:
            progress.running.add(value)
            return None
        progress.running.discard(value)
        final = worst([k.state for k in kids.values()])
        if final == state:  # (a kill can end an iteration in KILLED with no KILLED run)
            progress.ended[value] = final
        return state

    def _finish(
        self, ctx: Ctx, run: TaskRun, task: JSON, started: list[State], blocked: bool
    ) -> None:
        """No iteration runs any more: errors/finally of the loop, then its end."""
        main = worst(started)
        if blocked and ctx.state.killing and not main.is_failed:
            main = State.KILLED
        own = ctx.children(run.id, run.values, None)
        final = after_main(
            ctx, run, main, task.get("errors"), task.get("finally"), own, run.values, None
        )
        if final is not None:
            end_flowable(ctx, run, task, worst([final, main]))


def _moved_iterations(ctx: Ctx, loop: TaskRun) -> set[str] | None:
    """Values of the iterations holding a run touched by this decision, when the decision is
    narrow (Ctx.narrow) and no kill is under way; None: every iteration must be stepped."""
    if not ctx.narrow or ctx.state.killing:
        return None
    depth = len(loop.values)
    runs = ctx.state.task_runs
    moved: set[str] = set()
    for run_id in ctx.dirty_runs:
        touched = runs.get(run_id)
        # A run with the loop's values as a prefix and one more value may sit in another loop
        # with the same values: stepping one iteration too many is harmless.
        if touched is not None and len(touched.values) > depth:
            if touched.values[:depth] == loop.values:
                moved.add(touched.values[depth])
    return moved


@register
class ForEachTask(_Loop):
    types = (f"{FLOW}ForEach",)


@register
class EachSequentialTask(_Loop):
    types = (f"{FLOW}EachSequential",)
    values_key = "value"
    limit_key = "__sequential__"


@register
class EachParallelTask(_Loop):
    types = (f"{FLOW}EachParallel",)
    values_key = "value"
    limit_key = "concurrent"
    default_limit = UNBOUNDED
    inner_limit = UNBOUNDED
