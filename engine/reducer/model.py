"""The reducer's contract: execution state, and what one decision produces.

``decide(state, command, now) -> Decision``. Everything here is a ``__slots__`` dataclass with
``to_dict()`` / ``from_dict()`` to plain JSON-able dicts (orjson on the bus), because the
executor loop touches these on every command and pydantic would cost more than the decision.

- :class:`ExecutionState` is the ``hw.executor-state`` snapshot; it round-trips exactly.
- :class:`Decision` is what the processor writes: ``events`` -> ``hw.events``, ``jobs`` ->
  ``hw.jobs``, ``timers`` armed and ``cancel_timers`` disarmed in the timer wheel,
  ``stop_jobs`` told to workers, ``commands`` produced to ``hw.commands`` (other executions).
- Times are ISO-8601 UTC strings with milliseconds (``2024-01-01T00:00:00.000Z``), which sort
  lexicographically in time order.
- A ``history`` entry (``[state, time]``) is never changed once appended, so ``to_dict()``
  copies the history list but shares its entries (deep-copying every history for each
  event was among the reducer's largest costs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.reducer.commands import (
    COMMAND_TYPES,
    JSON,
    Admitted,
    ChildExecutionEnded,
    Command,
    Heartbeat,
    Kill,
    ParentRef,
    Replay,
    Restart,
    Resume,
    SetLabels,
    StartExecution,
    TaskResult,
    TaskStarted,
    TimerFired,
    command_from_dict,
)
from engine.reducer.states import State, can_transition

# How many applied command ids an execution remembers for deduplication. A redelivery comes
# from the same uncommitted batch, so a few hundred recent ids cover it with room to spare.
DEDUP_WINDOW = 512


class _Stateful(Protocol):
    state: State
    history: list[list[str]]


def _move(obj: _Stateful, state: State, now: str) -> bool:
    """The one transition rule of task runs and executions: allowed moves only, each kept in
    the history with its time."""
    if state == obj.state or not can_transition(obj.state, state):
        return False
    obj.state = state
    obj.history.append([state.value, now])
    return True


@dataclass(slots=True)
class LoopProgress:
    """A cache of one loop's iterations, by value: finished ones with their final state, and
    the ones started and not finished."""

    ended: dict[str, State] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Attempt:
    """One try of a runnable task run (flowables have no attempts, like Kestra)."""

    state: State
    history: list[list[str]]
    worker_id: str = ""
    heartbeat: str | None = None
    error: str | None = None
    # Log lines the attempt's runner shipped to hw.logs (its TaskResult says): a reader of the
    # read model knows an ended attempt's lines are all there once it holds this many.
    log_lines: int = 0

    def to_dict(self) -> JSON:
        return {
            "state": self.state.value,
            "history": self.history.copy(),
            "worker_id": self.worker_id,
            "heartbeat": self.heartbeat,
            "error": self.error,
            "log_lines": self.log_lines,
        }

    @classmethod
    def from_dict(cls, d: JSON) -> Attempt:
        return cls(
            State(d["state"]),
            [list(h) for h in d["history"]],
            d.get("worker_id", ""),
            d.get("heartbeat"),
            d.get("error"),
            d.get("log_lines", 0),
        )


@dataclass(slots=True)
class TaskRun:
    """One run of one task, in one iteration (``values`` = the enclosing loop values)."""

    id: str
    task_id: str
    type: str
    parent_id: str | None
    values: list[str]
    branch: str  # "tasks" | "errors" | "finally" | "then" | "else" | case key ... of its parent
    state: State
    history: list[list[str]]
    attempts: list[Attempt] = field(default_factory=list)
    outputs: JSON = field(default_factory=dict)
    iteration: int | None = None
    # Flowable bookkeeping (loop values, chosen branch, child execution id, waitfor count...).
    data: JSON = field(default_factory=dict)
    # Creation order in the execution (Kestra's taskRunList order: parents before children);
    # the read model and the API list task runs by it.
    position: int = -1

    @property
    def value(self) -> str | None:
        return self.values[-1] if self.values else None

    def set_state(self, state: State, now: str) -> bool:
        """Move to ``state`` if the rules allow it; returns whether anything changed."""
        return _move(self, state, now)

    def to_dict(self) -> JSON:
        return {
            "id": self.id,
            "task_id": self.task_id,
            "type": self.type,
            "parent_id": self.parent_id,
            "values": list(self.values),
            "value": self.value,
            "branch": self.branch,
            "state": self.state.value,
            "history": self.history.copy(),
            "attempts": [a.to_dict() for a in self.attempts],
            "outputs": self.outputs,
            "iteration": self.iteration,
            "data": self.data,
            "position": self.position,
        }

    @classmethod
    def from_dict(cls, d: JSON) -> TaskRun:
        return cls(
            id=d["id"],
            task_id=d["task_id"],
            type=d["type"],
            parent_id=d.get("parent_id"),
            values=list(d.get("values") or []),
            branch=d.get("branch", "tasks"),
            state=State(d["state"]),
            history=[list(h) for h in d["history"]],
            attempts=[Attempt.from_dict(a) for a in d.get("attempts") or []],
            outputs=d.get("outputs") or {},
            iteration=d.get("iteration"),
            data=d.get("data") or {},
            position=d.get("position", -1),
        )


@dataclass(slots=True)
class Timer:
    """Ask the processor to send ``TimerFired(timer_id)`` at ``fire_at``."""

    timer_id: str
    execution_id: str
    fire_at: str
    kind: str  # "retry" | "pause" | "timeout" | "heartbeat" | "waitfor" | "execution_retry"
    data: JSON = field(default_factory=dict)

    def to_dict(self) -> JSON:
        return {
            "timer_id": self.timer_id,
            "execution_id": self.execution_id,
            "fire_at": self.fire_at,
            "kind": self.kind,
            "data": self.data,
        }

    @classmethod
    def from_dict(cls, d: JSON) -> Timer:
        return cls(d["timer_id"], d["execution_id"], d["fire_at"], d["kind"], d.get("data") or {})


@dataclass(slots=True)
class Job:
    """Run one attempt of one runnable task. ``task`` is unrendered: the worker renders it
    with ``context`` (the expression variables), so secrets never enter the state."""

    execution_id: str
    task_run_id: str
    attempt: int
    task: JSON
    context: JSON
    worker_group: str | None = None
    timeout: float | None = None  # seconds; the reducer also arms a timer for it

    def to_dict(self) -> JSON:
        return {
            "execution_id": self.execution_id,
            "task_run_id": self.task_run_id,
            "attempt": self.attempt,
            "task": self.task,
            "context": self.context,
            "worker_group": self.worker_group,
            "timeout": self.timeout,
        }

    @classmethod
    def from_dict(cls, d: JSON) -> Job:
        return cls(
            d["execution_id"],
            d["task_run_id"],
            d["attempt"],
            d["task"],
            d["context"],
            d.get("worker_group"),
            d.get("timeout"),
        )


@dataclass(slots=True)
class StopJob:
    """Tell whichever worker runs (task run, attempt) to stop it (kill, timeout)."""

    execution_id: str
    task_run_id: str
    attempt: int
    reason: str

    def to_dict(self) -> JSON:
        return {
            "execution_id": self.execution_id,
            "task_run_id": self.task_run_id,
            "attempt": self.attempt,
            "reason": self.reason,
        }


@dataclass(slots=True)
class Event:
    """A fact for ``hw.events``: full snapshots, so a projector upserts idempotently by seq.

    Types: ``ExecutionUpdated`` (payload: the execution summary), ``TaskRunUpdated``
    (payload: the whole task run), ``LogEmitted`` (payload: level, message, task_run_id...).
    """

    type: str
    execution_id: str
    seq: int
    occurred: str
    payload: JSON

    def to_dict(self) -> JSON:
        return {
            "type": self.type,
            "execution_id": self.execution_id,
            "seq": self.seq,
            "occurred": self.occurred,
            "payload": self.payload,
        }


@dataclass(slots=True)
class OutgoingCommand:
    """A command for another execution. With ``resolve_flow`` set (``namespace``, ``flowId``,
    optional ``revision``), the processor loads that flow and puts it in ``command.flow``
    before producing it (the reducer cannot read the flow store)."""

    command: Command
    resolve_flow: JSON | None = None

    def to_dict(self) -> JSON:
        return {"command": self.command.to_dict(), "resolve_flow": self.resolve_flow}

    @classmethod
    def from_dict(cls, d: JSON) -> OutgoingCommand:
        return cls(command_from_dict(d["command"]), d.get("resolve_flow"))


@dataclass(slots=True)
class ExecutionState:
    """Everything the reducer knows about one execution (the ``hw.executor-state`` value)."""

    execution_id: str
    namespace: str
    flow_id: str
    flow: JSON
    state: State
    history: list[list[str]]
    inputs: JSON = field(default_factory=dict)
    labels: JSON = field(default_factory=dict)
    trigger: JSON | None = None
    parent: ParentRef | None = None
    task_runs: dict[str, TaskRun] = field(default_factory=dict)
    outputs: JSON | None = None
    seq: int = 0
    seen: list[str] = field(default_factory=list)
    timers: dict[str, Timer] = field(default_factory=dict)
    error_logs: list[JSON] = field(default_factory=list)
    killing: bool = False
    scheduled: str | None = None
    original_execution_id: str | None = None
    original_start: str | None = None
    retry_number: int = 0
    # Restart generation: part of new task-run ids so a re-created run never collides.
    generation: int = 0
    # The execution's variables (``vars``) once a task changed them; None: the flow's.
    variables: JSON | None = None
    # The position the next created task run takes (TaskRun.position).
    next_position: int = 0
    # Ids of the tasks run once the execution ended (matching listeners, afterExecution).
    after: list[str] = field(default_factory=list)
    # A Kestra 2.0 Loop iteration: what it iterates on and for whom (flow_loop.LoopRef).
    loop: JSON | None = None
    # Caches rebuilt on demand, never serialized.
    seen_index: set[str] | None = field(default=None, compare=False, repr=False)
    task_index: dict[str, JSON] | None = field(default=None, compare=False, repr=False)
    # The `inputs` expressions see: given inputs over declared defaults (Kestra's RunVariables).
    input_vars: JSON | None = field(default=None, compare=False, repr=False)
    # Task runs by (parent id, values, iteration) -> task id; kept up to date by the Ctx.
    kids_index: dict[tuple[Any, ...], dict[str, TaskRun]] | None = field(
        default=None, compare=False, repr=False
    )
    # Loop run id -> its iterations' progress (flow_each.py), so a step need not walk every
    # iteration (without it, a 1,000-item ForEach cost O(n^2)). Finished runs only change
    # through a restart or a removal, which drop it (Ctx.set_state / Ctx.remove_run).
    loop_progress: dict[str, LoopProgress] | None = field(default=None, compare=False, repr=False)

    def set_state(self, state: State, now: str) -> bool:
        """Move to ``state`` if the rules allow it; returns whether anything changed."""
        return _move(self, state, now)

    def summary(self) -> JSON:
        """The ExecutionUpdated payload: everything about the execution but its task runs."""
        return {
            "id": self.execution_id,
            "namespace": self.namespace,
            "flow_id": self.flow_id,
            "revision": self.flow.get("revision"),
            "state": self.state.value,
            "history": self.history.copy(),
            "start_date": self.history[0][1] if self.history else None,
            "end_date": self.history[-1][1] if self.state.is_terminal else None,
            "inputs": self.inputs,
            "labels": self.labels,
            "outputs": self.outputs,
            "trigger": self.trigger,
            "parent": self.parent.to_dict() if self.parent else self._loop_parent(),
            "original_execution_id": self.original_execution_id,
            "retry_number": self.retry_number,
            **({"kind": "LOOP"} if self.loop is not None else {}),
        }

    def _loop_parent(self) -> JSON | None:
        """An iteration's parent, as the read model keeps a subflow's (``kind`` LOOP)."""
        loop = self.loop
        if loop is None:
            return None
        return {
            "kind": "LOOP",
            "execution_id": loop.get("execution_id"),
            "task_run_id": loop.get("task_run_id"),
            "task_id": loop.get("task_id"),
            "index": loop.get("index"),
            "key": loop.get("key"),
            "value": loop.get("value"),
            "namespace": self.namespace,
            "flow_id": self.flow_id,
        }

    def to_dict(self) -> JSON:
        return {
            "execution_id": self.execution_id,
            "namespace": self.namespace,
            "flow_id": self.flow_id,
            "flow": self.flow,
            "state": self.state.value,
            "history": self.history.copy(),
            "inputs": self.inputs,
            "labels": self.labels,
            "trigger": self.trigger,
            "parent": self.parent.to_dict() if self.parent else None,
            "task_runs": [tr.to_dict() for tr in self.task_runs.values()],
            "outputs": self.outputs,
            "seq": self.seq,
            "seen": list(self.seen),
            "timers": [t.to_dict() for t in self.timers.values()],
            "error_logs": self.error_logs,
            "killing": self.killing,
            "scheduled": self.scheduled,
            "original_execution_id": self.original_execution_id,
            "original_start": self.original_start,
            "retry_number": self.retry_number,
            "generation": self.generation,
            "variables": self.variables,
            "next_position": self.next_position,
            "after": list(self.after),
            "loop": self.loop,
        }

    @classmethod
    def from_dict(cls, d: JSON) -> ExecutionState:
        runs = [TaskRun.from_dict(t) for t in d.get("task_runs") or []]
        for index, run in enumerate(runs):  # a snapshot from before positions: list order
            if run.position < 0:
                run.position = index
        timers = (Timer.from_dict(t) for t in d.get("timers") or [])
        return cls(
            execution_id=d["execution_id"],
            namespace=d["namespace"],
            flow_id=d["flow_id"],
            flow=d["flow"],
            state=State(d["state"]),
            history=[list(h) for h in d["history"]],
            inputs=d.get("inputs") or {},
            labels=d.get("labels") or {},
            trigger=d.get("trigger"),
            parent=ParentRef.from_dict(d["parent"]) if d.get("parent") else None,
            task_runs={tr.id: tr for tr in runs},
            outputs=d.get("outputs"),
            seq=d.get("seq", 0),
            seen=list(d.get("seen") or []),
            timers={t.timer_id: t for t in timers},
            error_logs=d.get("error_logs") or [],
            killing=bool(d.get("killing", False)),
            scheduled=d.get("scheduled"),
            original_execution_id=d.get("original_execution_id"),
            original_start=d.get("original_start"),
            retry_number=d.get("retry_number", 0),
            generation=d.get("generation", 0),
            variables=d.get("variables"),
            next_position=d.get("next_position", len(runs)),
            after=list(d.get("after") or []),
            loop=d.get("loop"),
        )


@dataclass(slots=True)
class Decision:
    """What one command did. ``state`` is None when there is no execution (unknown id)."""

    state: ExecutionState | None
    events: list[Event] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    cancel_timers: list[str] = field(default_factory=list)
    stop_jobs: list[StopJob] = field(default_factory=list)
    commands: list[OutgoingCommand] = field(default_factory=list)
    duplicate: bool = False

    def to_dict(self) -> JSON:
        return {
            "state": self.state.to_dict() if self.state else None,
            "events": [e.to_dict() for e in self.events],
            "jobs": [j.to_dict() for j in self.jobs],
            "timers": [t.to_dict() for t in self.timers],
            "cancel_timers": list(self.cancel_timers),
            "stop_jobs": [s.to_dict() for s in self.stop_jobs],
            "commands": [c.to_dict() for c in self.commands],
            "duplicate": self.duplicate,
        }


__all__ = [
    "COMMAND_TYPES",
    "DEDUP_WINDOW",
    "JSON",
    "Admitted",
    "Attempt",
    "ChildExecutionEnded",
    "Command",
    "Decision",
    "Event",
    "ExecutionState",
    "Heartbeat",
    "Job",
    "Kill",
    "OutgoingCommand",
    "ParentRef",
    "Replay",
    "Restart",
    "Resume",
    "SetLabels",
    "StartExecution",
    "State",
    "StopJob",
    "TaskResult",
    "TaskRun",
    "TaskStarted",
    "Timer",
    "TimerFired",
    "command_from_dict",
]
