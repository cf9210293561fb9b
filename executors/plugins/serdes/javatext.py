"""How Java prints (and parses) the values Kestra reads from ION.

- :func:`java_string`: ``String.valueOf(value)`` of the Java object Kestra's ION reader gives
  (``1.0E7`` for a double, ``{a=1, b=x}`` for a map, ``2024-01-01T10:00Z`` for an instant...).
  IonToCsv, IonToExcel and Avro string fields print values this way.
- :func:`jackson_text`: the string Jackson's JavaTimeModule writes for a temporal value
  (JSON, YAML and XML outputs): instants ``2024-01-01T10:00:00Z`` (ISO_INSTANT), zoned and
  offset date-times converted to the mapper's time zone (ISO_OFFSET_DATE_TIME), local ones ISO.
- :class:`JavaDateFormat`: a ``java.time.format.DateTimeFormatter`` pattern (the letters
  ``y u M d D E e a H h k K m s S n X x Z O V z``, quoted text and ``[optional]`` sections)
  that formats and parses.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from executors import ion
from executors.base import TaskError


def _fraction_groups(micro: int) -> str:
    """``Instant``/``LocalTime.toString``'s fraction: 3 or 6 digits, none when zero."""
    if not micro:
        return ""
    return f".{micro // 1000:03d}" if micro % 1000 == 0 else f".{micro:06d}"


def java_time_text(value: time) -> str:
    """``LocalTime.toString``: ``HH:mm``, ``:ss`` unless zero, fraction in groups of 3."""
    text = f"{value.hour:02d}:{value.minute:02d}"
    if value.second or value.microsecond:
        text += f":{value.second:02d}" + _fraction_groups(value.microsecond)
    return text


def instant_text(value: datetime) -> str:
    """``Instant.toString`` (ISO_INSTANT)."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + _fraction_groups(utc.microsecond) + "Z"


def is_instant(value: datetime) -> bool:
    """An aware datetime in plain UTC is what Kestra reads as an ``Instant``."""
    tz = value.tzinfo
    return tz is not None and ion.is_utc(tz) and not isinstance(tz, ZoneInfo)


def _zone_suffix(value: datetime) -> str:
    tz = value.tzinfo
    offset = ion.iso_offset(value.utcoffset())
    return f"{offset}[{tz.key}]" if isinstance(tz, ZoneInfo) else offset


def java_string(value: Any) -> str:
    """Java's ``String.valueOf`` of the value Kestra reads from ION."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return ion.java_double(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal | int):
        return str(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}={java_string(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(java_string(v) for v in value) + "]"
    if isinstance(value, datetime):
        local = f"{value.date().isoformat()}T{java_time_text(value.time())}"
        if value.tzinfo is None:
            return local
        if is_instant(value):
            return instant_text(value)
        return local + _zone_suffix(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        offset = value.utcoffset()
        text = java_time_text(value)
        return text if offset is None else text + ion.iso_offset(offset)
    if isinstance(value, bytes | bytearray):
        # Java prints an array's identity ([B@1b6d3586); the content is more useful.
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def jackson_text(value: date | time, zone: tzinfo) -> str:
    """Jackson's JavaTimeModule text of a temporal value, the mapper's time zone ``zone``."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return ion.iso_local_date_time(value)
        if is_instant(value):
            return instant_text(value)
        local = value.astimezone(zone)
        return ion.iso_local_date_time(local) + ion.iso_offset(local.utcoffset())
    if isinstance(value, date):
        return value.isoformat()
    offset = value.utcoffset()
    text = ion.iso_local_time(value)
    return text if offset is None else text + ion.iso_offset(offset)


def zone_name(tz: tzinfo | None) -> str | None:
    if tz is None:
        return None
    if isinstance(tz, ZoneInfo):
        return tz.key
    return ion.iso_offset(tz.utcoffset(None))


# ------------------------------------------------------------- DateTimeFormatter patterns

_MONTHS = "January February March April May June July August September October November December"
_DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday"
_NEEDS = {
    **dict.fromkeys("yuMdDEe", "date"),
    **dict.fromkeys("HhkKmsSan", "time"),
    **dict.fromkeys("XxZO", "offset"),
    **dict.fromkeys("Vz", "zone"),
}


@dataclass(slots=True)
class Parsed:
    """The fields a pattern parsed (None: absent)."""

    year: int | None = None
    month: int | None = None
    day: int | None = None
    hour: int | None = None
    minute: int | None = None
    second: int | None = None
    micro: int | None = None
    pm: bool | None = None
    hour12: int | None = None
    offset: timedelta | None = None
    zone: tzinfo | None = None


class JavaDateFormat:
    """A ``DateTimeFormatter.ofPattern`` pattern: :meth:`format` and :meth:`parse`."""

    def __init__(self, pattern: str, name: str) -> None:
        self.pattern = pattern
        self.name = name
        self.tokens, _ = self._parse_pattern(pattern, 0, top=True)
        self._regex: re.Pattern[str] | None = None
        self._groups: list[tuple[str, str, int]] = []

    def _parse_pattern(self, pattern: str, i: int, *, top: bool) -> tuple[list[Any], int]:
        tokens: list[Any] = []
        while i < len(pattern):
            char = pattern[i]
            if char == "'":
                end = pattern.find("'", i + 1)
                while end >= 0 and pattern.startswith("''", end):
                    end = pattern.find("'", end + 2)
                if end < 0:
                    raise TaskError(f"property '{self.name}': unclosed quote in {self.pattern!r}")
                text = pattern[i + 1 : end].replace("''", "'")
                tokens.append(("lit", text or "'"))
                i = end + 1
            elif char == "[":
                inner, i = self._parse_pattern(pattern, i + 1, top=False)
                tokens.append(("opt", inner))
            elif char == "]":
                if top:
                    raise TaskError(f"property '{self.name}': unbalanced ']' in {self.pattern!r}")
                return tokens, i + 1
            elif char.isalpha():
                if char not in _NEEDS:
                    raise TaskError(
                        f"property '{self.name}': pattern letter {char!r} is not supported"
                    )
                count = 1
                while i + count < len(pattern) and pattern[i + count] == char:
                    count += 1
                tokens.append(("field", char, count))
                i += count
            else:
                tokens.append(("lit", char))
                i += 1
        return tokens, i

    # -- formatting

    def format(
        self, day: date | None, clock: time | None, offset: timedelta | None, zone: str | None
    ) -> str:
        have = {"date": day, "time": clock, "offset": offset, "zone": zone}
        out: list[str] = []
        self._emit(self.tokens, have, out, optional=False)
        return "".join(out)

    def _emit(
        self, tokens: list[Any], have: dict[str, Any], out: list[str], *, optional: bool
    ) -> bool:
        for token in tokens:
            if token[0] == "lit":
                out.append(token[1])
            elif token[0] == "opt":
                part: list[str] = []
                if self._emit(token[1], have, part, optional=True):
                    out.extend(part)
            else:
                _, letter, count = token
                needed = _NEEDS[letter]
                if have[needed] is None:
                    if optional:
                        return False
                    raise TaskError(
                        f"property '{self.name}': pattern {self.pattern!r} needs a {needed} "
                        "that this value does not have"
                    )
                out.append(_field_text(letter, count, have))
        return True

    # -- parsing

    def parse(self, text: str) -> Parsed:
        """The fields of ``text``; ValueError (Java's message) when it does not match."""
        if self._regex is None:
            self._groups = []
            self._regex = re.compile(self._regex_of(self.tokens), re.IGNORECASE)
        match = self._regex.fullmatch(text)
        if match is None:
            raise ValueError(f"Text '{text}' could not be parsed with pattern '{self.pattern}'")
        parsed = Parsed()
        for group, (_, letter, count) in zip(match.groups(), self._groups, strict=True):
            if group is not None:
                _set_field(parsed, letter, count, group)
        return parsed

    def _regex_of(self, tokens: list[Any]) -> str:
        parts: list[str] = []
        for token in tokens:
            if token[0] == "lit":
                parts.append(re.escape(token[1]))
            elif token[0] == "opt":
                parts.append(f"(?:{self._regex_of(token[1])})?")
            else:
                self._groups.append(token)
                parts.append(f"({_field_regex(token[1], token[2])})")
        return "".join(parts)

    def to_date(self, text: str) -> date:
        parsed = self.parse(text)
        if parsed.year is None or parsed.month is None or parsed.day is None:
            raise ValueError(f"Text '{text}' has no complete date for pattern '{self.pattern}'")
        return date(parsed.year, parsed.month, parsed.day)

    def to_time(self, text: str) -> time:
        parsed = self.parse(text)
        hour = _hour(parsed)
        if hour is None:
            raise ValueError(f"Text '{text}' has no time for pattern '{self.pattern}'")
        return time(hour, parsed.minute or 0, parsed.second or 0, parsed.micro or 0)

    def to_datetime(self, text: str, default_zone: tzinfo | None) -> datetime:
        """A ``ZonedDateTime`` when the text has an offset or zone, else ``LocalDateTime`` at
        ``default_zone`` (naive when None)."""
        parsed = self.parse(text)
        hour = _hour(parsed)
        if parsed.year is None or parsed.month is None or parsed.day is None or hour is None:
            raise ValueError(f"Text '{text}' has no date and time for pattern '{self.pattern}'")
        moment = datetime.combine(
            date(parsed.year, parsed.month, parsed.day),
            time(hour, parsed.minute or 0, parsed.second or 0, parsed.micro or 0),
        )
        if parsed.offset is not None:
            return moment.replace(tzinfo=timezone(parsed.offset) if parsed.offset else UTC)
        if parsed.zone is not None:
            return moment.replace(tzinfo=parsed.zone)
        return moment if default_zone is None else moment.replace(tzinfo=default_zone)


def _hour(parsed: Parsed) -> int | None:
    if parsed.hour is not None:
        return parsed.hour
    if parsed.hour12 is not None:
        return parsed.hour12 % 12 + (12 if parsed.pm else 0)
    return None


_OFFSET_RE = {
    "X1": r"Z|[+-]\d{2}(?:\d{2})?",
    "X2": r"Z|[+-]\d{4}",
    "X3": r"Z|[+-]\d{2}:\d{2}",
    "X4": r"Z|[+-]\d{4}(?:\d{2})?",
    "X5": r"Z|[+-]\d{2}:\d{2}(?::\d{2})?",
    "Z": r"[+-]\d{4}",
    "Z5": r"Z|[+-]\d{2}:\d{2}",
    "O": r"GMT(?:[+-]\d{1,2}(?::\d{2})?)?",
}


def _field_regex(letter: str, count: int) -> str:
    if letter in "yu":
        return r"\d{2}" if count == 2 else (r"[+-]?\d{4,9}" if count >= 4 else r"[+-]?\d{1,9}")
    if letter == "M" and count >= 3:
        names = _MONTHS.split()
        return "|".join(n if count >= 4 else n[:3] for n in names)
    if letter in "Ee":
        names = _DAYS.split()
        return "|".join(n if count >= 4 else n[:3] for n in names)
    if letter in "MdHhkKms":
        return r"\d{2}" if count == 2 else r"\d{1,2}"
    if letter == "D":
        return rf"\d{{{count},3}}"
    if letter == "S":
        return rf"\d{{{count}}}"
    if letter == "n":
        return r"\d{1,9}"
    if letter == "a":
        return "AM|PM"
    if letter == "X":
        return _OFFSET_RE[f"X{min(count, 5)}"]
    if letter == "x":
        return _OFFSET_RE[f"X{min(count, 5)}"].removeprefix("Z|")
    if letter == "Z":
        return _OFFSET_RE["Z5"] if count == 5 else _OFFSET_RE["Z"]
    if letter == "O":
        return _OFFSET_RE["O"]
    return r"[A-Za-z][A-Za-z0-9_/+\-]*"  # V, z: a zone id


def _set_field(parsed: Parsed, letter: str, count: int, text: str) -> None:
    if letter in "yu":
        parsed.year = 2000 + int(text) if count == 2 else int(text)
    elif letter == "M":
        if count >= 3:
            names = [n.lower() if count >= 4 else n[:3].lower() for n in _MONTHS.split()]
            parsed.month = names.index(text.lower()) + 1
        else:
            parsed.month = int(text)
    elif letter == "d":
        parsed.day = int(text)
    elif letter == "H":
        parsed.hour = int(text)
    elif letter == "k":
        parsed.hour = int(text) % 24
    elif letter in "hK":
        parsed.hour12 = int(text)
    elif letter == "a":
        parsed.pm = text.upper() == "PM"
    elif letter == "m":
        parsed.minute = int(text)
    elif letter == "s":
        parsed.second = int(text)
    elif letter == "S":
        parsed.micro = int((text + "000000")[:6])
    elif letter == "n":
        parsed.micro = int(text) // 1000
    elif letter in "XxZO":
        parsed.offset = _offset_of(text)
    elif letter in "Vz":
        try:
            parsed.zone = ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {text!r}") from None


def _offset_of(text: str) -> timedelta:
    body = text.removeprefix("GMT")
    if body in ("Z", ""):
        return timedelta(0)
    sign = -1 if body[0] == "-" else 1
    digits = body[1:].replace(":", "")
    hours = int(digits[:2]) if len(digits) >= 2 else int(digits)
    minutes = int(digits[2:4]) if len(digits) >= 4 else 0
    seconds = int(digits[4:6]) if len(digits) >= 6 else 0
    return sign * timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _field_text(letter: str, count: int, have: dict[str, Any]) -> str:
    day: date = have["date"]
    clock: time = have["time"]
    if letter in "yu":
        return f"{day.year % 100:02d}" if count == 2 else f"{day.year:0{count}d}"
    if letter == "M":
        if count >= 3:
            name = _MONTHS.split()[day.month - 1]
            return name if count >= 4 else name[:3]
        return f"{day.month:0{count}d}"
    if letter == "d":
        return f"{day.day:0{count}d}"
    if letter == "D":
        return f"{day.timetuple().tm_yday:0{count}d}"
    if letter in "Ee":
        name = _DAYS.split()[day.weekday()]
        return name if count >= 4 else name[:3]
    if letter == "H":
        return f"{clock.hour:0{count}d}"
    if letter == "k":
        return f"{clock.hour or 24:0{count}d}"
    if letter == "h":
        return f"{(clock.hour % 12) or 12:0{count}d}"
    if letter == "K":
        return f"{clock.hour % 12:0{count}d}"
    if letter == "m":
        return f"{clock.minute:0{count}d}"
    if letter == "s":
        return f"{clock.second:0{count}d}"
    if letter == "S":
        return f"{clock.microsecond:06d}000"[:count].ljust(count, "0")
    if letter == "n":
        return str(clock.microsecond * 1000)
    if letter == "a":
        return "AM" if clock.hour < 12 else "PM"
    if letter in "XxZO":
        return _offset_text(letter, count, have["offset"])
    return str(have["zone"])


def _offset_text(letter: str, count: int, offset: timedelta) -> str:
    seconds = int(offset.total_seconds())
    if seconds == 0 and (letter == "X" or (letter == "Z" and count == 5)):
        return "Z"
    sign = "+" if seconds >= 0 else "-"
    hours, rest = divmod(abs(seconds), 3600)
    minutes = rest // 60
    if letter == "O":
        if seconds == 0:
            return "GMT"
        return f"GMT{sign}{hours}" + (f":{minutes:02d}" if minutes else "")
    if letter == "Z":
        if count == 5:
            return f"{sign}{hours:02d}:{minutes:02d}"
        return f"{sign}{hours:02d}{minutes:02d}"
    if count == 1:
        return f"{sign}{hours:02d}" + (f"{minutes:02d}" if minutes else "")
    if count in (2, 4):
        return f"{sign}{hours:02d}{minutes:02d}"
    return f"{sign}{hours:02d}:{minutes:02d}"
