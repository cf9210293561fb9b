"""Kestra's amqp tasks beside Publish: ``Consume``, ``CreateQueue``, ``DeclareExchange``,
``QueueBind`` (kestra-io/plugin-amqp), with aio-pika.

Every type takes the connection of :mod:`executors.amqp_client` (``host``, ``port``,
``username``, ``password``, ``virtualHost``, or the deprecated ``url``).

- ``Consume``: ``queue`` (required, must exist), ``serdeType`` (STRING; JSON), ``consumerTag``
  ("Kestra"), ``autoAck`` (false), ``maxRecords``, ``maxDuration`` (at least one:
  "maxDuration or maxRecords must be set to avoid infinite loop"). Each delivery becomes
  Kestra's ``Message`` (:func:`executors.amqp_client.message_row`) in an ION file; it stops at
  ``maxRecords`` messages, after ``maxDuration``, or, as Kestra's ``Await.until(..., 1 min)``,
  after :data:`WAIT_CAP_S` whatever ``maxDuration`` says. A delivery that arrives after the
  stop is given back (nack with requeue), as in Kestra. Outputs ``count`` and ``uri``; metric
  ``consumed.records``. A body that does not deserialize fails the task naming the queue.
- ``CreateQueue``: ``name``, ``durability`` (true), ``exclusive`` (false), ``autoDelete``
  (false), ``args`` (e.g. ``x-message-ttl``); output ``queue``.
- ``DeclareExchange``: ``name``, ``exchangeType`` (DIRECT; FANOUT, TOPIC, HEADERS),
  ``durability`` (true), ``autoDelete`` (false), ``internal`` (false), ``args``; output
  ``exchange``.
- ``QueueBind``: ``exchange``, ``queue``, ``routingKey`` (""), ``args``; outputs ``queue``,
  ``exchange``.

What differs: Consume acknowledges the messages once the file is in internal storage (one
``basic.ack`` with ``multiple``), where Kestra acknowledges each as it is written to its
temporary file, so a run that fails before storing loses nothing here (RabbitMQ redelivers
what was not acknowledged); the prefetch is ``maxRecords`` (at most :data:`PREFETCH`), so the
broker does not push messages the run will give back. Declaring something that exists with
other settings fails with the broker's PRECONDITION_FAILED message, as in Kestra.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, Literal

import aio_pika
import orjson
from aio_pika.abc import AbstractIncomingMessage

from executors.amqp_client import (
    AmqpTarget,
    amqp_target,
    close_quietly,
    describe,
    message_row,
    serde,
)
from executors.base import TaskContext, TaskError, TaskOutcome
from executors.data import IonSink
from executors.plugin import (
    TaskPlugin,
    render_bool,
    render_int,
    render_map,
    render_seconds,
    render_str,
)
from schemas.flow.common import BoolOrExpr, Duration, IntOrExpr, Str

# Kestra's consume thread waits for its stop condition with Await.until(..., 1 minute): a
# Consume never runs longer than this, whatever maxDuration says.
WAIT_CAP_S = 60.0
# Unacknowledged deliveries the broker may push ahead (when maxRecords does not bound it).
PREFETCH = 500
# How often the stop conditions are checked while no message arrives (Kestra: 100 ms).
CHECK_EVERY_S = 0.1
_EXCHANGE_TYPES = ("DIRECT", "FANOUT", "TOPIC", "HEADERS")


class _AmqpTask(TaskPlugin):
    family: ClassVar[str] = "amqp"

    url: Str | None = None
    host: Str | None = None
    port: Str | IntOrExpr = "5672"
    username: Str | None = None
    password: Str | None = None
    virtualHost: Str = "/"

    def target(self, ctx: TaskContext) -> AmqpTarget:
        return amqp_target(ctx, self.model_dump())


class Consume(_AmqpTask):
    """Consume messages from an AMQP queue into an internal storage ION file."""

    type: Literal["io.kestra.plugin.amqp.Consume"]
    queue: Str
    serdeType: Literal["STRING", "JSON"] | Str = "STRING"
    consumerTag: Str = "Kestra"
    autoAck: BoolOrExpr = False
    maxRecords: IntOrExpr | None = None
    maxDuration: Duration | None = None

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        if self.maxDuration is None and self.maxRecords is None:
            raise TaskError("maxDuration or maxRecords must be set to avoid infinite loop")
        target = self.target(ctx)
        queue_name = render_str(ctx, self.queue, "queue", required=True) or ""
        kind = serde(render_str(ctx, self.serdeType, "serdeType"))
        tag = render_str(ctx, self.consumerTag, "consumerTag") or "Kestra"
        auto_ack = render_bool(ctx, self.autoAck, "autoAck")
        max_records = render_int(ctx, self.maxRecords, "maxRecords")
        max_duration = render_seconds(ctx, self.maxDuration, "maxDuration")
        budget = min(WAIT_CAP_S, max_duration) if max_duration is not None else WAIT_CAP_S
        sink = await IonSink.create(ctx)
        connection = await target.connect()
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=min(max_records or PREFETCH, PREFETCH))
            try:
                queue = await channel.get_queue(queue_name, ensure=True)
            except aio_pika.exceptions.ChannelNotFoundEntity:
                raise TaskError(
                    f"AMQP queue {queue_name!r} does not exist on {target.where}"
                ) from None
            arrived: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
            consumer = await queue.consume(arrived.put, no_ack=auto_ack, consumer_tag=tag)
            last = await _receive(ctx, sink, arrived, kind, queue_name, max_records, budget)
            await queue.cancel(consumer)
            while not arrived.empty():  # delivered after the stop: back to the queue
                extra = arrived.get_nowait()
                if not auto_ack:
                    await extra.nack(requeue=True)
            if ctx.cancelled.is_set():
                return TaskOutcome(state="KILLED")
            uri = await sink.store(ctx, "consume.ion")
            if last is not None and not auto_ack:
                await last.ack(multiple=True)  # only now: the messages are stored
        except (aio_pika.exceptions.AMQPError, OSError) as exc:
            raise TaskError(
                f"AMQP consume from {queue_name!r} on {target.where} failed: {describe(exc)}"
            ) from None
        finally:
            await sink.discard()
            await close_quietly(connection)
        count = sink.count
        ctx.log("DEBUG", f"Consumed {count} messages from {queue_name!r}")
        return TaskOutcome(
            state="SUCCESS",
            outputs={"count": count, "uri": uri},
            metrics={"consumed.records": count},
        )


async def _receive(
    ctx: TaskContext,
    sink: IonSink,
    arrived: asyncio.Queue[AbstractIncomingMessage],
    kind: str,
    queue_name: str,
    max_records: int | None,
    budget: float,
) -> AbstractIncomingMessage | None:
    """Write deliveries until a stop condition; the last one written."""
    started = time.monotonic()
    last = None
    while not ctx.cancelled.is_set():
        if max_records is not None and sink.count >= max_records:
            break
        if time.monotonic() - started >= budget:
            break
        try:
            message = await asyncio.wait_for(arrived.get(), CHECK_EVERY_S)
        except TimeoutError:
            continue
        try:
            row = message_row(message, kind)
        except (ValueError, UnicodeDecodeError, orjson.JSONDecodeError) as exc:
            raise TaskError(
                f"a message of queue {queue_name!r} cannot be read as {kind}: {exc}"
            ) from None
        sink.write(row)
        last = message
    return last


class CreateQueue(_AmqpTask):
    """Declare an AMQP queue."""

    short: ClassVar[str | None] = "amqp_create_queue"

    type: Literal["io.kestra.plugin.amqp.CreateQueue"]
    name: Str
    durability: BoolOrExpr = True
    exclusive: BoolOrExpr = False
    autoDelete: BoolOrExpr = False
    args: dict[str, Any] | Str | None = None

    async def run(self, ctx: TaskContext) -> Mapping[str, Any]:
        name = render_str(ctx, self.name, "name", required=True) or ""
        options = {
            "durable": render_bool(ctx, self.durability, "durability", True),
            "exclusive": render_bool(ctx, self.exclusive, "exclusive"),
            "auto_delete": render_bool(ctx, self.autoDelete, "autoDelete"),
            "arguments": render_map(ctx, self.args, "args"),
        }
        async with _channel(self.target(ctx), f"declaring queue {name!r}") as channel:
            await channel.declare_queue(name, **options)
        return {"queue": name}


class DeclareExchange(_AmqpTask):
    """Declare an AMQP exchange."""

    short: ClassVar[str | None] = "amqp_declare_exchange"

    type: Literal["io.kestra.plugin.amqp.DeclareExchange"]
    name: Str
    exchangeType: Literal["DIRECT", "FANOUT", "TOPIC", "HEADERS"] | Str = "DIRECT"
    durability: BoolOrExpr = True
    autoDelete: BoolOrExpr = False
    internal: BoolOrExpr = False
    args: dict[str, Any] | Str | None = None

    async def run(self, ctx: TaskContext) -> Mapping[str, Any]:
        name = render_str(ctx, self.name, "name", required=True) or ""
        kind = (render_str(ctx, self.exchangeType, "exchangeType") or "DIRECT").upper()
        if kind not in _EXCHANGE_TYPES:
            raise TaskError(f"exchangeType {kind!r}: use one of {', '.join(_EXCHANGE_TYPES)}")
        options = {
            "type": aio_pika.ExchangeType(kind.lower()),
            "durable": render_bool(ctx, self.durability, "durability", True),
            "auto_delete": render_bool(ctx, self.autoDelete, "autoDelete"),
            "internal": render_bool(ctx, self.internal, "internal"),
            "arguments": render_map(ctx, self.args, "args"),
        }
        async with _channel(self.target(ctx), f"declaring exchange {name!r}") as channel:
            await channel.declare_exchange(name, **options)
        return {"exchange": name}


class QueueBind(_AmqpTask):
    """Bind an AMQP queue to an exchange."""

    short: ClassVar[str | None] = "amqp_queue_bind"

    type: Literal["io.kestra.plugin.amqp.QueueBind"]
    exchange: Str
    queue: Str
    routingKey: Str | None = None
    args: dict[str, Any] | Str | None = None

    async def run(self, ctx: TaskContext) -> Mapping[str, Any]:
        exchange = render_str(ctx, self.exchange, "exchange", required=True) or ""
        queue = render_str(ctx, self.queue, "queue", required=True) or ""
        routing_key = render_str(ctx, self.routingKey, "routingKey") or ""
        arguments = render_map(ctx, self.args, "args")
        what = f"binding queue {queue!r} to exchange {exchange!r}"
        async with _channel(self.target(ctx), what) as channel:
            bound = await channel.get_queue(queue, ensure=False)
            await bound.bind(exchange, routing_key=routing_key, arguments=arguments)
        return {"queue": queue, "exchange": exchange}


@contextlib.asynccontextmanager
async def _channel(target: AmqpTarget, what: str) -> AsyncIterator[Any]:
    """A channel on a fresh connection; AMQP errors become a TaskError naming ``what``."""
    connection = await target.connect()
    try:
        yield await connection.channel()
    except (aio_pika.exceptions.AMQPError, OSError) as exc:
        raise TaskError(f"AMQP {what} on {target.where} failed: {describe(exc)}") from None
    finally:
        await close_quietly(connection)


PLUGINS = [Consume, CreateQueue, DeclareExchange, QueueBind]
