"""Read partitions of hw.executor-state from the beginning to their end.

The end is not taken from the high watermark alone: Tansu reports the last batch's base
offset + 1 (SERVICES.md), which would stop short. Instead a partition counts as read once the
consumer's position has passed the reported watermark and a poll brings nothing new for the
whole quiet period; the previous owner's snapshots were all acknowledged before it let the
partition go, so nothing that matters is still arriving.

Right after a broker restart the watermark call may fail or answer -1 (unknown), and fetches
may come back empty for a while. Ending the restore then would leave the executor with too few
executions and it would drop their commands. So a watermark must be *known* (the call is
retried until :data:`WATERMARK_DEADLINE_S`), and every partition must reach it before
:data:`RESTORE_DEADLINE_S`; otherwise :class:`RestoreIncomplete` is raised: the assignment
handler fails, the consumer surfaces it, the executor crashes loudly and its supervisor starts
it again, instead of running on a partial state.

One exception, measured (tests/chaos/probe_durable.py): a durable (S3) Tansu reserves a batch's
offsets (moves the watermark) before it stores the batch. Killed in between, it leaves offsets
up to the watermark that hold nothing, for good, and a fetch there answers nothing, so a position
in such a gap never moves although snapshots may follow it. So when fetches keep answering
nothing for :data:`GAP_S` while the consumer reports no error, a fresh consumer finds the next
offset the broker serves (:meth:`AsyncConsumer.skip_gap`) and reading goes on from there; when
none is served up to the watermark, the rest of the partition is such a gap (a warning).
"""

from __future__ import annotations

import asyncio
import logging
import time

from confluent_kafka import KafkaException, TopicPartition

from engine.bus.consumer import AsyncConsumer, Record
from engine.errors import BusError

log = logging.getLogger(__name__)

# A poll of this long bringing nothing means the partitions are read to their end (the broker
# answers a fetch within fetch.wait.max.ms when there is data).
QUIET_S = 0.3
# Records per poll while restoring; snapshots are a few KB.
RESTORE_BATCH = 5000
# A broker that just restarted answers metadata within a few seconds; past this it is not
# coming back soon and a crash (supervised restart) is better than a guess.
WATERMARK_DEADLINE_S = 20.0
# Pause between two watermark attempts: long enough not to hammer a recovering broker.
WATERMARK_RETRY_S = 0.5
# One watermark request; librdkafka's own default is -1 (forever).
WATERMARK_CALL_S = 5.0
# The whole restore must end well inside the consumer's rebalance handler limit (60 s).
RESTORE_DEADLINE_S = 45.0
# Fetches answer within fetch.wait.max.ms and a batch being stored lands within milliseconds:
# this long with empty fetches and no client error means the offsets hold nothing (a gap).
GAP_S = 2.0


class RestoreIncomplete(BusError):
    """The state of some partitions could not be read to its known end."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retriable=False)


async def read_partitions(
    consumer: AsyncConsumer, topic: str, partitions: set[int]
) -> list[Record]:
    """Every record of ``topic``'s ``partitions``, in offset order per partition. Raises
    :class:`RestoreIncomplete` rather than return a state it could not read to its end."""
    await consumer.assign({(topic, p): 0 for p in partitions})
    try:
        return await _read(consumer, topic, partitions)
    finally:
        # Unassigned, the restorer stops fetching (and buffering) the state topic until the
        # next restore.
        await consumer.unassign()


async def _read(consumer: AsyncConsumer, topic: str, partitions: set[int]) -> list[Record]:
    started = time.monotonic()
    marks = await _watermarks(consumer, topic, partitions)
    records: list[Record] = []
    position = {p: 0 for p in partitions}
    quiet_since: float | None = None  # start of the current run of empty, error-free polls
    while True:
        batch = await consumer.consume(RESTORE_BATCH, QUIET_S)
        for r in batch:
            records.append(r)
            position[r.partition] = r.offset + 1
        behind = {p: (position[p], marks[p]) for p in partitions if position[p] < marks[p]}
        if not batch and not behind:
            return records
        now = time.monotonic()
        if batch:
            quiet_since = None
        elif quiet_since is None or (consumer.last_error_at or 0.0) >= quiet_since:
            quiet_since = now  # the first empty poll, or the broker failed meanwhile
        elif now - quiet_since >= GAP_S:
            for p, (pos, mark) in behind.items():
                served = await consumer.skip_gap((topic, p), pos, mark)
                if served is None:
                    log.warning(
                        "restore of %s[%d]: offsets %d..%d hold nothing (a broker crash "
                        "reserved them and stored nothing): the partition is read",
                        topic, p, pos, mark - 1,
                    )  # fmt: skip
                    position[p] = mark
                elif served == pos:  # served, but not to our short fetches
                    for r in await consumer.read_patiently((topic, p), pos, mark):
                        records.append(r)
                        position[p] = r.offset + 1
            quiet_since = None
        if now - started > RESTORE_DEADLINE_S:
            raise RestoreIncomplete(
                f"restore of {topic}: partitions {sorted(behind)} not read to their end after "
                f"{RESTORE_DEADLINE_S} s (position, watermark): {behind}"
            )


async def _watermarks(consumer: AsyncConsumer, topic: str, partitions: set[int]) -> dict[int, int]:
    """A lower bound of each partition's end (exact on Kafka, too low on Tansu), retried
    until the broker knows it: -1 or an error is "unknown", never "empty"."""
    client = consumer._client()  # read-only call the bus does not wrap yet
    deadline = time.monotonic() + WATERMARK_DEADLINE_S

    def call(missing: set[int], out: dict[int, int]) -> str | None:
        for p in sorted(missing):
            try:
                _, high = client.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=WATERMARK_CALL_S
                )
            except KafkaException as exc:
                return f"{topic}[{p}]: {exc}"
            if high < 0:
                return f"{topic}[{p}]: watermark unknown ({high})"
            out[p] = high
        return None

    marks: dict[int, int] = {}
    while True:
        problem = await asyncio.to_thread(call, partitions - marks.keys(), marks)
        if problem is None:
            return marks
        if time.monotonic() > deadline:
            raise RestoreIncomplete(
                f"restore: no watermark after {WATERMARK_DEADLINE_S} s: {problem}"
            )
        log.warning("restore: %s; retrying", problem)
        await asyncio.sleep(WATERMARK_RETRY_S)
