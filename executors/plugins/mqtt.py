"""Kestra's ``io.kestra.plugin.mqtt.Subscribe``: MQTT messages into an ION file.

What Kestra does (kestra-io/plugin-mqtt, ``Subscribe``), and what this module ports:

- Properties: the connection (:mod:`executors.mqtt_client`: ``server``, ``clientId``,
  ``mqttVersion`` V5 by default, ``username``/``password``, ``connectionTimeout``, ``crt``,
  ``httpsHostnameVerificationEnabled``, ``authMethod``), ``topic`` (one filter or a list; ``+``
  and ``#`` wildcards), ``qos`` (1), ``serdeType`` (JSON by default; STRING; BYTES),
  ``maxRecords``, ``maxDuration``.
- It subscribes to every filter at ``qos``, writes each message as it arrives, and stops when
  ``maxRecords`` messages were written or ``maxDuration`` has passed (checked every 100 ms),
  then unsubscribes. A message is Kestra's ``Message``: ``{id, topic, qos, properties,
  payload, retain, responseTopic, correlationData}``, ``id`` the packet id (0 at QoS 0),
  ``payload`` the JSON value, the text, or the bytes (an ION blob), ``correlationData`` base64.
- The file is put into internal storage. Outputs ``messagesCount``, ``uri``; metric
  ``records``.

What differs: with neither ``maxRecords`` nor ``maxDuration`` the task fails at once (Kestra
waits forever); ``maxRecords`` is exact (messages that arrive after it, before the
unsubscription, are not written; with a clean session the broker drops them, as Kestra's
do). Over MQTT 5, ``properties`` holds the message's user properties (``{name: value}``, a
repeated name: the list of its values; null when there are none) as the MQTT trigger does,
where Kestra writes the list of property identifiers valid for a PUBLISH packet (the same for
every message); over MQTT 3.1.1 it is null, as ``responseTopic`` and ``correlationData`` are.
A payload that does not deserialize fails the task naming its topic (Kestra logs it and its
client drops the connection, then waits for ``maxDuration``).
"""

from __future__ import annotations

import asyncio
import base64
import queue
import threading
import time
from typing import Any, ClassVar, Literal

import orjson

from executors.base import TaskContext, TaskError, TaskOutcome
from executors.data import IonSink
from executors.mqtt_client import MqttSettings, close, connect, filter_problem, mqtt_settings
from executors.plugin import TaskPlugin, render_int, render_seconds
from schemas.flow.common import BoolOrExpr, Duration, IntOrExpr, Str

# Kestra checks its stop conditions every 100 ms.
CHECK_EVERY_S = 0.1
# The broker answers SUBSCRIBE and UNSUBSCRIBE within milliseconds when it is alive.
ACK_TIMEOUT_S = 30.0


class Subscribe(TaskPlugin):
    """Subscribe to MQTT topics and store the messages received in an ION file."""

    family: ClassVar[str] = "mqtt"

    type: Literal["io.kestra.plugin.mqtt.Subscribe"]
    server: Str
    clientId: Str | None = None
    mqttVersion: Literal["V3", "V5"] | Str = "V5"
    username: Str | None = None
    password: Str | None = None
    connectionTimeout: Duration | None = None
    httpsHostnameVerificationEnabled: BoolOrExpr | None = None
    authMethod: Str | None = None
    crt: Str | None = None
    topic: Str | list[Str]
    qos: IntOrExpr = 1
    serdeType: Literal["STRING", "JSON", "BYTES"] | Str = "JSON"
    maxRecords: IntOrExpr | None = None
    maxDuration: Duration | None = None

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        settings = await mqtt_settings(ctx, self.model_dump())
        max_records = render_int(ctx, self.maxRecords, "maxRecords")
        max_duration = render_seconds(ctx, self.maxDuration, "maxDuration")
        if max_records is None and max_duration is None:
            raise TaskError("maxRecords or maxDuration must be set: without them it never ends")
        rendered = ctx.render(self.topic)
        topics = [str(t) for t in (rendered if isinstance(rendered, list) else [rendered])]
        for topic in topics:
            problem = filter_problem(topic)
            if problem:
                raise TaskError(f"property 'topic': {problem}")
        qos = render_int(ctx, self.qos, "qos", 1)
        if qos not in (0, 1, 2):
            raise TaskError(f"qos must be 0, 1 or 2, got {qos}")
        serde = (ctx.render_str(self.serdeType) or "JSON").upper()
        if serde not in ("STRING", "JSON", "BYTES"):
            raise TaskError(f"serdeType {serde!r}: use STRING, JSON or BYTES")
        sink = await IonSink.create(ctx)
        try:
            plan = _Plan(settings, topics, qos, serde, max_records, max_duration)
            counts = await asyncio.to_thread(_subscribe, plan, sink, ctx)
            if ctx.cancelled.is_set():
                return TaskOutcome(state="KILLED")
            uri = await sink.store(ctx, "subscribe.ion")
        finally:
            await sink.discard()
        total = sum(counts.values())
        return TaskOutcome(
            state="SUCCESS",
            outputs={"messagesCount": total, "uri": uri},
            metrics={"records": total},
        )


class _Plan:
    __slots__ = ("max_duration", "max_records", "qos", "serde", "settings", "topics")

    def __init__(
        self,
        settings: MqttSettings,
        topics: list[str],
        qos: int,
        serde: str,
        max_records: int | None,
        max_duration: float | None,
    ) -> None:
        self.settings = settings
        self.topics = topics
        self.qos = qos
        self.serde = serde
        self.max_records = max_records
        self.max_duration = max_duration


def _subscribe(plan: _Plan, sink: IonSink, ctx: TaskContext) -> dict[str, int]:
    """Receive and write messages until a stop condition (runs in a thread)."""
    s = plan.settings
    arrived: queue.SimpleQueue[Any] = queue.SimpleQueue()
    subscribed = threading.Event()
    granted: list[Any] = []
    client = connect(s)
    try:
        client.on_message = lambda _c, _u, message: arrived.put(message)

        def on_subscribe(_c: Any, _u: Any, _mid: int, codes: Any, _props: Any) -> None:
            granted.extend(codes)
            subscribed.set()

        client.on_subscribe = on_subscribe
        client.subscribe([(topic, plan.qos) for topic in plan.topics])
        if not subscribed.wait(ACK_TIMEOUT_S):
            raise TaskError(f"MQTT broker {s.where} did not answer the subscription")
        refused = [t for t, code in zip(plan.topics, granted, strict=False) if code.is_failure]
        if refused:
            raise TaskError(f"MQTT broker {s.where} refused the subscription to {refused}")
        ctx.log("DEBUG", f"Subscribed to {', '.join(plan.topics)} on {s.where}")
        return _receive(plan, sink, ctx, arrived)
    finally:
        try:
            client.unsubscribe(plan.topics)
        finally:
            close(client)


def _receive(
    plan: _Plan, sink: IonSink, ctx: TaskContext, arrived: queue.SimpleQueue[Any]
) -> dict[str, int]:
    counts: dict[str, int] = {}
    total = 0
    started = time.monotonic()
    while not ctx.cancelled.is_set():
        if plan.max_records is not None and total >= plan.max_records:
            break
        if plan.max_duration is not None and time.monotonic() - started >= plan.max_duration:
            break
        try:
            message = arrived.get(timeout=CHECK_EVERY_S)
        except queue.Empty:
            continue
        sink.write(_row(message, plan))
        total += 1
        counts[message.topic] = counts.get(message.topic, 0) + 1
    return counts


def _row(message: Any, plan: _Plan) -> dict[str, Any]:
    payload: bytes = message.payload
    try:
        if plan.serde == "BYTES":
            value: Any = bytes(payload)
        elif plan.serde == "JSON":
            value = orjson.loads(payload)
        else:
            value = payload.decode("utf-8")
    except (UnicodeDecodeError, orjson.JSONDecodeError) as exc:
        raise TaskError(
            f"Cannot process message {{id: {message.mid}}} from topic '{message.topic}': "
            f"cannot read {len(payload)} bytes as {plan.serde}: {exc}"
        ) from None
    props = getattr(message, "properties", None) if plan.settings.v5 else None
    correlation = getattr(props, "CorrelationData", None)
    return {
        "id": message.mid,
        "topic": message.topic,
        "qos": message.qos,
        "properties": _user_properties(getattr(props, "UserProperty", None)),
        "payload": value,
        "retain": bool(message.retain),
        "responseTopic": getattr(props, "ResponseTopic", None),
        "correlationData": None if correlation is None else base64.b64encode(correlation).decode(),
    }


def _user_properties(pairs: list[tuple[str, str]] | None) -> dict[str, Any] | None:
    if not pairs:
        return None
    props: dict[str, Any] = {}
    for key, value in pairs:
        if key not in props:
            props[key] = value
        elif isinstance(props[key], list):
            props[key].append(value)
        else:
            props[key] = [props[key], value]
    return props


PLUGINS = [Subscribe]
