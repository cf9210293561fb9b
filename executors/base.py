"""The one interface every task executor implements, and what a running task can reach.

A worker turns a :class:`engine.reducer.model.Job` into a :class:`TaskContext`, looks the task's
canonical type up in :mod:`executors.registry` and awaits :func:`run_task`. The executor only
sees the unrendered task definition (``Mapping[str, Any]``) and the context; everything the
outside world provides (the KV store, past logs, internal storage, the clock, sleeping) arrives
through the context as a hook, so the same executor runs in a worker, in the dev process and in
the in-process conformance harness.

An executor may raise: :func:`run_task` turns any exception into a FAILED :class:`TaskOutcome`
carrying the message and logs that message at ERROR, as Kestra's worker does (``errorLogs()``
reads those lines). A task never crashes its worker.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

LogLevel = Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
OutcomeState = Literal["SUCCESS", "WARNING", "FAILED", "KILLED"]

LEVELS: dict[str, int] = {"TRACE": 0, "DEBUG": 1, "INFO": 2, "WARN": 3, "ERROR": 4}
# Kestra accepts WARNING as a spelling of WARN in level properties.
_LEVEL_ALIASES: dict[str, str] = {"WARNING": "WARN"}

# What a secret becomes in a log line; Kestra prints the same mask.
SECRET_MASK = "********"  # noqa: S105 - a mask, not a password


class TaskError(Exception):
    """A task failed on purpose (bad property, missing key): the message is for the user."""


def normalize_level(value: Any, default: LogLevel = "INFO") -> LogLevel:
    """A log level name in canonical spelling; raises TaskError naming the accepted values."""
    if value is None:
        return default
    name = str(value).strip().upper()
    name = _LEVEL_ALIASES.get(name, name)
    if name not in LEVELS:
        raise TaskError(f"invalid log level {value!r}: expected one of {', '.join(LEVELS)}")
    return name  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class LogLine:
    """One log line of one task run, as streamed to ``hw.logs``."""

    execution_id: str
    task_run_id: str
    task_id: str | None
    attempt: int
    level: LogLevel
    message: str
    timestamp: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "executionId": self.execution_id,
            "taskRunId": self.task_run_id,
            "taskId": self.task_id,
            "attemptNumber": self.attempt,
            "level": self.level,
            "message": self.message,
            "timestamp": iso_millis(self.timestamp),
        }


@dataclass(slots=True)
class TaskOutcome:
    """What a task run ended with; the worker turns it into a ``TaskResult`` command.

    ``KILLED`` is only produced when the context's cancellation signal stopped the task.
    ``labels`` (``[{"key", "value"}]``) is set by tasks that change the execution's labels;
    it travels in ``TaskResult.labels`` and the reducer applies it. ``update`` is how the other
    tasks that change their execution say what to change (``setVariables``, ``unsetVariables``,
    ``exit``: see :mod:`engine.reducer.updates`); it travels in ``TaskResult.update``.
    """

    state: OutcomeState
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    labels: list[dict[str, str]] | None = None
    update: dict[str, Any] | None = None


class KVStore(Protocol):
    """The namespace key-value store as tasks see it."""

    async def get(self, namespace: str, key: str) -> tuple[bool, Any]:
        """(found, value)."""
        ...

    async def set(
        self,
        namespace: str,
        key: str,
        value: Any,
        *,
        overwrite: bool,
        ttl_seconds: float | None,
        keep_expiry: bool = False,
    ) -> None:
        """Store ``value``; raise TaskError when it exists and ``overwrite`` is false.
        ``keep_expiry`` keeps the current entry's expiry instead of ``ttl_seconds``."""
        ...

    async def list_entries(self) -> list[tuple[str, str, datetime | None]]:
        """(namespace, key, expiry) of every stored key, expired ones included."""
        ...

    async def delete(self, namespace: str, key: str) -> bool:
        """Whether a value existed (and is now gone)."""
        ...


class LogSource(Protocol):
    """Read access to the logs already written for an execution (Kestra's log repository)."""

    async def fetch(
        self, execution_id: str, min_level: LogLevel, task_ids: list[str] | None
    ) -> list[LogLine]: ...


class TriggerStates(Protocol):
    """The saved state of flows' triggers (the scheduler's store), as tasks may change it."""

    async def set_enabled(
        self, namespace: str, flow_id: str, trigger_id: str, *, enabled: bool
    ) -> None:
        """Enable or disable a trigger; raise TaskError naming it when the flow has none."""
        ...


class Storage(Protocol):
    """Internal storage: big payloads go here and travel as URIs (``kestra://...``)."""

    async def put(self, execution_id: str, name: str, data: bytes) -> str: ...

    async def read(self, uri: str) -> bytes:
        """The file's bytes; raises (StorageError) naming the URI when it does not exist."""
        ...

    async def put_file(self, name: str, source: Path, *, move: bool = False) -> str:
        """Store a local file of any size, streamed (moved when ``move``); its URI."""
        ...

    async def local_path(self, uri: str) -> Path:
        """A local file with the content of ``uri`` to stream from; raises when missing."""
        ...

    async def delete(self, uri: str) -> bool:
        """Delete one file; whether it existed."""
        ...

    async def delete_execution_files(self) -> list[str]:
        """Delete every file of the running execution; the URIs deleted."""
        ...


class NamespaceFileStore(Protocol):
    """Namespace files (engine.stores.nsfiles.NamespaceFiles) as tasks use them; entries have
    ``path`` (``/a/b.sql``), ``local`` (a Path to read), ``is_dir`` and ``uri``."""

    async def find(self, namespace: str, patterns: list[str]) -> list[Any]: ...

    async def all(self, namespace: str) -> list[Any]:
        """Every file and folder of the namespace, sorted by path."""
        ...

    async def mkdir(self, namespace: str, path: str) -> Any: ...

    async def namespaces(self) -> list[str]:
        """Every namespace that has a files folder."""
        ...

    async def put(self, namespace: str, path: str, source: Any, conflict: Any = ...) -> Any:
        """Store a file (a local Path, bytes or a stream); None when ``conflict`` skipped it."""
        ...

    async def delete(self, namespace: str, path: str) -> list[str]: ...

    async def remove_empty_folder(self, namespace: str, path: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class DeployedFlow:
    """The current revision of a deployed flow, with the YAML source it was deployed from."""

    namespace: str
    id: str
    revision: int
    source: str


class FlowRepository(Protocol):
    """Deployed flows as tasks read and change them (engine.worker.flows.TopicFlows): read
    from the deployed-flow store (hw.flows), deployed and deleted through hw.flows exactly as
    the API does (engine.flows.deploy). Failures raise TaskError."""

    async def list(self, namespace: str, *, children: bool) -> list[DeployedFlow]:
        """The flows of ``namespace`` (and of its child namespaces; every flow for ``""``),
        sorted by namespace and id."""
        ...

    async def get(self, namespace: str, flow_id: str) -> DeployedFlow | None: ...

    def check(self, source: str) -> tuple[str, str]:
        """(namespace, id) of a valid flow source; TaskError listing its problems."""
        ...

    async def deploy(self, source: str) -> DeployedFlow:
        """Deploy a valid source (an unchanged one keeps its revision)."""
        ...

    async def delete(self, namespace: str, flow_id: str) -> bool: ...


class Purges(Protocol):
    """Purging executions and logs (engine.worker.purges.ReadModelPurges): find them in the
    read model, purge them through Kafka."""

    async def find_executions(
        self,
        *,
        namespace: str | None,
        flow_id: str | None,
        start: datetime | None,
        end: datetime,
        states: list[str] | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Any]: ...

    async def count_logs(self, execution_ids: list[str]) -> int: ...

    async def purge_execution(self, execution_id: str, task_run_id: str) -> None: ...

    async def purge_storage(self, execution: Any) -> int: ...

    async def find_logs(
        self,
        *,
        namespace: str | None,
        flow_id: str | None,
        execution_id: str | None,
        levels: list[str] | None,
        start: datetime | None,
        end: datetime,
    ) -> list[tuple[str, int]]: ...

    async def purge_logs(
        self, execution_id: str, *, levels: list[str] | None, start: datetime | None, end: datetime
    ) -> None: ...


class ProcessWatch(Protocol):
    """Remembers the process groups a task started, so that they die with their worker even
    when the worker is SIGKILLed (engine.worker.guard); script runners report each group."""

    def register(self, pgid: int) -> None: ...

    def unregister(self, pgid: int) -> None: ...


@dataclass(frozen=True, slots=True)
class ContainerSettings:
    """Where script tasks that ask for a container may run (the worker's settings).

    ``docker_host`` names the Docker Engine (``unix:///var/run/docker.sock``,
    ``tcp://127.0.0.1:2375``); None: this worker has none. ``on_host`` is the operator's opt-in
    to run such tasks on the worker's host instead of failing them (logged on the task at
    WARN). ``volumes_enabled`` allows the Docker runner's ``volumes`` (host bind mounts).
    """

    docker_host: str | None = None
    on_host: bool = False
    volumes_enabled: bool = False


# (value, variables, expression hooks) -> rendered value; hooks is an ExpressionHooks or None.
Renderer = Callable[[Any, Mapping[str, Any], Any], Any]
Sleeper = Callable[[float, asyncio.Event], Awaitable[bool]]


async def real_sleep(seconds: float, cancelled: asyncio.Event) -> bool:
    """Sleep ``seconds`` unless ``cancelled`` is set first; True when the full time elapsed."""
    try:
        await asyncio.wait_for(cancelled.wait(), timeout=max(seconds, 0.0))
    except TimeoutError:
        return True
    return False


def _utc_now() -> datetime:
    return datetime.now(UTC)


def default_renderer(value: Any, variables: Mapping[str, Any], hooks: Any) -> Any:
    """Render every string inside ``value`` with the engine's expression language."""
    # Imported here so that this interface module stays importable on its own.
    from engine.expressions import render_value

    return render_value(value, dict(variables), hooks)


@dataclass(slots=True)
class TaskContext:
    """Everything a running task can see and do; built by the worker from a Job."""

    execution_id: str
    task_run_id: str
    attempt: int
    variables: Mapping[str, Any]
    task_id: str | None = None
    namespace: str | None = None
    flow_id: str | None = None
    log_level: LogLevel = "TRACE"
    secrets: frozenset[str] = frozenset()
    renderer: Renderer = default_renderer
    # engine.expressions.ExpressionHooks for kv(), secret(), errorLogs(), read(), now().
    expression_hooks: Any = None
    clock: Callable[[], datetime] = _utc_now
    sleeper: Sleeper = real_sleep
    on_log: Callable[[LogLine], None] | None = None
    kv: KVStore | None = None
    log_source: LogSource | None = None
    storage: Storage | None = None
    # Trigger enable/disable (trigger.Toggle); the triggers component provides it.
    triggers: TriggerStates | None = None
    # The worker's executors (an executors.registry.Registry): TemplatedTask runs the task it
    # renders with them.
    registry: Any = None
    # Namespace files (the namespace.* tasks).
    namespace_files: NamespaceFileStore | None = None
    # PurgeExecutions / PurgeLogs.
    purges: Purges | None = None
    # Deployed flows, for tasks that export or deploy them (git.PushFlows / SyncFlows).
    flows: FlowRepository | None = None
    # Where script runners register their process groups (None: no watchdog, so a SIGKILLed
    # worker would leave them running).
    process_watch: ProcessWatch | None = None
    # Container task runners (Docker) and what to do without one: see ContainerSettings.
    containers: ContainerSettings = field(default_factory=ContainerSettings)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    logs: list[LogLine] = field(default_factory=list)
    # The directory script tasks run in (a worker sets it; shared inside a WorkingDirectory).
    # None: the executor makes a temporary one for the run.
    working_dir: str | None = None
    # Where tasks keep cached virtualenvs of the tools they install (dbt, ansible-core, awscli:
    # executors.clitools); the worker's venv cache. None: a directory under the system temp dir.
    venv_dir: str | None = None
    # False keeps only ERROR lines in ``logs`` (for errorLogs()): a worker streams every line
    # through ``on_log`` and must not hold a chatty task's whole output in memory.
    retain_logs: bool = True

    @classmethod
    def for_job(
        cls,
        *,
        execution_id: str,
        task_run_id: str,
        attempt: int,
        task: Mapping[str, Any],
        variables: Mapping[str, Any],
        **hooks: Any,
    ) -> TaskContext:
        """A context for one job; the task's ``logLevel`` becomes the log filter."""
        flow = variables.get("flow") if isinstance(variables.get("flow"), Mapping) else {}
        assert isinstance(flow, Mapping)
        hooks.setdefault("namespace", flow.get("namespace"))
        hooks.setdefault("flow_id", flow.get("id"))
        hooks.setdefault("log_level", normalize_level(task.get("logLevel"), default="TRACE"))
        return cls(
            execution_id=execution_id,
            task_run_id=task_run_id,
            attempt=attempt,
            variables=variables,
            task_id=task.get("id") if isinstance(task.get("id"), str) else None,
            **hooks,
        )

    def render(self, value: Any, extra: Mapping[str, Any] | None = None) -> Any:
        """Render the expressions in ``value`` (strings, lists and maps, recursively)."""
        if value is None:
            return None
        variables = self.variables if not extra else {**self.variables, **extra}
        return self.renderer(value, variables, self.expression_hooks)

    def render_str(self, value: Any) -> str | None:
        """Render a property that must be a string; None stays None."""
        if value is None:
            return None
        rendered = self.render(value)
        return rendered if isinstance(rendered, str) else to_text(rendered)

    def log(self, level: LogLevel | str, message: str) -> None:
        """Record a log line unless the task's ``logLevel`` filters it out."""
        name = normalize_level(level)
        if LEVELS[name] < LEVELS[self.log_level]:
            return
        for secret in self.secrets:
            if secret:
                message = message.replace(secret, SECRET_MASK)
        line = LogLine(
            execution_id=self.execution_id,
            task_run_id=self.task_run_id,
            task_id=self.task_id,
            attempt=self.attempt,
            level=name,
            message=message,
            timestamp=self.clock(),
        )
        if self.retain_logs or name == "ERROR":
            self.logs.append(line)
        if self.on_log is not None:
            self.on_log(line)

    def error_logs(self) -> list[dict[str, Any]]:
        """The ERROR lines of this run, shaped as Kestra's ``errorLogs()`` entries."""
        return [line.to_dict() for line in self.logs if line.level == "ERROR"]

    async def sleep(self, seconds: float) -> bool:
        """Wait, stopping early when the task is cancelled; True if the full time elapsed."""
        return await self.sleeper(seconds, self.cancelled)


class TaskExecutor(Protocol):
    """Runs one kind of runnable task."""

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome: ...


async def run_task(
    executor: TaskExecutor, task: Mapping[str, Any], ctx: TaskContext
) -> TaskOutcome:
    """Run ``executor`` so that nothing it does can crash the caller.

    An exception becomes a FAILED outcome whose error is the exception's message, logged at
    ERROR; a set cancellation signal turns the outcome into KILLED. ``CancelledError`` of the
    caller's own task is re-raised: that is the worker shutting down, not the task failing.
    """
    try:
        outcome = await executor.run(task, ctx)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a task's failure is data, whatever raised it
        message = error_message(exc)
        ctx.log("ERROR", message)
        outcome = TaskOutcome(state="FAILED", error=message)
    if ctx.cancelled.is_set() and outcome.state != "FAILED":
        return TaskOutcome(state="KILLED", outputs=outcome.outputs)
    return outcome


def iso_millis(moment: datetime) -> str:
    """UTC ISO-8601 with exactly three fractional digits, the engine's time format."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def error_message(exc: BaseException) -> str:
    """The user-facing message of an exception (its own text, else its class name)."""
    text = str(exc)
    return text if text else type(exc).__name__


def to_text(value: Any) -> str:
    """How Kestra prints a rendered value inside a string: JSON-ish, lowercase booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (Mapping, list, tuple)):
        import orjson

        return orjson.dumps(value, default=str).decode()
    return str(value)


_DURATION = re.compile(
    r"^(?P<sign>[-+]?)P(?:(?P<days>[-+]?\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>[-+]?\d+(?:\.\d+)?)H)?(?:(?P<minutes>[-+]?\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>[-+]?\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)


def parse_duration(value: Any) -> float:
    """Seconds in an ISO-8601 duration (``PT0.1S``, ``P1DT2H``) or a plain number of seconds."""
    if isinstance(value, bool):
        raise TaskError(f"invalid duration {value!r}: expected an ISO-8601 duration like PT5S")
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    match = _DURATION.match(text)
    if not match or text.upper() in ("P", "PT") or text.upper().endswith("T"):
        raise TaskError(f"invalid duration {value!r}: expected an ISO-8601 duration like PT5S")
    parts = match.groupdict()
    seconds = (
        float(parts["days"] or 0) * 86400
        + float(parts["hours"] or 0) * 3600
        + float(parts["minutes"] or 0) * 60
        + float(parts["seconds"] or 0)
    )
    return -seconds if parts["sign"] == "-" else seconds


def as_bool(value: Any) -> bool:
    """A rendered boolean property ("true"/"false", 1/0, a bool)."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise TaskError(f"expected a boolean, got {value!r}")


def first_present(mapping: Mapping[str, Any], keys: Iterable[str]) -> Any:
    """The value of the first key that is present (for properties with legacy spellings)."""
    for key in keys:
        if key in mapping:
            return mapping[key]
    return None
