"""engine.bus.stall.StallCheck's verdicts on a fake consumer: a partition behind at the same
position over two checks is a gap (sought past), served but not to the client (read
patiently), or, read patiently from there before and still not moving, an error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import OFFSET_INVALID, KafkaError, KafkaException, TopicPartition

from engine.bus import stall
from engine.bus.consumer import Partition, Record
from engine.errors import BusError

P: Partition = ("t", 0)


class _Reader:
    """What StallCheck uses of an AsyncConsumer; ``ends`` are (position, high) per check."""

    def __init__(self, ends: list[tuple[int, int]], served: int | None) -> None:
        self.group_id = "g"
        self.assigned = {P}
        self.dozing = False
        self.ends = ends
        self.served = served
        self.seeks: list[int] = []
        self.sought: dict[Partition, int] = {}
        self.patient_from: list[int] = []
        self.patient_records: list[Record] = []
        self.woken = 0
        self.cached: list[bool] = []  # per check: watermarks from the last fetches?

    async def call_client(self, what: str, fn: Callable[[], Any]) -> Any:
        self.cached.append(fn.keywords["cached"])  # type: ignore[attr-defined]
        pos, high = self.ends.pop(0)
        return [(P, pos, high)]

    def listen_longer(self) -> None:
        self.woken += 1

    def errors_over(self) -> None:
        return None

    async def skip_gap(self, partition: Partition, start: int, end: int) -> int | None:
        return self.served

    async def seek(self, partition: Partition, offset: int) -> None:
        self.seeks.append(offset)

    async def read_patiently(self, partition: Partition, start: int, end: int) -> list[Record]:
        self.patient_from.append(start)
        return self.patient_records


@pytest.fixture(autouse=True)
def _every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stall, "STALL_CHECK_S", 0.0)
    monkeypatch.setattr(stall, "PATIENT_CHECK_S", 0.0)
    monkeypatch.setattr(stall, "DOZING_CHECK_S", 0.0)
    monkeypatch.setattr(stall, "STALL_CHECK_GAP_S", float("inf"))


def _record(offset: int) -> Record:
    return Record("t", 0, offset, None, b"v", None, 0)


async def _checks(reader: _Reader, n: int) -> list[Record]:
    check = stall.StallCheck(reader)  # type: ignore[arg-type]
    out: list[Record] = []
    for _ in range(n):
        out += await check.run(None)  # type: ignore[arg-type]
    return out


async def test_moving_positions_are_no_stall() -> None:
    reader = _Reader([(3, 9), (5, 9), (7, 9)], served=3)
    assert await _checks(reader, 3) == []
    assert reader.patient_from == reader.seeks == []


async def test_a_gap_up_to_the_end_is_sought_past() -> None:
    reader = _Reader([(3, 9), (3, 9)], served=None)
    assert await _checks(reader, 2) == []
    assert reader.seeks == [9]
    assert reader.patient_from == []


async def test_records_served_only_patiently_are_handed_out() -> None:
    reader = _Reader([(3, 9), (3, 9)], served=3)
    reader.patient_records = [_record(o) for o in range(3, 9)]
    assert [r.offset for r in await _checks(reader, 2)] == list(range(3, 9))
    assert reader.patient_from == [3]


async def test_still_stuck_where_a_patient_read_started_raises() -> None:
    reader = _Reader([(3, 9), (3, 9), (3, 9), (3, 9)], served=3)  # the patient read found none
    with pytest.raises(BusError, match="patient read from here found nothing"):
        await _checks(reader, 4)
    assert reader.patient_from == [3]


async def test_a_full_batch_or_a_dozing_client_gets_no_verdict() -> None:
    reader = _Reader([(3, 9), (3, 9)], served=3)
    check = stall.StallCheck(reader)  # type: ignore[arg-type]
    await check.run(None)  # type: ignore[arg-type]
    check.polled(500, 500)
    assert await check.run(None) == []  # type: ignore[arg-type]
    assert reader.patient_from == []
    reader.ends = [(3, 9)]
    reader.dozing = True
    assert await check.run(None) == []  # type: ignore[arg-type]
    assert reader.woken == 1


async def test_a_dozing_client_is_checked_seldom_and_after_any_gap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr(stall, "_now", lambda: clock[0])
    monkeypatch.setattr(stall, "STALL_CHECK_S", 5.0)
    monkeypatch.setattr(stall, "DOZING_CHECK_S", 30.0)
    monkeypatch.setattr(stall, "STALL_CHECK_GAP_S", 15.0)
    reader = _Reader([(3, 9), (3, 9)], served=3)
    reader.dozing = True
    check = stall.StallCheck(reader)  # type: ignore[arg-type]
    assert await check.run(None) == []  # type: ignore[arg-type]
    assert reader.woken == 1  # records waited while it dozed: it listens longer
    clock[0] += 10.0  # past STALL_CHECK_S, not DOZING_CHECK_S: no request to the broker
    assert await check.run(None) == []  # type: ignore[arg-type]
    assert reader.ends == [(3, 9)]
    clock[0] += 25.0  # further apart than STALL_CHECK_GAP_S: a dozing client is checked anyway
    assert await check.run(None) == []  # type: ignore[arg-type]
    assert (reader.ends, reader.woken) == ([], 2)


class _Client:
    """librdkafka after a seek: no position until a record comes; 5 committed, end 9."""

    def position(self, tps: list[Any]) -> list[Any]:
        return [TopicPartition(tp.topic, tp.partition, OFFSET_INVALID) for tp in tps]

    def committed(self, tps: list[Any], timeout: float) -> list[Any]:
        return [TopicPartition(tp.topic, tp.partition, 5) for tp in tps]

    def __init__(self, fetched: dict[Partition, tuple[int, int]] | None = None) -> None:
        self.fetched = fetched or {}  # watermarks of the last fetch responses
        self.asked: list[Partition] = []  # partitions whose watermarks the broker was asked

    def get_watermark_offsets(
        self, tp: Any, timeout: float = 0, cached: bool = False
    ) -> tuple[int, int]:
        part = (tp.topic, tp.partition)
        if cached:
            if part not in self.fetched:
                raise KafkaException(KafkaError(KafkaError._UNKNOWN_PARTITION))
            return self.fetched[part]
        self.asked.append(part)
        return 0, 9


def test_where_a_partition_was_sought_counts_when_the_client_knows_no_position() -> None:
    client = _Client()
    ends = stall._ends  # the check's own reading of positions
    assert ends(client, [P], {P: 8}) == [(P, 8, 9)]  # type: ignore[arg-type]
    # Never sought: the committed offset (not the sought position of another partition).
    assert ends(client, [P], {("t", 1): 8}) == [(P, 5, 9)]  # type: ignore[arg-type]


def test_the_check_reads_watermarks_from_the_last_fetches_and_asks_for_unknown_ones() -> None:
    other: Partition = ("t", 1)
    client = _Client(fetched={P: (0, 7)})
    ends = stall._ends(client, [P, other], {P: 3, other: 4}, cached=True)  # type: ignore[arg-type]
    assert ends == [(P, 3, 7), (other, 4, 9)]
    assert client.asked == [other]  # only the partition not fetched yet cost a request
    assert stall._ends(client, [P], {P: 3}) == [(P, 3, 9)]  # type: ignore[arg-type]


async def test_the_broker_is_asked_while_dozing_and_every_fresh_check_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(stall, "_now", lambda: clock[0])
    reader = _Reader([(3, 3)] * 5, served=None)
    check = stall.StallCheck(reader)  # type: ignore[arg-type]
    for t in (1000.0, 1005.0, 1010.0, 1031.0):
        clock[0] = t
        await check.run(None)  # type: ignore[arg-type]
    reader.dozing = True
    clock[0] = 1070.0
    await check.run(None)  # type: ignore[arg-type]
    assert reader.cached == [False, True, True, False, False]


async def test_after_a_patient_read_the_check_runs_every_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(stall, "_now", lambda: clock[0])
    monkeypatch.setattr(stall, "STALL_CHECK_S", 5.0)
    monkeypatch.setattr(stall, "PATIENT_CHECK_S", 1.0)
    reader = _Reader([(3, 9), (3, 9), (9, 12), (9, 12)], served=3)
    reader.patient_records = [_record(o) for o in range(3, 9)]
    check = stall.StallCheck(reader)  # type: ignore[arg-type]

    async def at(t: float) -> list[Record]:
        clock[0] = t
        return await check.run(None)  # type: ignore[arg-type]

    await at(1000.0)  # behind at 3 ...
    assert await at(1003.0) == []  # (no check before STALL_CHECK_S)
    assert len(await at(1005.0)) == 6  # ... still at 3: read patiently
    await at(1006.0)  # one second later: checked (behind at 9) ...
    reader.patient_records = [_record(o) for o in range(9, 12)]
    reader.served = 9
    assert len(await at(1007.0)) == 3  # ... and read patiently at 9 the next second
    assert reader.patient_from == [3, 9]
    assert reader.ends == []


async def test_a_fetch_wait_given_as_a_string_property_reaches_the_gap_probe_as_a_number(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A Kafka trigger's `properties` are strings ("fetch.wait.max.ms": "5"); the gap probe
    # compared it with its own wait and raised TypeError, restarting the trigger (seen under
    # load at 500 executions/s).
    from engine.bus import gaps
    from engine.bus.consumer import AsyncConsumer
    from engine.settings import KafkaSettings

    seen: list[Any] = []

    def next_served(_config: Any, wait: Any, *_args: Any) -> None:
        seen.append(wait)
        assert max(wait, gaps.PATIENT_FETCH_WAIT_MS) == gaps.PATIENT_FETCH_WAIT_MS
        return None

    monkeypatch.setattr(gaps, "next_served", next_served)
    consumer = AsyncConsumer(KafkaSettings(), "g", **{"fetch.wait.max.ms": "40"})
    assert await consumer.skip_gap(P, 3, 5) is None
    assert seen == [40]
    assert consumer._listen_s > 0.04
