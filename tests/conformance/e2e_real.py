"""The real worker (engine.worker.Worker) inside an end-to-end test, on an accelerated clock.

:class:`RealWorker` runs the production worker in process on the stack's topic prefix: it
consumes hw.jobs in its consumer group, runs every task with the worker's registry (core
tasks, scripts, KV on hw.kv, log.Fetch from hw.logs) and reports on hw.commands. Its clock
(``now()`` in expressions, KV ttl) is the executor's accelerated clock. Sleep tasks wait in
real time on purpose: the corpus sleeps at most 2 s, and scenarios that kill a running Sleep or
start a second execution while the first sleeps need it to still be running after a few hops
through the broker, which a sleep divided by the clock's speed no longer guarantees.

:class:`LogCollector` reads hw.logs back (the worker's lines, not the executor's, which the
test already sees through its decisions) so that scenario checks see what a user would, and
hw.trigger-state (what trigger.Toggle tasks wrote) into ``disabled``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from engine.bus import AsyncConsumer
from engine.bus.supervise import Supervised
from engine.bus.wire import decode_log
from engine.settings import Settings
from engine.stores.storage import LocalStorage, TaskLocation
from engine.worker import Worker
from executors.base import LEVELS, LogLine
from schemas.envelope import EnvelopeError
from triggers.state import decode_state

# The worker heartbeats this often in real seconds: 5 s of a 10x executor clock, well inside
# the reducer's 30 s heartbeat watch.
HEARTBEAT_REAL_S = 0.5
# Jobs one test worker runs at once: every scenario of a parallel corpus run can have a few.
CONCURRENCY = 32
_POLL_S = 0.05


class LogCollector:
    """Every worker log line of one topic prefix, in arrival order."""

    def __init__(self, settings: Settings, topic: str, trigger_topic: str) -> None:
        self.topic = topic
        self.trigger_topic = trigger_topic
        self.partitions = settings.kafka.partitions
        self.lines: list[LogLine] = []
        # (namespace, flow id, trigger id) -> disabled, as the trigger runtimes would see it.
        self.disabled: dict[tuple[str, str, str], bool] = {}
        self.last_arrival = 0.0
        self._consumer = AsyncConsumer(settings.kafka, f"logs-{uuid.uuid4().hex[:8]}")
        self._loop: Supervised | None = None

    async def start(self) -> None:
        await self._consumer.start()
        topics = (self.topic, self.trigger_topic)
        await self._consumer.assign({(t, p): 0 for t in topics for p in range(self.partitions)})
        self._loop = Supervised("e2e-log-collector", self._run())

    async def close(self) -> None:
        if self._loop is not None:
            await self._loop.stop()
        await self._consumer.close()

    @property
    def healthy(self) -> bool:
        return self._loop is None or self._loop.failure is None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            records = await self._consumer.consume(2000, _POLL_S)
            for record in records:
                if record.topic == self.trigger_topic:
                    state = decode_state(record.value or b"")
                    self.disabled[(state.namespace, state.flow_id, state.trigger_id)] = not (
                        state.enabled
                    )
                    continue
                try:
                    payload = decode_log(record.value or b"")
                except EnvelopeError:  # a LogsPurged record (PurgeLogs), not a line
                    continue
                run_id = payload.get("task_run_id")
                # Worker lines have ids "<task run>:<attempt>:<n>"; the executor's are event ids.
                if not run_id or not str(payload.get("log_id", "")).startswith(f"{run_id}:"):
                    continue
                level = str(payload.get("level", "INFO"))
                self.lines.append(
                    LogLine(
                        execution_id=str(payload["execution_id"]),
                        task_run_id=str(run_id),
                        task_id=payload.get("task_id"),
                        attempt=int(payload.get("attempt") or 0),
                        level=level if level in LEVELS else "INFO",  # type: ignore[arg-type]
                        message=str(payload.get("message", "")),
                        timestamp=datetime.now(UTC),
                    )
                )
            if records:
                self.last_arrival = loop.time()


class StorageView:
    """What the harness's actions need of internal storage, backed by the worker's."""

    def __init__(self, storage: LocalStorage) -> None:
        self.storage = storage

    def put_sync(self, execution_id: str, name: str, data: bytes) -> str:
        where = TaskLocation("io.kestra.tests", "resume", execution_id, "resume", "resume")
        return self.storage.put_sync(where, name, data)


class RealWorker:
    """engine.worker.Worker in process, plus the log collector, for one stack."""

    def __init__(self, settings: Settings, work_dir: Path, clock: Callable[[], datetime]) -> None:
        worker_settings = settings.worker.model_copy(
            update={
                "heartbeat_interval_s": HEARTBEAT_REAL_S,
                "concurrency": CONCURRENCY,
                "shutdown_grace_s": 0.5,
                "work_dir": str(work_dir / "work"),
                "storage_dir": str(work_dir / "storage"),
                "venv_cache_dir": str(work_dir / "venvs"),
            }
        )
        self.settings = settings.model_copy(update={"worker": worker_settings})
        self.worker = Worker(self.settings, clock=clock)
        self.storage = StorageView(self.worker.storage)
        prefix = settings.kafka.topic_prefix
        self.logs = LogCollector(self.settings, f"{prefix}logs", f"{prefix}trigger-state")
        self._stop = asyncio.Event()
        self._run: Supervised | None = None

    async def start(self) -> None:
        await self.logs.start()
        self._run = Supervised("e2e-real-worker", self.worker.run(self._stop))

    async def close(self) -> None:
        self._stop.set()
        if self._run is not None:
            await self._run.wait()
        await self.logs.close()

    @property
    def healthy(self) -> bool:
        run_ok = self._run is None or self._run.failure is None
        return run_ok and self.worker.healthy and self.logs.healthy

    async def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Until the worker's group holds partitions and its KV follower started."""
        async with asyncio.timeout(timeout_s):
            while True:
                consumer = self.worker._consumer
                if consumer is not None and consumer.assigned and self.worker.kv is not None:
                    return
                if not self.healthy:
                    raise AssertionError("the real worker crashed while starting")
                await asyncio.sleep(_POLL_S)

    def running(self, execution_id: str, task_id: str | None = None) -> bool:
        for entry in list(self.worker.running.values()):
            job = entry.run.job
            if job.execution_id != execution_id:
                continue
            if task_id is None or job.task.get("id") == task_id:
                return True
        return False
