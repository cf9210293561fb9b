"""The stall check of a consumer: partitions whose position does not move although records
wait, and how reading goes on there.

Every :data:`STALL_CHECK_S` a consumer compares, per assigned partition, its position with the
high watermark. A partition behind at two checks in a row, at the same position, is stalled,
and a fresh consumer with a patient fetch wait tells why (:func:`engine.bus.gaps.next_served`):

- **a gap**: offsets a crashed broker reserved and never filled; the consumer is sought past
  them (nothing was lost: they were never acknowledged).
- **served, but not to this consumer's short fetches**: Tansu in S3 mode serves a batch it
  reads back from storage only to a fetch that waits long enough (measured after a durable
  restart: fresh readers with a 5 ms wait received nothing at such offsets for 3 s; with
  100 ms they read them all). The records are read patiently
  (:meth:`AsyncConsumer.read_patiently`) and handed out as if the consumer had read them;
  for a minute after that the check runs every second (:data:`PATIENT_CHECK_S`). The remedy
  is a longer fetch wait (``HEADWATER_KAFKA__FETCH_WAIT_MAX_MS``, 100 ms for a durable Tansu):
  this keeps a consumer with a too-short one reading, slowly.
- served to a patient read once already at that very position, and still nothing: raise
  :class:`BusError` (supervised, the component restarts with a new client).

On Tansu the high watermark is the last batch's base offset + 1 (SERVICES.md): a position
below it still means at least one unread batch, so the test is safe there. Per partition: a
consumer busy with some partitions can be stalled on others.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import TYPE_CHECKING

from confluent_kafka import Consumer, KafkaException, TopicPartition

from engine.errors import BusError

if TYPE_CHECKING:
    from engine.bus.consumer import AsyncConsumer, Partition, Record

log = logging.getLogger(__name__)

# How often a consumer looks for stalled partitions.
STALL_CHECK_S = 5.0
# How often a dozing consumer looks for records that waited while it dozed (its listening
# windows too short for the broker: it listens longer then). Each check asks the broker for
# every assigned partition's watermark: at STALL_CHECK_S, a dozing dev stack's ~13 consumers
# sent more requests than all their listening windows together.
DOZING_CHECK_S = 30.0
# A consumer that just woke with records hands them out first; a check due then runs this
# much later (it asks the broker for every partition's watermark: ~50 ms).
WOKEN_DEFER_S = 1.0
# Checks further apart than this (the caller did not poll meanwhile: a long batch, a database
# outage) prove nothing about progress: the next check starts afresh.
STALL_CHECK_GAP_S = 3 * STALL_CHECK_S
# One watermark/position/committed request of the check.
STALL_CALL_S = 5.0
# The watermarks come from the client's last fetch responses (no request): asking the broker
# for each assigned partition's took ~6 ms per partition on Tansu, ~100 ms for 16 partitions,
# and held the poll that ran the check (the ~100-200 ms p99 of trigger latency and projection
# lag). The broker is asked anyway while dozing (nothing fetched), for a partition whose
# watermark the client does not know yet, and at least this often, in case fetches stopped
# answering at all (then the cached watermark would never move).
FRESH_CHECK_S = 30.0
# After a patient read, the broker is likely to serve the next batches the same way (a fetch
# wait too short for it): check this often for this long, so a consumer that can only read
# patiently still keeps up within seconds instead of one batch per two slow checks.
PATIENT_CHECK_S = 1.0
PATIENT_MODE_S = 60.0


def _now() -> float:
    return time.monotonic()


class StallCheck:
    """The stall check's memory for one consumer; :meth:`run` after each poll."""

    def __init__(self, reader: AsyncConsumer) -> None:
        self._reader = reader
        self._checked_at = 0.0
        self._saturated = False  # a poll since the last check came back full
        self._behind: dict[Partition, int] = {}  # partition -> position seen behind last time
        self._patient_at: dict[Partition, int] = {}  # where a patient read started last
        self._patient_until = 0.0  # checks every PATIENT_CHECK_S until then
        self._fresh_at = 0.0  # when the broker itself was last asked for the watermarks

    def polled(self, records: int, max_records: int) -> None:
        """A full batch: the caller, not the client, sets the pace (no verdict this time)."""
        self._saturated = self._saturated or (records > 0 and records >= max_records)

    def restart(self) -> None:
        """The consumer woke from a doze with records: a check due now waits a moment, off
        the path of those first records."""
        self._checked_at = max(self._checked_at, _now() - STALL_CHECK_S + WOKEN_DEFER_S)

    def forget(self, partitions: list[Partition]) -> None:
        """Partitions taken away from the consumer."""
        for p in partitions:
            self._behind.pop(p, None)
            self._patient_at.pop(p, None)

    async def run(self, client: Consumer) -> list[Record]:
        """Check if it is time; the records read patiently for stalled partitions (the
        client is sought past them), to hand out before the client's own."""
        reader = self._reader
        now = _now()
        since = now - self._checked_at
        every = PATIENT_CHECK_S if now < self._patient_until else STALL_CHECK_S
        if reader.dozing:
            every = max(every, DOZING_CHECK_S)
        if not reader.assigned or since < every:
            return []
        self._checked_at = now
        if not reader.dozing and (since > STALL_CHECK_GAP_S or self._saturated):
            # No verdict on this interval: the caller polled too seldom or took full batches
            # (a busy worker takes one job per free slot), so an unmoved position proves
            # nothing about the client.
            self._behind = {}
            self._saturated = False
            return []
        parts = sorted(reader.assigned)
        cached = not reader.dozing and now - self._fresh_at < FRESH_CHECK_S
        if not cached:
            self._fresh_at = now
        try:
            found = await reader.call_client(
                "check for stalled partitions",
                partial(_ends, client, parts, dict(reader.sought), cached=cached),
            )
        except BusError as exc:
            log.warning("consumer %s: stall check failed: %s", reader.group_id, exc)
            return []  # the broker is still away: check again later
        behind = {p: (pos, high) for p, pos, high in found if pos < high}
        if behind and reader.dozing:
            reader.listen_longer()
            return []
        stalled = {p: v for p, v in behind.items() if self._behind.get(p) == v[0]}
        self._behind = {p: pos for p, (pos, _) in behind.items()}
        if not behind:
            reader.errors_over()
        out: list[Record] = []
        for p, (pos, high) in stalled.items():
            out += await self._unstall(p, pos, high)
        return out

    async def _unstall(self, partition: Partition, pos: int, high: int) -> list[Record]:
        reader = self._reader
        served = await reader.skip_gap(partition, pos, high)
        self._behind.pop(partition, None)
        if served is None:  # a gap up to the watermark: what comes next lands after it
            await reader.seek(partition, high)
            return []
        if served != pos:  # a gap skipped: the client reads on from there
            return []
        if self._patient_at.get(partition) == pos:
            topic, number = partition
            raise BusError(
                f"consumer {reader.group_id}: {topic}[{number}] at offset {pos} (end {high}): a "
                "patient read from here found nothing last time although the broker serves it",
                retriable=False,
            )
        self._patient_at[partition] = pos
        self._patient_until = _now() + PATIENT_MODE_S
        return await reader.read_patiently(partition, pos, high)


def _ends(
    client: Consumer, parts: list[Partition], sought: dict[Partition, int], *, cached: bool = False
) -> list[tuple[Partition, int, int]]:
    """(partition, where reading goes on, high watermark) of each partition: the position,
    else where it was last sought (librdkafka knows no position after a seek until a record
    comes), else the committed offset, else the low watermark (blocking, on the consumer
    thread). ``cached``: the watermarks of the client's last fetch responses where it knows
    them (see :data:`FRESH_CHECK_S`)."""
    tps = [TopicPartition(t, p) for t, p in parts]
    positions = {(tp.topic, tp.partition): tp.offset for tp in client.position(tps)}
    for part, offset in positions.items():
        if offset < 0 and part in sought:
            positions[part] = sought[part]
    unknown = [TopicPartition(t, p) for (t, p), o in positions.items() if o < 0]
    if unknown:
        for tp in client.committed(unknown, timeout=STALL_CALL_S):
            positions[(tp.topic, tp.partition)] = tp.offset
    out = []
    for (topic, number), pos in positions.items():
        tp = TopicPartition(topic, number)
        low, high = _cached_watermarks(client, tp) if cached else (-1, -1)
        if high < 0 or (pos < 0 and low < 0):
            low, high = client.get_watermark_offsets(tp, timeout=STALL_CALL_S, cached=False)
        out.append(((topic, number), pos if pos >= 0 else low, high))
    return out


def _cached_watermarks(client: Consumer, tp: TopicPartition) -> tuple[int, int]:
    """The watermarks of the client's last fetch response for ``tp``; (-1, -1) if none."""
    try:
        low, high = client.get_watermark_offsets(tp, cached=True)
    except KafkaException:  # a partition the client has not fetched yet
        return -1, -1
    return low, high
