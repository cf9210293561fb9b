"""engine.bus.gaps.next_served against a fake broker: gaps skipped, slow answers not mistaken
for a gap (skipping a served record would lose it)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from engine.bus import gaps


class _Message:
    def __init__(self, offset: int) -> None:
        self._offset = offset

    def error(self) -> None:
        return None

    def offset(self) -> int:
        return self._offset


class _FakeBroker:
    """Offsets in ``served`` answer a fetch; those in ``slow`` only after ``delay`` seconds."""

    def __init__(self, served: set[int], slow: set[int], delay: float) -> None:
        self.served, self.slow, self.delay = served, slow, delay
        self.probes: list[int] = []

    def consumer(self, _config: dict[str, Any]) -> Any:
        broker = self

        class _Probe:
            at = 0
            since = 0.0

            def assign(self, tps: list[Any]) -> None:
                self.at, self.since = tps[0].offset, time.monotonic()
                broker.probes.append(self.at)

            def poll(self, timeout: float) -> _Message | None:
                time.sleep(min(timeout, 0.001))
                ready = self.at not in broker.slow or time.monotonic() - self.since >= broker.delay
                return _Message(self.at) if self.at in broker.served and ready else None

            def close(self) -> None:
                return None

        return _Probe()


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gaps, "FIRST_PROBE_S", 0.2)
    monkeypatch.setattr(gaps, "PROBE_MIN_S", 0.01)
    monkeypatch.setattr(gaps, "PROBE_FETCH_WAITS", 0)


def _next(broker: _FakeBroker, monkeypatch: pytest.MonkeyPatch, start: int, end: int) -> int | None:
    monkeypatch.setattr(gaps, "Consumer", broker.consumer)
    return gaps.next_served("b", 5, "t", 0, start, end, "g")


@pytest.mark.usefixtures("fast")
def test_a_served_start_is_a_stuck_client_and_a_gap_is_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _next(_FakeBroker({3, 4}, set(), 0), monkeypatch, 3, 5) == 3
    assert _next(_FakeBroker(set(range(15, 30)), set(), 0), monkeypatch, 10, 30) == 15
    assert _next(_FakeBroker(set(), set(), 0), monkeypatch, 10, 14) is None


@pytest.mark.usefixtures("fast")
def test_a_slow_answer_at_the_end_of_the_gap_is_not_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 15 and 16 answer only after 0.05 s: the quick windows miss them and find 17 first.
    broker = _FakeBroker(set(range(15, 30)), {15, 16}, 0.05)
    assert _next(broker, monkeypatch, 10, 30) == 15
    assert 16 in broker.probes  # the offset before the first found was checked patiently


@pytest.mark.usefixtures("fast")
def test_a_long_backlog_that_is_served_is_no_gap_and_a_long_gap_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A reader 3,500 offsets behind under load (seen at 500 executions/s): served at once.
    broker = _FakeBroker(set(range(11_500, 15_000)), set(), 0)
    assert _next(broker, monkeypatch, 11_500, 15_000) == 11_500
    assert broker.probes == [11_500]
    # Nothing served there: scanning that far is not a lost batch, something else is wrong.
    with pytest.raises(ValueError, match="more than 2000"):
        _next(_FakeBroker(set(), set(), 0), monkeypatch, 11_500, 15_000)
