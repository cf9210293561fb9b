"""amqp.Consume, CreateQueue, DeclareExchange, QueueBind and Publish against the real broker
(RabbitMQ, deploy/local)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import aio_pika
import pytest

from executors.registry import Registry, add_plugins
from tests.integration.messaging import make_ctx, run, stored_rows, unique

pytestmark = pytest.mark.rabbitmq

FIELDS = ["contentType", "contentEncoding", "headers", "deliveryMode", "priority", "messageId",
          "correlationId", "replyTo", "expiration", "timestamp", "type", "userId", "appId",
          "data"]  # fmt: skip


def connection(amqp_url: str) -> dict[str, Any]:
    """The connection properties as Kestra writes them (host, port, ...)."""
    url = urlparse(amqp_url)
    return {
        "host": url.hostname, "port": str(url.port or 5672), "username": url.username or "guest",
        "password": url.password or "guest", "virtualHost": "/",
    }  # fmt: skip


def task(amqp_url: str, kind: str, **props: Any) -> dict[str, Any]:
    return {"id": kind.lower(), "type": f"io.kestra.plugin.amqp.{kind}",
            **connection(amqp_url), **props}  # fmt: skip


async def queue_depth(amqp_url: str, name: str) -> int:
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        channel = await conn.channel()
        queue = await channel.declare_queue(name, passive=True)
        count = queue.declaration_result.message_count
        assert count is not None
        return count


async def delete(amqp_url: str, queue: str, exchange: str | None = None) -> None:
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        channel = await conn.channel()
        await channel.queue_delete(queue)
        if exchange:
            await channel.exchange_delete(exchange)


async def test_declare_bind_publish_and_consume_kestra_messages(
    amqp_url: str, tmp_path: Path
) -> None:
    queue, exchange = unique("hw-q"), unique("hw-x")
    try:
        created = await run(tmp_path, task(amqp_url, "CreateQueue", name=queue,
                                           args={"x-max-length": 100}))  # fmt: skip
        assert (created.state, created.outputs) == ("SUCCESS", {"queue": queue}), created.error
        declared = await run(tmp_path, task(amqp_url, "DeclareExchange", name=exchange,
                                            exchangeType="TOPIC"))  # fmt: skip
        assert declared.outputs == {"exchange": exchange}, declared.error
        bound = await run(tmp_path, task(amqp_url, "QueueBind", exchange=exchange, queue=queue,
                                         routingKey="orders.*"))  # fmt: skip
        assert bound.outputs == {"queue": queue, "exchange": exchange}, bound.error
        published = await run(tmp_path, task(
            amqp_url, "Publish", exchange=exchange, routingKey="orders.new", serdeType="JSON",
            **{"from": [
                {"data": {"city": "{{ inputs.city }}"}, "headers": {"h": 1}, "priority": 3,
                 "messageId": "m-1", "correlationId": "c-1", "replyTo": "r", "type": "order",
                 "appId": "hw", "contentType": "application/json", "expiration": "PT1M",
                 "timestamp": "2023-01-09T08:46:33.115456977Z", "deliveryMode": 1},
                [1, 2],
            ]},
        ), inputs={"city": "Lyon"})  # fmt: skip
        assert published.outputs == {"messagesCount": 2}, published.error
        consumed = await run(tmp_path, task(amqp_url, "Consume", queue=queue, serdeType="JSON",
                                            maxRecords=2, maxDuration="PT20S"))  # fmt: skip
        assert consumed.state == "SUCCESS", consumed.error
        assert consumed.outputs["count"] == 2
        first, second = stored_rows(tmp_path, consumed.outputs["uri"])
        assert list(first) == FIELDS
        assert first == {
            "contentType": "application/json", "contentEncoding": None, "headers": {"h": "1"},
            "deliveryMode": 1, "priority": 3, "messageId": "m-1", "correlationId": "c-1",
            "replyTo": "r", "expiration": Decimal("60.000000000"),
            "timestamp": datetime.fromisoformat("2023-01-09T08:46:33+00:00"), "type": "order",
            "userId": None, "appId": "hw", "data": {"city": "Lyon"},
        }  # fmt: skip
        assert (second["data"], second["deliveryMode"], second["headers"]) == ([1, 2], 2, {})
        assert await queue_depth(amqp_url, queue) == 0  # acknowledged
    finally:
        await delete(amqp_url, queue, exchange)


async def test_consume_stops_gives_back_and_acks_only_what_was_stored(
    amqp_url: str, tmp_path: Path
) -> None:
    queue = unique("hw-q")
    try:
        await run(tmp_path, task(amqp_url, "CreateQueue", name=queue, durability=False))
        published = await run(tmp_path, {
            "id": "pub", "type": "io.kestra.plugin.amqp.Publish", "url": amqp_url, "exchange": "",
            "routingKey": queue, "from": ["a", "b", "c"],
        })  # fmt: skip
        assert published.outputs == {"messagesCount": 3}, published.error
        consume = task(amqp_url, "Consume", queue=queue, maxRecords=2)
        ctx = make_ctx(tmp_path, consume)
        ctx.storage = None  # the file cannot be stored: nothing may be acknowledged
        lost = await add_plugins(Registry()).run(consume, ctx)
        assert lost.state == "FAILED"
        assert "internal storage" in (lost.error or "")
        assert await queue_depth(amqp_url, queue) == 3

        first = await run(tmp_path, consume)
        assert first.outputs["count"] == 2, first.error
        assert [r["data"] for r in stored_rows(tmp_path, first.outputs["uri"])] == ["a", "b"]
        assert await queue_depth(amqp_url, queue) == 1  # the third was given back
        rest = await run(tmp_path, task(amqp_url, "Consume", queue=queue, maxDuration="PT0.5S"))
        assert [r["data"] for r in stored_rows(tmp_path, rest.outputs["uri"])] == ["c"]
        empty = await run(tmp_path, task(amqp_url, "Consume", queue=queue, maxDuration="PT0.3S",
                                         autoAck=True))  # fmt: skip
        assert (empty.state, empty.outputs["count"]) == ("SUCCESS", 0)
    finally:
        await delete(amqp_url, queue)


async def test_mistakes_fail_with_a_clear_message(amqp_url: str, tmp_path: Path) -> None:
    queue, missing = unique("hw-q"), unique("hw-missing")
    try:
        await run(tmp_path, task(amqp_url, "CreateQueue", name=queue, durability=False))
        changed = await run(tmp_path, task(amqp_url, "CreateQueue", name=queue))
        assert changed.state == "FAILED"
        assert "PRECONDITION_FAILED" in (changed.error or "")
        await run(tmp_path, {"id": "pub", "type": "io.kestra.plugin.amqp.Publish", "url": amqp_url,
                             "exchange": "", "routingKey": queue, "from": "not json"})  # fmt: skip
        cases: list[tuple[dict[str, Any], str]] = [
            (task(amqp_url, "Consume", queue=queue, serdeType="JSON", maxRecords=1),
             f"a message of queue {queue!r} cannot be read as JSON"),
            (task(amqp_url, "Consume", queue=missing, maxRecords=1),
             f"AMQP queue {missing!r} does not exist"),
            (task(amqp_url, "Consume", queue=queue), "maxDuration or maxRecords must be set"),
            (task(amqp_url, "QueueBind", queue=queue, exchange=missing),
             f"binding queue {queue!r} to exchange {missing!r}"),
            (task(amqp_url, "DeclareExchange", name=missing, exchangeType="RING"),
             "exchangeType 'RING'"),
            ({**task(amqp_url, "CreateQueue", name=queue), "url": amqp_url},
             "Cannot define both `url` and `host`"),
            (task(amqp_url, "CreateQueue", name=queue, port="1"), "AMQP connection to"),
        ]  # fmt: skip
        for spec, message in cases:
            outcome = await run(tmp_path, spec)
            assert outcome.state == "FAILED", spec
            assert message in (outcome.error or ""), outcome.error
        assert await queue_depth(amqp_url, queue) == 1  # the unreadable message is still there
    finally:
        await delete(amqp_url, queue)
