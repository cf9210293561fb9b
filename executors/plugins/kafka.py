"""Kestra's ``io.kestra.plugin.kafka.Consume``: read Kafka records into an ION file.

What Kestra does (kestra-io/plugin-kafka, ``Consume``), and what this module ports:

- Properties: ``properties`` (required: ``bootstrap.servers`` and any client setting, see
  :mod:`executors.kafka_client`), ``serdeProperties`` (for registry serdes; accepted, unused),
  ``topic`` (a string or a list) or ``topicPattern`` (a regex; exactly one of the two),
  ``partitions`` (a list of partition numbers), ``groupId`` (or ``group.id`` in
  ``properties``; required with ``topicPattern``), ``keyDeserializer`` / ``valueDeserializer``
  (STRING by default; the serde types of :mod:`executors.kafka_client`), ``since`` (an ISO-8601
  date-time), ``pollDuration`` (PT5S), ``maxRecords``, ``maxDuration``, ``headerFilters`` (a
  map: only records whose last header of each name has exactly that UTF-8 value are kept),
  ``onSerdeError`` (``{type: SKIPPED | STORE | DLQ, topic}``), ``groupType`` (CONSUMER).
- Auto-commit is off and ``isolation.level`` is ``read_committed`` unless ``properties`` say
  otherwise. Where it reads from: ``topic`` + ``partitions``: those partitions of each topic,
  from the beginning (or ``since``); ``topic`` without a group: every partition, from the
  beginning (or ``since``); ``topic`` with a group: the group's committed offsets (else
  ``auto.offset.reset``); ``topicPattern``: the group, on every matching topic.
- It polls (each poll waits up to ``pollDuration``) until a poll returns nothing, or
  ``maxRecords`` records were read, or ``maxDuration`` has passed. Each record becomes Kestra's
  ``Message`` in the file: ``{key, value, topic, headers, partition, timestamp, offset}``,
  ``headers`` a list of one-entry maps ``[{name: value}]`` (the UTF-8 text of each header, in
  order; Jackson writes a ``Pair`` so), ``timestamp`` an ION timestamp (ms).
- The file is put into internal storage, and only then are the group's offsets committed
  (no group: nothing to commit). Outputs: ``messagesCount``, ``uri``; metric ``records``.

What differs: ``maxRecords`` is exact (Kestra stops after the poll that went past it, and
writes and commits that whole poll); ``maxDuration`` bounds the whole run (Kestra compares the
elapsed time with ``pollDuration`` instead); a group waits for its partitions before an empty
poll counts (up to :data:`JOIN_TIMEOUT_S`: a broker like Tansu takes seconds to balance a
group); ``onSerdeError`` acts on the one record that does not deserialize (SKIPPED drops it
with a warning, STORE keeps it with its raw text as ``value``, DLQ produces its raw bytes to
``onSerdeError.topic``) and consuming goes on, where Kestra abandons the whole run at that
record (SKIPPED: no outputs; STORE: the file is the raw text; DLQ: sends it on) without
committing, so the next run meets the same record again; without ``onSerdeError`` such a
record fails the task, naming its topic, partition and offset. Not provided: registry serdes
(``AVRO``, ``PROTOBUF``, ``schemaRegistryVendor``), ``groupType: SHARE`` (Kafka share groups,
which librdkafka does not implement).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from executors.base import TaskContext, TaskError, TaskOutcome
from executors.data import IonSink
from executors.kafka_client import SerdeError, client_config, deserialize, serde_type
from executors.plugin import TaskPlugin, render_int, render_map, render_seconds, render_str
from schemas.flow.common import Duration, FlowModel, IntOrExpr, Str, format_duration

# A consumer group on Tansu is balanced after about half of session.timeout.ms: wait that long
# for partitions before an empty poll may end the run, and fail past it.
JOIN_TIMEOUT_S = 60.0
# Tansu takes half the session timeout to form a group (SERVICES.md); 6 s keeps joins short.
SESSION_TIMEOUT_MS = "6000"
# Metadata, offset look-ups and the final commit: a live broker answers in milliseconds.
REQUEST_TIMEOUT_S = 30.0
# Records drained at once after a poll found one (what is already fetched).
DRAIN_BATCH = 500
# A DLQ produce must be acknowledged in this time.
DLQ_TIMEOUT_S = 30.0
_NOT_ERRORS = (KafkaError._PARTITION_EOF,)


class OnSerdeError(FlowModel):
    """What to do with a record whose key or value does not deserialize."""

    type: Literal["SKIPPED", "STORE", "DLQ"] | Str = "SKIPPED"
    topic: Str | None = None


class Consume(TaskPlugin):
    """Consume records from Kafka topics into an internal storage ION file."""

    family: ClassVar[str] = "kafka"

    type: Literal["io.kestra.plugin.kafka.Consume"]
    properties: dict[str, Any] | Str
    serdeProperties: dict[str, Any] | Str | None = None
    topic: Str | list[Str] | None = None
    topicPattern: Str | None = None
    partitions: list[IntOrExpr] | Str | None = None
    groupId: Str | None = None
    groupType: Literal["CONSUMER", "SHARE"] | Str = "CONSUMER"
    acknowledgeType: Str | None = None
    keyDeserializer: Str = "STRING"
    valueDeserializer: Str = "STRING"
    since: Str | None = None
    pollDuration: Duration = "PT5S"
    maxRecords: IntOrExpr | None = None
    maxDuration: Duration | None = None
    headerFilters: dict[str, Any] | Str | None = None
    onSerdeError: OnSerdeError | None = None

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        plan = self._plan(ctx)
        sink = await IonSink.create(ctx)
        consumer: Consumer | None = None
        try:
            consumer, counts = await asyncio.to_thread(_consume, plan, sink, ctx)
            if ctx.cancelled.is_set():
                return TaskOutcome(state="KILLED")
            uri = await sink.store(ctx, "consume.ion")
            if plan.commit:
                # Only now: the records are safe in internal storage.
                await asyncio.to_thread(_commit, consumer, plan)
        finally:
            await sink.discard()
            if consumer is not None:
                await asyncio.to_thread(consumer.close)
        total = sum(counts.values())
        ctx.log("INFO", f"Consumed {total} records from {', '.join(sorted(counts)) or plan.what}")
        return TaskOutcome(
            state="SUCCESS",
            outputs={"messagesCount": total, "uri": uri},
            metrics={"records": total},
        )

    def _plan(self, ctx: TaskContext) -> _Plan:
        if (render_str(ctx, self.groupType, "groupType") or "CONSUMER").upper() != "CONSUMER":
            raise TaskError(
                "groupType SHARE (Kafka share groups) is not supported: librdkafka has no share "
                "consumer; use groupType CONSUMER with a groupId"
            )
        config = client_config(ctx, self.properties)
        if not config.get("bootstrap.servers"):
            raise TaskError("properties.bootstrap.servers is required")
        topics = self._topics(ctx)
        pattern = render_str(ctx, self.topicPattern, "topicPattern")
        if not topics and not pattern:
            raise TaskError(
                "Invalid Configuration: You must configure one of the following two settings: "
                "`topic` or `topicPattern`."
            )
        if topics and pattern:
            raise TaskError(
                "Invalid Configuration: Both `topic` and `topicPattern` was configured. "
                "You must configure only one of the following two settings."
            )
        group = render_str(ctx, self.groupId, "groupId") or config.get("group.id")
        if pattern and not group:
            raise TaskError(
                "Invalid Configuration: `groupId` cannot be null when `topicPattern` is configured."
            )
        if pattern:
            try:
                re.compile(pattern)
            except re.error:
                raise TaskError(f"Invalid regex for `topicPattern`: {pattern}") from None
        partitions = self._partitions(ctx)
        config["group.id"] = group or f"headwater-consume-{ctx.task_run_id}"
        config.setdefault("enable.auto.commit", "false")
        config.setdefault("isolation.level", "read_committed")
        config.setdefault("session.timeout.ms", SESSION_TIMEOUT_MS)
        poll_s = render_seconds(ctx, self.pollDuration, "pollDuration", 5.0) or 5.0
        max_duration = render_seconds(ctx, self.maxDuration, "maxDuration")
        max_records = render_int(ctx, self.maxRecords, "maxRecords")
        serde = self.onSerdeError
        on_error = (render_str(ctx, serde.type, "onSerdeError.type") or "").upper() if serde else ""
        if on_error not in ("", "SKIPPED", "STORE", "DLQ"):
            raise TaskError(f"onSerdeError.type {on_error!r}: use SKIPPED, STORE or DLQ")
        dlq = render_str(ctx, serde.topic, "onSerdeError.topic") if serde else None
        if on_error == "DLQ" and not dlq:
            raise TaskError("onSerdeError.topic is required when onSerdeError.type is DLQ")
        filters = render_map(ctx, self.headerFilters, "headerFilters")
        key_kind = render_str(ctx, self.keyDeserializer, "keyDeserializer")
        value_kind = render_str(ctx, self.valueDeserializer, "valueDeserializer")
        return _Plan(
            config=config,
            topics=topics,
            pattern=pattern,
            partitions=partitions,
            subscribe=bool(pattern or (group and not partitions)),
            commit=group is not None,
            since_ms=_since(render_str(ctx, self.since, "since")),
            key_kind=serde_type(key_kind, "keyDeserializer"),
            value_kind=serde_type(value_kind, "valueDeserializer"),
            poll_s=max(poll_s, 0.0),
            max_records=max_records,
            max_duration=max_duration,
            header_filters={str(k): str(v) for k, v in filters.items()},
            on_serde_error=on_error,
            dlq_topic=dlq,
        )

    def _topics(self, ctx: TaskContext) -> list[str]:
        if self.topic is None:
            return []
        rendered = ctx.render(self.topic)
        items = rendered if isinstance(rendered, list) else [rendered]
        return [str(t) for t in items if t not in (None, "")]

    def _partitions(self, ctx: TaskContext) -> list[int]:
        if self.partitions is None:
            return []
        rendered = ctx.render(self.partitions)
        items = rendered if isinstance(rendered, list) else str(rendered).split(",")
        try:
            return [int(str(p).strip()) for p in items if str(p).strip()]
        except ValueError:
            raise TaskError(
                f"property 'partitions': expected partition numbers, got {rendered!r}"
            ) from None


@dataclass(slots=True)
class _Plan:
    config: dict[str, str]
    topics: list[str]
    pattern: str | None
    partitions: list[int]
    subscribe: bool
    commit: bool
    since_ms: int | None
    key_kind: str
    value_kind: str
    poll_s: float
    max_records: int | None
    max_duration: float | None
    header_filters: dict[str, str]
    on_serde_error: str
    dlq_topic: str | None
    assigned: list[bool] = field(default_factory=lambda: [False])

    @property
    def what(self) -> str:
        return ", ".join(self.topics) or f"/{self.pattern}/"

    @property
    def server(self) -> str:
        return self.config["bootstrap.servers"]


def _since(text: str | None) -> int | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise TaskError(f"property 'since': {text!r} is not an ISO-8601 date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _consume(plan: _Plan, sink: IonSink, ctx: TaskContext) -> tuple[Consumer, dict[str, int]]:
    """Read records into ``sink`` until a stop condition (runs in a thread)."""
    try:
        consumer = Consumer(plan.config)
    except (KafkaException, ValueError, TypeError) as exc:
        raise TaskError(f"Kafka consumer for {plan.server}: {_reason(exc)}") from None
    try:
        counts = _read(consumer, plan, sink, ctx)
    except BaseException:
        consumer.close()
        raise
    return consumer, counts


def _read(consumer: Consumer, plan: _Plan, sink: IonSink, ctx: TaskContext) -> dict[str, int]:
    started = time.monotonic()
    _start(consumer, plan)
    counts: dict[str, int] = {}
    dlq: Producer | None = None
    total = 0
    try:
        while not ctx.cancelled.is_set():
            wait = plan.poll_s
            if plan.max_duration is not None:
                remaining = plan.max_duration - (time.monotonic() - started)
                if remaining <= 0:
                    break
                wait = min(wait, remaining)
            was_assigned = plan.assigned[0]
            first = consumer.poll(wait)
            if first is None:
                if was_assigned:
                    break  # an empty poll: Kestra's end of the topic
                if time.monotonic() - started > JOIN_TIMEOUT_S:
                    raise TaskError(
                        f"Kafka consumer group {plan.config['group.id']} got no partition of "
                        f"{plan.what} on {plan.server} within {JOIN_TIMEOUT_S:.0f} s"
                    )
                continue
            plan.assigned[0] = True
            limit = DRAIN_BATCH
            if plan.max_records is not None:
                limit = max(plan.max_records - total - 1, 0)
            batch = [first, *(consumer.consume(limit, 0) if limit else [])]
            for msg in batch:
                row = _row(msg, plan, ctx)
                if row is None:
                    continue
                if row is _DLQ:
                    dlq = dlq or _dlq_producer(plan)
                    _send_dlq(dlq, plan, msg)
                    continue
                sink.write(row)
                total += 1
                counts[row["topic"]] = counts.get(row["topic"], 0) + 1
            if plan.max_records is not None and total >= plan.max_records:
                break
    finally:
        if dlq is not None:
            dlq.flush(DLQ_TIMEOUT_S)
    return counts


def _start(consumer: Consumer, plan: _Plan) -> None:
    def on_assign(_consumer: Consumer, _partitions: list[TopicPartition]) -> None:
        plan.assigned[0] = True

    try:
        if plan.subscribe:
            targets = [f"^{plan.pattern.lstrip('^')}"] if plan.pattern else plan.topics
            consumer.subscribe(targets, on_assign=on_assign)
            return
        if plan.partitions:
            wanted = [TopicPartition(t, p) for t in plan.topics for p in plan.partitions]
        else:
            wanted = [
                TopicPartition(t, p) for t in plan.topics for p in _partitions_of(consumer, t, plan)
            ]
        start = OFFSET_BEGINNING if plan.since_ms is None else plan.since_ms
        positions = [TopicPartition(tp.topic, tp.partition, start) for tp in wanted]
        if plan.since_ms is not None:
            found = consumer.offsets_for_times(positions, REQUEST_TIMEOUT_S)
            positions = [
                TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END)
                for tp in found
            ]
        consumer.assign(positions)
        plan.assigned[0] = True
    except KafkaException as exc:
        raise TaskError(
            f"Kafka consumer for {plan.what} on {plan.server}: {_reason(exc)}"
        ) from None


def _partitions_of(consumer: Consumer, topic: str, plan: _Plan) -> list[int]:
    metadata = consumer.list_topics(topic, timeout=REQUEST_TIMEOUT_S)
    info = metadata.topics.get(topic)
    if info is None or info.error is not None or not info.partitions:
        raise TaskError(f"Kafka topic {topic!r} does not exist on {plan.server}")
    return sorted(info.partitions)


_DLQ = object()


def _row(msg: Message, plan: _Plan, ctx: TaskContext) -> Any:
    """The Message row of a record; None to skip it, _DLQ to send it to the DLQ topic."""
    error = msg.error()
    if error is not None:
        if error.code() in _NOT_ERRORS:
            return None
        if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise TaskError(f"Kafka topic {plan.what} does not exist on {plan.server}")
        raise TaskError(f"Kafka consume from {plan.what} on {plan.server}: {error.str()}")
    raw_headers: Any = msg.headers() or []
    headers = [(str(k), _bytes(v)) for k, v in raw_headers]
    if plan.header_filters and not _headers_match(headers, plan.header_filters):
        return None
    where = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
    try:
        key = deserialize(msg.key(), plan.key_kind)
        value = deserialize(msg.value(), plan.value_kind)
    except SerdeError as exc:
        if not plan.on_serde_error:
            raise TaskError(
                f"record {where}: {exc} (set onSerdeError to skip such records)"
            ) from None
        ctx.log("WARN", f"Skipping consume on serde error: record {where}: {exc}")
        if plan.on_serde_error == "SKIPPED":
            return None
        if plan.on_serde_error == "DLQ":
            return _DLQ
        key, value = _text(msg.key()), exc.raw
    _kind, stamp = msg.timestamp()
    return {
        "key": key,
        "value": value,
        "topic": msg.topic(),
        "headers": [{k: _text(v)} for k, v in headers],
        "partition": msg.partition(),
        "timestamp": datetime.fromtimestamp(stamp / 1000, UTC) if stamp >= 0 else None,
        "offset": msg.offset(),
    }


def _bytes(value: Any) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", "replace")


def _headers_match(headers: list[tuple[str, bytes | None]], filters: Mapping[str, str]) -> bool:
    last = {k: _text(v) for k, v in headers}  # the last header of each name wins
    return all(last.get(name) == value for name, value in filters.items())


def _dlq_producer(plan: _Plan) -> Producer:
    keep = {k: v for k, v in plan.config.items() if not k.startswith(_CONSUMER_ONLY)}
    try:
        return Producer(keep)
    except KafkaException as exc:
        raise TaskError(f"Kafka DLQ producer for {plan.server}: {_reason(exc)}") from None


_CONSUMER_ONLY = (
    "group.", "enable.auto.", "auto.", "isolation.level", "session.timeout", "fetch.",
    "max.partition.fetch", "heartbeat.", "partition.assignment", "enable.partition.eof",
)  # fmt: skip


def _send_dlq(producer: Producer, plan: _Plan, msg: Message) -> None:
    assert plan.dlq_topic is not None
    failed: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            failed.append(str(err))

    producer.produce(
        plan.dlq_topic,
        value=msg.value(),
        key=msg.key(),
        headers=msg.headers(),
        on_delivery=delivered,
    )
    if producer.flush(DLQ_TIMEOUT_S) or failed:
        raise TaskError(
            f"Kafka DLQ topic {plan.dlq_topic} on {plan.server}: "
            f"{failed[0] if failed else f'not acknowledged in {format_duration(DLQ_TIMEOUT_S)}'}"
        )


def _commit(consumer: Consumer | None, plan: _Plan) -> None:
    assert consumer is not None
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as exc:
        if exc.args and getattr(exc.args[0], "code", lambda: None)() == KafkaError._NO_OFFSET:
            return  # nothing was consumed: nothing to commit
        raise TaskError(
            f"Kafka commit of group {plan.config['group.id']} on {plan.server} failed: "
            f"{_reason(exc)} (the records are in the file; the next run reads them again)"
        ) from None


def _reason(exc: BaseException) -> str:
    first = exc.args[0] if exc.args else exc
    return first.str() if isinstance(first, KafkaError) else str(first)


PLUGINS = [Consume]
