"""ScheduleOnDates trigger: one execution at each date of a list.

Kestra 0.20 (``plugin/core/trigger/ScheduleOnDates.java``,
``models/triggers/TriggerService.generateScheduledExecution``): ``dates`` is a
``Property<List<ZonedDateTime>>`` (a list, or an expression rendering to one, rendered with
the flow's variables), ``timezone`` the zone the dates are shown in, ``inputs`` and
``labels`` as for Schedule, ``recoverMissedSchedules`` (ALL by default). Each date, sorted, is
due once: the execution's ``scheduleDate`` is that date, its trigger variables are empty
(``trigger`` is ``{}``), its inputs are rendered then typed with the flow's defaults.

State (the trigger's hw.trigger-state ``extra``): ``last_date``, the latest date whose
StartExecution is durably in Kafka. A trigger seen for the first time starts from now (past
dates are not run, as for Schedule); after downtime, the dates missed since ``last_date`` run
per ``recoverMissedSchedules``. The execution id derives from (trigger, date), so a date never
runs twice. After the last date, the source waits for a new flow revision.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from engine.errors import ConfigError, ExpressionError
from engine.expressions import render_value
from engine.reducer.ids import iso, parse_iso
from triggers.ids import schedule_coordinates
from triggers.model import SourceContext, settle

log = logging.getLogger(__name__)

JSON = dict[str, Any]
# Never sleep longer than this in one go, so that clock jumps and stop are noticed.
_MAX_SLEEP_S = 30.0


def parse_dates(value: Any, flow: JSON) -> list[datetime]:
    """The trigger's ``dates``, rendered and parsed, sorted (ConfigError naming a bad one)."""
    scope = {"flow": {"id": flow.get("id"), "namespace": flow.get("namespace")}}
    try:
        rendered = render_value(value, scope)
    except ExpressionError as exc:
        raise ConfigError(f"dates: {exc.message}") from None
    if isinstance(rendered, str):
        import json

        try:
            rendered = json.loads(rendered)
        except ValueError:
            rendered = [rendered]
    if not isinstance(rendered, list):
        raise ConfigError(f"dates must be a list of date-times, got {rendered!r}")
    out = []
    for item in rendered:
        try:
            moment = datetime.fromisoformat(str(item).strip().replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"dates: {item!r} is not an ISO-8601 date-time") from None
        out.append(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return sorted(d.replace(microsecond=0) for d in out)


def due(dates: list[datetime], last: datetime, now: datetime, recover: str) -> list[datetime]:
    """The dates after ``last`` and not after ``now`` that run now (missed-schedule rule)."""
    missed = [d for d in dates if last < d <= now]
    if recover == "NONE":
        return []
    if recover == "LAST":
        return missed[-1:]
    return missed


class ScheduleOnDatesSource:
    def __init__(self, ctx: SourceContext, clock: Callable[[], datetime] | None = None) -> None:
        self.ctx = ctx
        self._clock = clock or (lambda: datetime.now(UTC))
        config = ctx.config
        flow = {"id": ctx.ref.flow_id, "namespace": ctx.ref.namespace}
        self.dates = parse_dates(config.dates, flow)
        self.recover = str(config.recoverMissedSchedules or "ALL")
        self.zone = ZoneInfo(str(config.timezone)) if config.timezone else None

    async def _fire(self, date: datetime) -> None:
        shown = date.astimezone(self.zone) if self.zone else date
        future = await self.ctx.fire(schedule_coordinates(iso(date)), {}, scheduled=iso(shown))
        await settle([future])
        await self.ctx.record(
            last_fired=iso(self._clock()),
            next_date=self._next(date),
            extra={"last_date": iso(date)},
        )

    def _next(self, after: datetime) -> str | None:
        later = [d for d in self.dates if d > after]
        return iso(later[0]) if later else None

    async def run(self) -> None:
        now = self._clock()
        extra = self.ctx.state().get("extra") or {}
        last_text = extra.get("last_date")
        if last_text is not None:
            for date in due(self.dates, parse_iso(str(last_text)), now, self.recover):
                await self._fire(date)
            last = max(parse_iso(str(last_text)), now)
        else:  # a trigger seen for the first time starts from now
            last = now
        await self.ctx.record(next_date=self._next(last), extra={"last_date": iso(last)})
        for date in [d for d in self.dates if d > last]:
            while True:
                wait = (date - self._clock()).total_seconds()
                if wait <= 0:
                    break
                await asyncio.sleep(min(wait, _MAX_SLEEP_S))
            await self._fire(date)
        await asyncio.Event().wait()  # every date ran: wait for a new revision (or the stop)
