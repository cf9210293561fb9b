"""Offsets a crashed durable Tansu reserved and never filled (tests/chaos/probe_durable.py).

The executor's restore reads hw.executor-state partitions up to their watermark; a gap at the
tail means the position never reaches it. Empty, error-free fetches for GAP_S end the restore
(the gap holds nothing); empty fetches while the client reports errors do not.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import pytest
from confluent_kafka import TopicPartition

from engine.bus.consumer import Partition, Record
from engine.executor import restore


class _Client:
    def __init__(self, high: int) -> None:
        self.high = high

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        return 0, self.high


class _GapConsumer:
    """Serves ``records`` once, then empty polls; reports an error on every poll when told."""

    def __init__(
        self,
        high: int,
        records: list[Record],
        *,
        erring: bool = False,
        after_gap: list[Record] | None = None,
        patient: list[Record] | None = None,
    ) -> None:
        """``after_gap``: records a fresh consumer finds past the gap (served after a seek);
        ``patient``: records served at the position, but only to a patient fetch."""
        self.client = _Client(high)
        self.records = records
        self.erring = erring
        self.after_gap = after_gap or []
        self.last_error_at: float | None = None
        self.polls = 0
        self.skips: list[tuple[int, int]] = []
        self.patient = patient or []

    def _client(self) -> _Client:
        return self.client

    async def assign(self, partitions: Mapping[Partition, int | None]) -> None:
        return None

    async def unassign(self) -> None:
        return None

    async def skip_gap(self, partition: Partition, start: int, end: int) -> int | None:
        self.skips.append((start, end))
        if self.patient:
            return start
        if not self.after_gap:
            return None
        self.records, self.after_gap = self.after_gap, []
        return self.records[0].offset

    async def read_patiently(self, partition: Partition, start: int, end: int) -> list[Record]:
        out, self.patient = self.patient, []
        return out

    async def consume(self, max_records: int, timeout_s: float) -> list[Record]:
        self.polls += 1
        if self.erring:
            self.last_error_at = time.monotonic()
        out, self.records = self.records, []
        return out


def _state(offset: int) -> Record:
    return Record("s", 0, offset, f"e{offset}".encode(), b"{}", None, 0)


async def test_a_gap_at_the_tail_ends_the_restore_after_quiet_error_free_polls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(restore, "GAP_S", 0.0)
    # Offsets 0-1 hold records; the watermark says 5: 2-4 were reserved by a broker that died.
    consumer = _GapConsumer(5, [_state(0), _state(1)])
    records = await restore.read_partitions(consumer, "s", {0})  # type: ignore[arg-type]
    assert [r.offset for r in records] == [0, 1]
    # A fresh consumer found nothing served from 2 up to the watermark: the partition is read.
    assert consumer.skips == [(2, 5)]
    # The records, an empty poll starting the quiet period, one ending it, one after the gap.
    assert consumer.polls == 4


async def test_snapshots_after_a_gap_in_the_middle_are_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(restore, "GAP_S", 0.0)
    # Offsets 2-3 are a gap; 4-6 hold snapshots a fresh consumer reads (watermark 7).
    consumer = _GapConsumer(7, [_state(0), _state(1)], after_gap=[_state(4), _state(5), _state(6)])
    records = await restore.read_partitions(consumer, "s", {0})  # type: ignore[arg-type]
    assert [r.offset for r in records] == [0, 1, 4, 5, 6]
    assert consumer.skips == [(2, 7)]


async def test_snapshots_served_only_to_a_patient_fetch_are_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(restore, "GAP_S", 0.0)
    # 2-4 are stored, but the broker serves them only to a fetch that waits long enough.
    patient = [_state(2), _state(3), _state(4)]
    consumer = _GapConsumer(5, [_state(0), _state(1)], patient=patient)
    records = await restore.read_partitions(consumer, "s", {0})  # type: ignore[arg-type]
    assert [r.offset for r in records] == [0, 1, 2, 3, 4]
    assert consumer.skips == [(2, 5)]


async def test_empty_polls_while_the_client_reports_errors_are_not_a_gap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(restore, "GAP_S", 0.0)
    monkeypatch.setattr(restore, "RESTORE_DEADLINE_S", 0.05)
    consumer = _GapConsumer(5, [_state(0)], erring=True)
    with pytest.raises(restore.RestoreIncomplete, match="not read to their end"):
        await restore.read_partitions(consumer, "s", {0})  # type: ignore[arg-type]
    assert consumer.polls > 2


async def test_a_quiet_period_shorter_than_gap_s_does_not_end_the_restore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(restore, "GAP_S", 3600.0)
    monkeypatch.setattr(restore, "RESTORE_DEADLINE_S", 0.05)
    consumer = _GapConsumer(5, [_state(0)])
    with pytest.raises(restore.RestoreIncomplete):
        await restore.read_partitions(consumer, "s", {0})  # type: ignore[arg-type]
