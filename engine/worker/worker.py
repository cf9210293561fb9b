"""The worker process: a consumer group on hw.jobs (or ``jobs.{group}``) that runs tasks.

Flow control: at most ``concurrency`` jobs run at once and as many more wait, already read,
in a small prefetch queue; when both are full the worker stops fetching (back-pressure: the
jobs stay in Kafka, where another worker can take them). The prefetch keeps the consumer
polling while every slot is busy, so a StopJob behind the running jobs still arrives.

Delivery: a job's offset is committed only after its TaskResult was acknowledged
(:mod:`engine.worker.offsets`), so the jobs of a worker that dies are redelivered to another
one. Jobs are deduplicated per process by (task run id, attempt): a redelivered job that is
running or recently done is skipped.

Shutdown (SIGTERM, or ``stop`` set): stop fetching, let running jobs finish for
``shutdown_grace_s``, then stop the rest without a result and without committing them, and
leave the group so that their partitions move on at once.

What tasks reach through the worker: the KV store (engine.stores.kv: a follower of hw.kv with read
barriers), log.Fetch reading hw.logs (engine.worker.logfetch), trigger.Toggle writing
hw.trigger-state, the deployed flows (engine.worker.flows: the git tasks read hw.flows and deploy
to it as the API does), and a watchdog process that kills the tasks' process groups if this
process dies, even by SIGKILL (engine.worker.guard), so a redelivered job never runs twice at
once.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.bus.admin import BusAdmin, NewTopicSpec
from engine.bus.consumer import AsyncConsumer, Record
from engine.bus.producer import AsyncProducer
from engine.bus.supervise import Supervised
from engine.bus.topics import Topics, ensure_topics
from engine.bus.wire import decode_job, jobs_topic
from engine.errors import BusError
from engine.reducer.model import StopJob
from engine.settings import Settings
from engine.stores.kv import KafkaKV, ensure_kv_topic
from engine.stores.secrets import SecretStore
from engine.stores.storage import LocalStorage, storage_dir
from engine.worker.flows import TopicFlows
from engine.worker.guard import ProcessGuard
from engine.worker.logfetch import TopicLogSource
from engine.worker.logs import LogShipper
from engine.worker.offsets import OffsetTracker, Partition
from engine.worker.purges import ReadModelPurges
from engine.worker.run import JobRun, RunDeps
from engine.worker.tasks import build_registry
from executors.base import ContainerSettings, Sleeper, TaskOutcome, real_sleep
from executors.registry import Registry
from schemas.envelope import EnvelopeError, new_id
from triggers.state import set_enabled

log = logging.getLogger(__name__)

# One poll waits at most this long for records: it bounds how late the loop notices a stop
# request or a freed slot, and keeps the consumer thread free for commits between polls.
POLL_TIMEOUT_S = 0.1
# Offsets of finished jobs are committed at most this often (one commit covers many jobs),
# and only after a job finished: an idle worker does not wake to find nothing to commit.
COMMIT_INTERVAL_S = 0.2
# Recently finished (task run, attempt) pairs remembered to skip a redelivered job; enough for
# minutes of jobs at thousands per second, a few MB at most.
DONE_MEMORY = 50_000
# The worker may stop polling while all slots and the prefetch queue are full, for as long as a
# task runs; librdkafka would otherwise leave the group after 5 min without a poll. Liveness
# is covered by the session timeout and the reducer's heartbeat watch. (24 h is its maximum.)
MAX_POLL_INTERVAL_MS = 86_400_000
_RETRY_S = 0.5
_CONSUMER_OVERRIDES: dict[str, Any] = {"max.poll.interval.ms": MAX_POLL_INTERVAL_MS}


@dataclass(slots=True)
class _Entry:
    run: JobRun
    partition: Partition
    offset: int
    task: asyncio.Task[None] | None = None


def _default_dir(configured: str, name: str) -> Path:
    return Path(configured) if configured else Path(tempfile.gettempdir()) / name


class Worker:
    """One worker process. ``await Worker(settings).run(stop)`` serves until ``stop`` is set."""

    def __init__(
        self,
        settings: Settings,
        *,
        concurrency: int | None = None,
        worker_group: str | None = None,
        registry: Registry | None = None,
        clock: Callable[[], datetime] | None = None,
        sleeper: Sleeper | None = None,
    ) -> None:
        """``clock`` and ``sleeper`` are inputs for tests (an accelerated clock)."""
        self.settings = settings
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.sleeper: Sleeper = sleeper or real_sleep
        ws = settings.worker
        self.concurrency = concurrency or ws.concurrency
        self.group = worker_group if worker_group is not None else ws.worker_group
        self.work_dir = _default_dir(ws.work_dir, "headwater-worker")
        self.storage = LocalStorage(storage_dir(ws.storage_dir))
        self.venv_dir = _default_dir(ws.venv_cache_dir, "headwater-venvs")
        self.registry = registry or build_registry(settings, self.venv_dir)
        # Script tasks' container runners: the Docker Engine, and the operator's opt-ins.
        self.containers = ContainerSettings(
            docker_host=ws.docker_host or None,
            on_host=ws.containers_on_host,
            volumes_enabled=ws.docker_volumes_enabled,
        )
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{new_id()[-8:]}"
        self.tracker = OffsetTracker()
        self.running: dict[tuple[str, int], _Entry] = {}
        self.waiting: collections.OrderedDict[tuple[str, int], _Entry] = collections.OrderedDict()
        self.recent: collections.OrderedDict[tuple[str, int], None] = collections.OrderedDict()
        self.failure: BaseException | None = None
        self.completed = 0
        self._slot_freed = asyncio.Event()
        self._finished = asyncio.Event()  # a job finished (or failed): offsets to commit
        self._deps: RunDeps | None = None
        self._consumer: AsyncConsumer | None = None
        self.guard = ProcessGuard()
        self.kv: KafkaKV | None = None

    @property
    def healthy(self) -> bool:
        return self.failure is None

    # ---------------------------------------------------------------------------- main

    async def run(self, stop: asyncio.Event) -> None:
        kafka = self.settings.kafka
        admin = BusAdmin(kafka)
        topics = await ensure_topics(admin, kafka)
        await ensure_kv_topic(admin, kafka)
        topic = jobs_topic(topics, self.group or None)
        if topic != topics.jobs.name:
            spec = NewTopicSpec(topic, kafka.partitions, kafka.replication_factor, {})
            await admin.create_topics([spec])
        group_id = f"{kafka.topic_prefix}workers" + (f".{self.group}" if self.group else "")
        await asyncio.to_thread(self.guard.start)
        try:
            async with AsyncProducer(kafka) as producer:
                kv = self.kv = KafkaKV(kafka, producer, clock=self.clock,
                                       group_id=f"{group_id}.kv")  # fmt: skip
                await kv.start()
                try:
                    await self._serve(stop, topic, group_id, producer, kv, topics)
                finally:
                    await kv.close()
        finally:
            # After every task ended (or was abandoned and killed): the watchdog exits.
            await asyncio.to_thread(self.guard.close)
        if self.failure is not None:
            raise self.failure

    async def _serve(
        self,
        stop: asyncio.Event,
        topic: str,
        group_id: str,
        producer: AsyncProducer,
        kv: KafkaKV,
        topics: Topics,
    ) -> None:
        kafka = self.settings.kafka
        shipper = LogShipper(producer, topics.logs.name)
        purges = ReadModelPurges(
            self.settings.postgres.dsn.get_secret_value(),
            producer,
            topics.commands.name,
            topics.logs.name,
            self.storage,
        )
        flows = TopicFlows(kafka, producer, topics.flows.name)
        self._deps = RunDeps(
            registry=self.registry,
            producer=producer,
            commands_topic=topics.commands.name,
            shipper=shipper,
            storage=self.storage,
            secrets=SecretStore.from_settings(self.settings.secrets),
            worker_id=self.worker_id,
            heartbeat_interval_s=self.settings.worker.heartbeat_interval_s,
            output_limit_bytes=self.settings.worker.output_inline_limit_bytes,
            work_dir=self.work_dir,
            venv_dir=self.venv_dir,
            kv=kv,
            logs=TopicLogSource(kafka, topics.logs.name),
            process_watch=self.guard,
            containers=self.containers,
            triggers=TopicTriggerStates(producer, topics.trigger_state.name),
            purges=purges,
            flows=flows,
            clock=self.clock,
            sleeper=self.sleeper,
        )
        consumer = AsyncConsumer(kafka, group_id, on_revoke=self._on_revoke, **_CONSUMER_OVERRIDES)
        self._consumer = consumer
        async with consumer:
            await consumer.subscribe([topic])
            crash = self._crash_handler(stop)
            kv_loop = Supervised("worker-kv", kv.run(), crash)
            logs_loop = Supervised("worker-logs", shipper.run(), crash)
            commits = Supervised("worker-commits", self._commit_loop(consumer), crash)
            beats = Supervised("worker-heartbeats", self._heartbeat_loop(), crash)
            try:
                log.info("worker %s serving %s (concurrency %d)", self.worker_id, topic,
                         self.concurrency)  # fmt: skip
                await self._consume_loop(consumer, stop)
                await self._shutdown()
            finally:
                await beats.stop()
                await commits.stop()
                await shipper.drain()
                await logs_loop.stop()
                await kv_loop.stop()
                await self._commit(consumer)
                await purges.close()
                await flows.close()

    def _crash_handler(self, stop: asyncio.Event) -> Callable[[str, BaseException], None]:
        def crashed(name: str, exc: BaseException) -> None:
            if self.failure is None:
                self.failure = exc
            stop.set()

        return crashed

    async def _consume_loop(self, consumer: AsyncConsumer, stop: asyncio.Event) -> None:
        while not stop.is_set():
            room = 2 * self.concurrency - len(self.running) - len(self.waiting)
            if room <= 0:
                self._slot_freed.clear()
                stopping = asyncio.create_task(stop.wait())
                freed = asyncio.create_task(self._slot_freed.wait())
                await asyncio.wait({stopping, freed}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                freed.cancel()
                continue
            try:
                records = await consumer.consume(room, POLL_TIMEOUT_S, until=stop)
            except BusError as exc:
                if not exc.retriable:
                    raise
                log.warning("worker consumer: %s; retrying", exc)
                await asyncio.sleep(_RETRY_S)
                continue
            for record in records:
                self._handle(record)
            self._start_waiting()

    # ------------------------------------------------------------------------ records

    def _handle(self, record: Record) -> None:
        partition = (record.topic, record.partition)
        tracked = self.tracker.track(partition, record.offset)
        try:
            item = decode_job(record.value or b"")
        except EnvelopeError as exc:
            log.error("skipping an invalid record at %s[%d]@%d: %s", *partition, record.offset,
                      exc)  # fmt: skip
            self._done(partition, record.offset)
            return
        if isinstance(item, StopJob):
            self._stop_job(item)
            self._done(partition, record.offset)
            return
        key = (item.task_run_id, item.attempt)
        current = self.running.get(key) or self.waiting.get(key)
        if current is not None or key in self.recent:
            same_record = current is not None and (current.partition, current.offset) == (
                partition,
                record.offset,
            )
            if tracked and not same_record:
                self._done(partition, record.offset)  # a duplicate: nothing to do
            return
        assert self._deps is not None
        self.waiting[key] = _Entry(JobRun(item, self._deps), partition, record.offset)

    def _stop_job(self, stop: StopJob) -> None:
        key = (stop.task_run_id, stop.attempt)
        entry = self.running.get(key)
        if entry is not None:
            log.info("stopping %s attempt %d: %s", stop.task_run_id, stop.attempt, stop.reason)
            entry.run.stop(stop.reason or "stopped")
            return
        waiting = self.waiting.pop(key, None)
        if waiting is not None:  # never started: report it KILLED without running it
            waiting.run.stop(stop.reason or "stopped")
            self._launch(waiting)

    def _start_waiting(self) -> None:
        while self.waiting and len(self.running) < self.concurrency:
            _, entry = self.waiting.popitem(last=False)
            self._launch(entry)

    def _launch(self, entry: _Entry) -> None:
        self.running[entry.run.key] = entry
        entry.task = asyncio.create_task(self._execute(entry), name=f"job-{entry.run.key[0]}")

    async def _execute(self, entry: _Entry) -> None:
        key = entry.run.key
        try:
            if entry.run.ctx.cancelled.is_set():  # stopped before it started
                ok = await entry.run.report(TaskOutcome(state="KILLED", error="killed"))
            else:
                ok = await entry.run.execute()
            if ok:
                self._done(entry.partition, entry.offset)
                self.completed += 1
                self.recent[key] = None
                if len(self.recent) > DONE_MEMORY:
                    self.recent.popitem(last=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the result could not be delivered: the worker is broken
            log.exception("job %s: result not delivered; stopping the worker", key[0])
            if self.failure is None:
                self.failure = exc
                self._finished.set()  # the commit loop raises it
        finally:
            self.running.pop(key, None)
            self._slot_freed.set()
            self._start_waiting()

    async def _heartbeat_loop(self) -> None:
        # One loop for every running job: a sleeping task per job would cost more than the
        # job itself for in-process tasks.
        while True:
            await asyncio.sleep(self.settings.worker.heartbeat_interval_s)
            for entry in list(self.running.values()):
                if entry.run.started:
                    await entry.run.heartbeat()

    # ------------------------------------------------------------------------ offsets

    async def _commit(self, consumer: AsyncConsumer) -> None:
        offsets = {p: o for p, o in self.tracker.committable().items() if p in consumer.assigned}
        if offsets:
            await consumer.commit(offsets)
            self.tracker.committed(offsets)

    def _done(self, partition: Partition, offset: int) -> None:
        self.tracker.done(partition, offset)
        self._finished.set()

    async def _commit_loop(self, consumer: AsyncConsumer) -> None:
        while True:
            await self._finished.wait()
            await asyncio.sleep(COMMIT_INTERVAL_S)
            self._finished.clear()  # what finishes from now on sets it again
            if self.failure is not None:
                raise self.failure
            try:
                await self._commit(consumer)
            except BusError as exc:
                if not exc.retriable:
                    raise
                log.warning("worker commit failed: %s; retrying", exc)
                self._finished.set()

    async def _on_revoke(self, partitions: list[Partition]) -> None:
        consumer = self._consumer
        if consumer is not None:
            try:
                await self._commit(consumer)
            except BusError as exc:  # the next owner re-runs them: duplicates, never losses
                log.warning("commit on revoke failed: %s", exc)
        self.tracker.drop(partitions)
        for key, entry in list(self.waiting.items()):
            if entry.partition in partitions:  # not started: the next owner runs it
                del self.waiting[key]

    # ----------------------------------------------------------------------- shutdown

    async def _shutdown(self) -> None:
        self.waiting.clear()  # read but not started: uncommitted, so redelivered
        tasks = [e.task for e in self.running.values() if e.task is not None]
        if tasks:
            log.info("waiting up to %.1f s for %d running tasks",
                     self.settings.worker.shutdown_grace_s, len(tasks))  # fmt: skip
            await asyncio.wait(tasks, timeout=self.settings.worker.shutdown_grace_s)
        for entry in list(self.running.values()):
            entry.run.abandoned = True
            entry.run.stop("worker shutdown")
        rest = [e.task for e in self.running.values() if e.task is not None]
        if rest:
            await asyncio.wait(rest)


class TopicTriggerStates:
    """trigger.Toggle on a real worker: the toggle record goes to hw.trigger-state, which the
    trigger runtimes follow (triggers.state). The worker cannot see flow definitions, so a
    trigger id the flow does not declare is not refused here: the runtime ignores it."""

    def __init__(self, producer: AsyncProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def set_enabled(
        self, namespace: str, flow_id: str, trigger_id: str, *, enabled: bool
    ) -> None:
        await set_enabled(self._producer, self._topic, namespace, flow_id, trigger_id, enabled)
