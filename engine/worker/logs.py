"""Streams task log lines to hw.logs in batches, without ever blocking a task.

``ctx.log`` is synchronous (a script's reader calls it per line), so :meth:`LogShipper.add`
only appends to a buffer; a background loop hands the buffer to the producer every
:data:`FLUSH_INTERVAL_S` or as soon as :data:`BATCH_MAX` lines wait. Each line gets the id
``f"{task_run_id}:{attempt}:{n}"`` (:func:`engine.bus.wire.worker_log_id`), so a projector that
sees a line twice (a redelivered task) stores it once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from engine.bus.producer import AsyncProducer, Delivered
from engine.bus.wire import KeyValue, log_record, worker_log_id
from executors.base import LogLine, iso_millis

log = logging.getLogger(__name__)

# Lines wait at most this long before being sent: a live tail feels immediate, and a flood of
# lines still goes out in batches of many.
FLUSH_INTERVAL_S = 0.05
# Flush early past this many waiting lines, so a flood does not build one huge batch.
BATCH_MAX = 2000
# Past this many unsent lines (the broker is unreachable), new lines are dropped and counted
# rather than exhausting the worker's memory; a WARN line reports how many.
BUFFER_MAX = 1_000_000

Masker = Callable[[str], str]


def line_record(line: LogLine, n: int) -> KeyValue:
    """The hw.logs record of the ``n``-th line of one task run attempt (worker or inline)."""
    return log_record(
        log_id=worker_log_id(line.task_run_id, line.attempt, n),
        execution_id=line.execution_id,
        task_run_id=line.task_run_id,
        task_id=line.task_id,
        attempt=line.attempt,
        level=line.level,
        message=line.message,
        timestamp=iso_millis(line.timestamp),
    )


class LogShipper:
    """One per worker; ``add`` from anywhere on the loop, ``drain`` before a result."""

    def __init__(self, producer: AsyncProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self._buffer: list[tuple[bytes, bytes]] = []
        self._inflight: set[asyncio.Future[Delivered]] = set()
        self._wake = asyncio.Event()  # the buffer is full: flush now
        self._lines = asyncio.Event()  # the buffer has lines
        self._counters: dict[tuple[str, int], int] = {}
        self.dropped = 0
        self.sent = 0
        self.failed = 0

    def add(self, line: LogLine) -> None:
        if len(self._buffer) >= BUFFER_MAX:
            self.dropped += 1
            return
        key = (line.task_run_id, line.attempt)
        n = self._counters.get(key, 0)
        self._counters[key] = n + 1
        self._buffer.append(line_record(line, n))
        self._lines.set()
        if len(self._buffer) >= BATCH_MAX:
            self._wake.set()

    def forget(self, task_run_id: str, attempt: int) -> int:
        """The run ended: drop its line counter; how many lines it sent (numbered 0..n-1)."""
        return self._counters.pop((task_run_id, attempt), 0)

    async def run(self) -> None:
        """The flush loop (run it supervised)."""
        while True:
            # Idle until a line comes; then flush within FLUSH_INTERVAL_S (at once when full).
            await self._lines.wait()
            try:
                await asyncio.wait_for(self._wake.wait(), FLUSH_INTERVAL_S)
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Hand every buffered line to the producer (acks are awaited by :meth:`drain`)."""
        if self.dropped:
            log.warning("dropped %d task log lines: hw.logs is not keeping up", self.dropped)
            self.dropped = 0
        batch, self._buffer = self._buffer, []
        self._lines.clear()
        for key, value in batch:
            future = await self._producer.enqueue(self._topic, key, value)
            self._inflight.add(future)
            future.add_done_callback(self._settled)

    def _settled(self, future: asyncio.Future[Delivered]) -> None:
        self._inflight.discard(future)
        if future.cancelled():
            return
        if future.exception() is not None:
            self.failed += 1
            log.warning("a task log line was not delivered: %s", future.exception())
        else:
            self.sent += 1

    async def drain(self) -> None:
        """Send what is buffered and wait until every line so far is acknowledged or failed."""
        await self.flush()
        pending = list(self._inflight)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def pending(self) -> int:
        return len(self._buffer) + len(self._inflight)
