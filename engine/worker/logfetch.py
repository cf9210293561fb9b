"""log.Fetch on a real worker: an execution's logs read back from hw.logs.

Why hw.logs and not the Postgres read model: the topic is the source of truth and is
consistent for the case Fetch exists for. Every earlier task's lines were acknowledged by the
broker before its TaskResult was sent (engine.worker.run), so a Fetch later in the same
execution finds all of them; the read model may lag the topic (the projector batches), and a
worker would need a database connection for one task type. The executor's own lines (flowable
tasks, expression warnings) are on hw.logs too (engine.bus.wire.log_record_from_event), as in
Kestra's log repository.

Cost: hw.logs is keyed by execution id, but which partition a key lands on is the producer's
partitioner's business (librdkafka's CRC32 by default, murmur2 on Java clients), so every
partition is read, from the execution's start (``offsets_for_times``, which on Tansu returns
a batch's base offset: earlier, so still complete) to the end. A Fetch therefore reads the
whole topic's traffic since the execution started: fine for the minutes-long flows Fetch is
used in, slow for a days-old execution on a busy cluster.

End of the topic: the high watermark is read first, then records are read until every
partition reached it *and* one poll came back empty (Tansu reports a watermark below the real
end, SERVICES.md, so the watermark alone could stop early).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from engine.bus.wire import LOGS_PURGED, decode_log
from engine.settings import KafkaSettings
from executors.base import LEVELS, LogLevel, LogLine, TaskError
from schemas.envelope import EnvelopeError, decode

# Reading starts this much before the execution's start: the clocks of the producer (which
# stamps records) and of the executor (which stamps startDate) may disagree a little.
CLOCK_SKEW_S = 60.0
# A Fetch gives up after this long (a broker outage, or an execution with huge logs) and the
# task fails naming the cause, rather than holding a worker slot for ever.
FETCH_BUDGET_S = 60.0
# Metadata and watermark calls wait this long.
_REQUEST_S = 10.0
_POLL_MAX = 1000


def _parse(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def uuid7_time(execution_id: str) -> datetime | None:
    """The creation time inside a uuid7 execution id (API-made ids are uuid7), else None."""
    try:
        value = uuid.UUID(execution_id)
    except ValueError:
        return None
    if value.version != 7:
        return None
    return datetime.fromtimestamp((value.int >> 80) / 1000, UTC)


class TopicLogSource:
    """Reads hw.logs; one per worker (each fetch makes its own short-lived consumer)."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self.kafka = kafka
        self.topic = topic

    def for_job(self, execution_id: str, context: dict[str, Any]) -> JobLogSource:
        execution = context.get("execution")
        start = _parse(execution.get("startDate")) if isinstance(execution, dict) else None
        return JobLogSource(self, execution_id, start)

    async def fetch_since(
        self,
        execution_id: str,
        since: datetime | None,
        min_level: LogLevel,
        task_ids: list[str] | None,
    ) -> list[LogLine]:
        return await asyncio.to_thread(self._read, execution_id, since, min_level, task_ids)

    # --------------------------------------------------------------- blocking (a thread)

    def _read(
        self,
        execution_id: str,
        since: datetime | None,
        min_level: LogLevel,
        task_ids: list[str] | None,
    ) -> list[LogLine]:
        consumer = Consumer(
            {
                **self.kafka.client_config("logfetch"),  # bootstrap.servers, client.id, TLS/SASL
                "group.id": f"{self.kafka.topic_prefix}logfetch",  # assign() only: no group
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "fetch.wait.max.ms": self.kafka.fetch_wait_max_ms,
            }
        )
        try:
            return self._scan(consumer, execution_id, since, min_level, task_ids)
        except KafkaException as exc:
            raise TaskError(f"log.Fetch could not read {self.topic}: {exc}") from exc
        finally:
            consumer.close()

    def _scan(
        self,
        consumer: Consumer,
        execution_id: str,
        since: datetime | None,
        min_level: LogLevel,
        task_ids: list[str] | None,
    ) -> list[LogLine]:
        metadata = consumer.list_topics(self.topic, timeout=_REQUEST_S)
        partitions = sorted(metadata.topics[self.topic].partitions)
        starts = [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions]
        if since is not None:
            millis = int((since - timedelta(seconds=CLOCK_SKEW_S)).timestamp() * 1000)
            wanted = [TopicPartition(self.topic, p, millis) for p in partitions]
            found = consumer.offsets_for_times(wanted, timeout=_REQUEST_S)
            # -1: no record that late yet; reading from the beginning is then cheap anyway.
            starts = [tp if tp.offset >= 0 else s for tp, s in zip(found, starts, strict=True)]
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(self.topic, p), _REQUEST_S)[1]
            for p in partitions
        }
        consumer.assign(starts)
        at_end = {p for p in partitions if ends[p] <= 0}
        seen: set[str] = set()
        lines: list[LogLine] = []
        deadline = time.monotonic() + FETCH_BUDGET_S
        quiet_s = max(0.05, 4 * self.kafka.fetch_wait_max_ms / 1000)
        while True:
            if time.monotonic() > deadline:
                raise TaskError(f"log.Fetch did not finish reading {self.topic} in time")
            batch = consumer.consume(_POLL_MAX, quiet_s)
            if not batch and len(at_end) == len(partitions):
                return lines
            for msg in batch:
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(msg.partition() or 0)
                        continue
                    raise KafkaException(error)
                offset, partition = msg.offset() or 0, msg.partition() or 0
                if offset + 1 >= ends[partition]:
                    at_end.add(partition)
                purge = _purge(msg.value(), execution_id)
                if purge is not None:  # a LogsPurged record: the lines before it are gone
                    lines = [line for line in lines if not purge(line)]
                    continue
                line = _line(msg.value(), execution_id, seen)
                if line is not None and _wanted(line, min_level, task_ids):
                    lines.append(line)


def _purge(value: bytes | None, execution_id: str) -> Callable[[LogLine], bool] | None:
    """The test of a LogsPurged record of this execution (engine.worker.purges), else None."""
    if not value or LOGS_PURGED.encode() not in value:
        return None
    try:
        env = decode(value)
    except EnvelopeError:
        return None
    p = env.payload
    if env.type != LOGS_PURGED or p.get("execution_id") != execution_id:
        return None
    levels = p.get("levels")
    start, end = _parse(p.get("start")), _parse(p.get("end"))

    def purged(line: LogLine) -> bool:
        return (
            (not isinstance(levels, list) or line.level in levels)
            and (start is None or line.timestamp >= start)
            and (end is None or line.timestamp <= end)
        )

    return purged


def _line(value: bytes | None, execution_id: str, seen: set[str]) -> LogLine | None:
    if not value:
        return None
    try:
        payload = decode_log(value)
    except EnvelopeError:
        return None
    if payload.get("execution_id") != execution_id:
        return None
    log_id = str(payload.get("log_id"))
    if log_id in seen:  # a redelivered task's lines arrive twice with the same ids
        return None
    seen.add(log_id)
    level = str(payload.get("level", "INFO")).upper()
    return LogLine(
        execution_id=execution_id,
        task_run_id=str(payload.get("task_run_id") or ""),
        task_id=payload.get("task_id"),
        attempt=int(payload.get("attempt") or 0),
        level=level if level in LEVELS else "INFO",  # type: ignore[arg-type]
        message=str(payload.get("message", "")),
        timestamp=_parse(payload.get("timestamp")) or datetime.now(UTC),
    )


def _wanted(line: LogLine, min_level: LogLevel, task_ids: list[str] | None) -> bool:
    if LEVELS[line.level] < LEVELS[min_level]:
        return False
    return task_ids is None or line.task_id in task_ids


@dataclass(frozen=True, slots=True)
class JobLogSource:
    """The LogSource of one job: knows where its own execution's logs start."""

    source: TopicLogSource
    execution_id: str
    start: datetime | None

    async def fetch(
        self, execution_id: str, min_level: LogLevel, task_ids: list[str] | None
    ) -> list[LogLine]:
        since = self.start if execution_id == self.execution_id else uuid7_time(execution_id)
        return await self.source.fetch_since(execution_id, since, min_level, task_ids)
