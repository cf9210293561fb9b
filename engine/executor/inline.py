"""Core tasks that need no I/O, run by the executor itself instead of by a worker.

A Log or Return task takes microseconds to run, but sent to a worker it costs two Kafka hops
(the job out, TaskStarted and TaskResult back), i.e. two fetch waits on Tansu, plus the records.
So when the reducer schedules a job whose task is one of :data:`INLINE_TYPES`, the batch
(:mod:`engine.executor.batch`) asks :meth:`InlineRunner.run` for its TaskStarted and TaskResult
and decides them at once, in the same batch; the job never reaches hw.jobs.

What makes that safe:

- The run has no side effect outside what it returns: its log lines are collected and produced
  with the batch's other records, so a batch that is redone after a crash runs the task again
  from the previous snapshot and produces the same ids (:func:`engine.bus.wire.result_command_id`,
  :func:`engine.bus.wire.worker_log_id`); consumers deduplicate as for any redone batch.
- Anything the executor cannot provide sends the job to a worker as before, with the inline
  attempt discarded: a task on a worker group, an expression calling ``secret()``, ``read()``
  (of internal storage or of a namespace file) or ``kv()`` (their hooks only mark the
  attempt), a coroutine that would suspend, outputs above the size a worker would move to
  internal storage.
- The expression language is a sandbox with step, size and depth budgets, so the worst an
  expression can do is spend its budget in the executor's loop.

``HEADWATER_EXECUTOR__INLINE_TASKS=false`` sends every job to the workers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

import orjson

from engine.bus.producer import OutRecord
from engine.bus.wire import out, result_command_id
from engine.expressions import ExpressionHooks
from engine.reducer.commands import TaskResult, TaskStarted
from engine.reducer.ids import make_id
from engine.reducer.model import Job
from engine.worker.logs import line_record
from engine.worker.run import MAX_ERROR_LOGS
from engine.worker.secrets import mask, secret_inputs
from executors.base import LogLine, TaskContext, TaskOutcome, run_task
from executors.registry import Registry, core_registry
from schemas.types import canonical_type

log = logging.getLogger(__name__)

# Canonical types of the core tasks that only render expressions and return: no process, no
# network, no storage, no sleeping. Fetch, KV, Sleep and Toggle need a worker's hooks.
INLINE_TYPES = frozenset(
    {
        "io.kestra.plugin.core.log.Log",
        "io.kestra.plugin.core.debug.Return",
        "io.kestra.plugin.core.debug.Echo",
        "io.kestra.plugin.core.output.OutputValues",
        "io.kestra.plugin.core.execution.Fail",
        "io.kestra.plugin.core.execution.Labels",
        "io.kestra.plugin.core.execution.Exit",
        "io.kestra.plugin.core.execution.SetVariables",
        "io.kestra.plugin.core.execution.UnsetVariables",
    }
)


class _NeedsWorker(Exception):
    """An expression called a function only a worker provides; the attempt is discarded."""


@dataclass(slots=True)
class InlineRun:
    """The commands and log records of one task run done in the executor."""

    started: TaskStarted
    result: TaskResult
    logs: list[OutRecord] = field(default_factory=list)


class InlineRunner:
    def __init__(
        self,
        logs_topic: str,
        *,
        worker_id: str,
        output_limit_bytes: int,
        registry: Registry | None = None,
    ) -> None:
        self._logs_topic = logs_topic
        self._worker_id = worker_id
        self._output_limit = output_limit_bytes
        self._registry = registry or core_registry()
        self.ran = 0
        self.declined = 0

    def run(self, job: Job, now: datetime) -> InlineRun | None:
        """Run ``job`` now, or None when it must go to a worker."""
        task = job.task
        type_name = task.get("type")
        if job.worker_group or not isinstance(type_name, str):
            return None
        executor = self._registry.get(type_name)
        if executor is None or canonical_type(type_name) not in INLINE_TYPES:
            return None
        lines: list[LogLine] = []
        asked = _WorkerOnly()
        ctx = self._context(job, now, lines, asked)
        outcome = _run_now(run_task(executor, task, ctx))
        if outcome is None or asked.called or self._too_big(outcome):
            self.declined += 1
            return None
        self.ran += 1
        ids: dict[str, Any] = {
            "execution_id": job.execution_id,
            "task_run_id": job.task_run_id,
            "attempt": job.attempt,
            "worker_id": self._worker_id,
        }
        started = TaskStarted(
            command_id=make_id("inline-started", job.execution_id, job.task_run_id, job.attempt),
            **ids,
        )
        result = TaskResult(
            command_id=result_command_id(job),
            state=outcome.state,
            outputs=outcome.outputs,
            error=mask(outcome.error, ctx.secrets),
            metrics=outcome.metrics,
            error_logs=ctx.error_logs()[:MAX_ERROR_LOGS],
            labels=outcome.labels,
            update=outcome.update,
            log_lines=len(lines),
            **ids,
        )
        records = [out(self._logs_topic, line_record(line, n)) for n, line in enumerate(lines)]
        return InlineRun(started, result, records)

    def _context(
        self, job: Job, now: datetime, lines: list[LogLine], asked: _WorkerOnly
    ) -> TaskContext:
        ctx = TaskContext.for_job(
            execution_id=job.execution_id,
            task_run_id=job.task_run_id,
            attempt=job.attempt,
            task=job.task,
            variables=job.context,
            on_log=lines.append,
            secrets=frozenset(secret_inputs(job.context)),
            retain_logs=False,
            clock=lambda: now,
        )
        error_logs = job.context.get("errorLogs")
        ctx.expression_hooks = ExpressionHooks(
            now=lambda: now,
            error_logs=lambda: list(error_logs) if isinstance(error_logs, list) else [],
            secret=asked,
            read=asked,
            namespace_file=asked,
            kv=asked,
        )
        return ctx

    def _too_big(self, outcome: TaskOutcome) -> bool:
        """Outputs a worker would move to internal storage go to a worker."""
        if not outcome.outputs:
            return False
        size = len(orjson.dumps(outcome.outputs, default=str))
        return size > self._output_limit


class _WorkerOnly:
    """The ``secret``/``read``/``kv`` hook of an inline run: notes the call and fails the
    render; the attempt is then discarded and the job goes to a worker."""

    __slots__ = ("called",)

    def __init__(self) -> None:
        self.called = False

    def __call__(self, *_args: Any) -> NoReturn:
        self.called = True
        raise _NeedsWorker("needs a worker")


def _run_now(coro: Any) -> TaskOutcome | None:
    """Drive a coroutine that is expected not to suspend: its result, or None if it would
    wait for something (then it is closed, having done nothing outside its context)."""
    step: Callable[[None], Any] = coro.send
    try:
        step(None)
    except StopIteration as done:
        outcome: TaskOutcome = done.value
        return outcome
    coro.close()
    return None
