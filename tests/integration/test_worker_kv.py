"""The KV store on hw.kv (engine.stores.kv) and log.Fetch from hw.logs, on the real broker.

Two followers stand for two workers: a value one writes is seen by the other's next read
(read barrier), deletes and ``overwrite: false`` behave as Kestra's, ``ttl`` expires on the
store's clock, and a new follower rebuilds the store from the topic alone. Then real worker
jobs: kv.Set, kv.Get and ``kv()`` in later jobs of the same execution, and log.Fetch counting
an execution's lines on hw.logs.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from engine.bus import AsyncProducer, BusAdmin
from engine.bus.wire import log_record
from engine.settings import Settings
from engine.stores.kv import KafkaKV, ensure_kv_topic
from executors.base import TaskError, iso_millis
from tests.integration.test_worker_e2e import (
    Observer,
    make_job,
    produce,
    run_worker,
    stop_worker,
    wsettings,
)

pytestmark = pytest.mark.kafka
__all__ = ["wsettings"]  # the fixture

NS = "company.team"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def producer(wsettings: Settings) -> AsyncIterator[AsyncProducer]:
    await ensure_kv_topic(BusAdmin(wsettings.kafka), wsettings.kafka)
    async with AsyncProducer(wsettings.kafka) as p:
        yield p


async def follower(settings: Settings, producer: AsyncProducer, clock: Clock) -> KafkaKV:
    kv = KafkaKV(settings.kafka, producer, clock=clock, group_id=f"kv-{uuid.uuid4().hex[:8]}")
    await kv.start()
    return kv


async def test_two_followers_see_each_others_writes(
    wsettings: Settings, producer: AsyncProducer
) -> None:
    from engine.bus.supervise import Supervised

    clock = Clock()
    a = await follower(wsettings, producer, clock)
    b = await follower(wsettings, producer, clock)
    followers = [a, b]
    loops = [Supervised("kv-a", a.run()), Supervised("kv-b", b.run())]
    try:
        assert await b.get(NS, "k") == (False, None)
        await a.set(NS, "k", {"field": "value"}, overwrite=True, ttl_seconds=None)
        assert await b.get(NS, "k") == (True, {"field": "value"})  # no sleep: the barrier
        await b.set(NS, "k", 2, overwrite=True, ttl_seconds=None)
        assert await a.get(NS, "k") == (True, 2)
        with pytest.raises(TaskError, match="overwrite"):
            await a.set(NS, "k", 3, overwrite=False, ttl_seconds=None)
        await a.set(NS, "fresh", "x", overwrite=False, ttl_seconds=None)

        assert await b.delete(NS, "k") is True
        assert await a.get(NS, "k") == (False, None)
        assert await a.delete(NS, "k") is False

        await a.set(NS, "short", "lived", overwrite=True, ttl_seconds=10)
        await b.sync()
        assert b.lookup("short", NS) == "lived"  # what kv() reads after the barrier
        clock.now += timedelta(seconds=11)
        assert await b.get(NS, "short") == (False, None)
        with pytest.raises(KeyError):
            b.lookup("short", NS)

        # A new worker rebuilds the store from the topic alone.
        c = await follower(wsettings, producer, clock)
        followers.append(c)
        loops.append(Supervised("kv-c", c.run()))
        assert await c.get(NS, "fresh") == (True, "x")
        assert await c.get(NS, "k") == (False, None)
        assert sorted(c.keys()) == [(NS, "fresh")]
    finally:
        for loop in loops:
            await loop.stop()
        for kv in followers:
            await kv.close()
    assert all(loop.failure is None for loop in loops)


async def test_worker_jobs_share_the_store_and_fetch_logs(wsettings: Settings) -> None:
    execution = uuid.uuid4().hex
    set_job = make_job(
        {"type": "io.kestra.plugin.core.kv.Set", "key": "greeting", "value": "{{ 'hel' ~ 'lo' }}"},
        execution_id=execution,
    )
    get_job = make_job(
        {"type": "io.kestra.plugin.core.kv.Get", "key": "greeting"}, execution_id=execution
    )
    expr_job = make_job(
        {"type": "io.kestra.plugin.core.debug.Return", "format": "{{ kv('greeting') }} world"},
        execution_id=execution,
    )
    # Lines an earlier task and the executor wrote for this execution, and one of another.
    now = iso_millis(datetime.now(UTC))
    lines = [
        ("INFO", execution, "t0"),
        ("DEBUG", execution, "t0"),
        ("ERROR", execution, None),
        ("INFO", "another-execution", "t0"),
    ]
    async with AsyncProducer(wsettings.kafka) as p:
        for n, (level, eid, task_id) in enumerate(lines):
            key, value = log_record(
                log_id=f"{eid}:{n}", execution_id=eid, task_run_id="r0", task_id=task_id,
                attempt=1, level=level, message=f"line {n}", timestamp=now,
            )  # fmt: skip
            await p.produce(f"{wsettings.kafka.topic_prefix}logs", key, value)
    fetch_job = make_job(
        {"type": "io.kestra.plugin.core.log.Fetch", "level": "INFO"},
        execution_id=execution,
        context={"execution": {"id": execution, "startDate": now}},
    )
    _, stop, task = await run_worker(wsettings)
    async with Observer(wsettings) as obs:
        await produce(wsettings, set_job)
        await obs.until(lambda: obs.result(set_job), "the Set result")
        await produce(wsettings, get_job, expr_job, fetch_job)
        await obs.until(
            lambda: obs.result(get_job) and obs.result(expr_job) and obs.result(fetch_job),
            "the Get, kv() and Fetch results",
        )
    await stop_worker(stop, task)
    assert obs.result(set_job).state == "SUCCESS"
    assert obs.result(get_job).outputs == {"value": "hello"}
    assert obs.result(expr_job).outputs == {"value": "hello world"}
    fetched = obs.result(fetch_job)
    assert fetched.state == "SUCCESS", fetched.error
    assert fetched.outputs["size"] == 2  # INFO and ERROR of this execution, not DEBUG/others
    assert fetched.outputs["uri"].startswith("kestra://")
