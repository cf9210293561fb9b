"""The Kafka bus against the real broker (Tansu from deploy/local).

Every test gets its own topic prefix and group ids, so runs never see each other's records.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from engine.bus import (
    AsyncConsumer,
    AsyncProducer,
    BusAdmin,
    OutRecord,
    Partition,
    Record,
    Supervised,
    Topics,
    consume_forever,
    ensure_topics,
    gaps,
    topics_for,
)
from engine.bus import producer as producer_module
from engine.bus import stall as stall_module
from engine.bus.admin import NewTopicSpec
from engine.bus.nudge import NUDGES
from engine.errors import BusError, ConfigError, DeliveryError
from engine.settings import KafkaSettings, Settings
from schemas.envelope import Envelope, decode, encode

pytestmark = pytest.mark.kafka

PARTITIONS = 3
# How long a test waits for records to arrive through a group: a join takes about half the
# session timeout on Tansu, so this leaves room for two joins on a loaded machine.
ARRIVAL_S = 30.0


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[KafkaSettings]:
    """Settings with a fresh topic prefix; fails (never skips) when the broker is down."""
    kafka = settings.kafka.model_copy(
        update={
            "topic_prefix": f"t{uuid.uuid4().hex[:10]}.",
            "partitions": PARTITIONS,
            # Group joins take about half the session timeout on Tansu: keep tests quick.
            "session_timeout_ms": 3000,
            "heartbeat_interval_ms": 500,
            "request_timeout_s": 5.0,
        }
    )
    admin = BusAdmin(kafka)
    try:
        await admin.wait_ready()
    except BusError as exc:
        pytest.fail(f"Kafka broker not reachable ({exc}); start it with `make services-up`")
    yield kafka
    prefix = kafka.topic_prefix
    await admin.delete_topics(n for n in await admin.list_topics() if n.startswith(prefix))


@pytest.fixture
async def topics(bus: KafkaSettings) -> Topics:
    return await ensure_topics(BusAdmin(bus), bus)


def _group() -> str:
    return f"g-{uuid.uuid4().hex[:10]}"


async def _read(consumer: AsyncConsumer, count: int) -> list[Record]:
    """Read until `count` records arrived (fails the test if they do not in time)."""
    got: list[Record] = []
    async with asyncio.timeout(ARRIVAL_S):
        while len(got) < count:
            got += await consumer.consume(500, 0.5)
    return got


async def _quiet(consumer: AsyncConsumer, rounds: int = 3) -> list[Record]:
    """What arrives over a few more polls: used to prove nothing else comes."""
    extra: list[Record] = []
    for _ in range(rounds):
        extra += await consumer.consume(500, 0.3)
    return extra


async def _consume_until_error(consumer: AsyncConsumer) -> None:
    async with asyncio.timeout(ARRIVAL_S):
        while True:
            await consumer.consume(10, 0.5)


# -------------------------------------------------------------------------------- topics


async def test_ensure_topics_creates_every_topic_and_is_idempotent(bus: KafkaSettings) -> None:
    admin = BusAdmin(bus)
    first = await ensure_topics(admin, bus)
    second = await ensure_topics(admin, bus)
    assert first == second == topics_for(bus)
    listed = await admin.list_topics()
    configs = await admin.topic_configs(t.name for t in first.all())
    for spec in first.all():
        assert listed[spec.name] == PARTITIONS
        assert configs[spec.name]["cleanup.policy"] == spec.cleanup_policy


async def test_ensure_topics_refuses_a_partition_mismatch(bus: KafkaSettings) -> None:
    admin = BusAdmin(bus)
    await ensure_topics(admin, bus)
    other = bus.model_copy(update={"partitions": PARTITIONS + 1})
    with pytest.raises(ConfigError) as info:
        await ensure_topics(admin, other)
    message = str(info.value)
    assert f"{bus.topic_prefix}commands has {PARTITIONS} partitions, expected 4" in message
    assert "HEADWATER_KAFKA__PARTITIONS" in message


async def test_ensure_topics_refuses_a_cleanup_policy_mismatch(bus: KafkaSettings) -> None:
    admin = BusAdmin(bus)
    wrong = NewTopicSpec(f"{bus.topic_prefix}flows", PARTITIONS, 1, {"cleanup.policy": "delete"})
    assert await admin.create_topics([wrong]) == {wrong.name: True}
    with pytest.raises(ConfigError, match=r"flows has cleanup\.policy=delete, expected compact"):
        await ensure_topics(admin, bus)


# ---------------------------------------------------------------------- produce / consume


async def test_envelopes_travel_through_a_consumer_group(
    bus: KafkaSettings, topics: Topics
) -> None:
    now = datetime.now(UTC)
    sent = [
        Envelope.new("StartExecution", f"exec-{i}", 0, {"n": i}, occurred=now) for i in range(30)
    ]
    assigned: list[list[Partition]] = []

    async def on_assign(parts: list[Partition]) -> None:
        assigned.append(parts)

    async with AsyncProducer(bus) as producer:
        delivered = await producer.produce_many(
            OutRecord(topics.commands.name, e.execution_id, encode(e), [("type", e.type)])
            for e in sent
        )
    assert {d.topic for d in delivered} == {topics.commands.name}

    async with AsyncConsumer(bus, _group(), on_assign=on_assign) as consumer:
        await consumer.subscribe([topics.commands.name])
        records = await _read(consumer, len(sent))
        assert await _quiet(consumer) == []
        await consumer.commit(records)

    assert sorted(assigned[0]) == [(topics.commands.name, p) for p in range(PARTITIONS)]
    assert sorted((decode(r.value or b"") for r in records), key=lambda e: e.payload["n"]) == sent
    assert all(r.headers == [("type", b"StartExecution")] for r in records)
    assert all(r.key == decode(r.value or b"").execution_id.encode() for r in records)
    assert all(r.timestamp_ms > 0 for r in records)


async def test_committed_offsets_survive_a_consumer_restart(
    bus: KafkaSettings, topics: Topics
) -> None:
    topic, group, commit_below = topics.events.name, _group(), 4
    async with AsyncProducer(bus) as producer:
        await producer.produce_many(
            OutRecord(topic, f"key-{i % 7}", f"v{i}".encode()) for i in range(40)
        )

    async with AsyncConsumer(bus, group) as first:
        await first.subscribe([topic])
        everything = await _read(first, 40)
        # Commit only the first records of each partition; the rest must come again.
        await first.commit([r for r in everything if r.offset < commit_below])

    expected = {(r.partition, r.offset, r.value) for r in everything if r.offset >= commit_below}
    assert expected  # 40 records over 3 partitions: every partition has more than 4
    async with AsyncConsumer(bus, group) as second:
        await second.subscribe([topic])
        again = await _read(second, len(expected))
        again += await _quiet(second)
        committed = await second.committed([(topic, p) for p in range(PARTITIONS)])
    assert sorted((r.partition, r.offset, r.value) for r in again) == sorted(expected)
    assert set(committed.values()) == {commit_below}
    assert await BusAdmin(bus).committed_offsets(group) == {
        (topic, p): commit_below for p in range(PARTITIONS)
    }


async def test_keyed_records_stay_in_order_on_one_partition(
    bus: KafkaSettings, topics: Topics
) -> None:
    keys = [f"exec-{k}" for k in range(10)]
    async with AsyncProducer(bus) as producer:
        # Interleave keys and produce concurrently: only the key may decide the order.
        await producer.produce_many(
            OutRecord(topics.jobs.name, key, str(seq).encode()) for seq in range(30) for key in keys
        )
    async with AsyncConsumer(bus, _group()) as consumer:
        await consumer.subscribe([topics.jobs.name])
        records = await _read(consumer, 300)
    by_key: dict[bytes, list[Record]] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_key.setdefault(r.key or b"", []).append(r)
    assert len(by_key) == len(keys)
    for key, recs in by_key.items():
        assert len({r.partition for r in recs}) == 1, key
        assert [int(r.value or b"") for r in recs] == list(range(30)), key
    assert len({recs[0].partition for recs in by_key.values()}) > 1  # keys do spread


# ------------------------------------------------------------------------------ failures


async def test_produce_to_an_invalid_topic_raises_delivery_error(bus: KafkaSettings) -> None:
    async with AsyncProducer(bus) as producer:
        with pytest.raises(DeliveryError) as info:
            await producer.produce("not a valid topic!", b"exec-1", b"{}")
    assert info.value.context["topic"] == "not a valid topic!"
    assert info.value.context["key"] == "exec-1"
    assert "not a valid topic!" in str(info.value)


async def test_a_record_over_message_max_bytes_raises_delivery_error(
    bus: KafkaSettings, topics: Topics
) -> None:
    async with AsyncProducer(bus) as producer:
        with pytest.raises(DeliveryError, match="MSG_SIZE_TOO_LARGE") as info:
            await producer.produce(topics.logs.name, "exec-1", b"x" * 2_000_000)
        assert info.value.context["topic"] == topics.logs.name
        # The producer stays usable after a refused record.
        delivered = await producer.produce(topics.logs.name, "exec-1", b"small")
    assert delivered.topic == topics.logs.name


async def test_produce_many_reports_a_failure_and_settles_the_rest(
    bus: KafkaSettings, topics: Topics
) -> None:
    good = [OutRecord(topics.logs.name, "k", b"ok") for _ in range(5)]
    async with AsyncProducer(bus) as producer:
        with pytest.raises(DeliveryError) as info:
            await producer.produce_many([*good, OutRecord("bad topic!", "k", b"x"), *good])
        await producer.flush(5.0)
    assert info.value.context["failed"] == 1
    async with AsyncConsumer(bus, _group()) as consumer:
        await consumer.subscribe([topics.logs.name])
        got = await _read(consumer, 10)
    assert len(got) == 10  # every good record reached the broker


async def test_produce_batch_acknowledges_every_record_in_order(
    bus: KafkaSettings, topics: Topics
) -> None:
    keys = [f"exec-{k}" for k in range(5)]
    async with AsyncProducer(bus) as producer:
        count = await producer.produce_batch(
            OutRecord(topics.jobs.name, key, str(seq).encode()) for seq in range(20) for key in keys
        )
        assert count == 100
        assert await producer.produce_batch([]) == 0
    async with AsyncConsumer(bus, _group()) as consumer:
        await consumer.subscribe([topics.jobs.name])
        records = await _read(consumer, 100)
    by_key: dict[bytes, list[int]] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_key.setdefault(r.key or b"", []).append(int(r.value or b""))
    assert by_key == {k.encode(): list(range(20)) for k in keys}


async def test_an_idle_producers_poll_thread_wakes_for_records_and_for_close(
    bus: KafkaSettings, topics: Topics, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With nothing in flight the poll thread sleeps; only a produce or close() may wake it
    # (its own periodic wake-up is pushed out of the test's reach).
    monkeypatch.setattr(producer_module, "_IDLE_POLL_S", 3600.0)
    async with asyncio.timeout(ARRIVAL_S):
        producer = AsyncProducer(bus)
        await producer.start()
        for _ in range(3):
            await asyncio.sleep(0.3)  # the thread finds nothing in flight and sleeps
            delivered = await producer.produce(topics.jobs.name, "k", b"one")
            assert delivered.offset >= 0
            await asyncio.sleep(0.3)
            assert await producer.produce_batch([OutRecord(topics.jobs.name, "k", b"b")]) == 1
        await producer.close()


async def test_produce_batch_reports_a_failure_after_the_rest_settled(
    bus: KafkaSettings, topics: Topics
) -> None:
    good = [OutRecord(topics.logs.name, "k", b"ok") for _ in range(5)]
    async with AsyncProducer(bus) as producer:
        with pytest.raises(DeliveryError) as info:
            await producer.produce_batch([*good, OutRecord("bad topic!", "k", b"x"), *good])
        # Refused by the broker: the records around it are still delivered.
        assert info.value.context["failed"] == 1
        assert info.value.context["topic"] == "bad topic!"
        big = OutRecord(topics.logs.name, "k", b"x" * 2_000_000)
        with pytest.raises(DeliveryError, match="MSG_SIZE_TOO_LARGE") as too_big:
            await producer.produce_batch([*good, big, *good])
        # Refused at enqueue: nothing after it is sent, what came before is acknowledged.
        assert too_big.value.context["failed"] == 1
        assert await producer.produce_batch(good) == 5  # still usable
    async with AsyncConsumer(bus, _group()) as consumer:
        await consumer.subscribe([topics.logs.name])
        got = await _read(consumer, 20)
        got += await _quiet(consumer)
    assert len(got) == 20
    assert {r.value for r in got} == {b"ok"}


async def test_produce_batch_counts_records_the_broker_never_acknowledged() -> None:
    # Nothing listens on port 1: every record fails through its delivery callback.
    dead = KafkaSettings(bootstrap_servers="127.0.0.1:1", delivery_timeout_ms=1000)
    async with AsyncProducer(dead) as producer:
        with pytest.raises(DeliveryError) as info:
            await producer.produce_batch(OutRecord("t", f"k{i}", b"v") for i in range(3))
    assert info.value.context["failed"] == 3


# ----------------------------------------------------------------- rebalance / supervision


async def test_revoke_handler_can_commit_while_leaving_the_group(
    bus: KafkaSettings, topics: Topics
) -> None:
    topic, group = topics.commands.name, _group()
    async with AsyncProducer(bus) as producer:
        await producer.produce_many(OutRecord(topic, f"k{i}", b"v") for i in range(12))
    seen: list[Record] = []
    revoked: list[list[Partition]] = []

    async def on_revoke(parts: list[Partition]) -> None:
        # The executor flushes and commits here before the partitions move: must not deadlock.
        revoked.append(parts)
        await consumer.commit(seen)

    consumer = AsyncConsumer(bus, group, on_revoke=on_revoke)
    async with consumer:
        await consumer.subscribe([topic])
        seen += await _read(consumer, 12)
    assert sorted(revoked[0]) == [(topic, p) for p in range(PARTITIONS)]
    committed = await BusAdmin(bus).committed_offsets(group)
    assert sum(committed.values()) == 12


async def test_a_failing_assign_handler_surfaces_from_consume(
    bus: KafkaSettings, topics: Topics
) -> None:
    async def on_assign(parts: list[Partition]) -> None:
        raise RuntimeError("state restore failed")

    async with AsyncConsumer(bus, _group(), on_assign=on_assign) as consumer:
        await consumer.subscribe([topics.commands.name])
        with pytest.raises(BusError, match=r"on_assign handler .*state restore failed"):
            await _consume_until_error(consumer)


async def test_a_crashed_consume_loop_surfaces_and_does_not_commit(
    bus: KafkaSettings, topics: Topics
) -> None:
    topic, group = topics.events.name, _group()
    async with AsyncProducer(bus) as producer:
        await producer.produce(topic, "exec-1", b"poison")
    crashes: list[tuple[str, BaseException]] = []

    async def handle(records: list[Record]) -> None:
        raise ValueError(f"cannot handle {records[0].value!r}")

    async with AsyncConsumer(bus, group) as consumer:
        await consumer.subscribe([topic])
        task = Supervised(
            "events-loop",
            consume_forever(consumer, handle, poll_timeout_s=0.2),
            on_crash=lambda name, exc: crashes.append((name, exc)),
        )
        with pytest.raises(ValueError, match="cannot handle b'poison'"):
            async with asyncio.timeout(ARRIVAL_S):
                await task.wait()
    assert not task.healthy
    assert not task.running
    assert [name for name, _ in crashes] == ["events-loop"]
    assert await BusAdmin(bus).committed_offsets(group) == {}


async def test_consume_forever_commits_handled_batches_and_stops_on_request(
    bus: KafkaSettings, topics: Topics
) -> None:
    topic, group = topics.events.name, _group()
    async with AsyncProducer(bus) as producer:
        await producer.produce_many(OutRecord(topic, f"k{i}", b"v") for i in range(20))
    handled: list[Record] = []
    stop = asyncio.Event()

    async def handle(records: list[Record]) -> None:
        handled.extend(records)
        if len(handled) >= 20:
            stop.set()

    async with AsyncConsumer(bus, group) as consumer:
        await consumer.subscribe([topic])
        task = Supervised("loop", consume_forever(consumer, handle, poll_timeout_s=0.2, stop=stop))
        async with asyncio.timeout(ARRIVAL_S):
            await task.wait()
    assert task.healthy
    assert sum((await BusAdmin(bus).committed_offsets(group)).values()) == 20


async def test_a_second_member_takes_partitions_after_the_first_commits_on_revoke(
    bus: KafkaSettings, topics: Topics
) -> None:
    topic, group = topics.commands.name, _group()
    async with AsyncProducer(bus) as producer:
        await producer.produce_many(OutRecord(topic, f"k{i}", b"v") for i in range(12))
    seen: list[Record] = []
    revokes: list[list[Partition]] = []

    async def on_revoke(parts: list[Partition]) -> None:
        revokes.append(parts)
        await first.commit(seen)  # runs inside first.consume(), on the consumer thread

    first = AsyncConsumer(bus, group, on_revoke=on_revoke)
    second = AsyncConsumer(bus, group)
    async with first, second:
        await first.subscribe([topic])
        seen += await _read(first, 12)
        await second.subscribe([topic])
        after: list[Record] = []
        async with asyncio.timeout(ARRIVAL_S):
            # Both must keep polling for the group to rebalance.
            while not (revokes and second.assigned):
                got = await asyncio.gather(first.consume(10, 0.2), second.consume(10, 0.2))
                after += got[0] + got[1]
        after += await _quiet(second)
        assert first.assigned | second.assigned == {(topic, p) for p in range(PARTITIONS)}
        assert not first.assigned & second.assigned
    assert sorted(revokes[0]) == [(topic, p) for p in range(PARTITIONS)]
    assert after == []  # the revoke commit made the new owner start after what was seen


# ---------------------------------------------------------------------------------- doze


async def test_a_dozing_consumer_loses_and_repeats_nothing(
    bus: KafkaSettings, topics: Topics
) -> None:
    """Quiet spells make the consumer doze (paused partitions between listening windows);
    records sent in bursts around them all arrive once, in order per partition."""
    sleepy = bus.model_copy(update={"doze_after_s": 0.2, "doze_period_ms": 60})
    bursts, per_burst = 6, 25
    async with AsyncConsumer(sleepy, _group()) as consumer, AsyncProducer(bus) as producer:
        await consumer.subscribe([topics.jobs.name])
        await producer.produce(topics.jobs.name, b"k-first", b"first")
        got = await _read(consumer, 1)
        dozed = 0
        for burst in range(bursts):
            # Quiet long enough to doze, then a burst over every partition.
            async with asyncio.timeout(ARRIVAL_S):
                while not consumer.dozing:
                    got += await consumer.consume(500, 0.1)
            dozed += 1
            await producer.produce_many(
                OutRecord(topics.jobs.name, f"k{i}".encode(), f"{burst}:{i}".encode())
                for i in range(per_burst)
            )
            got += await _read(consumer, per_burst)
            assert not consumer.dozing  # records woke it up
        got += await _quiet(consumer)
    values = [r.value for r in got]
    assert len(values) == len(set(values)) == 1 + bursts * per_burst
    assert dozed == bursts
    for partition in {r.partition for r in got}:
        offsets = [r.offset for r in got if r.partition == partition]
        assert offsets == sorted(offsets)


async def _doze_off(consumer: AsyncConsumer, bus: KafkaSettings, topic: str) -> list[Record]:
    """Consume until the consumer dozes on `topic` (registered for a nudge); what came."""
    got: list[Record] = []
    async with asyncio.timeout(ARRIVAL_S):
        while (bus.bootstrap_servers, topic) not in NUDGES.topics:
            got += await consumer.consume(500, 0.1)
    return got


_HOURLY = {"doze_after_s": 0.2, "doze_period_ms": 60, "nudged_doze_period_ms": 3_600_000}


async def test_a_producer_of_this_process_wakes_a_dozing_consumer_of_its_topic(
    bus: KafkaSettings, topics: Topics
) -> None:
    """With nudges (engine.bus.nudge) a consumer of Headwater's own topics may listen only
    once an hour: a record written by this process's producer is read at once anyway."""
    hourly = bus.model_copy(update=_HOURLY)
    async with AsyncConsumer(hourly, _group()) as consumer, AsyncProducer(bus) as producer:
        await consumer.subscribe([topics.jobs.name])
        await producer.produce(topics.jobs.name, b"k", b"first")
        got = await _read(consumer, 1)
        got += await _doze_off(consumer, bus, topics.jobs.name)
        assert await _quiet(consumer) == []  # no listening window within the hour
        await producer.produce(topics.jobs.name, b"k", b"second")
        got += await _read(consumer, 1)
    assert [r.value for r in got] == [b"first", b"second"]
    assert (bus.bootstrap_servers, topics.jobs.name) not in NUDGES.topics


async def test_a_dozing_consume_with_until_waits_for_a_nudge_or_until_not_its_timeout(
    bus: KafkaSettings, topics: Topics
) -> None:
    """Given `until`, a dozing consumer's consume() does not return empty every `timeout_s`
    (an idle process's loops would spin): it returns on a nudge with the record, or empty
    once `until` is set."""
    hourly = bus.model_copy(update=_HOURLY)
    async with AsyncConsumer(hourly, _group()) as consumer, AsyncProducer(bus) as producer:
        await consumer.subscribe([topics.jobs.name])
        await producer.produce(topics.jobs.name, b"k", b"first")
        got = await _read(consumer, 1)
        got += await _doze_off(consumer, bus, topics.jobs.name)
        until = asyncio.Event()
        waiting = asyncio.create_task(consumer.consume(500, 0.05, until=until))
        await asyncio.sleep(1.0)  # 20 of its timeouts
        assert not waiting.done()
        await producer.produce(topics.jobs.name, b"k", b"second")
        async with asyncio.timeout(ARRIVAL_S):
            got += await waiting
            while len(got) < 2:
                got += await consumer.consume(500, 0.5)
        assert [r.value for r in got] == [b"first", b"second"]
        assert await _doze_off(consumer, bus, topics.jobs.name) == []  # dozing again
        waiting = asyncio.create_task(consumer.consume(500, 0.05, until=until))
        await asyncio.sleep(0.5)
        assert not waiting.done()
        until.set()
        async with asyncio.timeout(ARRIVAL_S):
            assert await waiting == []


async def test_next_served_reads_where_records_are(bus: KafkaSettings, topics: Topics) -> None:
    """The gap probe (engine.bus.gaps) on an intact partition: the start itself is served;
    an empty range has nothing to serve."""
    async with AsyncProducer(bus) as producer:
        for i in range(5):
            await producer.produce(topics.jobs.name, b"same-key", str(i).encode())
    async with AsyncConsumer(bus, _group()) as consumer:
        await consumer.subscribe([topics.jobs.name])
        (first, *_) = await _read(consumer, 5)
    args = (bus.bootstrap_servers, bus.fetch_wait_max_ms, topics.jobs.name, first.partition)
    start = first.offset + 2
    assert await asyncio.to_thread(gaps.next_served, *args, start, start + 3, "g") == start
    assert await asyncio.to_thread(gaps.next_served, *args, start, start, "g") is None
    # The patient read returns the records of the range, in order.
    where = (bus.bootstrap_servers, topics.jobs.name, first.partition)
    read = await asyncio.to_thread(gaps.read_patiently, *where, start, start + 3, "g")
    assert [(m.offset(), m.value()) for m in read] == [
        (start + i, str(2 + i).encode()) for i in range(3)
    ]


async def test_records_a_client_does_not_receive_are_read_patiently(
    bus: KafkaSettings, topics: Topics, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that receives nothing at its position while records wait (simulated: its
    partitions paused behind its back; a durable Tansu does it to short fetches of batches
    it reads back from S3) is found by the stall check, told apart from a gap by a fresh
    consumer, and handed the records read with a patient fetch: every record once, in order,
    and the client sought past them (tests/unit/test_bus_stall.py has the other verdicts)."""
    monkeypatch.setattr(stall_module, "STALL_CHECK_S", 0.3)
    monkeypatch.setattr(stall_module, "STALL_CHECK_GAP_S", 30.0)
    # A paused client's cached watermarks do not move: only a check that asks the broker
    # sees the records (every FRESH_CHECK_S; at 30 s it raced ARRIVAL_S).
    monkeypatch.setattr(stall_module, "FRESH_CHECK_S", 0.3)
    quiet = bus.model_copy(update={"doze_after_s": 0.0})
    async with AsyncConsumer(quiet, _group()) as consumer:
        await consumer.subscribe([topics.jobs.name])
        async with AsyncProducer(bus) as producer:
            await producer.produce(topics.jobs.name, b"k", b"first")
            got = await _read(consumer, 1)
            client = consumer._client()
            await asyncio.to_thread(client.pause, client.assignment())
            await producer.produce_many(
                OutRecord(topics.jobs.name, b"k", str(i).encode()) for i in range(20)
            )
            got += await _read(consumer, 20)
            assert consumer._client() is client  # no new client, no rebalance
            # The client was sought past them: fetching again, it reads only what follows.
            await asyncio.to_thread(client.resume, client.assignment())
            await producer.produce(topics.jobs.name, b"k", b"after")
            got += await _read(consumer, 1)
            got += await _quiet(consumer)
    values = [r.value for r in got]
    assert values == [b"first"] + [str(i).encode() for i in range(20)] + [b"after"]
