"""Pure parts of the KV store (engine.stores.kv): how records read from hw.kv become the store.

No broker: records are handed to the follower's apply step directly, in the orders a real
follower and a worker's own acknowledged writes can produce.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from engine.bus.consumer import Record
from engine.settings import KafkaSettings
from engine.stores.kv import BARRIER_KEY, KafkaKV, entry_key, kv_topic_spec

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def record(offset: int, key: bytes | None, value: bytes | None) -> Record:
    return Record("hw.kv", 0, offset, key, value, None, -1)


def entry(value: object, expires: datetime | None = None) -> bytes:
    at = expires.isoformat().replace("+00:00", "Z") if expires else None
    return orjson.dumps({"v": 1, "value": value, "expiresAt": at})


@pytest.fixture
def kv() -> KafkaKV:
    # Never started: the consumer is only created, no connection is made.
    return KafkaKV(KafkaSettings(), producer=None, clock=lambda: NOW)  # type: ignore[arg-type]


def test_the_topic_is_one_compacted_partition() -> None:
    spec = kv_topic_spec(KafkaSettings(topic_prefix="p."))
    assert (spec.name, spec.partitions, spec.config) == ("p.kv", 1, {"cleanup.policy": "compact"})


def test_records_build_the_store_last_write_wins(kv: KafkaKV) -> None:
    kv._apply(record(0, entry_key("ns", "a"), entry({"x": 1})))
    kv._apply(record(1, entry_key("ns", "a"), entry("second")))
    kv._apply(record(2, entry_key("ns", "b/with/slashes"), entry(3)))
    assert kv.peek("ns", "a") == (True, "second")
    assert kv.lookup("b/with/slashes", "ns") == 3
    assert kv.peek("other", "a") == (False, None)
    assert sorted(kv.keys()) == [("ns", "a"), ("ns", "b/with/slashes")]


def test_a_tombstone_deletes_and_an_older_record_cannot_revive_it(kv: KafkaKV) -> None:
    kv._store("ns", "a", 5, None, None, deleted=True)  # this worker's own acknowledged delete
    kv._apply(record(3, entry_key("ns", "a"), entry("old")))  # the follower catches up later
    assert kv.peek("ns", "a") == (False, None)
    kv._apply(record(6, entry_key("ns", "a"), entry("new")))
    assert kv.peek("ns", "a") == (True, "new")
    kv._apply(record(7, entry_key("ns", "a"), None))
    with pytest.raises(KeyError):
        kv.lookup("a", "ns")


def test_own_write_is_not_overwritten_by_an_older_record(kv: KafkaKV) -> None:
    kv._store("ns", "a", 10, "mine", None)
    kv._apply(record(9, entry_key("ns", "a"), entry("theirs, earlier")))
    assert kv.peek("ns", "a") == (True, "mine")


def test_ttl_expires_on_the_stores_clock(kv: KafkaKV) -> None:
    kv._apply(record(0, entry_key("ns", "soon"), entry(1, NOW + timedelta(seconds=5))))
    kv._apply(record(1, entry_key("ns", "gone"), entry(1, NOW - timedelta(seconds=1))))
    assert kv.peek("ns", "soon") == (True, 1)
    assert kv.peek("ns", "gone") == (False, None)
    assert kv.keys() == [("ns", "soon")]


def test_control_and_malformed_records_are_skipped(kv: KafkaKV) -> None:
    kv._apply(record(0, BARRIER_KEY, b"{}"))
    kv._apply(record(1, b"no-namespace", entry(1)))
    kv._apply(record(2, entry_key("ns", "bad"), b"not json"))
    kv._apply(record(3, None, entry(1)))
    assert kv.keys() == []


def test_waiters_wake_once_the_follower_passed_their_barrier(kv: KafkaKV) -> None:
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        early, late = loop.create_future(), loop.create_future()
        kv._waiters = [(4, early), (9, late)]
        kv._position = 5
        kv._wake()
        assert early.done()
        assert not late.done()
        assert [offset for offset, _ in kv._waiters] == [9]
    finally:
        loop.close()
