"""Schedule trigger: cron ticks, missed-schedule recovery and backfill.

State (in the trigger's hw.trigger-state ``extra``): ``last_date``, the latest tick whose
StartExecution is durably in Kafka, and ``backfill``, the backfill range already done. The
execution id derives from (trigger, tick) (:func:`triggers.ids.schedule_coordinates`), so a
restart that re-fires a tick, or several trigger processes firing the same tick, start one
execution.

After downtime, ``recoverMissedSchedules`` (Kestra's default ALL) decides which ticks between
``last_date`` and now run: ALL, only the LAST, or NONE. ``lateMaximumDelay`` drops ticks older
than that. A trigger seen for the first time starts from now (no recovery), as Kestra does.
A tick (recovered and backfilled ones too) whose ScheduleConditions fail starts no execution
(:func:`triggers.conditions.schedule_holds`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.errors import ConfigError
from engine.reducer.ids import iso, parse_iso
from schemas.flow.common import parse_duration
from schemas.flow.triggers import ScheduleTrigger
from triggers.conditions import schedule_holds
from triggers.cron import Cron, parse_cron
from triggers.ids import schedule_coordinates
from triggers.model import SourceContext, settle
from triggers.start import labels_of

log = logging.getLogger(__name__)

JSON = dict[str, Any]

# Recovering ALL after a long outage of a per-second cron could mean millions of executions:
# cap one recovery at this many ticks (the oldest are dropped, with a trigger error).
MAX_RECOVERED_TICKS = 10_000
# Never sleep longer than this in one go, so that clock jumps and stop are noticed.
_MAX_SLEEP_S = 30.0


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    cron: Cron
    recover: str  # ALL | LAST | NONE
    late_max: timedelta | None
    backfill: tuple[datetime, datetime | None] | None
    backfill_labels: JSON

    @classmethod
    def of(cls, model: ScheduleTrigger) -> ScheduleConfig:
        cron = parse_cron(
            str(model.cron), with_seconds=model.withSeconds is True, timezone=model.timezone
        )
        late = parse_duration(str(model.lateMaximumDelay)) if model.lateMaximumDelay else None
        backfill = None
        labels: JSON = {}
        if model.backfill is not None:
            end = _parse_date(model.backfill.end) if model.backfill.end else None
            backfill = (_parse_date(model.backfill.start), end)
            labels = labels_of(model.backfill.labels)
        return cls(cron, model.recoverMissedSchedules or "ALL", late, backfill, labels)


def _parse_date(text: str) -> datetime:
    try:
        return parse_iso(text)
    except ValueError:
        raise ConfigError(f"backfill date {text!r} is not ISO-8601") from None


def missed_ticks(
    cron: Cron, last: datetime, now: datetime, recover: str, late_max: timedelta | None
) -> list[datetime]:
    """Ticks in (last, now] that should still run after downtime (pure)."""
    ticks: list[datetime] = []
    t = cron.next_after(last)
    while t <= now:
        ticks.append(t)
        if len(ticks) > MAX_RECOVERED_TICKS:
            ticks.pop(0)
        t = cron.next_after(t)
    if late_max is not None:
        ticks = [t for t in ticks if now - t <= late_max]
    if recover == "NONE":
        return []
    if recover == "LAST":
        return ticks[-1:]
    return ticks


def backfill_ticks(
    cron: Cron, start: datetime, end: datetime, after: datetime | None
) -> list[datetime]:
    """Ticks in [start, end], skipping those up to ``after`` (already backfilled)."""
    ticks: list[datetime] = []
    t = cron.next_after(max(start - timedelta(seconds=1), after or start - timedelta(seconds=1)))
    while t <= end and len(ticks) < MAX_RECOVERED_TICKS:
        ticks.append(t)
        t = cron.next_after(t)
    return ticks


def _zoned(value: datetime, cron: Cron) -> str:
    """Java's ISO_OFFSET_DATE_TIME, as Kestra serializes a ZonedDateTime: ``Z`` for UTC."""
    text = value.astimezone(cron.zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def variables(cron: Cron, tick: datetime) -> JSON:
    """``trigger.date``, ``trigger.next``, ``trigger.previous`` in the schedule's zone
    (Schedule.scheduleDates: the tick, the next tick after it, the last tick before it)."""
    previous = cron.previous_before(tick)
    return {
        "date": _zoned(tick, cron),
        "next": _zoned(cron.next_after(tick), cron),
        "previous": _zoned(previous, cron) if previous else None,
    }


class ScheduleSource:
    def __init__(
        self,
        ctx: SourceContext,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.ctx = ctx
        self.config = ScheduleConfig.of(ctx.config)
        self._clock = clock or (lambda: datetime.now(UTC))

    async def _fire(self, tick: datetime, labels: JSON | None = None) -> None:
        tick_variables = variables(self.config.cron, tick)
        flow_ref = {"id": self.ctx.ref.flow_id, "namespace": self.ctx.ref.namespace}
        if not schedule_holds(self.ctx.trigger, flow_ref, tick_variables):
            return
        coordinates = schedule_coordinates(iso(tick))
        future = await self.ctx.fire(coordinates, tick_variables, labels=labels)
        await settle([future])

    async def run(self) -> None:
        cron = self.config.cron
        extra = self.ctx.state().get("extra") or {}
        now = self._clock()
        last_text = extra.get("last_date")
        if last_text is not None:  # a trigger seen for the first time starts from now
            previous = parse_iso(str(last_text))
            for tick in missed_ticks(
                cron, previous, now, self.config.recover, self.config.late_max
            ):
                await self._fire(tick)
        last = now
        await self._backfill(now)
        await self.ctx.record(next_date=iso(cron.next_after(last)), extra={"last_date": iso(last)})
        while True:
            tick = cron.next_after(last)
            while True:
                wait = (tick - self._clock()).total_seconds()
                if wait <= 0:
                    break
                await asyncio.sleep(min(wait, _MAX_SLEEP_S))
            await self._fire(tick)
            last = tick
            await self.ctx.record(
                last_fired=iso(self._clock()),
                next_date=iso(cron.next_after(tick)),
                extra={"last_date": iso(tick)},
            )

    async def _backfill(self, now: datetime) -> None:
        if self.config.backfill is None:
            return
        start, end = self.config.backfill
        end = min(end or now, now)
        key = f"{iso(start)}|{iso(end)}"
        extra = self.ctx.state().get("extra") or {}
        done = extra.get("backfill") or {}
        if done.get("range") == key and done.get("complete"):
            return
        after = parse_iso(done["last"]) if done.get("range") == key and done.get("last") else None
        labels = {"system.backfill": "true", **self.config.backfill_labels}
        for tick in backfill_ticks(self.config.cron, start, end, after):
            await self._fire(tick, labels)
            await self.ctx.record(extra={"backfill": {"range": key, "last": iso(tick)}})
        await self.ctx.record(extra={"backfill": {"range": key, "complete": True}})
