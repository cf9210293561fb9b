"""One decision in the making: the state being changed, the clock, and what to emit.

A :class:`Ctx` lives for one ``decide`` call. Every change to a task run or to the execution
goes through it, so that the resulting events (full snapshots, one per changed thing, with
increasing ``seq``), jobs and timers are collected in one place and nothing is emitted twice.
Flowable task families register a :class:`Flowable` handler here by canonical type name.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, ClassVar

from engine.flows.inputs import declared_defaults, secret_input_ids
from engine.reducer.ids import iso, task_run_id
from engine.reducer.model import (
    JSON,
    Attempt,
    Decision,
    Event,
    ExecutionState,
    Job,
    LoopProgress,
    StopJob,
    TaskRun,
    Timer,
)
from engine.reducer.render import Renderer
from engine.reducer.states import State
from engine.reducer.trigger import execution_variables, trigger_variables

WORKING_DIRECTORY = "io.kestra.plugin.core.flow.WorkingDirectory"
# Keys of a task whose values are lists of tasks (Dag wraps each task in {task, dependsOn}).
_TASK_LISTS = ("tasks", "errors", "finally", "then", "else")


class Flowable:
    """How one flowable type behaves. Subclasses override what they need."""

    types: ClassVar[tuple[str, ...]] = ()
    # Whether the run may be sent to a worker as a job, whose result then comes to
    # :meth:`on_job_result` (a Loop reading its values from a storage file).
    takes_job_results: ClassVar[bool] = False

    def start(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        ctx.set_state(run, State.RUNNING)
        self.step(ctx, run, task)

    def step(self, ctx: Ctx, run: TaskRun, task: JSON) -> None:
        """Advance the children; finish ``run`` when they are done."""

    def on_timer(self, ctx: Ctx, run: TaskRun, task: JSON, timer: Timer) -> None:
        """A timer this flowable armed fired."""

    def on_resume(self, ctx: Ctx, run: TaskRun, task: JSON, inputs: JSON) -> str | None:
        """Resume a PAUSED run; returns an error message when the inputs are refused."""
        return f"task {run.task_id} ({run.type}) cannot be resumed"

    def on_child_ended(self, ctx: Ctx, run: TaskRun, task: JSON, ended: Any) -> None:
        """A child execution started by this run ended (``ended``: ChildExecutionEnded)."""

    def on_job_result(
        self,
        ctx: Ctx,
        run: TaskRun,
        task: JSON,
        state: State,
        outputs: JSON,
        error: str | None,
    ) -> None:
        """The job this run sent to a worker ended (see ``takes_job_results``)."""

    def on_kill(self, ctx: Ctx, run: TaskRun) -> bool:
        """The execution is being killed: stop what this run started elsewhere; True when
        the run is then KILLED at once (it has nothing of its own left to wait for)."""
        return False

    def on_restart(self, ctx: Ctx, run: TaskRun) -> bool:
        """The execution restarts and this failed run restarts its own children (True), or
        it is made anew (False, the default)."""
        return False


FLOWABLES: dict[str, Flowable] = {}


def register(handler: type[Flowable]) -> type[Flowable]:
    instance = handler()
    for name in handler.types:
        FLOWABLES[name] = instance
    return handler


def worker_group(task: JSON) -> str | None:
    group = task.get("workerGroup")
    if isinstance(group, dict):
        group = group.get("key")
    return str(group) if group else None


def _nested_labels(labels: JSON) -> JSON:
    """Labels as written, plus dotted keys as nested maps (``labels.system.correlationId``)."""
    out: JSON = dict(labels)
    for key, value in labels.items():
        if "." in key:
            *heads, last = key.split(".")
            node = out
            for head in heads:
                child = node.get(head)
                if not isinstance(child, dict):
                    child = node[head] = {}
                node = child
            node.setdefault(last, value)
    return out


# Flows -> their task index. Executions of one flow revision share its dict (the executor
# interns flows), so the index is built once per flow, not once per execution. Keyed by the
# flow's identity, holding the flow itself so a recycled id can never match; flows and the
# index are never changed once built (like scope.enabled's cache). Cleared when full.
_INDEXES: dict[int, tuple[JSON, dict[str, JSON]]] = {}
INDEX_CACHE = 1024  # distinct flows in use at once (revisions of a big deployment)


def index_tasks(flow: JSON) -> dict[str, JSON]:
    """Every task of the flow by id, depth first (Dag entries unwrapped). Do not change it:
    executions of the same flow dict share the answer."""
    hit = _INDEXES.get(id(flow))
    if hit is not None and hit[0] is flow:
        return hit[1]
    out = _index_tasks(flow)
    if len(_INDEXES) >= INDEX_CACHE:
        _INDEXES.clear()
    _INDEXES[id(flow)] = (flow, out)
    return out


def _index_tasks(flow: JSON) -> dict[str, JSON]:
    out: dict[str, JSON] = {}
    stack: list[Any] = [flow]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        lists = [node.get(k) for k in _TASK_LISTS]
        if node is flow:  # the tasks run once the execution ended
            lists.append(node.get("afterExecution"))
            listeners = node.get("listeners")
            lists.extend(
                listener.get("tasks")
                for listener in (listeners if isinstance(listeners, list) else [])
                if isinstance(listener, dict)
            )
        cases = node.get("cases")
        if isinstance(cases, dict):
            lists.extend(cases.values())
        lists.append(node.get("defaults"))
        for items in lists:
            if not isinstance(items, list):
                continue
            for item in items:
                if not isinstance(item, dict):
                    continue
                inner = item.get("task") if "task" in item and "id" not in item else item
                if isinstance(inner, dict) and isinstance(inner.get("id"), str):
                    out.setdefault(inner["id"], inner)
                    stack.append(inner)
    return out


class Ctx:
    __slots__ = (
        "_logs",
        "_outputs",
        "_renderer",
        "_seed",
        "_tasks",
        "decision",
        "dirty_exec",
        "dirty_runs",
        "env",
        "moved",
        "narrow",
        "now",
        "now_dt",
        "state",
        "tasks",
    )

    def __init__(
        self,
        state: ExecutionState,
        now: datetime,
        seed: str,
        tasks: dict[str, JSON],
        env: JSON | None = None,
    ):
        self.state = state
        # The executor's ``envs`` and ``globals`` (RunContextCache), given like ``now``.
        self.env: JSON = env or {}
        self.now_dt = now
        self.now = iso(now)
        self.decision = Decision(state)
        self.dirty_runs: dict[str, None] = {}
        self.dirty_exec = False
        # The execution's state changed in this decision (see finish).
        self.moved = False
        # True while deciding a task run's own news (TaskStarted, TaskResult, Heartbeat): only
        # the runs it touches can move, so loops may skip their untouched running iterations.
        self.narrow = False
        self.tasks = tasks
        self._seed = seed
        self._renderer: Renderer | None = None  # most commands render nothing
        self._outputs: JSON | None = None
        self._tasks: JSON | None = None
        self._logs: list[JSON] = []

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:
            self._renderer = Renderer(self.now_dt, self._seed, self._error_logs)
        return self._renderer

    def _error_logs(self) -> list[JSON]:
        return list(self.state.error_logs)

    # --- logs and events -------------------------------------------------------------

    def log(self, level: str, message: str, run: TaskRun | None = None) -> None:
        entry: JSON = {"level": level, "message": message}
        if run is not None:
            entry["task_run_id"] = run.id
            entry["task_id"] = run.task_id
        self._logs.append(entry)
        if level == "ERROR":  # errorLogs() sees Kestra's LogEntry field names
            error: JSON = {"level": level, "message": message}
            if run is not None:
                error.update(taskId=run.task_id, taskRunId=run.id)
            self.state.error_logs.append(error)

    def touch(self, run: TaskRun) -> None:
        self.dirty_runs[run.id] = None
        self._tasks = None

    def finish(self) -> Decision:
        st = self.state
        events = self.decision.events
        for entry in self._logs:
            st.seq += 1
            events.append(Event("LogEmitted", st.execution_id, st.seq, self.now, entry))
        for run_id in self.dirty_runs:
            run = st.task_runs.get(run_id)
            st.seq += 1
            payload = run.to_dict() if run else {"id": run_id, "deleted": True}
            events.append(Event("TaskRunUpdated", st.execution_id, st.seq, self.now, payload))
        if self.dirty_exec:
            st.seq += 1
            summary = st.summary()
            if self.moved:
                # A state change is what Flow triggers evaluate; their `inputs` may read the
                # execution's task outputs (Flow.evaluate renders them in its RunContext).
                outputs = self.outputs_map()
                if outputs:
                    summary["task_outputs"] = outputs
            events.append(Event("ExecutionUpdated", st.execution_id, st.seq, self.now, summary))
        return self.decision

    # --- state changes -----------------------------------------------------------------

    def set_state(self, run: TaskRun, state: State) -> bool:
        changed = run.set_state(state, self.now)
        if changed:
            self.touch(run)
            if state == State.RESTARTED:  # a finished run works again: its loop must see it
                self.state.loop_progress = None
        return changed

    def loop_progress(self, loop: TaskRun) -> LoopProgress:
        """The iterations of ``loop`` known finished or running (see ExecutionState)."""
        if self.state.loop_progress is None:
            self.state.loop_progress = {}
        progress = self.state.loop_progress.get(loop.id)
        if progress is None:
            progress = self.state.loop_progress[loop.id] = LoopProgress()
        return progress

    def set_exec_state(self, state: State) -> bool:
        changed = self.state.set_state(state, self.now)
        if changed:
            self.dirty_exec = True
            self.moved = True
        return changed

    def set_outputs(self, run: TaskRun, outputs: JSON) -> None:
        run.outputs = outputs
        self._outputs = None
        self.touch(run)

    # --- task runs -------------------------------------------------------------------

    def _index(self) -> dict[tuple[Any, ...], dict[str, TaskRun]]:
        # Kept on the state between commands (new_run adds, remove_run drops it): rebuilding
        # it walked every task run on every command.
        kids = self.state.kids_index
        if kids is None:
            kids = {}
            for run in self.state.task_runs.values():
                key = (run.parent_id, tuple(run.values), run.iteration)
                kids.setdefault(key, {})[run.task_id] = run
            self.state.kids_index = kids
        return kids

    def children(
        self, parent_id: str | None, values: list[str], iteration: int | None = None
    ) -> dict[str, TaskRun]:
        return self._index().setdefault((parent_id, tuple(values), iteration), {})

    def descendants(self, run_id: str) -> list[TaskRun]:
        out: list[TaskRun] = []
        frontier = {run_id}
        for run in self.state.task_runs.values():  # creation order: parents come first
            if run.parent_id in frontier:
                out.append(run)
                frontier.add(run.id)
        return out

    def new_run(
        self,
        task: JSON,
        parent: TaskRun | None,
        values: list[str],
        branch: str,
        iteration: int | None = None,
    ) -> TaskRun:
        st = self.state
        parent_id = parent.id if parent else None
        run_id = task_run_id(
            st.execution_id, task["id"], parent_id, values, iteration, st.generation
        )
        run = TaskRun(
            id=run_id,
            task_id=task["id"],
            type=str(task.get("type", "")),
            parent_id=parent_id,
            values=list(values),
            branch=branch,
            state=State.CREATED,
            history=[[State.CREATED.value, self.now]],
            iteration=iteration,
            position=st.next_position,
        )
        st.next_position += 1
        st.task_runs[run_id] = run
        self._index().setdefault((parent_id, tuple(values), iteration), {})[run.task_id] = run
        self.touch(run)
        return run

    def remove_run(self, run: TaskRun) -> None:
        self.state.task_runs.pop(run.id, None)
        self.state.kids_index = None
        self.state.loop_progress = None
        self._outputs = None
        self.touch(run)

    def task_of(self, run: TaskRun) -> JSON:
        return self.tasks.get(run.task_id) or {"id": run.task_id, "type": run.type}

    # --- timers and jobs ---------------------------------------------------------------

    def arm(self, timer_id: str, seconds: float, kind: str, data: JSON) -> Timer:
        # From `now` truncated to the millisecond, as the ISO text reads (parsing it back
        # cost more than the rest of arming).
        base = self.now_dt.replace(microsecond=self.now_dt.microsecond // 1000 * 1000)
        fire_at = iso(base + timedelta(seconds=seconds))
        timer = Timer(timer_id, self.state.execution_id, fire_at, kind, data)
        self.state.timers[timer_id] = timer
        self.decision.timers.append(timer)
        return timer

    def cancel(self, timer_id: str) -> None:
        if self.state.timers.pop(timer_id, None) is not None:
            self.decision.cancel_timers.append(timer_id)

    def cancel_for(self, run: TaskRun) -> None:
        for timer_id in [t for t, tm in self.state.timers.items() if tm.data.get("run") == run.id]:
            self.cancel(timer_id)

    def dispatch(self, run: TaskRun, task: JSON, timeout: float | None) -> Job:
        run.attempts.append(Attempt(State.CREATED, [[State.CREATED.value, self.now]]))
        self.touch(run)
        job = Job(
            self.state.execution_id,
            run.id,
            len(run.attempts),
            task,
            self.job_context(run, task),
            worker_group(task),
            timeout,
        )
        self.decision.jobs.append(job)
        return job

    def job_context(self, run: TaskRun, task: JSON) -> JSON:
        """The render variables plus what a worker needs and cannot look up: the ERROR
        logs so far (``errorLogs()``), which inputs are secrets (masked in logs) and, inside
        a WorkingDirectory, whose directory to share (``workingDirectory.taskRunId``)."""
        context = self.variables(run, task)
        st = self.state
        if st.error_logs:
            context["errorLogs"] = list(st.error_logs)
        secrets = secret_input_ids(st.flow.get("inputs"))
        if secrets:
            context["secretInputs"] = secrets
        worker = context.get("workerTaskrun")
        if isinstance(worker, dict):
            context["workingDirectory"] = {"taskRunId": worker["id"]}
        return context

    def stop(self, run: TaskRun, reason: str) -> None:
        if run.attempts and not run.attempts[-1].state.is_terminal:
            stop = StopJob(self.state.execution_id, run.id, len(run.attempts), reason)
            self.decision.stop_jobs.append(stop)

    # --- render variables --------------------------------------------------------------

    def outputs_map(self) -> JSON:
        if self._outputs is None:
            out: JSON = {}
            for run in self.state.task_runs.values():
                if not run.outputs:
                    continue
                if not run.values:
                    out[run.task_id] = run.outputs
                    continue
                node = out.setdefault(run.task_id, {})
                if not isinstance(node, dict):
                    continue
                for value in run.values[:-1]:
                    node = node.setdefault(value, {})
                node[run.values[-1]] = run.outputs
            self._outputs = out
        return self._outputs

    def tasks_map(self) -> JSON:
        """RunVariables' ``tasks``: each task's state (``tasks.t.state``), by loop value
        for runs that have one (``tasks.t['a'].state``)."""
        if self._tasks is None:
            out: JSON = {}
            for run in self.state.task_runs.values():
                entry = {"state": run.state.value}
                if run.value is None:
                    out[run.task_id] = entry
                else:
                    node = out.get(run.task_id)
                    if not isinstance(node, dict) or "state" in node:
                        node = out[run.task_id] = {}
                    node[run.value] = entry
            self._tasks = out
        return self._tasks

    def input_variables(self) -> JSON:
        """Given inputs over the declared defaults: an execution created without inputs
        (a trigger, ``inputs_mode: none``) still reads each input's default."""
        st = self.state
        if st.input_vars is None:
            defaults = declared_defaults(st.flow.get("inputs"))
            st.input_vars = {**defaults, **st.inputs} if defaults else st.inputs
        return st.input_vars

    def variables(self, run: TaskRun | None, task: JSON | None = None) -> JSON:
        st = self.state
        start = st.history[0][1] if st.history else self.now
        variables: JSON = {
            "envs": self.env.get("envs") or {},
            "globals": self.env.get("globals") or {},
            "flow": {
                "id": st.flow_id,
                "namespace": st.namespace,
                "revision": st.flow.get("revision"),
            },
            "execution": {
                "id": st.execution_id,
                "startDate": start,
                "originalId": st.original_execution_id or st.execution_id,
                "state": st.state.value,
            },
            "vars": st.variables if st.variables is not None else st.flow.get("variables") or {},
            "labels": _nested_labels(st.labels),
            "outputs": self.outputs_map(),
        }
        if task is None or mentions_tasks(task):
            # Rebuilt whenever a run changes: only for the tasks that read it (a big loop
            # would otherwise rebuild it for every job it dispatches).
            variables["tasks"] = self.tasks_map()
        if st.loop is not None:
            _iteration_variables(variables, st.loop, st.variables)
        inputs = self.input_variables()
        if inputs:  # Kestra leaves `inputs` undefined when there are none at all
            variables["inputs"] = inputs
        if st.trigger is not None:
            trigger = trigger_variables(st.trigger)
            if trigger is not None:
                variables["trigger"] = trigger
            variables.update(execution_variables(st.trigger))
        if run is None:
            return variables
        variables["task"] = {"id": run.task_id, "type": run.type}
        taskrun = _taskrun_variables(run)
        variables["taskrun"] = taskrun
        parents: list[JSON] = []
        parent = st.task_runs.get(run.parent_id) if run.parent_id else None
        while parent is not None:
            # Execution.parents: each parent with a loop value or outputs, closest first.
            entry: JSON = {}
            if parent.value is not None:
                entry["taskrun"] = {"value": parent.value}
            if parent.outputs:
                entry["outputs"] = parent.outputs
            if entry:
                parents.append(entry)
            if "workerTaskrun" not in variables and parent.type == WORKING_DIRECTORY:
                # Kestra runs a WorkingDirectory's tasks with its task run as
                # `workerTaskrun`, whose loop value the inner `taskrun.value` takes.
                worker = variables["workerTaskrun"] = _taskrun_variables(parent)
                if worker["value"] is not None:
                    taskrun["value"] = worker["value"]
            parent = st.task_runs.get(parent.parent_id) if parent.parent_id else None
        variables["parents"] = parents  # RunVariables: always there for a task run
        if parents:
            variables["parent"] = parents[0]
        return variables


# Task dicts -> whether an expression of theirs names the ``tasks`` variable (same caching
# rule as the task index: keyed by identity, holding the task so an id is never reused).
_MENTIONS: dict[int, tuple[JSON, bool]] = {}
_TASKS_WORD = re.compile(r"\btasks\b")


def mentions_tasks(task: JSON) -> bool:
    hit = _MENTIONS.get(id(task))
    if hit is not None and hit[0] is task:
        return hit[1]
    found = False
    stack: list[Any] = [v for k, v in task.items() if k not in _TASK_LISTS]
    while stack and not found:
        node = stack.pop()
        if isinstance(node, str):
            found = ("{{" in node or "{%" in node) and _TASKS_WORD.search(node) is not None
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    if len(_MENTIONS) >= INDEX_CACHE:
        _MENTIONS.clear()
    _MENTIONS[id(task)] = (task, found)
    return found


def _iteration_variables(variables: JSON, loop: JSON, own_vars: JSON | None) -> None:
    """What a Loop iteration's tasks see beyond their own execution (Kestra 2.0's
    RunVariables for a LOOP execution): ``item``, the parent's task outputs (as they were
    when the iteration started) under its own, the parent's ``execution`` and ``vars``."""
    item: JSON = {"index": loop.get("index"), "value": loop.get("value")}
    if loop.get("key") is not None:
        item["key"] = loop["key"]
    parents = loop.get("parents") or []
    if parents:
        item["parent"] = parents[-1]
        item["parents"] = parents
    variables["item"] = item
    inherited = loop.get("outputs")
    if inherited:
        variables["outputs"] = {**inherited, **variables["outputs"]}
    if isinstance(loop.get("execution"), dict):
        variables["execution"] = loop["execution"]
    if own_vars is None and loop.get("vars") is not None:
        variables["vars"] = loop["vars"]


def _taskrun_variables(run: TaskRun) -> JSON:
    return {
        "id": run.id,
        "startDate": run.history[0][1],
        "attemptsCount": max(len(run.attempts) - 1, 0),
        "parentId": run.parent_id,
        "value": run.value,
        "iteration": run.iteration,
    }
