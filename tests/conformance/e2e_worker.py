"""A small worker for end-to-end tests: hw.jobs in, TaskStarted/Heartbeat/TaskResult out.

It runs jobs with :mod:`executors` (the core task types) the way the real worker will, and
deduplicates jobs by (execution id, task run id, attempt) as every worker must: a job that the
executor produced twice (redone batch) runs once. ``dispatched`` counts every job record seen,
so tests can tell what the executor sent from what ran. ``speed`` makes Sleep tasks and
heartbeats follow an accelerated executor clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.bus import AsyncConsumer, AsyncProducer, OutRecord, Record
from engine.bus.supervise import Supervised
from engine.bus.wire import command_record, decode_job, result_command_id
from engine.reducer.commands import Heartbeat, TaskResult, TaskStarted
from engine.reducer.model import Job, StopJob
from engine.settings import KafkaSettings
from executors.base import LEVELS, LogLevel, LogLine, TaskContext
from executors.core import InMemoryKV
from executors.registry import Registry, core_registry

log = logging.getLogger(__name__)

# A real worker heartbeats every few seconds of the executor's clock (the reducer gives up
# after 30 s without one).
HEARTBEAT_CLOCK_S = 5.0
_POLL_S = 0.1

JobKey = tuple[str, str, int]


@dataclass
class SimWorker:
    kafka: KafkaSettings
    topic: str
    commands_topic: str
    group_id: str
    speed: float = 1.0
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    registry: Registry = field(default_factory=core_registry)
    kv: InMemoryKV = field(default_factory=InMemoryKV)
    hooks: Callable[[str], Any] | None = None
    storage: Any = None
    logs: list[LogLine] = field(default_factory=list)
    dispatched: Counter[JobKey] = field(default_factory=Counter)
    ran: Counter[JobKey] = field(default_factory=Counter)
    _running: dict[JobKey, tuple[TaskContext, asyncio.Task[None]]] = field(default_factory=dict)
    _seen: set[JobKey] = field(default_factory=set)
    _stopped: set[JobKey] = field(default_factory=set)
    _tasks: list[Supervised] = field(default_factory=list)

    async def start(self) -> None:
        self.producer = AsyncProducer(self.kafka)
        await self.producer.start()
        self.consumer = AsyncConsumer(self.kafka, self.group_id)
        await self.consumer.start()
        await self.consumer.subscribe([self.topic])
        self._tasks = [
            Supervised("sim-worker-consume", self._consume()),
            Supervised("sim-worker-heartbeat", self._heartbeat()),
        ]

    @property
    def healthy(self) -> bool:
        return all(t.healthy for t in self._tasks)

    async def close(self) -> None:
        for task in self._tasks:
            await task.stop()
        for _, running in list(self._running.values()):
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        await self.consumer.close()
        await self.producer.close()

    async def _consume(self) -> None:
        while True:
            records = await self.consumer.consume(500, _POLL_S)
            for r in records:
                self._handle(r)
            if records:
                await self.consumer.commit(records)

    def _handle(self, r: Record) -> None:
        if r.value is None:
            return
        item = decode_job(r.value)
        key = (item.execution_id, item.task_run_id, item.attempt)
        if isinstance(item, StopJob):
            self._stopped.add(key)
            if key in self._running:
                self._running[key][0].cancelled.set()
            return
        self.dispatched[key] += 1
        if key in self._seen:
            return  # a redone batch sent it again: dedup by (task run, attempt)
        self._seen.add(key)
        self._launch(item, key)

    def _launch(self, job: Job, key: JobKey) -> None:
        speed = self.speed

        async def sleeper(seconds: float, cancelled: asyncio.Event) -> bool:
            try:
                async with asyncio.timeout(seconds / speed):
                    await cancelled.wait()
                return False
            except TimeoutError:
                return True

        hooks: dict[str, Any] = {}
        if self.hooks is not None:
            hooks["expression_hooks"] = self.hooks(job.execution_id)
        ctx = TaskContext.for_job(
            execution_id=job.execution_id,
            task_run_id=job.task_run_id,
            attempt=job.attempt,
            task=job.task,
            variables=job.context,
            clock=self.clock,
            sleeper=sleeper,
            on_log=self.logs.append,
            kv=self.kv,
            storage=self.storage,
            log_source=self,
            **hooks,
        )
        if key in self._stopped:
            ctx.cancelled.set()
        task = asyncio.create_task(self._run(job, ctx, key))
        self._running[key] = (ctx, task)

    async def _run(self, job: Job, ctx: TaskContext, key: JobKey) -> None:
        try:
            await self._send(TaskStarted, job, worker_id=self.group_id, command_id=f"started:{key}")
            self.ran[key] += 1
            outcome = await self.registry.run(job.task, ctx)
            await self._send(
                TaskResult,
                job,
                command_id=result_command_id(job),
                state=outcome.state,
                outputs=outcome.outputs,
                error=outcome.error,
                metrics=outcome.metrics,
                error_logs=ctx.error_logs(),
                labels=outcome.labels,
                update=outcome.update,
            )
        finally:
            self._running.pop(key, None)

    async def fetch(
        self, execution_id: str, min_level: LogLevel, task_ids: list[str] | None
    ) -> list[LogLine]:
        """The LogSource of log.Fetch: the lines this worker's tasks wrote so far."""
        return [
            line
            for line in self.logs
            if line.execution_id == execution_id
            and LEVELS[line.level] >= LEVELS[min_level]
            and (task_ids is None or line.task_id in task_ids)
        ]

    async def _send(self, cls: Any, job: Job, *, command_id: str, **fields: Any) -> None:
        cmd = cls(
            command_id=command_id,
            execution_id=job.execution_id,
            task_run_id=job.task_run_id,
            attempt=job.attempt,
            **fields,
        )
        key, value = command_record(cmd)
        await self.producer.produce(self.commands_topic, key, value)

    async def _heartbeat(self) -> None:
        beat = 0
        while True:
            await asyncio.sleep(HEARTBEAT_CLOCK_S / self.speed)
            beat += 1
            batch = []
            for execution_id, run_id, attempt in list(self._running):
                cmd = Heartbeat(
                    command_id=f"hb:{execution_id}:{run_id}:{attempt}:{beat}",
                    execution_id=execution_id,
                    task_run_id=run_id,
                    attempt=attempt,
                )
                key, value = command_record(cmd)
                batch.append(OutRecord(self.commands_topic, key, value))
            if batch:
                await self.producer.produce_many(batch)
