"""kv.GetKeys, kv.Put and kv.PurgeKV on the real KV store (hw.kv on the broker, a KafkaKV
follower as a worker has one), on a controllable clock for expiries."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.bus import AsyncProducer, BusAdmin
from engine.bus.supervise import Supervised
from engine.settings import Settings
from engine.stores.kv import KafkaKV, ensure_kv_topic
from executors.base import TaskContext, TaskOutcome
from executors.registry import add_plugins, core_registry
from tests.integration.test_worker_e2e import wsettings

pytestmark = pytest.mark.kafka
__all__ = ["wsettings"]  # the fixture

NS = "company.team"
P = "io.kestra.plugin.core.kv."


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def kv(wsettings: Settings) -> AsyncIterator[tuple[KafkaKV, Clock]]:
    await ensure_kv_topic(BusAdmin(wsettings.kafka), wsettings.kafka)
    clock = Clock()
    async with AsyncProducer(wsettings.kafka) as producer:
        store = KafkaKV(
            wsettings.kafka, producer, clock=clock, group_id=f"kv-{uuid.uuid4().hex[:8]}"
        )
        await store.start()
        loop = Supervised("kv", store.run())
        try:
            yield store, clock
        finally:
            await loop.stop()
            await store.close()


async def run(store: KafkaKV, clock: Clock, task: dict[str, Any]) -> TaskOutcome:
    task = {"id": "t", **task, "type": P + task["type"]}
    ctx = TaskContext.for_job(
        execution_id="e",
        task_run_id="r",
        attempt=1,
        task=task,
        variables={"flow": {"id": "f", "namespace": NS}, "execution": {"id": "e"}},
        kv=store,
        clock=clock,
    )
    return await add_plugins(core_registry()).run(task, ctx)


async def test_get_keys(kv: tuple[KafkaKV, Clock]) -> None:
    store, clock = kv
    for key in ("app_a", "app_b", "other"):
        await store.set(NS, key, 1, overwrite=True, ttl_seconds=None)
    await store.set(NS, "app_old", 1, overwrite=True, ttl_seconds=5)
    await store.set("elsewhere", "app_z", 1, overwrite=True, ttl_seconds=None)
    clock.now += timedelta(seconds=10)
    outcome = await run(store, clock, {"type": "GetKeys", "prefix": "app_"})
    assert outcome.outputs == {"keys": ["app_a", "app_b"]}
    outcome = await run(store, clock, {"type": "GetKeys", "namespace": "elsewhere"})
    assert outcome.outputs == {"keys": ["app_z"]}


async def test_put_merges_patches_and_replaces(kv: tuple[KafkaKV, Clock]) -> None:
    store, clock = kv
    await store.set(NS, "cfg", {"db": {"host": "h", "port": 1}, "x": 1}, overwrite=True,
                    ttl_seconds=60)  # fmt: skip
    outcome = await run(store, clock, {"type": "Put", "key": "cfg", "value": {"db": {"port": 2}}})
    assert outcome.state == "SUCCESS", outcome.error
    assert await store.get(NS, "cfg") == (True, {"db": {"host": "h", "port": 2}, "x": 1})
    patch = [{"key": "db.user", "value": "{{ flow.id }}"}, {"key": "y", "value": [1]}]
    outcome = await run(store, clock, {"type": "Put", "key": "cfg", "value": patch})
    assert outcome.state == "SUCCESS", outcome.error
    assert await store.get(NS, "cfg") == (
        True,
        {"db": {"host": "h", "port": 2, "user": "f"}, "x": 1, "y": [1]},
    )
    clock.now += timedelta(seconds=61)  # the entry kept its 60 s expiry through the Puts
    assert await store.get(NS, "cfg") == (False, None)
    outcome = await run(store, clock, {"type": "Put", "key": "n", "value": [{"value": 5}]})
    assert await store.get(NS, "n") == (True, 5)
    outcome = await run(
        store, clock, {"type": "Put", "key": "n", "value": [{"key": "a", "value": 1}]}
    )
    assert outcome.error == "Cannot apply keyed `value` updates to a non-JSON existing KV value."
    mixed = [{"value": 1}, {"key": "a", "value": 2}]
    outcome = await run(store, clock, {"type": "Put", "key": "n", "value": mixed})
    assert outcome.error == (
        "`value` entries without `key` can only be used as a single replacement item."
    )
    missing = {"type": "Put", "key": "nope", "value": 1, "errorOnMissing": True}
    outcome = await run(store, clock, missing)
    assert outcome.error == (
        "No value found for key 'nope' in namespace 'company.team' and `errorOnMissing` is set "
        "to true"
    )


async def test_purge_kv(kv: tuple[KafkaKV, Clock]) -> None:
    store, clock = kv
    await store.set(NS, "AI_old", 1, overwrite=True, ttl_seconds=5)
    await store.set(NS, "AI_new", 1, overwrite=True, ttl_seconds=None)
    await store.set(NS, "keep", 1, overwrite=True, ttl_seconds=5)
    await store.set("company.team.sub", "AI_x", 1, overwrite=True, ttl_seconds=None)
    await store.set("companyx", "AI_y", 1, overwrite=True, ttl_seconds=None)
    clock.now += timedelta(seconds=10)
    # Default: expired keys only, every namespace, filtered by key pattern.
    outcome = await run(store, clock, {"type": "PurgeKV", "keyPattern": "AI_*"})
    assert outcome.outputs == {"size": 1}
    assert (await store.get(NS, "AI_new"))[0]
    all_keys = {
        "type": "PurgeKV",
        "namespaces": ["company"],
        "keyPattern": "AI_*",
        "behavior": {"type": "key", "expiredOnly": False},
    }
    outcome = await run(store, clock, all_keys)
    assert outcome.outputs == {"size": 2}  # company.team AI_new and company.team.sub AI_x
    assert (await store.get("companyx", "AI_y"))[0]  # not a child of "company"
    keys = sorted((ns, k) for ns, k, _ in await store.list_entries())
    assert keys == [("company.team", "keep"), ("companyx", "AI_y")]
    # The deprecated top-level expiredOnly overrides behavior, as in Kestra.
    deprecated = {
        "type": "PurgeKV",
        "namespaces": ["companyx"],
        "expiredOnly": False,
        "behavior": {"type": "key", "expiredOnly": True},
    }
    assert (await run(store, clock, deprecated)).outputs == {"size": 1}  # AI_y, not expired
    outcome = await run(store, clock, {"type": "PurgeKV", "expiredOnly": True})
    assert outcome.outputs == {"size": 1}  # keep, expired
    assert await store.list_entries() == []
    versions = {"type": "PurgeKV", "behavior": {"type": "version", "keepAmount": 1}}
    assert (await run(store, clock, versions)).outputs == {"size": 0}
    both = {"type": "PurgeKV", "namespaces": ["a"], "namespacePattern": "a*"}
    outcome = await run(store, clock, both)
    assert outcome.state == "FAILED"
    assert "can't be used at the same time" in (outcome.error or "")
