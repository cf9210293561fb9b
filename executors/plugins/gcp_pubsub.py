"""Kestra's Google Cloud Pub/Sub types (``io.kestra.plugin.gcp.pubsub.*``): Publish, Consume and
the polling Trigger, on Pub/Sub's REST API (:mod:`executors.remote.google_api`; the realtime
trigger is :mod:`triggers.pubsub`).

What Kestra does (kestra-io/plugin-gcp, Google's Java Publisher and Subscriber), and what this
module ports. Every type has the credential properties (``projectId``, ``serviceAccount``,
``impersonatedServiceAccount``, ``scopes``) and ``topic``.

- A message is Kestra's ``Message``: ``data``, ``attributes``, ``messageId``, ``orderingKey``.
  ``serdeType`` (STRING) says how ``data`` travels: STRING sends a text as its bytes (another
  value as Java's ``toString``) and reads the bytes back as bytes (base64 text in JSON
  outputs); JSON sends any value as JSON and reads JSON back.
- ``Publish``: ``from`` (Kestra's ``Data.from``: a Message map, a list of them, JSON text or a
  ``kestra://`` ION file of them, e.g. a Consume's output), ``serdeType``. Messages go in
  batches of :data:`PUBLISH_BATCH` (``POST .../topics/{t}:publish``). Output
  ``messagesCount``; metric ``records``.
- ``Consume``: ``subscription``, ``autoCreateSubscription`` (true: created on the topic when
  missing), ``maxRecords``, ``maxDuration`` (one of them is required: "'maxDuration' or
  'maxRecords' must be set to avoid an infinite loop"), ``serdeType``. Messages are pulled,
  written to an ION file, acknowledged. Outputs ``count``, ``uri``; metric ``records``.
- ``Trigger``: the same consumption every ``interval`` (PT60S); nothing received, nothing
  happens; else one execution with ``trigger.count`` and ``trigger.uri``.
- ``RealtimeTrigger``: one execution per message, with the message as ``trigger`` (``data``,
  ``attributes``, ``messageId``, ``orderingKey``; STRING data as base64 text, as Kestra's
  bytes show in JSON). Kestra streams with a Subscriber; here the subscription is pulled
  every :data:`REALTIME_PULL_S` (``maxRecords`` bounds one pull), each message fires with an
  execution id derived from its ``messageId`` (a redelivered message starts nothing new), and
  the messages are acknowledged once their executions are durable.

What differs: the Trigger acknowledges its messages only once the execution's StartExecution
is durable (Kestra acks each message on receipt; a crash in between lost them), extending their
ack deadline to :data:`ACK_DEADLINE_S` meanwhile; a trigger poll also ends when the
subscription has nothing more (Kestra's waits for ``maxRecords`` however long it takes).
``autoCreateSubscription`` creates the subscription and takes "already exists" as success
(Kestra lists the project's subscriptions first). Not tested against Google itself: tests run
against Google's Pub/Sub emulator and a local receiver.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import orjson
from pydantic import Field

from executors.api_client import ApiTask
from executors.base import TaskContext, TaskError, TaskOutcome, to_text
from executors.data import IonSink, read_from
from executors.plugin import render_bool, render_int, render_seconds, render_str
from executors.plugins.gcp_gcs import GcpConnection
from executors.polling import Poll, PollContext, PollingTrigger
from executors.remote import common as c
from executors.remote.google_api import PUBSUB, GoogleApi, google_api, render_settings
from schemas.flow.common import BoolOrExpr, Duration, IntOrExpr, Str

SERDE_TYPES = ("STRING", "JSON")
# Pub/Sub accepts at most 1,000 messages (and 10 MB) per publish request.
PUBLISH_BATCH = 1000
# Messages asked for per pull.
PULL_MAX = 1000
# The longest ack deadline Pub/Sub allows: a trigger's messages wait for their execution.
ACK_DEADLINE_S = 600
# Pulls answer at once (``returnImmediately``): a pull held open while the subscription is
# empty cannot be given up at ``maxDuration`` without stranding the messages it would be handed
# until their ack deadline. An empty answer is asked again after this.
EMPTY_PULL_WAIT_S = 1.0
# The realtime trigger pulls its subscription again after this: one execution per message
# within about a second of its arrival.
REALTIME_PULL_S = 1.0


def java_string(value: Any) -> str:
    """Java's ``toString`` of a deserialized value (Kestra's STRING serde of a non-text)."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}={java_string(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(java_string(v) for v in value) + "]"
    return "null" if value is None else to_text(value)


def encode(data: Any, serde: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    if serde == "JSON":
        return orjson.dumps(data)
    return java_string(data).encode()


def decode(data: str | None, serde: str) -> Any:
    raw = base64.b64decode(data) if data else b""
    if serde != "JSON":
        return raw
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise TaskError(f"a message is not JSON ({len(raw)} bytes): {exc}") from exc


def outgoing(row: Any, serde: str) -> dict[str, Any]:
    """Kestra's ``Message.to``: the REST ``PubsubMessage`` of one ``from`` row."""
    message = row if isinstance(row, Mapping) else {"data": row}
    unknown = set(message) - {"data", "attributes", "messageId", "orderingKey"}
    if unknown:
        raise TaskError(f"property 'from': a message has unknown fields {sorted(unknown)}")
    out: dict[str, Any] = {}
    if message.get("data") is not None:
        out["data"] = base64.b64encode(encode(message["data"], serde)).decode()
    attributes = message.get("attributes")
    if attributes:
        if not isinstance(attributes, Mapping):
            raise TaskError("property 'from': a message's attributes must be a map")
        out["attributes"] = {str(k): to_text(v) for k, v in attributes.items()}
    if message.get("orderingKey"):
        out["orderingKey"] = str(message["orderingKey"])
    return out


def incoming(received: Mapping[str, Any], serde: str) -> dict[str, Any]:
    """Kestra's ``Message.of``: a received message as the consuming types write it."""
    message = received.get("message") or {}
    return c.drop_none(
        {
            "data": decode(message.get("data"), serde),
            "attributes": dict(message.get("attributes") or {}),
            "messageId": message.get("messageId"),
            "orderingKey": message.get("orderingKey", ""),
        }
    )


def serde_of(ctx: TaskContext, value: Any) -> str:
    return c.render_choice(ctx, value, "serdeType", SERDE_TYPES) or "STRING"


class PubSubConnection(GcpConnection):
    topic: Str


def names(ctx: TaskContext, api: GoogleApi, topic: Any, subscription: Any = None) -> dict[str, str]:
    project = api.project
    out = {"topic": f"projects/{project}/topics/{render_str(ctx, topic, 'topic', required=True)}"}
    if subscription is not None:
        sub = render_str(ctx, subscription, "subscription", required=True)
        out["subscription"] = f"projects/{project}/subscriptions/{sub}"
    return out


class Publish(ApiTask, PubSubConnection):
    """Publish messages to a Pub/Sub topic."""

    family: ClassVar[str] = "gcp"

    type: Literal["io.kestra.plugin.gcp.pubsub.Publish"]
    from_: Any = Field(alias="from")
    serdeType: Str = "STRING"

    async def execute(self, ctx: TaskContext) -> TaskOutcome:
        serde = serde_of(ctx, self.serdeType)
        rows = await read_from(ctx, self.from_, lenient=True)
        messages = [outgoing(r, serde) for r in await asyncio.to_thread(rows.as_list)]
        async with google_api(ctx, render_settings(ctx, self), PUBSUB) as api:
            topic = names(ctx, api, self.topic)["topic"]
            for start in range(0, len(messages), PUBLISH_BATCH):
                batch = messages[start : start + PUBLISH_BATCH]
                await api.call("POST", f"/v1/{topic}:publish", json={"messages": batch})
        count = len(messages)
        ctx.log("DEBUG", f"Published {count} messages to '{topic}'")
        return TaskOutcome("SUCCESS", {"messagesCount": count}, metrics={"records": count})


class Consumption:
    """Pulling a subscription into an ION file (Consume, Trigger)."""

    def __init__(self, api: GoogleApi, ctx: TaskContext, subscription: str, serde: str) -> None:
        self.api = api
        self.ctx = ctx
        self.subscription = subscription
        self.serde = serde

    async def create(self, topic: str) -> None:
        """``autoCreateSubscription``: create it on ``topic``; an existing one is kept."""
        await self.api.call("PUT", f"/v1/{self.subscription}", json={"topic": topic}, allow=(409,))

    async def pull(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` messages, or none when nothing is waiting."""
        body = {"maxMessages": limit, "returnImmediately": True}
        answer = await self.api.json("POST", f"/v1/{self.subscription}:pull", json=body)
        received: list[dict[str, Any]] = (answer or {}).get("receivedMessages") or []
        return received

    async def ack(self, ack_ids: list[str]) -> None:
        for start in range(0, len(ack_ids), PULL_MAX):
            batch = ack_ids[start : start + PULL_MAX]
            await self.api.call(
                "POST", f"/v1/{self.subscription}:acknowledge", json={"ackIds": batch}
            )

    async def extend(self, ack_ids: list[str]) -> None:
        await self.api.call(
            "POST",
            f"/v1/{self.subscription}:modifyAckDeadline",
            json={"ackIds": ack_ids, "ackDeadlineSeconds": ACK_DEADLINE_S},
        )

    async def run(
        self,
        sink: IonSink,
        max_records: int | None,
        max_duration: float | None,
        *,
        ack_now: bool,
        stop_when_empty: bool,
    ) -> tuple[list[str], list[str]]:
        """Pull into ``sink`` until a limit; (message ids, ack ids not yet acknowledged)."""
        start = self.ctx.clock()
        ids: list[str] = []
        pending: list[str] = []
        while True:
            if max_records is not None and len(ids) >= max_records:
                break
            elapsed = (self.ctx.clock() - start).total_seconds()
            if max_duration is not None and elapsed >= max_duration:
                break
            limit = PULL_MAX if max_records is None else min(PULL_MAX, max_records - len(ids))
            received = await self.pull(limit)
            if not received:
                if stop_when_empty:
                    break
                if not await self.ctx.sleep(EMPTY_PULL_WAIT_S):
                    break
                continue
            ack_ids = [str(r.get("ackId")) for r in received]
            if not ack_now:
                await self.extend(ack_ids)
            for item in received:
                await asyncio.to_thread(sink.write, incoming(item, self.serde))
                ids.append(str((item.get("message") or {}).get("messageId")))
            if ack_now:
                await self.ack(ack_ids)
            else:
                pending.extend(ack_ids)
        return ids, pending


class _ConsumeProps(PubSubConnection):
    subscription: Str
    autoCreateSubscription: BoolOrExpr = True
    maxRecords: IntOrExpr | None = None
    maxDuration: Duration | None = None
    serdeType: Str = "STRING"

    def limits(self, ctx: TaskContext) -> tuple[int | None, float | None]:
        if self.maxDuration is None and self.maxRecords is None:
            raise TaskError("'maxDuration' or 'maxRecords' must be set to avoid an infinite loop")
        return (
            render_int(ctx, self.maxRecords, "maxRecords"),
            render_seconds(ctx, self.maxDuration, "maxDuration"),
        )

    async def open(self, ctx: TaskContext, api: GoogleApi) -> Consumption:
        both = names(ctx, api, self.topic, self.subscription)
        consumption = Consumption(api, ctx, both["subscription"], serde_of(ctx, self.serdeType))
        if render_bool(ctx, self.autoCreateSubscription, "autoCreateSubscription", True):
            await consumption.create(both["topic"])
        return consumption


class Consume(ApiTask, _ConsumeProps):
    """Consume messages from a Pub/Sub subscription into an ION file."""

    family: ClassVar[str] = "gcp"

    type: Literal["io.kestra.plugin.gcp.pubsub.Consume"]

    async def execute(self, ctx: TaskContext) -> TaskOutcome:
        max_records, max_duration = self.limits(ctx)
        c.scratch_dir(ctx)  # the working directory exists
        sink = await IonSink.create(ctx)
        try:
            async with google_api(ctx, render_settings(ctx, self), PUBSUB) as api:
                consumption = await self.open(ctx, api)
                await consumption.run(
                    sink, max_records, max_duration, ack_now=True, stop_when_empty=False
                )
            count = sink.count
            uri = await sink.store(ctx, sink.path.name)
        except BaseException:
            await sink.discard()
            raise
        return TaskOutcome("SUCCESS", {"count": count, "uri": uri}, metrics={"records": count})


class Trigger(PollingTrigger, _ConsumeProps):
    """Start an execution with the messages a Pub/Sub subscription received."""

    family: ClassVar[str] = "gcp"

    type: Literal["io.kestra.plugin.gcp.pubsub.Trigger"]

    async def poll(self, ctx: PollContext) -> Poll | None:
        task = ctx.task
        max_records, max_duration = self.limits(task)
        settings = render_settings(task, self)
        c.scratch_dir(task)
        sink = await IonSink.create(task)
        try:
            async with google_api(task, settings, PUBSUB) as api:
                consumption = await self.open(task, api)
                ids, pending = await consumption.run(
                    sink, max_records, max_duration, ack_now=False, stop_when_empty=True
                )
            if not ids:
                await sink.discard()
                return None
            digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]
            ctx.bind(f"pubsub:{consumption.subscription}:{digest}")
            count = sink.count
            uri = await sink.store(task, sink.path.name)
        except BaseException:
            await sink.discard()
            raise
        task.log("DEBUG", f"Consumed '{count}' messaged.")

        async def acknowledge() -> None:
            async with google_api(task, settings, PUBSUB) as api:
                sub = consumption.subscription
                await Consumption(api, task, sub, consumption.serde).ack(pending)

        return Poll(f"pubsub:{consumption.subscription}:{digest}", {"count": count, "uri": uri},
                    after=acknowledge)  # fmt: skip


def trigger_message(message: dict[str, Any]) -> dict[str, Any]:
    """A Message as trigger variables (JSON): STRING data, which is bytes, as base64 text."""
    data = message.get("data")
    if isinstance(data, bytes):
        return {**message, "data": base64.b64encode(data).decode()}
    return message


class RealtimeTrigger(PollingTrigger, _ConsumeProps):
    """Start one execution per message a Pub/Sub subscription receives."""

    family: ClassVar[str] = "gcp"
    # Realtime: the subscription is pulled again this soon (Kestra streams; its ``interval``
    # is accepted and unused, as there).
    default_interval_s: ClassVar[float] = REALTIME_PULL_S

    type: Literal["io.kestra.plugin.gcp.pubsub.RealtimeTrigger"]

    def interval_seconds(self) -> float:
        return REALTIME_PULL_S

    def limits(self, ctx: TaskContext) -> tuple[int | None, float | None]:
        return render_int(ctx, self.maxRecords, "maxRecords"), None

    async def poll(self, ctx: PollContext) -> list[Poll] | None:
        task = ctx.task
        settings = render_settings(task, self)
        max_records, _ = self.limits(task)
        async with google_api(task, settings, PUBSUB) as api:
            consumption = await self.open(task, api)
            received = await consumption.pull(min(PULL_MAX, max_records or PULL_MAX))
            if not received:
                return None
            ack_ids = [str(r.get("ackId")) for r in received]
            await consumption.extend(ack_ids)
        sub = consumption.subscription
        polls = [
            Poll(
                f"pubsub:{sub}:{(item.get('message') or {}).get('messageId')}",
                trigger_message(incoming(item, consumption.serde)),
            )
            for item in received
        ]

        async def acknowledge() -> None:
            async with google_api(task, settings, PUBSUB) as api:
                await Consumption(api, task, sub, consumption.serde).ack(ack_ids)

        polls[-1].after = acknowledge
        return polls


PLUGINS: list[type[Any]] = [Publish, Consume, Trigger, RealtimeTrigger]
