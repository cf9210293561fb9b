"""Result values as Kestra's outputs show them.

A row read by a dialect holds the Java-like values of Kestra's cell converters, as Python
values: ``date`` (LocalDate), naive ``time`` / ``datetime`` (LocalTime / LocalDateTime), aware
``datetime`` (ZonedDateTime / OffsetDateTime / Instant), ``Decimal`` (BigDecimal), ``bytes``,
``dict`` / ``list`` (json, arrays, structs), ``str``, numbers, booleans. ``fetchType: STORE``
writes those as Ion (:mod:`executors.ion` keeps the java.time kinds). ``FETCH`` and
``FETCH_ONE`` outputs are JSON, as Kestra's output mapper (Jackson, JavaTimeModule, dates as
ISO text) turns them:

- ``date`` -> ``"2024-01-31"``; ``time`` -> ``"10:00:00"`` (``"10:00:00.5"``; an offset time
  keeps its offset); naive ``datetime`` -> ``"2024-01-31T10:00:00"``; aware ``datetime`` ->
  ISO-8601 with its offset, ``Z`` for UTC (``"2024-01-31T10:00:00+01:00"``);
- ``Decimal`` -> a JSON number (an integer when it has no fraction digits);
- ``bytes`` -> base64 text (Jackson's ``byte[]``);
- ``UUID``, big integers beyond 64 bits and anything else -> text; NaN/infinity -> text.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import uuid
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from executors.base import TaskError
from executors.ion import iso_local_time, iso_offset

# Kestra uses the worker's default zone when timeZoneId is not set; Headwater's is UTC.
DEFAULT_ZONE = "UTC"
_LONG = 2**63


def zone(name: str | None) -> ZoneInfo:
    """The zone of ``timeZoneId`` (Java's ZoneId.of names: region ids, ``UTC``, ``Z``...)."""
    key = (name or DEFAULT_ZONE).strip()
    key = {"Z": "UTC", "GMT": "UTC"}.get(key, key)
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        raise TaskError(f"timeZoneId {name!r} is not a known time zone id") from None


def iso_datetime(value: dt.datetime) -> str:
    text = f"{value.date().isoformat()}T{iso_local_time(value)}"
    offset = value.utcoffset()
    return text if offset is None else text + iso_offset(offset)


def to_output(value: Any) -> Any:
    """One value as Kestra's JSON outputs show it (see the module docstring)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if -_LONG <= value < _LONG else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime):
        return iso_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        offset = value.utcoffset()
        text = iso_local_time(value)
        return text if offset is None else text + iso_offset(offset)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): to_output(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_output(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def row_output(row: dict[str, Any]) -> dict[str, Any]:
    return {key: to_output(value) for key, value in row.items()}


def kestra_interval(years: int, months: int, days: int, seconds: float) -> str:
    """PostgreSQL's interval as Kestra prints it: ``P{y}Y{m}M{d}DT{h}H{m}M{s}S`` (every part,
    whole seconds)."""
    whole = int(seconds)
    sign = -1 if whole < 0 else 1
    hours, rest = divmod(abs(whole), 3600)
    minutes, secs = divmod(rest, 60)
    return f"P{years}Y{months}M{days}DT{sign * hours}H{sign * minutes}M{sign * secs}S"
