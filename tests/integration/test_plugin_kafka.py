"""kafka.Consume (and Produce from its file) against the real broker (Tansu, deploy/local)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from engine.bus import BusAdmin
from engine.bus.admin import NewTopicSpec
from engine.settings import Settings
from executors.registry import Registry, add_plugins
from tests.integration.messaging import make_ctx, run, stored_rows, unique

pytestmark = pytest.mark.kafka

# Records produced by a test are acknowledged within this time by a live local broker.
ACK_TIMEOUT_S = 20.0
FAST = {"pollDuration": "PT1S"}  # an empty poll ends a run: keep it short in tests


async def make_topic(settings: Settings, partitions: int = 1) -> str:
    topic = unique("hw-consume")
    await BusAdmin(settings.kafka).create_topics([NewTopicSpec(topic, partitions, 1, {})])
    return topic


def produce(bootstrap: str, topic: str, records: list[dict[str, Any]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for record in records:
        producer.produce(topic, **record)
    assert producer.flush(ACK_TIMEOUT_S) == 0


def consume_task(bootstrap: str, **props: Any) -> dict[str, Any]:
    return {
        "id": "consume",
        "type": "io.kestra.plugin.kafka.Consume",
        "properties": {"bootstrap.servers": bootstrap},
        **FAST,
        **props,
    }


async def test_consume_writes_kestra_messages_and_produce_reads_them_back(
    settings: Settings, tmp_path: Path
) -> None:
    bootstrap = settings.kafka.bootstrap_servers
    topic = await make_topic(settings)
    produce(bootstrap, topic, [
        {"key": b"k1", "value": b'{"n": 1}', "headers": [("h", b"a"), ("h", b"b")]},
        {"key": None, "value": b'[1, 2]', "timestamp": 1_700_000_000_123},
    ])  # fmt: skip
    outcome = await run(tmp_path, consume_task(bootstrap, topic=topic, valueDeserializer="JSON"))
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs["messagesCount"] == 2
    rows = stored_rows(tmp_path, outcome.outputs["uri"])
    assert [list(r) for r in rows] == [
        ["key", "value", "topic", "headers", "partition", "timestamp", "offset"]
    ] * 2
    first, second = rows
    assert (first["key"], first["value"], first["topic"]) == ("k1", {"n": 1}, topic)
    assert first["headers"] == [{"h": "a"}, {"h": "b"}]
    assert (first["partition"], first["offset"], second["offset"]) == (0, 0, 1)
    assert isinstance(first["timestamp"], datetime)
    assert (second["key"], second["value"], second["headers"]) == (None, [1, 2], [])
    assert second["timestamp"] == datetime.fromisoformat("2023-11-14T22:13:20.123+00:00")

    # Each row names its topic and partition: producing the file sends the records back there.
    produced = await run(tmp_path, {
        "id": "produce", "type": "io.kestra.plugin.kafka.Produce", "topic": "unused",
        "properties": {"bootstrap.servers": bootstrap}, "valueSerializer": "JSON",
        "from": outcome.outputs["uri"],
    })  # fmt: skip
    assert produced.state == "SUCCESS", produced.error
    assert produced.outputs == {"messagesCount": 2}
    again = await run(tmp_path, consume_task(bootstrap, topic=topic, valueDeserializer="JSON"))
    assert again.state == "SUCCESS", again.error
    copied = stored_rows(tmp_path, again.outputs["uri"])[2:]
    assert [(r["key"], r["value"], r["headers"]) for r in copied] == [
        ("k1", {"n": 1}, [{"h": "a"}, {"h": "b"}]),
        (None, [1, 2], []),
    ]
    assert copied[1]["timestamp"] == second["timestamp"]  # the row's timestamp was sent


async def test_a_group_commits_only_what_reached_storage(
    settings: Settings, tmp_path: Path
) -> None:
    bootstrap = settings.kafka.bootstrap_servers
    topic = await make_topic(settings, partitions=2)
    produce(bootstrap, topic, [{"value": f"v{i}".encode(), "partition": i % 2} for i in range(5)])
    group = unique("hw-group")
    task = consume_task(
        bootstrap,
        topic=[topic],
        groupId=group,
        maxRecords=3,
        properties={"bootstrap.servers": bootstrap, "auto.offset.reset": "earliest"},
    )
    ctx = make_ctx(tmp_path, task)
    ctx.storage = None  # the file cannot be stored: nothing may be committed
    lost = await add_plugins(Registry()).run(task, ctx)
    assert lost.state == "FAILED"
    assert "internal storage" in (lost.error or "")

    first = await run(tmp_path, task)
    assert first.state == "SUCCESS", first.error
    assert first.outputs["messagesCount"] == 3  # maxRecords is exact
    second = await run(tmp_path, task)
    assert second.state == "SUCCESS", second.error
    assert second.outputs["messagesCount"] == 2
    values = [r["value"] for o in (first, second) for r in stored_rows(tmp_path, o.outputs["uri"])]
    assert sorted(values) == [f"v{i}" for i in range(5)]
    third = await run(tmp_path, task)
    assert third.state == "SUCCESS", third.error
    assert third.outputs["messagesCount"] == 0
    assert stored_rows(tmp_path, third.outputs["uri"]) == []


async def test_header_filters_partitions_since_and_serde_errors(
    settings: Settings, tmp_path: Path
) -> None:
    bootstrap = settings.kafka.bootstrap_servers
    topic = await make_topic(settings, partitions=2)
    produce(bootstrap, topic, [
        {"value": b'{"ok": 1}', "partition": 0, "headers": [("type", b"order")],
         "timestamp": 1_000},
        {"value": b"not json", "partition": 0, "headers": [("type", b"order")],
         "timestamp": 2_000},
        {"value": b'{"ok": 2}', "partition": 0, "headers": [("type", b"other")],
         "timestamp": 3_000},
        {"value": b'{"ok": 3}', "partition": 1, "headers": [("type", b"order")],
         "timestamp": 4_000},
    ])  # fmt: skip
    base = {"topic": topic, "valueDeserializer": "JSON", "headerFilters": {"type": "order"}}
    failed = await run(tmp_path, consume_task(bootstrap, **base))
    assert failed.state == "FAILED"
    assert f"record {topic}[0]@1: cannot read 8 bytes as JSON" in (failed.error or "")

    skipped = await run(tmp_path, consume_task(
        bootstrap, **base, onSerdeError={"type": "SKIPPED"}, partitions=[0]
    ))  # fmt: skip
    assert skipped.state == "SUCCESS", skipped.error
    assert [r["value"] for r in stored_rows(tmp_path, skipped.outputs["uri"])] == [{"ok": 1}]

    stored = await run(tmp_path, consume_task(bootstrap, **base, onSerdeError={"type": "STORE"}))
    values = sorted(orjson.dumps(r["value"]) for r in stored_rows(tmp_path, stored.outputs["uri"]))
    assert values == [b'"not json"', b'{"ok":1}', b'{"ok":3}']

    since = await run(tmp_path, consume_task(
        bootstrap, topic=topic, since="1970-01-01T00:00:03.500Z", partitions=[1]
    ))  # fmt: skip
    assert [r["value"] for r in stored_rows(tmp_path, since.outputs["uri"])] == ['{"ok": 3}']


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({}, "You must configure one of the following two settings: `topic` or `topicPattern`"),
        ({"topic": "a", "topicPattern": "a.*"}, "Both `topic` and `topicPattern` was configured"),
        ({"topicPattern": "a.*"}, "`groupId` cannot be null when `topicPattern` is configured"),
        ({"topic": "a", "valueDeserializer": "AVRO"}, "AVRO needs a schema registry"),
        ({"topic": "a", "keyDeserializer": "TEXT"}, "'TEXT' is not one of STRING"),
        ({"topic": "a", "groupType": "SHARE"}, "groupType SHARE"),
    ],
)
async def test_configuration_mistakes_fail_naming_the_property(
    settings: Settings, tmp_path: Path, props: dict[str, Any], message: str
) -> None:
    outcome = await run(tmp_path, consume_task(settings.kafka.bootstrap_servers, **props))
    assert outcome.state == "FAILED"
    assert message in (outcome.error or "")


async def test_a_missing_topic_fails_naming_it(settings: Settings, tmp_path: Path) -> None:
    missing = unique("hw-missing")
    outcome = await run(tmp_path, consume_task(settings.kafka.bootstrap_servers, topic=missing))
    assert outcome.state == "FAILED"
    assert f"Kafka topic '{missing}' does not exist" in (outcome.error or "")


async def test_produce_reads_rows_as_kestra_does(settings: Settings, tmp_path: Path) -> None:
    bootstrap = settings.kafka.bootstrap_servers
    topic = await make_topic(settings)
    produced = await run(tmp_path, {
        "id": "produce", "type": "io.kestra.plugin.kafka.Produce", "topic": topic,
        "properties": {"bootstrap.servers": bootstrap},
        "keySerializer": "LONG", "valueSerializer": "STRING",
        "from": '[{"key": 7, "value": "hello", "timestamp": "2024-01-02T03:04:05.006Z",'
                ' "headers": {"x": "1"}}, {"key": 8}]',
    })  # fmt: skip
    assert produced.state == "SUCCESS", produced.error
    got = await run(tmp_path, consume_task(bootstrap, topic=topic, keyDeserializer="LONG"))
    rows = stored_rows(tmp_path, got.outputs["uri"])
    assert [(r["key"], r["value"], r["headers"]) for r in rows] == [
        (7, "hello", [{"x": "1"}]),
        (8, None, []),  # a row with a key and no value is a tombstone, as in Kestra
    ]
    assert rows[0]["timestamp"] == datetime.fromisoformat("2024-01-02T03:04:05.006+00:00")
    bad = await run(tmp_path, {
        "id": "produce", "type": "io.kestra.plugin.kafka.Produce", "topic": topic,
        "properties": {"bootstrap.servers": bootstrap}, "keySerializer": "INTEGER",
        "from": {"key": "seven", "value": "x"},
    })  # fmt: skip
    assert bad.state == "FAILED"
    assert "key: cannot serialize 'seven' as INTEGER" in (bad.error or "")
