"""Publishing tasks: Kafka ``Produce``, MQTT ``Publish``, AMQP ``Publish``.

Each sends ``from`` (one message, a list of messages, or a JSON string of either) and returns
``messagesCount`` only once the broker acknowledged every message: Kafka acks, MQTT PUBACK at
QoS 1, AMQP publisher confirms. A message the broker refused fails the run (retriable by the
task's ``retry``). Properties follow Kestra's kafka, mqtt and amqp plugins.

Blocking clients (confluent-kafka, paho) run in a thread; aio-pika is native asyncio. Client
errors are converted here into a TaskError that names the broker and what to check.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aio_pika
import orjson
from confluent_kafka import KafkaException, Producer
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from executors.amqp_client import amqp_target
from executors.amqp_client import close_quietly as amqp_close
from executors.amqp_client import outgoing as amqp_message
from executors.amqp_client import serde as amqp_serde
from executors.base import TaskContext, TaskError, TaskOutcome, as_bool, to_text
from executors.data import read_from
from executors.kafka_client import client_config, serde_type
from executors.kafka_client import serialize as kafka_serialize
from executors.mqtt_client import MqttSettings, decode_correlation, mqtt_settings
from executors.mqtt_client import close as mqtt_close
from executors.mqtt_client import connect as mqtt_connect

# How long a publish may wait for the broker's acknowledgements of all its messages: longer
# than a leader election or a broker restart, short enough to fail a dead broker visibly.
PUBLISH_TIMEOUT_S = 30.0


def serialize(value: Any, serde: str) -> bytes | None:
    """A message value as bytes for the serde type (STRING, JSON, BYTES as base64 text)."""
    kind = serde.upper()
    if value is None:
        return None
    if kind == "JSON":
        return orjson.dumps(value)
    if kind == "STRING":
        return to_text(value).encode()
    if kind in ("BYTE_ARRAY", "BYTES"):
        try:
            return base64.b64decode(to_text(value), validate=True)
        except ValueError as exc:
            raise TaskError("a BYTES value must be base64 text") from exc
    raise TaskError(f"serde type {serde!r} is not supported: use STRING, JSON or BYTES")


# ---------------------------------------------------------------------------------- Kafka


class KafkaProduceTask:
    """io.kestra.plugin.kafka.Produce.

    ``properties`` are Kafka client settings (see :mod:`executors.kafka_client`; without
    ``bootstrap.servers``: the worker's own bus, with its TLS/SASL settings), ``topic`` the
    default topic, ``keySerializer``/``valueSerializer`` one of Kestra's serde types (STRING by
    default; AVRO and PROTOBUF need a schema registry and are refused). ``from`` is Kestra's
    ``Data.from`` (:mod:`executors.data`): a map, a list, JSON text or a ``kestra://`` ION file
    such as a Consume's ``uri``. A row is ``{key, value, topic, partition, timestamp,
    headers}``: ``timestamp`` epoch milliseconds or an ISO-8601 date-time, ``headers`` a map or
    the list of one-entry maps a Consume writes. A row that has none of those names, or a bare
    value, is taken as the value (Kestra sends a null value for such a map, and fails on a bare
    value). Rows read from a file are not rendered again. Kestra's ``transactional`` (true by
    default) is accepted, but the producer is idempotent rather than transactional: brokers like
    Tansu do not honour transactions (SERVICES.md).
    """

    def __init__(self, default_cluster: Mapping[str, str] | None = None) -> None:
        """``default_cluster``: the bus's client config (``KafkaSettings.client_config()``,
        with its TLS/SASL settings)."""
        self.default_config = dict(default_cluster or {})

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        config = client_config(ctx, task.get("properties"))
        if "bootstrap.servers" not in config:
            if not self.default_config:
                raise TaskError("properties.bootstrap.servers is required")
            # The bus: its connection and security settings, under what the task gives.
            config = self.default_config | config
        config.setdefault("enable.idempotence", "true")
        config.setdefault("message.timeout.ms", str(int(PUBLISH_TIMEOUT_S * 1000)))
        topic = ctx.render_str(task.get("topic"))
        key_serde = serde_type(ctx.render_str(task.get("keySerializer")), "keySerializer")
        value_serde = serde_type(ctx.render_str(task.get("valueSerializer")), "valueSerializer")
        rows = await read_from(ctx, task.get("from"), lenient=True)

        def build() -> list[dict[str, Any]]:
            return [kafka_record(row, topic, key_serde, value_serde) for row in rows]

        records = await asyncio.to_thread(build)
        count = await asyncio.to_thread(_produce_all, config, records)
        return TaskOutcome(
            state="SUCCESS", outputs={"messagesCount": count}, metrics={"records": count}
        )


_RECORD_FIELDS = frozenset({"key", "value", "topic", "partition", "timestamp", "headers"})


def kafka_record(item: Any, topic: str | None, key_serde: str, value_serde: str) -> dict[str, Any]:
    """The confluent-kafka ``produce`` arguments of one ``from`` row."""
    is_record = isinstance(item, Mapping) and not _RECORD_FIELDS.isdisjoint(item)
    message: Mapping[str, Any] = item if is_record else {"value": item}
    target = to_text(message.get("topic")) if message.get("topic") else topic
    if not target:
        raise TaskError("no topic: set 'topic' on the task or on each message")
    record: dict[str, Any] = {
        "topic": target,
        "key": kafka_serialize(message.get("key"), key_serde, "key"),
        "value": kafka_serialize(message.get("value"), value_serde, "value"),
        "headers": _kafka_headers(message.get("headers")),
    }
    if message.get("partition") is not None:
        try:
            record["partition"] = int(message["partition"])
        except (TypeError, ValueError):
            raise TaskError(f"partition {message['partition']!r} is not a number") from None
    if message.get("timestamp") is not None:
        record["timestamp"] = _epoch_ms(message["timestamp"])
    return record


def _kafka_headers(headers: Any) -> list[tuple[str, bytes | None]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        pairs = list(headers.items())
    elif isinstance(headers, list) and all(isinstance(h, Mapping) for h in headers):
        # A Consume's headers: one single-entry map per header, in order.
        pairs = [pair for h in headers for pair in h.items()]
    else:
        raise TaskError(f"headers must be a map or a list of one-entry maps, got {headers!r}")
    return [(str(k), None if v is None else to_text(v).encode()) for k, v in pairs]


def _epoch_ms(value: Any) -> int:
    if isinstance(value, bool):
        raise TaskError(f"timestamp {value!r} is neither epoch milliseconds nor a date-time")
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    text = to_text(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise TaskError(
            f"timestamp {value!r} is neither epoch milliseconds nor an ISO-8601 date-time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _produce_all(config: dict[str, str], records: list[dict[str, Any]]) -> int:
    errors: list[str] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(f"{msg.topic()}: {err}")

    try:
        producer = Producer(config)
        for record in records:
            producer.produce(on_delivery=delivered, **record)
            producer.poll(0)
        remaining = producer.flush(PUBLISH_TIMEOUT_S)
    except (KafkaException, BufferError, TypeError, ValueError) as exc:
        raise TaskError(f"Kafka produce to {config['bootstrap.servers']} failed: {exc}") from exc
    if remaining or errors:
        detail = errors[0] if errors else f"{remaining} not acknowledged in {PUBLISH_TIMEOUT_S} s"
        raise TaskError(
            f"Kafka produce to {config['bootstrap.servers']} failed for "
            f"{len(errors) or remaining} of {len(records)} messages: {detail}"
        )
    return len(records)


# ----------------------------------------------------------------------------------- MQTT


class MqttPublishTask:
    """io.kestra.plugin.mqtt.Publish: the connection of :mod:`executors.mqtt_client` (``server``,
    ``clientId``, ``mqttVersion`` V5 by default as in Kestra, TLS, credentials), ``topic``,
    ``from``, ``qos`` (1), ``retain`` (false), ``serdeType`` (JSON; STRING; BYTES as base64
    text), and the MQTT 5 request/response properties ``responseTopic`` and ``correlationData``
    (base64; both ignored over MQTT 3.1.1, which has no message properties). ``from``: with
    STRING, as Kestra, a list is one message per item and anything else one message of its
    text (a ``kestra://`` URI included); with JSON, Kestra's ``Data.from`` (a map, a list, an
    ION file, or JSON text), a bare value being one message. Each message waits for the
    broker's acknowledgement (QoS 1 and 2)."""

    def __init__(self, default_server: str | None = None) -> None:
        self.default_server = default_server

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        settings = await mqtt_settings(ctx, task, default_server=self.default_server)
        topic = ctx.render_str(task.get("topic"))
        if not topic:
            raise TaskError("property 'topic' is required")
        qos = int(ctx.render(task.get("qos", 1)))
        if qos not in (0, 1, 2):
            raise TaskError(f"qos must be 0, 1 or 2, got {qos}")
        serde = (ctx.render_str(task.get("serdeType")) or "JSON").upper()
        if serde == "STRING":
            raw = ctx.render(task.get("from"))
            items = raw if isinstance(raw, list) else [raw]
        else:
            items = (await read_from(ctx, task.get("from"), lenient=True)).as_list()
        payloads = [serialize(m, serde) or b"" for m in items]
        correlation = ctx.render_str(task.get("correlationData"))
        options = {
            "topic": topic,
            "qos": qos,
            "retain": as_bool(ctx.render(task.get("retain", False))),
            "response_topic": ctx.render_str(task.get("responseTopic")),
            "correlation": None if correlation is None else decode_correlation(correlation),
        }
        count = await asyncio.to_thread(_mqtt_publish, settings, options, payloads)
        return TaskOutcome(state="SUCCESS", outputs={"messagesCount": count})


def _mqtt_publish(s: MqttSettings, o: dict[str, Any], payloads: list[bytes]) -> int:
    properties = None
    if s.v5 and (o["response_topic"] is not None or o["correlation"] is not None):
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        if o["response_topic"] is not None:
            properties.ResponseTopic = o["response_topic"]
        if o["correlation"] is not None:
            properties.CorrelationData = o["correlation"]
    client = mqtt_connect(s)
    try:
        infos = [
            client.publish(o["topic"], p, qos=o["qos"], retain=o["retain"], properties=properties)
            for p in payloads
        ]
        for info in infos:
            info.wait_for_publish(timeout=PUBLISH_TIMEOUT_S)
            if not info.is_published():
                raise TaskError(
                    f"MQTT broker {s.where} did not acknowledge a message on "
                    f"{o['topic']} within {PUBLISH_TIMEOUT_S} s (rc {info.rc})"
                )
    except (OSError, ValueError, RuntimeError) as exc:
        raise TaskError(f"MQTT publish to {s.where} failed: {exc}") from exc
    finally:
        mqtt_close(client)
    return len(payloads)


# ----------------------------------------------------------------------------------- AMQP


class AmqpPublishTask:
    """io.kestra.plugin.amqp.Publish: the connection of :mod:`executors.amqp_client` (``host``
    ..., or ``url``), ``exchange`` ("" = the default exchange), ``routingKey`` (""),
    ``serdeType`` (STRING, as Kestra; JSON), ``from`` (Kestra's ``Data.from``: Message maps
    ``{data, headers, contentType, contentEncoding, deliveryMode, priority, correlationId,
    replyTo, expiration, messageId, timestamp, type, userId, appId}`` (a Consume's file too),
    or bare values taken as ``data``). Headwater's additions: ``queue`` (the default exchange
    routes to that queue) and publisher confirms (a message the broker refuses fails the run);
    a message without ``deliveryMode`` is persistent (2; Kestra leaves it unset: transient)."""

    def __init__(self, default_url: str | None = None) -> None:
        self.default_url = default_url

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        target = amqp_target(ctx, task, self.default_url)
        exchange_name = ctx.render_str(task.get("exchange")) or ""
        queue = ctx.render_str(task.get("queue"))
        routing_key = ctx.render_str(task.get("routingKey")) or queue or ""
        kind = amqp_serde(ctx.render_str(task.get("serdeType")))
        rows = await read_from(ctx, task.get("from"), lenient=True)
        persistent = aio_pika.DeliveryMode.PERSISTENT.value
        outgoing = [
            amqp_message(row, kind, persistent) for row in await asyncio.to_thread(rows.as_list)
        ]
        connection = await target.connect()
        try:
            channel = await connection.channel(publisher_confirms=True)
            if exchange_name:
                exchange = await channel.get_exchange(exchange_name, ensure=True)
            else:
                exchange = channel.default_exchange
            for message in outgoing:
                await exchange.publish(message, routing_key=routing_key, timeout=PUBLISH_TIMEOUT_S)
        except (aio_pika.exceptions.AMQPError, OSError, TimeoutError) as exc:
            raise TaskError(
                f"AMQP publish to {target.where} (exchange {exchange_name!r}, routing key "
                f"{routing_key!r}) failed: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            await amqp_close(connection)
        return TaskOutcome(state="SUCCESS", outputs={"messagesCount": len(outgoing)})
