"""The AMQP connection and message shape of Kestra's amqp tasks, with aio-pika.

Connection (``AbstractAmqpConnection``): ``host`` (required unless ``url``), ``port``
("5672"), ``username`` / ``password`` (the broker's default, guest/guest, when unset),
``virtualHost`` ("/"), or the deprecated ``url`` (``amqp://user:password@host:port/vhost``;
both ``url`` and ``host`` is an error, as in Kestra). A ``host`` that is itself an
``amqp://`` URL is read as ``url`` (a published blueprint writes it so; Kestra would try to
resolve it as a host name).

A message (``io.kestra.plugin.amqp.models.Message``) is ``{contentType, contentEncoding,
headers, deliveryMode, priority, messageId, correlationId, replyTo, expiration, timestamp,
type, userId, appId, data}``: ``headers`` values as text (Kestra's ``String.valueOf``),
``expiration`` a duration in seconds (Jackson writes a ``Duration`` as decimal seconds, e.g.
``60.000000000``), ``timestamp`` an ION timestamp, ``data`` the body read with the serde type:
STRING (text) or JSON.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlparse

import aio_pika
import orjson
from aio_pika.abc import AbstractIncomingMessage

from executors.base import TaskContext, TaskError, parse_duration, to_text

# Connecting to a live broker takes milliseconds; past this it is not there.
CONNECT_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class AmqpTarget:
    """Where to connect, as aio-pika's ``connect`` keyword arguments."""

    host: str
    port: int
    login: str
    password: str
    virtualhost: str

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    async def connect(self) -> aio_pika.abc.AbstractRobustConnection | Any:
        try:
            return await aio_pika.connect(
                host=self.host,
                port=self.port,
                login=self.login,
                password=self.password,
                virtualhost=self.virtualhost,
                timeout=CONNECT_TIMEOUT_S,
            )
        except (aio_pika.exceptions.AMQPError, OSError, TimeoutError) as exc:
            raise TaskError(
                f"AMQP connection to {self.where} (virtual host {self.virtualhost!r}) failed: "
                f"{describe(exc)}"
            ) from None


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def amqp_target(
    ctx: TaskContext, props: Mapping[str, Any], default_url: str | None = None
) -> AmqpTarget:
    """The rendered connection properties of a task (``props``: its unrendered values)."""
    url = ctx.render_str(props.get("url") or props.get("uri"))
    host = ctx.render_str(props.get("host"))
    if url and host:
        raise TaskError("Cannot define both `url` and `host`")
    if host and "://" in host:
        url, host = host, None
    password = ctx.render_str(props.get("password"))
    if url:
        parsed = urlparse(url)
        if parsed.scheme not in ("amqp", "amqps") or not parsed.hostname:
            raise TaskError(f"url {url!r}: expected amqp://user:password@host:port/vhost")
        if parsed.password:
            ctx.secrets = ctx.secrets | {unquote(parsed.password)}
        vhost = unquote(parsed.path[1:]) if len(parsed.path) > 1 else "/"
        return AmqpTarget(
            host=parsed.hostname,
            port=parsed.port or 5672,
            login=unquote(parsed.username) if parsed.username else "guest",
            password=unquote(parsed.password) if parsed.password else "guest",
            virtualhost=vhost,
        )
    if not host:
        if default_url:
            return amqp_target(ctx, {"url": default_url})
        raise TaskError("property 'host' is required")
    if password:
        ctx.secrets = ctx.secrets | {password}
    port = ctx.render_str(props.get("port")) or "5672"
    try:
        port_number = int(port)
    except ValueError:
        raise TaskError(f"property 'port': {port!r} is not a number") from None
    return AmqpTarget(
        host=host,
        port=port_number,
        login=ctx.render_str(props.get("username")) or "guest",
        password=password or "guest",
        virtualhost=ctx.render_str(props.get("virtualHost")) or "/",
    )


def serde(value: str | None) -> str:
    kind = (value or "STRING").upper()
    if kind not in ("STRING", "JSON"):
        raise TaskError(f"serdeType {value!r}: use STRING or JSON")
    return kind


def message_row(message: AbstractIncomingMessage, kind: str) -> dict[str, Any]:
    """Kestra's ``Message`` of one delivery; ValueError when the body is not ``kind``."""
    body = message.body
    data: Any = body.decode("utf-8") if kind == "STRING" else orjson.loads(body)
    headers = message.headers
    expiration = message.expiration
    stamp = message.timestamp
    return {
        "contentType": message.content_type,
        "contentEncoding": message.content_encoding,
        "headers": None if headers is None else {str(k): _text(v) for k, v in headers.items()},
        "deliveryMode": int(message.delivery_mode) if message.delivery_mode else None,
        "priority": message.priority,
        "messageId": message.message_id,
        "correlationId": message.correlation_id,
        "replyTo": message.reply_to,
        "expiration": _seconds(expiration) if isinstance(expiration, (int, float)) else None,
        "timestamp": None if stamp is None else stamp.astimezone(UTC),
        "type": message.type,
        "userId": message.user_id,
        "appId": message.app_id,
        "data": data,
    }


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return to_text(value)


def _seconds(seconds: float) -> Decimal:
    # aio-pika hands the expiration over in seconds; Jackson writes nanosecond precision.
    return (Decimal(round(seconds * 1000)) / 1000).quantize(Decimal("0.000000001"))


def outgoing(row: Any, kind: str, delivery_mode: int | None = None) -> aio_pika.Message:
    """An AMQP message from one ``from`` row: a Message map (``data`` and properties), or a
    bare value taken as ``data``; ``delivery_mode`` when the row gives none."""
    fields = row if isinstance(row, Mapping) and "data" in row else {"data": row}
    data = fields.get("data")
    if kind == "JSON":
        body = orjson.dumps(data)
    else:
        body = b"" if data is None else to_text(data).encode()
    headers = fields.get("headers")
    if headers is not None and not isinstance(headers, Mapping):
        raise TaskError(f"message headers must be a map, got {headers!r}")
    try:
        return aio_pika.Message(
            body,
            headers={str(k): _header(v) for k, v in (headers or {}).items()},
            content_type=_opt(fields, "contentType"),
            content_encoding=_opt(fields, "contentEncoding"),
            delivery_mode=_int(fields, "deliveryMode") or delivery_mode,
            priority=_int(fields, "priority"),
            correlation_id=_opt(fields, "correlationId"),
            reply_to=_opt(fields, "replyTo"),
            expiration=_expiration(fields.get("expiration")),
            message_id=_opt(fields, "messageId"),
            timestamp=_timestamp(fields.get("timestamp")),
            type=_opt(fields, "type"),
            user_id=_opt(fields, "userId"),
            app_id=_opt(fields, "appId"),
        )
    except (TypeError, ValueError) as exc:
        raise TaskError(f"message {fields!r}: {exc}") from None


def _header(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else to_text(value)


def _opt(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    return None if value is None else to_text(value)


def _int(fields: Mapping[str, Any], name: str) -> int | None:
    value = fields.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise TaskError(f"message {name} {value!r} is not a number") from None


def _expiration(value: Any) -> float | None:
    """Kestra's ``Duration``: ISO-8601 (``PT1M``) or a number of seconds."""
    if value is None:
        return None
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return float(value)
    return parse_duration(to_text(value))


def _timestamp(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        moment = datetime.fromisoformat(to_text(value).replace("Z", "+00:00"))
    except ValueError:
        raise TaskError(f"message timestamp {value!r} is not an ISO-8601 instant") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def close_quietly(connection: Any) -> None:
    """Close a connection whose failure is already being reported."""
    try:
        await asyncio.wait_for(connection.close(), CONNECT_TIMEOUT_S)
    except (aio_pika.exceptions.AMQPError, OSError, TimeoutError, RuntimeError):
        pass
