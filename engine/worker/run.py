"""One job on a worker: TaskStarted, heartbeats, logs, exactly one TaskResult.

:class:`JobRun` builds the task's :class:`~executors.base.TaskContext` from the job (render
variables, ``secret()``, ``read()``, storage, working directory), runs the executor, and
reports. The result is produced and its acknowledgement awaited before :meth:`JobRun.execute`
returns True: only then may the worker commit the job's offset.

Stopping: a StopJob or the job's own ``timeout`` sets the context's cancellation signal (script
tasks kill their process group); an executor that ignores it is cancelled after
:data:`CANCEL_GRACE_S`. A run abandoned by a shutting-down worker sends no result at all: its
offset stays uncommitted and another worker runs it again.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from engine.bus.producer import AsyncProducer
from engine.bus.wire import command_record, result_command_id
from engine.expressions import ExpressionHooks
from engine.reducer.commands import Command, Heartbeat, TaskResult, TaskStarted
from engine.reducer.model import Job
from engine.stores.nsfiles import NamespaceFiles
from engine.stores.storage import LocalStorage, TaskLocation, offload_outputs
from engine.worker.logfetch import TopicLogSource
from engine.worker.logs import LogShipper
from engine.worker.secrets import SecretLookup, mask, secret_inputs
from executors.base import (
    ContainerSettings,
    FlowRepository,
    ProcessWatch,
    Purges,
    Sleeper,
    TaskContext,
    TaskError,
    TaskOutcome,
    TriggerStates,
    real_sleep,
)
from executors.process import KILL_GRACE_S
from executors.registry import Registry
from schemas.envelope import new_id
from schemas.flow.common import format_duration

log = logging.getLogger(__name__)

# After the stop signal, an executor gets this long to wind down (a script's process group gets
# SIGTERM, then SIGKILL after KILL_GRACE_S) before its coroutine is cancelled outright.
CANCEL_GRACE_S = KILL_GRACE_S + 1.0
# errorLogs() entries sent with a result; the command must stay small, and the first errors
# are the ones that explain a failure.
MAX_ERROR_LOGS = 100
# A TaskResult that the broker did not acknowledge is sent again this many times (with the
# same command id, so the reducer applies it once) before the worker gives up and crashes.
RESULT_ATTEMPTS = 3
_RESULT_RETRY_S = 1.0


@dataclass(frozen=True, slots=True)
class RunDeps:
    """What every job run of one worker shares."""

    registry: Registry
    producer: AsyncProducer
    commands_topic: str
    shipper: LogShipper
    storage: LocalStorage | None
    # secret(): namespace-scoped (engine.stores.secrets.SecretStore) or global (EnvSecrets).
    secrets: SecretLookup
    worker_id: str
    heartbeat_interval_s: float
    output_limit_bytes: int
    work_dir: Path
    # The worker's cache of virtualenvs (tools of CLI tasks: executors.clitools).
    venv_dir: Path | None = None
    # The KV store (engine.stores.kv.KafkaKV); its ``sync``/``lookup`` serve the kv() function.
    kv: Any = None
    logs: TopicLogSource | None = None
    process_watch: ProcessWatch | None = None
    triggers: TriggerStates | None = None
    # Docker Engine and the run-on-host opt-in of script tasks' container runners.
    containers: ContainerSettings = field(default_factory=ContainerSettings)
    # PurgeExecutions / PurgeLogs (engine.worker.purges.ReadModelPurges).
    purges: Purges | None = None
    # Deployed flows for the git tasks (engine.worker.flows.TopicFlows).
    flows: FlowRepository | None = None
    # Time is an input: tests run the worker on an accelerated clock.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sleeper: Sleeper = real_sleep


def _exists(path: Path) -> bool:
    return path.exists()  # one stat call: cheaper than a thread hop


class JobRun:
    """The life of one job on this worker."""

    def __init__(self, job: Job, deps: RunDeps) -> None:
        self.job = job
        self.deps = deps
        self.ctx = self._context()
        self.stop_reason: str | None = None
        self.timed_out = False
        self.abandoned = False  # the worker is shutting down: no result, no commit
        self.started = False  # between TaskStarted and the end of the executor: heartbeats

    @property
    def key(self) -> tuple[str, int]:
        return (self.job.task_run_id, self.job.attempt)

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.ctx.cancelled.set()

    # ----------------------------------------------------------------------- context

    def _location(self) -> TaskLocation:
        flow = self.job.context.get("flow") or {}
        return TaskLocation(
            namespace=str(flow.get("namespace") or "_"),
            flow_id=str(flow.get("id") or "_"),
            execution_id=self.job.execution_id,
            task_id=str(self.job.task.get("id") or "_"),
            task_run_id=self.job.task_run_id,
        )

    def _working_dir(self) -> tuple[Path, bool]:
        """(directory, owned): a WorkingDirectory's shared one is kept, a run's own removed."""
        shared = self.job.context.get("workingDirectory")
        if isinstance(shared, dict) and shared.get("taskRunId"):
            return self.deps.work_dir / "wd" / str(shared["taskRunId"]), False
        return self.deps.work_dir / "runs" / f"{self.job.task_run_id}-{self.job.attempt}", True

    def _context(self) -> TaskContext:
        job, deps = self.job, self.deps
        task_storage = deps.storage.for_task(self._location()) if deps.storage else None
        nsfiles = NamespaceFiles(deps.storage) if deps.storage else None
        ctx = TaskContext.for_job(
            execution_id=job.execution_id,
            task_run_id=job.task_run_id,
            attempt=job.attempt,
            task=job.task,
            variables=job.context,
            on_log=deps.shipper.add,
            storage=task_storage,
            secrets=frozenset(secret_inputs(job.context)),
            working_dir=str(self._working_dir()[0]),
            venv_dir=str(deps.venv_dir) if deps.venv_dir is not None else None,
            retain_logs=False,
            kv=deps.kv,
            log_source=deps.logs.for_job(job.execution_id, job.context) if deps.logs else None,
            process_watch=deps.process_watch,
            containers=deps.containers,
            triggers=deps.triggers,
            registry=deps.registry,
            namespace_files=nsfiles,
            purges=deps.purges,
            flows=deps.flows,
            clock=deps.clock,
            sleeper=deps.sleeper,
        )

        def reveal(value: str) -> None:
            ctx.secrets = ctx.secrets | {value}

        error_logs = job.context.get("errorLogs")
        ctx.expression_hooks = ExpressionHooks(
            secret=deps.secrets.hook(reveal, ctx.namespace),
            read=deps.storage.read_text if deps.storage else None,
            namespace_file=nsfiles.read_text if nsfiles else None,
            error_logs=lambda: list(error_logs) if isinstance(error_logs, list) else [],
            kv=deps.kv.lookup if deps.kv is not None else None,
            now=deps.clock,
        )
        return ctx

    async def _sync_kv(self) -> TaskOutcome | None:
        """The kv() read barrier, when the task uses kv(); a FAILED outcome if it fails."""
        if not self._reads_kv():
            return None
        try:
            await self.deps.kv.sync()
        except TaskError as exc:
            self.ctx.log("ERROR", str(exc))
            return TaskOutcome(state="FAILED", error=str(exc))
        return None

    def _reads_kv(self) -> bool:
        # kv() is rendered synchronously inside the task: its read barrier must come first.
        return self.deps.kv is not None and b"kv(" in orjson.dumps(self.job.task, default=str)

    # ------------------------------------------------------------------------- run

    async def execute(self) -> bool:
        """Run the job and report; True once its TaskResult is acknowledged."""
        job = self.job
        await self._send(TaskStarted(**self._ids(new_id()), worker_id=self.deps.worker_id))
        self.started = True
        timer = (
            asyncio.get_running_loop().call_later(job.timeout, self._time_out)
            if job.timeout
            else None
        )
        directory, owned = self._working_dir()
        try:
            outcome = await self._sync_kv() or await self._run_executor()
        finally:
            self.started = False
            if timer is not None:
                timer.cancel()
            if owned and _exists(directory):  # in-process tasks never create it
                await asyncio.to_thread(shutil.rmtree, directory, True)
        return await self.report(outcome)

    async def report(self, outcome: TaskOutcome) -> bool:
        """Send the run's one TaskResult; True once the broker acknowledged it."""
        job = self.job
        if self.abandoned:
            return False
        result = await self._result(outcome)
        # The run's log lines go out before its result; their acks are awaited with the
        # result's (in parallel, one round trip), so a committed job never lost a line.
        await self.deps.shipper.flush()
        result.log_lines = self.deps.shipper.forget(job.task_run_id, job.attempt)
        for attempt in range(1, RESULT_ATTEMPTS + 1):
            try:
                future = await self._send(result)
                await asyncio.gather(future, self.deps.shipper.drain())
                return True
            except Exception:
                if attempt == RESULT_ATTEMPTS:
                    raise
                log.warning("TaskResult of %s not acknowledged; retrying", job.task_run_id)
                await asyncio.sleep(_RESULT_RETRY_S)
        return False  # unreachable: the last attempt raised

    async def _run_executor(self) -> TaskOutcome:
        inner = asyncio.create_task(self.deps.registry.run(self.job.task, self.ctx))
        stopped = asyncio.create_task(self.ctx.cancelled.wait())
        try:
            await asyncio.wait({inner, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not inner.done():
                await asyncio.wait({inner}, timeout=CANCEL_GRACE_S)
            if not inner.done():
                inner.cancel()
                await asyncio.wait({inner})
        except asyncio.CancelledError:
            inner.cancel()
            raise
        finally:
            stopped.cancel()
        if inner.cancelled():
            return TaskOutcome(state="KILLED", error="killed")
        exc = inner.exception()
        if exc is not None:  # Registry.run never raises; belt and braces for a broken executor
            message = f"{type(exc).__name__}: {exc}"
            self.ctx.log("ERROR", message)
            return TaskOutcome(state="FAILED", error=message)
        return inner.result()

    def _time_out(self) -> None:
        self.timed_out = True
        self.stop("timeout")

    async def heartbeat(self) -> None:
        """Tell the reducer this run is alive (the worker's heartbeat loop calls it)."""
        try:
            await self._send(Heartbeat(**self._ids(new_id()), worker_id=self.deps.worker_id))
        except Exception as exc:  # a lost beat is not fatal; the next one may pass
            log.warning("heartbeat of %s not sent: %s", self.job.task_run_id, exc)

    async def _result(self, outcome: TaskOutcome) -> TaskResult:
        state, error = outcome.state, outcome.error
        if self.timed_out and state in ("KILLED", "FAILED"):
            state = "FAILED"
            error = f"Task timed out after {format_duration(self.job.timeout or 0)}"
            self.ctx.log("ERROR", error)
        outputs: dict[str, Any] = outcome.outputs
        if outputs and self.ctx.storage is not None and self.deps.storage is not None:
            task_storage = self.deps.storage.for_task(self._location())
            outputs = await offload_outputs(outputs, task_storage, self.deps.output_limit_bytes)
        return TaskResult(
            **self._ids(result_command_id(self.job)),
            state=state,
            outputs=outputs,
            error=mask(error, self.ctx.secrets),
            metrics=outcome.metrics,
            error_logs=self.ctx.error_logs()[:MAX_ERROR_LOGS],
            labels=outcome.labels,
            update=outcome.update,
            worker_id=self.deps.worker_id,
        )

    def _ids(self, command_id: str) -> dict[str, Any]:
        return {
            "command_id": command_id,
            "execution_id": self.job.execution_id,
            "task_run_id": self.job.task_run_id,
            "attempt": self.job.attempt,
        }

    async def _send(self, command: Command) -> asyncio.Future[Any]:
        key, value = command_record(command, occurred=datetime.now(UTC))
        return await self.deps.producer.enqueue(self.deps.commands_topic, key, value)
