"""ScheduleOnDates (Kestra's plugin/core/trigger/ScheduleOnDates): dates, recovery, state."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.errors import ConfigError
from engine.flows import flow_to_dict, load_flow
from triggers.model import TriggerRef, trigger_config
from triggers.schedule_dates import ScheduleOnDatesSource, due, parse_dates

T0 = datetime(2025, 5, 1, 12, tzinfo=UTC)
DATES = [T0 + timedelta(hours=h) for h in (0, 1, 2)]


def test_dates_render_parse_and_sort() -> None:
    assert parse_dates(["2025-05-01T14:00:00Z", "2025-05-01T12:00:00+00:00"], {}) == [
        DATES[0],
        DATES[2],
    ]
    assert parse_dates('{{ ["2025-05-01T13:00:00Z"] | json }}', {}) == [DATES[1]]
    with pytest.raises(ConfigError, match="not an ISO-8601"):
        parse_dates(["soon"], {})


@pytest.mark.parametrize(
    ("recover", "expected"), [("ALL", DATES[1:]), ("LAST", DATES[2:]), ("NONE", [])]
)
def test_missed_dates_follow_recover_missed_schedules(recover: str, expected: list[Any]) -> None:
    assert due(DATES, DATES[0], DATES[2] + timedelta(minutes=5), recover) == expected


class FakeContext:
    def __init__(self, trigger: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
        self.ref = TriggerRef("ns", "f", "t")
        self.trigger = trigger
        self.config = trigger_config(trigger)
        self.fired: list[tuple[str, dict[str, Any], str | None]] = []
        self.records: list[dict[str, Any]] = []
        self.extra = extra

    async def fire(self, coordinates: str, variables: dict[str, Any], **kw: Any) -> Any:
        self.fired.append((coordinates, variables, kw.get("scheduled")))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def record(self, **fields: Any) -> None:
        self.records.append(fields)

    def state(self) -> dict[str, Any]:
        return {"extra": self.extra} if self.extra else {}


async def test_a_new_trigger_skips_past_dates_and_fires_the_next_one_once() -> None:
    soon = T0 + timedelta(hours=5)
    now = soon - timedelta(seconds=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()

    def clock() -> datetime:  # 0.3 s before the next date, running in real time
        return now + timedelta(seconds=loop.time() - started)

    trigger = {
        "id": "t",
        "type": "io.kestra.plugin.core.trigger.ScheduleOnDates",
        "dates": [(now - timedelta(hours=1)).isoformat(), soon.isoformat()],
        "timezone": "Europe/Paris",
    }
    ctx = FakeContext(trigger)
    source = ScheduleOnDatesSource(ctx, clock)  # type: ignore[arg-type]
    task = asyncio.ensure_future(source.run())
    await asyncio.sleep(0.6)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(ctx.fired) == 1
    _, variables, scheduled = ctx.fired[0]
    assert variables == {}  # Kestra: no trigger variables
    assert scheduled is not None
    assert scheduled.endswith("Z")
    assert ctx.records[-1]["next_date"] is None


async def test_a_known_trigger_recovers_what_it_missed() -> None:
    trigger = {
        "id": "t",
        "type": "io.kestra.plugin.core.trigger.ScheduleOnDates",
        "dates": [d.isoformat() for d in DATES],
        "recoverMissedSchedules": "ALL",
    }
    ctx = FakeContext(trigger, extra={"last_date": "2025-05-01T11:00:00.000Z"})
    late = ScheduleOnDatesSource(ctx, lambda: DATES[2] + timedelta(days=1))  # type: ignore[arg-type]
    task = asyncio.ensure_future(late.run())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [c for c, _, _ in ctx.fired] == [
        f"schedule-{d.strftime('%Y-%m-%dT%H:%M:%S')}.000Z" for d in DATES
    ]


def test_the_flow_validates() -> None:
    flow = flow_to_dict(
        load_flow("""
id: f
namespace: ns
tasks:
  - id: a
    type: io.kestra.plugin.core.log.Log
    message: hi
triggers:
  - id: dates
    type: io.kestra.plugin.core.trigger.ScheduleOnDates
    dates:
      - 2025-05-01T12:00:00Z
""")
    )
    assert flow["triggers"][0]["type"] == "io.kestra.plugin.core.trigger.ScheduleOnDates"
