"""Commands: everything that can happen to an execution, as plain data.

A command is the only input of :func:`engine.reducer.decide.decide`. It travels on
``hw.commands`` keyed by ``execution_id`` as ``to_dict()`` (with a ``type`` discriminator) and
comes back with :func:`command_from_dict`. ``command_id`` is the idempotency key: the reducer
ignores a command whose id it has already applied, so an at-least-once bus is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

JSON = dict[str, Any]

C = TypeVar("C", bound="Command")


@dataclass(slots=True)
class ParentRef:
    """Who started a subflow execution, and what the parent's Subflow task asked for."""

    execution_id: str
    task_run_id: str
    namespace: str
    flow_id: str
    wait: bool = True
    transmit_failed: bool = False
    # Subflow `outputs:` (legacy): name -> expression rendered in the child when it ends.
    outputs: JSON | None = None
    # Top-most execution of the chain, for the `system.correlationId` label.
    root_execution_id: str | None = None

    def to_dict(self) -> JSON:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: JSON) -> ParentRef:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(slots=True, kw_only=True)
class Command:
    """Base of every command; ``type`` names the subclass on the wire."""

    type: ClassVar[str] = "Command"
    command_id: str
    execution_id: str

    def to_dict(self) -> JSON:
        out: JSON = {"type": self.type}
        for name in field_names(type(self)):
            value = getattr(self, name)
            out[name] = value.to_dict() if isinstance(value, ParentRef) else value
        return out


@dataclass(slots=True, kw_only=True)
class StartExecution(Command):
    """Create an execution of ``flow`` (the normalized flow dict, pinned at this revision)."""

    type: ClassVar[str] = "StartExecution"
    namespace: str
    flow_id: str
    flow: JSON
    inputs: JSON = field(default_factory=dict)
    labels: JSON = field(default_factory=dict)
    trigger: JSON | None = None
    parent: ParentRef | None = None
    scheduled: str | None = None
    created: str | None = None
    # Replay / CREATE_NEW_EXECUTION retry: task runs copied from an earlier execution
    # (``TaskRun.to_dict`` list), its id, and how many executions this retry chain has made.
    seed_task_runs: list[JSON] | None = None
    original_execution_id: str | None = None
    original_start: str | None = None
    retry_number: int = 0
    # The flow's concurrency admission (engine.reducer.admission): RUN, QUEUED (wait for an
    # Admitted command), CANCELLED or FAILED (the execution ends at once).
    admission: str = "RUN"
    # What the creator noticed and the execution's logs should say (WARN), e.g. inputs the
    # flow does not declare.
    notes: list[str] = field(default_factory=list)
    # Why the execution cannot run (a trigger's inputs that did not render): it is created
    # FAILED with this message at ERROR, never started with half-rendered inputs.
    error: str | None = None
    # A Kestra 2.0 Loop iteration (engine.reducer.flow_loop.LoopRef as a dict): this
    # execution runs the Loop's tasks of its parent's flow for one value, and tells the
    # parent's Loop task run how it ends.
    loop: JSON | None = None


@dataclass(slots=True, kw_only=True)
class Admitted(Command):
    """A QUEUED execution got a concurrency slot: it starts now."""

    type: ClassVar[str] = "Admitted"


@dataclass(slots=True, kw_only=True)
class TaskStarted(Command):
    """A worker took the job of (task run, attempt)."""

    type: ClassVar[str] = "TaskStarted"
    task_run_id: str
    attempt: int
    worker_id: str = ""


@dataclass(slots=True, kw_only=True)
class TaskResult(Command):
    """A worker finished (task run, attempt): terminal ``state`` with outputs or error.

    ``labels`` is how the Labels task changes execution labels (a dict, or Kestra's list of
    ``{key, value}``); ``error_logs`` are the ERROR lines the task logged (for ``errorLogs()``);
    ``log_lines`` counts the lines it sent to hw.logs (ids ``worker_log_id(run, attempt, 0..n-1)``).
    """

    type: ClassVar[str] = "TaskResult"
    task_run_id: str
    attempt: int
    state: str
    outputs: JSON = field(default_factory=dict)
    error: str | None = None
    metrics: JSON = field(default_factory=dict)
    error_logs: list[JSON] = field(default_factory=list)
    labels: JSON | list[JSON] | None = None
    worker_id: str = ""
    log_lines: int = 0
    # How the task changes its execution (SetVariables, UnsetVariables, Exit): see
    # engine.reducer.updates.
    update: JSON | None = None


@dataclass(slots=True, kw_only=True)
class Heartbeat(Command):
    type: ClassVar[str] = "Heartbeat"
    task_run_id: str
    attempt: int
    worker_id: str = ""


@dataclass(slots=True, kw_only=True)
class TimerFired(Command):
    """The executor's timer wheel says ``timer_id`` is due (it may have been cancelled since)."""

    type: ClassVar[str] = "TimerFired"
    timer_id: str


@dataclass(slots=True, kw_only=True)
class Kill(Command):
    type: ClassVar[str] = "Kill"
    reason: str = ""


@dataclass(slots=True, kw_only=True)
class Resume(Command):
    """Resume a paused execution; ``task_run_id`` None resumes every paused task run."""

    type: ClassVar[str] = "Resume"
    task_run_id: str | None = None
    inputs: JSON = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class Restart(Command):
    """Restart a failed execution from its failed task runs (same execution id)."""

    type: ClassVar[str] = "Restart"


@dataclass(slots=True, kw_only=True)
class Replay(Command):
    """Copy this execution up to ``task_run_id`` into ``new_execution_id`` and run from there."""

    type: ClassVar[str] = "Replay"
    task_run_id: str | None
    new_execution_id: str


@dataclass(slots=True, kw_only=True)
class SetLabels(Command):
    type: ClassVar[str] = "SetLabels"
    labels: JSON


@dataclass(slots=True, kw_only=True)
class ChildExecutionEnded(Command):
    """A subflow child execution reached a terminal state (sent to the parent execution).

    A Loop iteration also sends it when it is PAUSED and when it runs again (``state``
    PAUSED or RUNNING, ``loop_index`` set): the parent's Loop follows its iterations."""

    type: ClassVar[str] = "ChildExecutionEnded"
    child_execution_id: str
    parent_task_run_id: str
    state: str
    # The subflow's outputs as the parent's task sees them (the child flow's typed
    # ``outputs``, else the task's legacy ``outputs`` rendered in the child); None: none.
    outputs: JSON | None = field(default_factory=dict)
    # Why the child could not be started (unknown or disabled flow, invalid inputs).
    error: str | None = None
    # Why the outputs could not be extracted (Kestra fails the parent's task).
    outputs_error: str | None = None
    # A Loop iteration's index (None for a subflow child).
    loop_index: int | None = None


@dataclass(slots=True, kw_only=True)
class PurgeExecution(Command):
    """Delete an ended execution from the executor's state and the read model (the
    PurgeExecutions task). Handled by the executor's batch (engine.executor.batch), never
    by ``decide``: the execution's snapshot is tombstoned and an ``ExecutionPurged`` event
    tells the projector to delete its rows. A running execution is not purged."""

    type: ClassVar[str] = "PurgeExecution"


COMMAND_TYPES: dict[str, type[Command]] = {
    cls.type: cls
    for cls in (
        StartExecution,
        Admitted,
        TaskStarted,
        TaskResult,
        Heartbeat,
        TimerFired,
        Kill,
        Resume,
        Restart,
        Replay,
        SetLabels,
        ChildExecutionEnded,
        PurgeExecution,
    )
}


def field_names(cls: type[Any]) -> tuple[str, ...]:
    """The dataclass fields of a command class, in order (``dataclasses.fields`` rebuilds
    its answer on every call, which was a visible part of decoding each command)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {}


def command_from_dict(data: JSON) -> Command:
    """Rebuild a command from its ``to_dict()``; unknown keys are ignored (newer senders)."""
    cls = COMMAND_TYPES.get(str(data.get("type")))
    if cls is None:
        known = sorted(COMMAND_TYPES)
        raise ValueError(f"unknown command type {data.get('type')!r}; known: {known}")
    kwargs = dict(data)
    del kwargs["type"]
    if isinstance(kwargs.get("parent"), dict):
        kwargs["parent"] = ParentRef.from_dict(kwargs["parent"])
    try:
        # The common case: exactly the fields this version writes (one C-level copy).
        return cls(**kwargs)
    except TypeError:
        pass
    # A newer sender's extra keys (or missing ones: then the TypeError names them).
    names = field_names(cls)
    return cls(**{k: v for k, v in kwargs.items() if k in names})
