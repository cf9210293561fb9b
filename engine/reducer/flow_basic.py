"""Flowables that only arrange their children: Sequential, Parallel, AllowFailure,
WorkingDirectory, If, Switch and Dag.

Each decides which child list runs and how (one at a time or side by side), then lets the
shared scope logic run it; the run ends in the scope's final state.
"""

from __future__ import annotations

from engine.reducer.context import Ctx, Flowable, register
from engine.reducer.model import JSON, TaskRun
from engine.reducer.scope import (
    after_main,
    end_flowable,
    fail,
    run_scope,
    start_task,
    step,
)
from engine.reducer.states import State, worst

FLOW = "io.kestra.plugin.core.flow."


def _limit(task: JSON, key: str, default: int) -> int:
    value = task.get(key, default)
    return int(value) if value is not None else default


@register
class SequentialTask(Flowable):
    types = (f"{FLOW}Sequential", f"{FLOW}WorkingDirectory")

    def step(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        final = run_scope(
            ctx, run, task.get("tasks"), task.get("errors"), task.get("finally"), run.values
        )
        if final is not None:
            end_flowable(ctx, run, task, final)


@register
class AllowFailureTask(Flowable):
    """Children may fail: the run then ends WARNING and the flow carries on."""

    types = (f"{FLOW}AllowFailure",)

    def step(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        final = run_scope(
            ctx, run, task.get("tasks"), task.get("errors"), task.get("finally"), run.values
        )
        if final is not None:
            if final == State.FAILED:
                final = State.WARNING
            end_flowable(ctx, run, task, final)


@register
class ParallelTask(Flowable):
    """Children side by side; ``concurrent`` bounds how many (0, the default: no bound)."""

    types = (f"{FLOW}Parallel",)

    def step(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        final = run_scope(
            ctx,
            run,
            task.get("tasks"),
            task.get("errors"),
            task.get("finally"),
            run.values,
            limit=_limit(task, "concurrent", 0),
        )
        if final is not None:
            end_flowable(ctx, run, task, final)


@register
class IfTask(Flowable):
    """``condition`` is rendered once, when the run starts; the branch is remembered, and is
    Kestra's output ``evaluationResult`` (If.outputs)."""

    types = (f"{FLOW}If",)

    def start(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        ctx.set_state(run, State.RUNNING)
        truth = ctx.renderer.is_true(task.get("condition"), ctx.variables(run, task))
        run.data["branch"] = "then" if truth else "else"
        ctx.set_outputs(run, {"evaluationResult": truth})
        self.step(ctx, run, task)

    def step(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        branch = run.data.get("branch", "else")
        final = run_scope(
            ctx, run, task.get(branch), task.get("errors"), task.get("finally"), run.values
        )
        if final is not None:
            end_flowable(ctx, run, task, final)


@register
class SwitchTask(Flowable):
    """``value`` picks a ``cases`` entry, else ``defaults``; with neither, the run fails."""

    types = (f"{FLOW}Switch",)

    def start(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        ctx.set_state(run, State.RUNNING)
        value = ctx.renderer.render(task.get("value"), ctx.variables(run, task))
        cases = task.get("cases") or {}
        if isinstance(cases, dict) and value in {str(k) for k in cases}:
            run.data["case"] = value
            ctx.set_outputs(run, {"value": value, "defaults": False})
        elif task.get("defaults"):
            run.data["case"] = None
            ctx.set_outputs(run, {"value": value, "defaults": True})
        else:
            fail(ctx, run, f"Switch {run.task_id}: no case matches value {value!r} and no defaults")
            return
        self.step(ctx, run, task)

    def step(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        case = run.data.get("case")
        cases = {str(k): v for k, v in (task.get("cases") or {}).items()}
        tasks = cases.get(case) if case is not None else task.get("defaults")
        final = run_scope(ctx, run, tasks, task.get("errors"), task.get("finally"), run.values)
        if final is not None:
            end_flowable(ctx, run, task, final)


@register
class DagTask(Flowable):
    """A task starts when every task it ``dependsOn`` ended successfully; ``concurrent``
    bounds how many run at once (0: no bound). A failure stops new starts."""

    types = (f"{FLOW}Dag",)

    def step(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        entries = [e for e in task.get("tasks") or [] if isinstance(e, dict)]
        nodes: list[tuple[JSON, list[str]]] = []
        for entry in entries:
            inner = entry.get("task")
            if isinstance(inner, dict) and not inner.get("disabled", False):
                nodes.append((inner, [str(d) for d in entry.get("dependsOn") or []]))
        kids = ctx.children(run.id, run.values, None)
        final = after_main(
            ctx,
            run,
            self._main(ctx, run, nodes, kids, _limit(task, "concurrent", 0)),
            task.get("errors"),
            task.get("finally"),
            kids,
            run.values,
            None,
        )
        if final is not None:
            end_flowable(ctx, run, task, final)

    def _main(
        self,
        ctx: Ctx,
        run: TaskRun,
        nodes: list[tuple[JSON, list[str]]],
        kids: dict[str, TaskRun],
        limit: int,
    ) -> State | None:
        progressed = True
        while progressed:  # a task that ends at once can unblock the next in the same pass
            progressed = False
            active = 0
            failed = False
            for node, _ in nodes:
                child = kids.get(node["id"])
                if child is not None and not child.state.is_terminal:
                    step(ctx, child, node)
                if child is not None and not child.state.is_terminal:
                    active += 1
                elif child is not None and child.state.is_failed:
                    failed = True
            if failed or ctx.state.killing:
                break
            for node, deps in nodes:
                if node["id"] in kids or (limit and active >= limit):
                    continue
                if all(_done(kids.get(d)) for d in deps):
                    child = start_task(ctx, node, run, run.values, "tasks")
                    progressed = progressed or child.state.is_terminal
                    active += 0 if child.state.is_terminal else 1
        if any(not c.state.is_terminal for c in kids.values() if c.branch == "tasks"):
            return None
        states = [kids[n["id"]].state for n, _ in nodes if n["id"] in kids]
        if ctx.state.killing and len(states) < len(nodes):
            return State.KILLED
        if len(states) < len(nodes) and not any(s.is_failed for s in states):
            return State.FAILED  # unreachable dependencies (a cycle or an unknown id)
        return worst(states)


def _done(run: TaskRun | None) -> bool:
    return run is not None and run.state.is_success
