"""MQTT realtime trigger: one execution per message of the subscribed topic filters.

Config: ``server`` (``tcp://host:port``), ``topic`` (one filter or a list; ``+``/``#``
wildcards), ``qos`` (default 1), ``clientId`` (default ``headwater-{namespace}-{flow}-
{trigger}``; it names the persistent session), ``mqttVersion`` (Kestra's current name) or
``version`` (its older one): V5 (the default, as in Kestra) or V3 (3.1.1),
``username``/``password``, ``serdeType`` STRING (default), JSON or BYTES.

Parser: a message -> ``trigger.id`` (packet id), ``trigger.topic``, ``trigger.payload``,
``trigger.qos``, ``trigger.retain`` (Kestra's outputs) and, when an MQTT 5 message carries
user properties, ``trigger.properties`` = {name: value} (a name sent more than once: the list
of its values, in order). Kestra's ``properties`` output is the list of property identifiers
valid for a PUBLISH packet (paho Java's ``getValidProperties()``), the same for every message;
it carries no message data, so we put the user properties there instead.

Source: a paho client with a persistent session (3.1.1: clean_session false; 5: clean_start
false and a session expiry interval, without which a v5 session ends with the connection) and
manual acknowledgement: the PUBACK goes out only once the StartExecution is durable, so the
broker redelivers whatever was not acknowledged when the process died. The broker's in-flight
window (Mosquitto's ``max_inflight_messages``, MQTT 5's receive maximum, which we set to the
in-flight limit) is the back-pressure: it sends no more until we acknowledge.

Identity: MQTT messages have none that lasts. A redelivery keeps its packet id, but packet ids
are reused once acknowledged, so the id derives from (client id, topic, packet id, payload
digest, generation), where generation counts how many messages with that same packet id and
payload this process already acknowledged. Limitation: after a restart the count starts at 0,
so a message that is byte-identical to one acknowledged before the restart *and* gets the same
packet id shortly after it is taken for a redelivery of that message (deduplicated).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from engine.errors import ConfigError, ServiceError
from executors.mqtt_client import filter_problem as filter_problem  # re-exported
from schemas.envelope import new_id
from schemas.flow.triggers import MqttTrigger
from triggers.ids import digest, mqtt_coordinates
from triggers.model import SourceContext, settle
from triggers.payloads import MalformedPayload as MalformedPayload  # re-exported
from triggers.payloads import loads_json

log = logging.getLogger(__name__)

JSON = dict[str, Any]

# MQTT 5 session expiry: keep our session (and its queued messages) a week across downtime.
SESSION_EXPIRY_S = 7 * 24 * 3600
# Keep-alive ping period: the broker notices a dead trigger process within 1.5x this.
KEEPALIVE_S = 30
# How long connect() may take before the source fails (and is restarted by the runtime).
CONNECT_TIMEOUT_S = 10.0
# Kestra's default protocol when a flow names none (``AbstractMqttConnection.mqttVersion``).
DEFAULT_VERSION = "V5"


def decode_payload(payload: bytes, serde: str) -> Any:
    if serde == "BYTES":
        return base64.b64encode(payload).decode("ascii")
    try:
        text = payload.decode("utf-8")
        return loads_json(text, f"{len(payload)} bytes of JSON") if serde == "JSON" else text
    except (UnicodeDecodeError, orjson.JSONDecodeError) as exc:
        raise MalformedPayload(f"cannot read {len(payload)} bytes as {serde}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Message:
    """What the paho thread hands to the event loop."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    properties: JSON


def user_properties(pairs: list[tuple[str, str]]) -> JSON:
    """MQTT 5 user properties as a mapping; a name may repeat (the spec keeps every pair, in
    order), so a repeated name maps to the list of its values rather than losing some."""
    props: JSON = {}
    for key, value in pairs:
        k, v = str(key), str(value)
        if k not in props:
            props[k] = v
        elif isinstance(props[k], list):
            props[k].append(v)
        else:
            props[k] = [props[k], v]
    return props


def resolve_version(model: MqttTrigger) -> str:
    """``mqttVersion`` or the older ``version``; both set must agree."""
    new, old = model.mqttVersion, model.version
    if new is not None and old is not None and new != old:
        raise ConfigError(
            f"MQTT trigger: mqttVersion {new} and version {old} disagree; keep only mqttVersion"
        )
    return new or old or DEFAULT_VERSION


def parse(message: Message, serde: str) -> JSON:
    variables: JSON = {
        "id": message.mid,
        "topic": message.topic,
        "payload": decode_payload(message.payload, serde),
        "qos": message.qos,
        "retain": message.retain,
    }
    if message.properties:
        variables["properties"] = message.properties
    return variables


def raw(message: Message) -> JSON:
    return {
        "id": message.mid,
        "topic": message.topic,
        "payload": message.payload.decode("utf-8", "replace"),
        "qos": message.qos,
        "retain": message.retain,
    }


@dataclass(frozen=True, slots=True)
class MqttConfig:
    host: str
    port: int
    topics: list[str]
    qos: int
    client_id: str
    v5: bool
    username: str | None
    password: str | None
    serde: str

    @classmethod
    def of(cls, model: MqttTrigger, ctx: SourceContext) -> MqttConfig:
        url = urlparse(str(model.server))
        if url.scheme not in ("tcp", "mqtt") or not url.hostname:
            raise ConfigError(f"MQTT server {model.server!r}: use tcp://host:port")
        topics = model.topic if isinstance(model.topic, list) else [model.topic]
        for t in topics:
            if (problem := filter_problem(str(t))) is not None:
                raise ConfigError(f"MQTT trigger topic: {problem}")
        ref = ctx.ref
        qos = int(model.qos) if isinstance(model.qos, int) else 1
        return cls(
            host=url.hostname,
            port=url.port or 1883,
            topics=[str(t) for t in topics],
            qos=qos,
            client_id=str(
                model.clientId or f"headwater-{ref.namespace}-{ref.flow_id}-{ref.trigger_id}"
            ),
            v5=resolve_version(model) == "V5",
            username=str(model.username) if model.username else None,
            password=str(model.password) if model.password else None,
            serde=str(model.serdeType or "STRING").upper(),
        )


class MqttSource:
    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.config = MqttConfig.of(ctx.config, ctx)
        # packet id -> (payload digest, how many such messages this process acknowledged)
        self._acked: dict[int, tuple[str, int]] = {}
        self._acking: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue()

    def _client(
        self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Message | None]
    ) -> paho.Client:
        c = self.config
        protocol = paho.MQTTv5 if c.v5 else paho.MQTTv311
        kwargs: JSON = {"clean_session": False} if not c.v5 else {}
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=c.client_id,
            protocol=protocol,
            manual_ack=True,
            **kwargs,
        )
        if c.username:
            client.username_pw_set(c.username, c.password)

        def fail(problem: str) -> None:
            # From paho's thread: crash the source, so that the runtime records the error as
            # the trigger's last_error and restarts it with back-off, instead of a source that
            # sits connected (or reconnecting) and silently receives nothing.
            error = ServiceError(f"MQTT trigger {self.ctx.ref} on {c.host}:{c.port}: {problem}")
            loop.call_soon_threadsafe(self._fail, error)

        def on_connect(cl: paho.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
            if reason.is_failure:
                fail(f"connection refused: {reason}")
                return
            if not flags.session_present:
                # Normal on a first start; otherwise the broker lost or expired our session
                # and with it whatever was published while we were away.
                log.info("mqtt trigger %s: new session on the broker", self.ctx.ref)
            cl.subscribe([(t, c.qos) for t in c.topics])

        def on_subscribe(_cl: paho.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
            for topic, code in zip(c.topics, codes, strict=False):
                if code.is_failure:
                    fail(f"subscription to {topic!r} refused: {code}")
                elif code.value < c.qos:  # granted QoS: the broker downgraded the request
                    log.warning(
                        "mqtt trigger %s: %r granted QoS %d, not %d: messages may be lost",
                        self.ctx.ref,
                        topic,
                        code.value,
                        c.qos,
                    )

        def on_message(_cl: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
            user = getattr(msg.properties, "UserProperty", None) if msg.properties else None
            props = user_properties(user) if user else {}
            item = Message(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain), msg.mid, props)
            loop.call_soon_threadsafe(queue.put_nowait, item)

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        return client

    def _fail(self, exc: BaseException) -> None:
        """Make run() raise ``exc`` (the first failure wins); called on the event loop."""
        if self._failure is None:
            self._failure = exc
            self._queue.put_nowait(None)

    async def run(self) -> None:
        c = self.config
        loop = asyncio.get_running_loop()
        queue = self._queue
        client = self._client(loop, queue)
        connect_kwargs: JSON = {"keepalive": KEEPALIVE_S}
        if c.v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            props.ReceiveMaximum = min(self.ctx.max_in_flight, 65535)
            connect_kwargs |= {"clean_start": False, "properties": props}
        try:
            await asyncio.wait_for(
                asyncio.to_thread(client.connect, c.host, c.port, **connect_kwargs),
                CONNECT_TIMEOUT_S,
            )
        except (OSError, TimeoutError) as exc:
            raise ServiceError(f"MQTT broker {c.host}:{c.port} unreachable: {exc!r}") from exc
        client.loop_start()
        try:
            while True:
                message = await queue.get()
                if message is None:  # a failure (see _fail): restart the source
                    assert self._failure is not None
                    raise self._failure
                await self._handle(client, message)
        finally:
            for task in self._acking:
                task.cancel()
            await asyncio.to_thread(client.disconnect)
            await asyncio.to_thread(client.loop_stop)

    def _coordinates(self, m: Message) -> str:
        if m.qos == 0:  # never redelivered, and its packet id is always 0
            return f"mqtt-qos0-{new_id()}"
        d = digest(m.payload)
        seen = self._acked.get(m.mid)
        generation = seen[1] if seen is not None and seen[0] == d else 0
        return mqtt_coordinates(self.config.client_id, m.topic, m.mid, m.payload, generation)

    async def _handle(self, client: paho.Client, m: Message) -> None:
        coordinates = self._coordinates(m)
        try:
            future: asyncio.Future[Any] | None = await self.ctx.fire(
                coordinates, parse(m, self.config.serde)
            )
        except MalformedPayload as exc:
            future = await self.ctx.malformed(coordinates, raw(m), f"{m.topic}: {exc}")
        # Acknowledge from a task so the next message is fired while this one is in flight.
        task = asyncio.get_running_loop().create_task(self._ack_when_durable(client, m, future))
        self._acking.add(task)
        task.add_done_callback(self._acking.discard)

    async def _ack_when_durable(
        self, client: paho.Client, m: Message, future: asyncio.Future[Any] | None
    ) -> None:
        if future is not None:
            try:
                await settle([future])
            except Exception as exc:  # not acked: the broker redelivers after a reconnect
                log.error("mqtt trigger %s: command not durable: %r", self.ctx.ref, exc)
                self._fail(exc)
                return
        if m.qos > 0:
            d = digest(m.payload)
            seen = self._acked.get(m.mid)
            self._acked[m.mid] = (d, seen[1] + 1 if seen is not None and seen[0] == d else 1)
            client.ack(m.mid, m.qos)
