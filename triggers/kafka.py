"""Kafka realtime trigger: one execution per record of a user topic.

Config: ``topic`` (one or a list) or ``topicPattern``; ``properties`` (``bootstrap.servers``
and librdkafka client settings; Java-only keys such as ``key.deserializer`` are ignored);
``groupId`` (default ``headwater-{namespace}-{flow}-{trigger}``); ``keyDeserializer`` and
``valueDeserializer``: STRING (default), JSON, BYTES (base64 text), INTEGER, LONG, DOUBLE.

Parser: a record -> ``trigger.key``, ``trigger.value``, ``trigger.topic``,
``trigger.partition``, ``trigger.offset``, ``trigger.timestamp`` (ISO-8601) and
``trigger.headers`` (list of ``{key, value}``), as Kestra's Kafka trigger. The execution id
derives from (topic, partition, group, offset).

Source: a consumer-group member that consumes at most ``max_in_flight`` records, fires them,
waits until every StartExecution is durable, then commits the batch's offsets. A crash before
the commit redelivers the batch; its ids are the same, so nothing runs twice. A topic that
does not exist yet is waited for: the trigger's state says "waiting for topic ...", one
WARNING is logged then DEBUG lines with the next check (back-off from TOPIC_RETRY_FIRST_S to
TOPIC_RETRY_MAX_S), and the state clears once the topic is there.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import struct
from datetime import UTC, datetime
from typing import Any

import orjson

from engine.bus.config import foreign_cluster, from_java_properties
from engine.bus.consumer import AsyncConsumer, Record
from engine.errors import BusError, ConfigError
from engine.reducer.ids import iso
from engine.settings import KafkaSettings
from schemas.flow.triggers import KafkaTrigger
from triggers.ids import kafka_coordinates
from triggers.model import SourceContext, settle
from triggers.payloads import MalformedPayload as MalformedPayload  # re-exported
from triggers.payloads import loads_json

log = logging.getLogger(__name__)

JSON = dict[str, Any]

DESERIALIZERS = ("STRING", "JSON", "BYTES", "INTEGER", "LONG", "DOUBLE")
_UNKNOWN_TOPIC = "UNKNOWN_TOPIC_OR_PART"
# Checks for a topic that does not exist yet: soon at first (a user about to publish), then
# every half minute at most (a trigger deployed long before its topic costs nothing).
TOPIC_RETRY_FIRST_S = 1.0
TOPIC_RETRY_MAX_S = 30.0
# Java client settings Kestra users copy along; librdkafka would refuse them.
_JAVA_ONLY = frozenset({"key.deserializer", "value.deserializer", "bootstrap.servers"})


def deserialize(data: bytes | None, kind: str) -> Any:
    if data is None:
        return None
    try:
        if kind == "STRING":
            return data.decode("utf-8")
        if kind == "JSON":
            return loads_json(data, f"{len(data)} bytes of JSON")
        if kind == "BYTES":
            return base64.b64encode(data).decode("ascii")
        if kind == "INTEGER":
            return int(struct.unpack(">i", data)[0])
        if kind == "LONG":
            return int(struct.unpack(">q", data)[0])
        if kind == "DOUBLE":
            return float(struct.unpack(">d", data)[0])
    except (UnicodeDecodeError, orjson.JSONDecodeError, struct.error) as exc:
        raise MalformedPayload(f"cannot read {len(data)} bytes as {kind}: {exc}") from None
    raise ConfigError(f"unknown deserializer {kind!r}; use one of {', '.join(DESERIALIZERS)}")


def _timestamp(ms: int) -> str | None:
    if ms < 0:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _headers(headers: list[tuple[str, bytes | None]] | None) -> list[JSON]:
    return [
        {"key": k, "value": None if v is None else v.decode("utf-8", "replace")}
        for k, v in headers or []
    ]


def parse(record: Record, key_kind: str, value_kind: str) -> JSON:
    """The trigger variables of one record; MalformedPayload if it cannot be decoded."""
    return {
        "key": deserialize(record.key, key_kind),
        "value": deserialize(record.value, value_kind),
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": _timestamp(record.timestamp_ms),
        "headers": _headers(record.headers),
    }


def raw(record: Record) -> JSON:
    """What a malformed record becomes under the "raw" policy: the bytes as text."""

    def text(b: bytes | None) -> str | None:
        return None if b is None else b.decode("utf-8", "replace")

    return {
        "key": text(record.key),
        "value": text(record.value),
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": _timestamp(record.timestamp_ms),
        "headers": _headers(record.headers),
    }


class KafkaConfig:
    def __init__(self, model: KafkaTrigger, ctx: SourceContext, base: KafkaSettings) -> None:
        props = {str(k): str(v) for k, v in (model.properties or {}).items()}
        bootstrap = props.get("bootstrap.servers")
        if not bootstrap:
            raise ConfigError("Kafka trigger needs properties.bootstrap.servers")
        # The user's cluster: the bus's tuning, never its credentials; the user's own
        # security.protocol / sasl.* / ssl.* properties (Java's sasl.jaas.config too) apply.
        self.settings = foreign_cluster(base, bootstrap)
        props = from_java_properties(props)
        self.overrides: dict[str, Any] = {k: v for k, v in props.items() if k not in _JAVA_ONLY}
        if isinstance(model.topic, list):
            self.topics = [str(t) for t in model.topic]
        elif model.topic:
            self.topics = [str(model.topic)]
        elif model.topicPattern:
            pattern = str(model.topicPattern)
            self.topics = [pattern if pattern.startswith("^") else "^" + pattern]
        else:
            raise ConfigError("Kafka trigger needs `topic` or `topicPattern`")
        ref = ctx.ref
        self.group_id = str(
            model.groupId or f"headwater-{ref.namespace}-{ref.flow_id}-{ref.trigger_id}"
        )
        self.key_kind = str(model.keyDeserializer or "STRING").upper()
        self.value_kind = str(model.valueDeserializer or "STRING").upper()
        for kind in (self.key_kind, self.value_kind):
            if kind not in DESERIALIZERS:
                raise ConfigError(f"unknown deserializer {kind!r}; use one of {DESERIALIZERS}")


class KafkaSource:
    def __init__(self, ctx: SourceContext, base: KafkaSettings) -> None:
        self.ctx = ctx
        self.config = KafkaConfig(ctx.config, ctx, base)

    async def run(self) -> None:
        waits = 0
        while True:
            missing = await self._consume(waiting=waits > 0)
            # A topic that does not exist yet (publishing will create it): wait for it
            # quietly instead of crashing, which the runtime would log as an ERROR on every
            # restart. A fresh consumer each time: librdkafka would otherwise notice the new
            # topic only at its next metadata refresh (minutes).
            delay = min(TOPIC_RETRY_FIRST_S * 2**waits, TOPIC_RETRY_MAX_S)
            waits += 1
            level = logging.WARNING if waits == 1 else logging.DEBUG
            log.log(level, "kafka trigger %s: %s; checking again in %.0f s", self.ctx.ref,
                    missing, delay)  # fmt: skip
            if waits == 1:
                await self.ctx.record(last_error=missing, last_error_at=iso(datetime.now(UTC)))
            await asyncio.sleep(delay)

    async def _consume(self, *, waiting: bool) -> str:
        """Consume until a subscribed topic turns out not to exist; returns what to say."""
        c = self.config
        consumer = AsyncConsumer(c.settings, c.group_id, **c.overrides)
        await consumer.start()
        try:
            await consumer.subscribe(c.topics)
            while True:
                try:
                    records = await consumer.consume(
                        self.ctx.max_in_flight, self.ctx.poll_timeout_s
                    )
                except BusError as exc:
                    if exc.context.get("code") == _UNKNOWN_TOPIC:
                        return f"waiting for topic {', '.join(c.topics)}: it does not exist yet"
                    if not exc.retriable:
                        raise
                    log.warning("kafka trigger %s: %s", self.ctx.ref, exc)
                    continue
                if waiting and consumer.assigned:
                    log.info("kafka trigger %s: topic %s is there", self.ctx.ref, c.topics)
                    await self.ctx.record(last_error=None, last_error_at=iso(datetime.now(UTC)))
                    waiting = False
                if records:
                    await self.handle(records)
                    await consumer.commit(records)
        finally:
            await consumer.close()

    async def handle(self, records: list[Record]) -> None:
        c = self.config
        futures = []
        for r in records:
            coordinates = kafka_coordinates(r.topic, r.partition, c.group_id, r.offset)
            # A record that cannot be decoded, or whose StartExecution cannot be encoded, goes
            # to the malformed policy: raising here would restart the source at the same
            # committed offset and meet the same record again, forever.
            try:
                future: asyncio.Future[Any] | None = await self.ctx.fire(
                    coordinates, parse(r, c.key_kind, c.value_kind)
                )
            except MalformedPayload as exc:
                problem = f"{r.topic}[{r.partition}]@{r.offset}: {exc}"
                future = await self.ctx.malformed(coordinates, raw(r), problem)
            if future is not None:
                futures.append(future)
        await settle(futures)
