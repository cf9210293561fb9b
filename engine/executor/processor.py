"""The executor stream processor: hw.commands (+ hw.admission) in, decisions out.

One consumer group over hw.commands and hw.admission, manual commits, at-least-once. Per poll:
decide every command of the batch (:mod:`engine.executor.batch`), produce all resulting records
(events, jobs, outgoing commands, snapshots, tombstones) in one ``produce_batch``, wait for every
acknowledgement, and only THEN commit the input offsets.

Why a crash anywhere is safe without transactions (Tansu does not honour them):

- Crash before the produce is acknowledged: nothing was committed, so the new owner re-reads
  the whole batch from the last committed offset, on top of the snapshots of the previous
  (committed) batch, and decides it again. Records of the first attempt that did reach the
  broker are produced a second time: consumers deduplicate — workers by (task_run_id,
  attempt), the projector by (execution id, seq), logs by log_id, commands by command_id.
- Crash after the acknowledgement, before the commit: the snapshots are durable, so the
  redelivered commands hit states whose dedup window (``ExecutionState.seen``) already holds
  their command ids: ``decide`` answers ``duplicate`` and nothing is produced again.
- Timers are re-armed from the restored snapshots; a timer that had already been sent fires
  again with the same deterministic command id (:func:`engine.bus.wire.timer_command_id`), and the
  reducer drops it. Timers are armed in the wheel before the batch's produce is acknowledged:
  if that produce fails, the process stops and the redo re-arms them from the old snapshot.

Partitions: on assignment the state of the assigned partitions is restored by reading the same
partitions of hw.executor-state from the beginning (last value wins); on revoke it is dropped.
Revokes happen inside ``consume``, i.e. between batches, so the previous owner's last batch is
acknowledged before anyone else restores.

Health: :meth:`Executor.health` reports whether the loops run and the lag as event age (now
minus the producer timestamp of the oldest record of the last batch; SERVICES.md: the high
watermark is not trustworthy on Tansu).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from engine.bus.admin import BusAdmin, NewTopicSpec
from engine.bus.consumer import AsyncConsumer, Partition, Record
from engine.bus.producer import AsyncProducer
from engine.bus.supervise import Supervised
from engine.bus.topics import ensure_topics
from engine.bus.wire import command_record, out, timer_command_id
from engine.errors import BusError
from engine.executor.admission import Admission
from engine.executor.batch import BatchDecider, Decide, UnknownExecution
from engine.executor.inline import InlineRunner
from engine.executor.restore import read_partitions
from engine.executor.store import StateStore
from engine.flows.store import FlowFollower, FlowStore
from engine.reducer.commands import TimerFired
from engine.reducer.decide import decide, run_env
from engine.settings import Settings

log = logging.getLogger(__name__)

# Retriable bus errors while consuming or committing: back off from the first to the last.
_RETRY_FIRST_S = 0.1
_RETRY_MAX_S = 5.0
# The timer loop sleeps at most this long, so a clock jump or a missed wake-up costs little.
_TIMER_MAX_SLEEP_S = 1.0


class Clock(Protocol):
    """Where the executor's time comes from (tests speed it up)."""

    def now(self) -> datetime: ...

    def real_seconds(self, clock_seconds: float) -> float:
        """How many real seconds pass while this clock advances ``clock_seconds``."""
        ...


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def real_seconds(self, clock_seconds: float) -> float:
        return clock_seconds


class Executor:
    """One executor process's worth of stream processing. Wire it from one Settings object:
    ``await ex.start()``, ``await ex.run(stop_event)``, ``await ex.close()``."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        on_crash: Callable[[str, BaseException], None] | None = None,
        consumer_overrides: dict[str, Any] | None = None,
        decide_fn: Decide = decide,
    ) -> None:
        """``decide_fn`` is the reducer; tests wrap it to observe every decision."""
        self.settings = settings
        self.clock: Clock = clock or RealClock()
        self.store = StateStore(settings.executor.purge_after_s)
        self._on_crash = on_crash
        self._consumer_overrides = consumer_overrides or {}
        if decide_fn is decide:  # the envs and globals of this process (Kestra's RunContextCache)
            v = settings.variables
            env = run_env(dict(os.environ), v.env_vars_prefix, v.redacted_env_vars, v.globals)
            decide_fn = functools.partial(decide, env=env)
        self._decide = decide_fn
        self._known_topics: set[str] = set()
        self._wake = asyncio.Event()
        self._timer_task: Supervised | None = None
        self._flows: FlowFollower | None = None
        self._producer: AsyncProducer | None = None
        self._consumer: AsyncConsumer | None = None
        self._restorer: AsyncConsumer | None = None
        self._inline: InlineRunner | None = None
        self._running = False
        self.failure: BaseException | None = None
        self.last_lag_s = 0.0
        self.processed = 0
        self.duplicates = 0
        self.dropped = 0
        # Per batch: how many, and the time spent deciding and producing (Prometheus sums).
        self.batches = 0
        self.decide_s = 0.0
        self.produce_s = 0.0

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        kafka = self.settings.kafka
        self.admin = BusAdmin(kafka)
        self.topics = await ensure_topics(self.admin, kafka)
        self._known_topics = set(await self.admin.list_topics())
        self._flows = FlowFollower(kafka, self.topics.flows.name)
        flows: FlowStore = await self._flows.start()
        self.admission = Admission(self.topics.commands.name, self.topics.executor_state.name)
        self._inline = (
            InlineRunner(
                self.topics.logs.name,
                worker_id=f"executor-{socket.gethostname()}-{os.getpid()}",
                output_limit_bytes=self.settings.worker.output_inline_limit_bytes,
            )
            if self.settings.executor.inline_tasks
            else None
        )
        self.batch = BatchDecider(
            self.topics, self.store, self.admission, flows, self._decide, self._inline
        )
        self._producer = AsyncProducer(kafka)
        await self._producer.start()
        self._restorer = AsyncConsumer(kafka, f"{self.settings.executor.group_id}-restore")
        await self._restorer.start()
        self._consumer = AsyncConsumer(
            kafka,
            self.settings.executor.group_id,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            **self._consumer_overrides,
        )
        await self._consumer.start()
        await self._consumer.subscribe([self.topics.commands.name, self.topics.admission.name])
        self._timer_task = Supervised("executor-timers", self._timer_loop(), self._crashed)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume, decide, produce, commit until ``stop`` is set; the batch in progress is
        finished and committed before returning. Raises what crashed the loop."""
        assert self._consumer is not None
        self._running = True
        delay = _RETRY_FIRST_S
        try:
            while not stop.is_set():
                if self.failure is not None:
                    raise self.failure
                try:
                    records = await self._consumer.consume(
                        self.settings.executor.max_batch,
                        self.settings.executor.poll_timeout_s,
                        until=stop,
                    )
                except BusError as exc:
                    if not exc.retriable:
                        raise
                    log.warning("executor: %s; retrying in %.1f s", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _RETRY_MAX_S)
                    continue
                delay = _RETRY_FIRST_S
                await self._process(records)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._crashed("executor-loop", exc)
            raise
        finally:
            self._running = False

    async def close(self) -> None:
        """Leave the group (other executors take the partitions over) and release clients."""
        if self._timer_task is not None:
            await self._timer_task.stop()
        for closer in (self._consumer, self._restorer):
            if closer is not None:
                await closer.close()
        if self._flows is not None:
            await self._flows.close()
        if self._producer is not None:
            await self._producer.close()

    def _crashed(self, name: str, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
        if self._consumer is not None:
            self._consumer.wake()  # a dozing consume returns now and the loop raises it
        if self._on_crash is not None:
            self._on_crash(name, exc)

    # --- health ---------------------------------------------------------------------------

    def healthy(self) -> bool:
        flows_ok = self._flows is None or self._flows.healthy
        timers_ok = self._timer_task is None or self._timer_task.healthy
        lag_ok = self.last_lag_s <= self.settings.executor.max_lag_s
        return self.failure is None and flows_ok and timers_ok and lag_ok

    @property
    def flows(self) -> FlowStore:
        assert self._flows is not None
        return self._flows.store

    def health(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy(),
            "running": self._running,
            "lag_s": round(self.last_lag_s, 3),
            "executions": len(self.store.executions),
            "timers": len(self.store.timers),
            "assigned": sorted(self._consumer.assigned) if self._consumer else [],
            "processed": self.processed,
            "duplicates": self.duplicates,
            "dropped": self.dropped,
            "inline_tasks": self._inline.ran if self._inline else 0,
            "batches": self.batches,
            "decide_s": round(self.decide_s, 6),
            "produce_s": round(self.produce_s, 6),
            "failure": repr(self.failure) if self.failure else None,
        }

    # --- one batch ------------------------------------------------------------------------

    async def _process(self, records: list[Record]) -> None:
        assert self._producer is not None
        assert self._consumer is not None
        started = time.perf_counter()
        try:
            result = self.batch.run(records, self.clock.now, strict=True)
        except UnknownExecution as exc:
            # The state may have been restored short (a broker restart during the restore):
            # read it again, like a restarted process would, and redo the batch; what is still
            # unknown then is a stray command and is dropped (batch.py).
            log.warning("executor: %s; restoring the owned partitions again", exc)
            await self._restore_again()
            result = self.batch.run(records, self.clock.now, strict=False)
        self.processed += result.decided
        self.duplicates += result.duplicates
        self.dropped += result.dropped
        if result.oldest_ms is not None:
            self.last_lag_s = max(0.0, time.time() - result.oldest_ms / 1000)
        elif not records:
            self.last_lag_s = 0.0
        decided = time.perf_counter()
        await self._ensure_job_topics(result.job_topics)
        if result.records:
            await self._producer.produce_batch(result.records)
        if records:
            self.batches += 1
            self.decide_s += decided - started
            self.produce_s += time.perf_counter() - decided
        self._wake.set()
        if records:
            await self._commit(records)

    async def _commit(self, records: list[Record]) -> None:
        assert self._consumer is not None
        delay = _RETRY_FIRST_S
        while True:
            try:
                await self._consumer.commit(records)
                return
            except BusError as exc:
                # Lost the partitions: the new owner redoes the batch, whose records it will
                # find duplicates of in the snapshots we just produced.
                if not exc.retriable or not self._consumer.assigned:
                    raise
                log.warning("executor: commit failed: %s; retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_S)

    async def _ensure_job_topics(self, names: set[str]) -> None:
        missing = names - self._known_topics
        if not missing:
            return
        kafka = self.settings.kafka
        await self.admin.create_topics(
            NewTopicSpec(
                n, kafka.partitions, kafka.replication_factor, {"cleanup.policy": "delete"}
            )
            for n in missing
        )
        self._known_topics |= missing

    # --- partitions -----------------------------------------------------------------------

    async def _restore_again(self) -> None:
        """Forget the owned partitions' state (including decisions of the aborted batch that
        were never produced) and read it again from hw.executor-state."""
        assert self._consumer is not None
        numbers = {p for _, p in self._consumer.assigned}
        self.store.drop_partitions(numbers)
        self.admission.drop_partitions(numbers)
        await self._restore(sorted(self._consumer.assigned), numbers)

    async def _on_assign(self, partitions: list[Partition]) -> None:
        numbers = {p for _, p in partitions}
        if not numbers:
            return
        await self._restore(partitions, numbers)

    async def _restore(self, partitions: list[Partition], numbers: set[int]) -> None:
        assert self._restorer is not None
        records = await read_partitions(self._restorer, self.topics.executor_state.name, numbers)
        loaded, slots = self.store.restore(records)
        for partition, payload in slots:
            self.admission.restore(partition, payload)
        log.info(
            "executor: assigned %s; restored %d executions, %d flow slots from %d records",
            sorted(partitions), loaded, len(slots), len(records),
        )  # fmt: skip
        self._wake.set()

    async def _on_revoke(self, partitions: list[Partition]) -> None:
        numbers = {p for _, p in partitions}
        # hw.commands and hw.admission partition p share hw.executor-state partition p; keep
        # the state while this process still owns either of them.
        assert self._consumer is not None
        still = {p for _, p in self._consumer.assigned}
        gone = numbers - still
        self.store.drop_partitions(gone)
        self.admission.drop_partitions(gone)
        log.info("executor: revoked %s", sorted(partitions))

    # --- timers ---------------------------------------------------------------------------

    async def _timer_loop(self) -> None:
        while True:
            now = self.clock.now().timestamp()
            due = self.store.timers.pop_due(now)
            if due:
                topic = self.topics.commands.name
                occurred = self.clock.now()
                batch = [
                    out(
                        topic,
                        command_record(
                            TimerFired(
                                command_id=timer_command_id(t.execution_id, t.timer_id, t.fire_at),
                                execution_id=t.execution_id,
                                timer_id=t.timer_id,
                            ),
                            occurred=occurred,
                        ),
                    )
                    for t in due
                ]
                assert self._producer is not None
                await self._producer.produce_batch(batch)
                continue
            nxt = self.store.timers.next_due()
            wait = _TIMER_MAX_SLEEP_S if nxt is None else self.clock.real_seconds(nxt - now)
            self._wake.clear()
            try:
                async with asyncio.timeout(max(0.0, min(wait, _TIMER_MAX_SLEEP_S))):
                    await self._wake.wait()
            except TimeoutError:
                pass
