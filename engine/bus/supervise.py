"""Supervised background tasks and the standard consume-handle-commit loop.

A consumer loop that dies silently is the classic failure of stream processors (faust and
aiokafka users lost days to it), so a :class:`Supervised` task records its failure, logs it
with the traceback, calls the owner's ``on_crash`` (which should take the component down and
mark ``/health`` failed) and re-raises it to whoever awaits it. Cancellation is a normal stop,
never a failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from engine.bus.consumer import AsyncConsumer, Record
from engine.errors import BusError

log = logging.getLogger(__name__)

# Retriable bus errors (broker restarting, rebalance) are retried with exponential back-off
# from the first to the last value: fast enough to ride out a leader move, slow enough not to
# spin on a broker that is down.
_RETRY_FIRST_S = 0.1
_RETRY_MAX_S = 5.0


class Supervised:
    """A named background task whose crash is recorded and reported, never swallowed."""

    def __init__(
        self,
        name: str,
        coro: Coroutine[Any, Any, None],
        on_crash: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self.name = name
        self.failure: BaseException | None = None
        self._on_crash = on_crash
        self._task = asyncio.create_task(self._guard(coro), name=name)
        # A task cancelled before its first step never awaits ``coro``: close it then, or
        # Python warns at garbage collection (a no-op once the coroutine has finished).
        self._task.add_done_callback(lambda _: coro.close())

    async def _guard(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.failure = exc
            log.exception("background task %s crashed", self.name)
            if self._on_crash is not None:
                self._on_crash(self.name, exc)
            raise

    @property
    def running(self) -> bool:
        return not self._task.done()

    @property
    def healthy(self) -> bool:
        """False once the task crashed; what `/health` reports."""
        return self.failure is None

    async def wait(self) -> None:
        """Wait for the task to end; re-raises its failure."""
        await self._task

    async def stop(self) -> None:
        """Cancel the task and wait for it; a failure it had already hit is re-raised."""
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we are being cancelled ourselves, not just stopping the task


Handler = Callable[[list[Record]], Awaitable[None]]


async def consume_forever(
    consumer: AsyncConsumer,
    handle: Handler,
    *,
    max_records: int = 500,
    poll_timeout_s: float = 1.0,
    stop: asyncio.Event | None = None,
) -> None:
    """Consume batches, hand each to `handle`, then commit it: at-least-once.

    The commit happens only after `handle` returned, so a crash in between redelivers the
    batch (handlers must be idempotent). A handler error or a non-retriable bus error ends the
    loop by raising, so run it under :class:`Supervised`; retriable bus errors are retried with
    back-off. Returns when `stop` is set.
    """
    delay = _RETRY_FIRST_S
    while stop is None or not stop.is_set():
        try:
            records = await consumer.consume(max_records, poll_timeout_s)
        except BusError as exc:
            if not exc.retriable:
                raise
            log.warning("consumer %s: %s; retrying in %.1f s", consumer.group_id, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)
            continue
        delay = _RETRY_FIRST_S
        if records:
            # Never catch the handler's errors here: going on to the next batch would skip
            # this one (its offsets are past) until the next restart.
            await handle(records)
            await _commit_retrying(consumer, records)


async def _commit_retrying(consumer: AsyncConsumer, records: list[Record]) -> None:
    # The batch was handled: retrying its commit is cheaper than reprocessing it, but only
    # while we still own the partitions (after a revoke the new owner re-reads it anyway).
    delay = _RETRY_FIRST_S
    while True:
        try:
            await consumer.commit(records)
            return
        except BusError as exc:
            if not exc.retriable or not consumer.assigned:
                raise
            log.warning("consumer %s: commit failed: %s; retrying", consumer.group_id, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)
