"""Supervised tasks and the consume loop, with a scripted stand-in for the consumer."""

from __future__ import annotations

import asyncio
import inspect
from typing import cast

import pytest

from engine.bus import AsyncConsumer, Record, Supervised, consume_forever
from engine.errors import BusError


def _rec(offset: int) -> Record:
    return Record("t", 0, offset, b"k", b"v", None, 0)


class ScriptedConsumer:
    """Returns the scripted batches (or raises the scripted errors), then nothing."""

    group_id = "g"

    def __init__(self, script: list[list[Record] | BusError]) -> None:
        self.script = script
        self.commits: list[list[Record]] = []
        self.commit_errors: list[BusError] = []
        self.assigned = {("t", 0)}

    async def consume(self, max_records: int, timeout_s: float) -> list[Record]:
        await asyncio.sleep(0)
        if not self.script:
            return []
        step = self.script.pop(0)
        if isinstance(step, BusError):
            raise step
        return step

    async def commit(self, records: list[Record]) -> None:
        if self.commit_errors:
            raise self.commit_errors.pop(0)
        self.commits.append(list(records))


def _as_consumer(fake: ScriptedConsumer) -> AsyncConsumer:
    return cast(AsyncConsumer, fake)


async def test_handled_batches_are_committed_in_order_and_stop_ends_the_loop() -> None:
    fake = ScriptedConsumer([[_rec(0), _rec(1)], [_rec(2)]])
    stop = asyncio.Event()
    handled: list[int] = []

    async def handle(records: list[Record]) -> None:
        handled.extend(r.offset for r in records)
        if len(handled) == 3:
            stop.set()

    await consume_forever(_as_consumer(fake), handle, stop=stop)
    assert handled == [0, 1, 2]
    assert [[r.offset for r in batch] for batch in fake.commits] == [[0, 1], [2]]


async def test_retriable_consume_errors_are_retried() -> None:
    fake = ScriptedConsumer([BusError("broker restarting", retriable=True), [_rec(0)]])
    stop = asyncio.Event()

    async def handle(records: list[Record]) -> None:
        stop.set()

    await consume_forever(_as_consumer(fake), handle, stop=stop)
    assert len(fake.commits) == 1


async def test_a_retriable_commit_error_is_retried_before_moving_on() -> None:
    fake = ScriptedConsumer([[_rec(0)]])
    fake.commit_errors.append(BusError("coordinator moved", retriable=True))
    stop = asyncio.Event()

    async def handle(records: list[Record]) -> None:
        stop.set()

    await consume_forever(_as_consumer(fake), handle, stop=stop)
    assert [[r.offset for r in batch] for batch in fake.commits] == [[0]]


async def test_a_non_retriable_bus_error_ends_the_loop() -> None:
    fake = ScriptedConsumer([BusError("fatal", retriable=False)])

    async def handle(records: list[Record]) -> None:
        raise AssertionError("not reached")

    with pytest.raises(BusError, match="fatal"):
        await consume_forever(_as_consumer(fake), handle)


async def test_a_retriable_error_from_the_handler_is_not_swallowed() -> None:
    # Retrying the next batch would skip this one: the loop must end instead.
    fake = ScriptedConsumer([[_rec(0)], [_rec(1)]])

    async def handle(records: list[Record]) -> None:
        raise BusError("downstream produce failed", retriable=True)

    with pytest.raises(BusError, match="downstream"):
        await consume_forever(_as_consumer(fake), handle)
    assert fake.commits == []


async def test_a_crash_is_recorded_reported_and_re_raised() -> None:
    crashes: list[str] = []

    async def boom() -> None:
        raise RuntimeError("loop died")

    task = Supervised("events", boom(), on_crash=lambda name, exc: crashes.append(name))
    with pytest.raises(RuntimeError, match="loop died"):
        await task.wait()
    assert not task.healthy
    assert not task.running
    assert isinstance(task.failure, RuntimeError)
    assert crashes == ["events"]


async def test_stop_cancels_without_counting_as_a_failure() -> None:
    crashes: list[str] = []
    task = Supervised("idle", asyncio.sleep(3600), on_crash=lambda name, exc: crashes.append(name))
    await asyncio.sleep(0)
    assert task.running
    await task.stop()
    assert not task.running
    assert task.healthy
    assert crashes == []


async def test_stop_re_raises_a_failure_that_already_happened() -> None:
    async def boom() -> None:
        raise RuntimeError("earlier crash")

    task = Supervised("x", boom())
    await asyncio.sleep(0.01)
    with pytest.raises(RuntimeError, match="earlier crash"):
        await task.stop()


async def test_stopped_before_its_first_step_leaves_no_unawaited_coroutine() -> None:
    async def never_started() -> None:
        raise AssertionError("must not run")

    coro = never_started()
    task = Supervised("early", coro)
    await task.stop()  # cancelled before the event loop ever ran it
    await asyncio.sleep(0)
    # Closed: no "coroutine was never awaited" warning at garbage collection.
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED
