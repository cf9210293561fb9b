"""Kestra 2.0's calendar functions (``runners/pebble/functions/*Function.java``) and
``loopOutputs()``.

Every date argument is read as Kestra's ``DateUtils.parseLocalDate`` reads it: an ISO date
(``2025-01-06``), else a date-time with an offset or zone (``2025-01-06T00:30:00+02:00``,
``...Z[Europe/Paris]``), else a local date-time; the *local* date counts, with no conversion
to UTC (``2025-01-06T00:30:00+02:00`` is a Monday). ``hourOfDay`` reads the hour the same way.

- ``isWeekend(date)``: Saturday or Sunday.
- ``isPublicHoliday(date, countryCode[, subDivision])``: a public holiday of the country
  (ISO 3166-1 alpha-2), optionally of one subdivision; Kestra uses Jollyday, Headwater the
  ``holidays`` package. A subdivision the calendar does not know counts as the country
  (Jollyday only adds the holidays of the subdivisions it knows).
- ``isDayWeekInMonth(date, dayOfWeek, position)``: the FIRST..FOURTH or LAST such weekday of
  the date's month (``dayOfWeek`` and ``position`` in any case).
- ``isLastWorkingDay(date[, workingDays])``: the last working day of its month; working
  days are MONDAY..FRIDAY unless ``workingDays`` lists others (comma or space separated).
- ``dayOfWeek(date)`` -> ``MONDAY``..``SUNDAY``; ``dayOfMonth`` (1-31), ``monthOfYear``
  (1-12), ``hourOfDay`` (0-23).
- ``loopOutputs(outputs, name)``: from a Loop's ``outputs`` list (``outputs.<loop>.outputs``),
  the output ``name`` of every iteration, in order (null where an iteration has none).

A missing or unreadable argument fails the render with the function's name, as Kestra's
PebbleException does.
"""

from __future__ import annotations

import calendar as cal
import datetime as dt
import functools
import re
from collections.abc import Mapping
from typing import Any

import holidays

from engine.expressions.registry import function
from engine.expressions.runtime import Ctx, EvalError

DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
_NTH = {"FIRST": 0, "SECOND": 1, "THIRD": 2, "FOURTH": 3}
_ZONE_SUFFIX = re.compile(r"\[[^\]]*\]$")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _datetime(value: Any, name: str) -> dt.datetime | dt.date:
    if value is None:
        raise EvalError(f"The '{name}()' function expects a 'date' argument.")
    if isinstance(value, dt.datetime | dt.date):
        return value
    text = _ZONE_SUFFIX.sub("", str(value).strip())
    if _ISO_DATE.fullmatch(text):
        return dt.date.fromisoformat(text)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise EvalError(
            f"The '{name}()' function could not parse 'date': '{value}' is not an ISO-8601 "
            "date or date-time"
        ) from None


def local_date(value: Any, name: str) -> dt.date:
    """The local date of a date argument (no conversion to UTC)."""
    parsed = _datetime(value, name)
    return parsed.date() if isinstance(parsed, dt.datetime) else parsed


def _weekday(value: Any, name: str, arg: str = "dayOfWeek") -> int:
    if value is None:
        raise EvalError(f"The '{name}()' function expects a '{arg}' argument.")
    text = str(value).strip().upper()
    if text not in DAYS:
        raise EvalError(
            f"The '{name}()' function received an invalid '{arg}' value: '{value}'. "
            f"Expected one of: {', '.join(DAYS)}."
        )
    return DAYS.index(text)


@function("isWeekend")
def is_weekend(ctx: Ctx, date: Any) -> bool:
    return local_date(date, "isWeekend").weekday() >= cal.SATURDAY


@functools.lru_cache(maxsize=64)
def _calendar(country: str, subdivision: str | None) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdivision)


@function("isPublicHoliday")
def is_public_holiday(ctx: Ctx, date: Any, country_code: Any, sub_division: Any = None) -> bool:
    day = local_date(date, "isPublicHoliday")
    if country_code is None or not str(country_code).strip():
        raise EvalError("The 'isPublicHoliday()' function expects a 'countryCode' argument.")
    country = str(country_code).strip().upper()
    sub = str(sub_division).strip().upper() if sub_division not in (None, "") else None
    if sub is not None and sub.startswith(country + "-"):
        sub = sub.removeprefix(country + "-")  # ISO 3166-2 "FR-IDF" -> "IDF"
    try:
        calendar = _calendar(country, None)
    except NotImplementedError as exc:
        raise EvalError(
            f"The 'isPublicHoliday()' function has no calendar for '{country}': {exc}"
        ) from None
    if sub and sub in _subdivisions(calendar):
        calendar = _calendar(country, sub)
    # Jollyday answers a subdivision it does not know with the country's holidays (it only
    # adds those of the subdivisions it finds): so does Headwater.
    return day in calendar


def _subdivisions(calendar: holidays.HolidayBase) -> set[str]:
    names = set(getattr(calendar, "subdivisions", ()) or ())
    return names | set((getattr(calendar, "subdivisions_aliases", None) or {}).keys())


@function("isDayWeekInMonth")
def is_day_week_in_month(ctx: Ctx, date: Any, day_of_week: Any, position: Any) -> bool:
    day = local_date(date, "isDayWeekInMonth")
    weekday = _weekday(day_of_week, "isDayWeekInMonth")
    if position is None:
        raise EvalError("The 'isDayWeekInMonth()' function expects a 'position' argument.")
    which = str(position).strip().upper()
    if which != "LAST" and which not in _NTH:
        raise EvalError(
            f"The 'isDayWeekInMonth()' function received an invalid 'position' value: "
            f"'{position}'. Expected one of: FIRST, SECOND, THIRD, FOURTH, LAST."
        )
    if day.weekday() != weekday:
        return False
    if which == "LAST":
        return day.day + 7 > cal.monthrange(day.year, day.month)[1]
    return (day.day - 1) // 7 == _NTH[which]


@function("isLastWorkingDay")
def is_last_working_day(ctx: Ctx, date: Any, working_days: Any = None) -> bool:
    day = local_date(date, "isLastWorkingDay")
    if working_days is None or not str(working_days).strip():
        working = set(range(5))
    else:
        parts = [p for p in re.split(r"[,\s]+", str(working_days)) if p.strip()]
        working = {_weekday(p, "isLastWorkingDay", "workingDays") for p in parts}
        if not working:
            raise EvalError(
                "The 'isLastWorkingDay()' function requires at least one valid day in "
                "'workingDays'."
            )
    if day.weekday() not in working:
        return False
    candidate = day.replace(day=cal.monthrange(day.year, day.month)[1])
    while candidate.weekday() not in working:
        candidate -= dt.timedelta(days=1)
    return candidate == day


@function("dayOfWeek")
def day_of_week(ctx: Ctx, date: Any) -> str:
    return DAYS[local_date(date, "dayOfWeek").weekday()]


@function("dayOfMonth")
def day_of_month(ctx: Ctx, date: Any) -> int:
    return local_date(date, "dayOfMonth").day


@function("monthOfYear")
def month_of_year(ctx: Ctx, date: Any) -> int:
    return local_date(date, "monthOfYear").month


@function("hourOfDay")
def hour_of_day(ctx: Ctx, date: Any) -> int:
    parsed = _datetime(date, "hourOfDay")
    if not isinstance(parsed, dt.datetime):
        raise EvalError(
            f"The 'hourOfDay()' function could not parse 'date': '{date}' has no time of day"
        )
    return parsed.hour


@function("loopOutputs")
def loop_outputs(ctx: Ctx, outputs: Any, name_: Any) -> list[Any]:
    name = name_
    if outputs is None:
        raise EvalError("The 'loopOutputs' function expects a non-null argument 'outputs'.")
    if not isinstance(outputs, list | tuple):
        raise EvalError("The 'loopOutputs' function expects 'outputs' to be a list.")
    if name is None:
        raise EvalError("The 'loopOutputs' function expects a non-null argument 'name'.")
    if not isinstance(name, str):
        raise EvalError("The 'loopOutputs' function expects 'name' to be a string.")
    out: list[Any] = []
    for entry in outputs:
        values = entry.get("outputs") if isinstance(entry, Mapping) else None
        out.append(values.get(name) if isinstance(values, Mapping) else None)
    return out
