"""Building blocks shared by every flow model: the base model and the value types.

A Kestra property can nearly always be written as a ``{{ expression }}`` that is only resolved
at run time, so a typed property (an int, a bool, a duration) also accepts a string holding an
expression. Values are kept exactly as written — a duration stays the string ``PT5S`` — so that
dumping a model gives back the YAML's own dict; :func:`parse_duration` turns one into a
``timedelta`` when the engine needs it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from schemas.flow.cron import cron_problem


class FlowModel(BaseModel):
    """Base of every flow model: unknown keys are errors and parsed flows are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def is_expression(value: object) -> bool:
    """Whether a value is a string holding a Pebble expression or tag, resolved at run time."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


_EXPR_SCHEMA: dict[str, Any] = {"type": "string", "pattern": r"\{[{%]"}


def _int_or_expr(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and (is_expression(value) or re.fullmatch(r"-?\d+", value.strip())):
        return value
    raise PydanticCustomError("int_or_expression", "expected an integer or an expression")


def _number_or_expr(value: Any) -> float | int | str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        if is_expression(value):
            return value
        try:
            float(value)
        except ValueError:
            pass
        else:
            return value
    raise PydanticCustomError("number_or_expression", "expected a number or an expression")


def _bool_or_expr(value: Any) -> bool | str:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and (is_expression(value) or value.lower() in ("true", "false")):
        return value
    raise PydanticCustomError("bool_or_expression", "expected true, false or an expression")


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise PydanticCustomError("string_expected", "expected a string")


IntOrExpr = Annotated[
    int | str,
    PlainValidator(_int_or_expr),
    WithJsonSchema({"anyOf": [{"type": "integer"}, _EXPR_SCHEMA]}),
]
NumberOrExpr = Annotated[
    float | int | str,
    PlainValidator(_number_or_expr),
    WithJsonSchema({"anyOf": [{"type": "number"}, _EXPR_SCHEMA]}),
]
BoolOrExpr = Annotated[
    bool | str,
    PlainValidator(_bool_or_expr),
    WithJsonSchema({"anyOf": [{"type": "boolean"}, _EXPR_SCHEMA]}),
]


def enum_check(*values: str) -> Any:
    """The validator of a Kestra enum property: one of ``values`` or an expression; use as
    ``Annotated[str, enum_check(*V), enum_schema(*V)]``."""

    def check(value: Any) -> str:
        if isinstance(value, str) and (value in values or is_expression(value)):
            return value
        raise PydanticCustomError(
            "enum_or_expression",
            "expected one of {values} or an expression",
            {"values": ", ".join(values)},
        )

    return PlainValidator(check)


def enum_schema(*values: str) -> Any:
    return WithJsonSchema({"anyOf": [{"enum": list(values)}, _EXPR_SCHEMA]})


# A plain string: YAML's `yes`/`12` must not silently become "True"/"12".
Str = Annotated[str, PlainValidator(_string), WithJsonSchema({"type": "string"})]

# Java's Duration.parse grammar, which Kestra uses: days, hours, minutes, fractional seconds.
_DURATION = re.compile(
    r"([-+]?)P(?:([-+]?\d+)D)?"
    r"(T(?:([-+]?\d+)H)?(?:([-+]?\d+)M)?(?:([-+]?\d+)(?:[.,](\d{0,9}))?S)?)?",
    re.IGNORECASE,
)


def parse_duration(text: str) -> timedelta:
    """Parse an ISO-8601 duration as Kestra writes them (``PT5S``, ``PT1H30M``, ``P1D``).

    Raises ValueError for anything else, including expressions (render them first).
    """
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an ISO-8601 duration: {text!r}")
    sign, days, time_part, hours, minutes, seconds, fraction = match.groups()
    if days is None and time_part is None:
        raise ValueError(f"not an ISO-8601 duration: {text!r}")
    if time_part is not None and time_part.upper() == "T":
        raise ValueError(f"no time fields after 'T' in duration {text!r}")
    total = timedelta(
        days=int(days or 0),
        hours=int(hours or 0),
        minutes=int(minutes or 0),
        seconds=int(seconds or 0),
    )
    if fraction:
        micro = timedelta(microseconds=int(fraction.ljust(9, "0")[:6]))
        total += -micro if (seconds or "").startswith("-") else micro
    return -total if sign == "-" else total


def format_duration(seconds: float, *, digits: int = 3) -> str:
    """A duration the way Java's ``Duration.toString`` prints it (``PT0.1S``, ``PT1M30S``).

    The fraction of a second is rounded to ``digits`` decimals: milliseconds by default (the
    durations our tasks log), 6 for the microseconds of a database interval.
    """
    if seconds == 0:
        return "PT0S"
    unit = 10**digits
    ticks = round(abs(seconds) * unit)
    hours, rest = divmod(ticks, 3600 * unit)
    minutes, rest = divmod(rest, 60 * unit)
    secs, frac = divmod(rest, unit)
    sign = "-" if seconds < 0 else ""
    out = "PT"
    if hours:
        out += f"{sign}{hours}H"
    if minutes:
        out += f"{sign}{minutes}M"
    if secs or frac:
        fraction = f".{frac:0{digits}d}".rstrip("0") if frac else ""
        out += f"{sign}{secs}{fraction}S"
    return out


def _duration(value: Any) -> str:
    if isinstance(value, str):
        if is_expression(value):
            return value
        try:
            parse_duration(value)
        except (ValueError, OverflowError):
            pass
        else:
            return value
    raise PydanticCustomError(
        "duration",
        "expected an ISO-8601 duration such as PT5S, PT1H30M or P1D (or an expression)",
    )


Duration = Annotated[
    str,
    PlainValidator(_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "string",
                    "pattern": r"^[-+]?P(\d+D)?(T(\d+H)?(\d+M)?(\d+([.,]\d+)?S)?)?$",
                },
                _EXPR_SCHEMA,
            ],
            "description": "ISO-8601 duration, e.g. PT5S, PT1H30M, P1D",
        }
    ),
]


def _cron(value: Any) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("cron", "expected a cron expression string")
    problem = cron_problem(value)
    if problem is not None:
        raise PydanticCustomError(
            "cron",
            "expected a cron expression of 5 fields (6 with seconds) or a macro like @daily; "
            "{problem}",
            {"problem": problem},
        )
    return value


Cron = Annotated[
    str,
    PlainValidator(_cron),
    WithJsonSchema({"type": "string", "description": "cron (5 or 6 fields) or @daily etc."}),
]


def _time_zone(value: Any) -> str:
    if isinstance(value, str):
        if is_expression(value):
            return value
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            pass
        else:
            return value
    raise PydanticCustomError(
        "time_zone",
        "expected an IANA time zone such as Europe/Paris or UTC",
    )


TimeZone = Annotated[
    str, PlainValidator(_time_zone), WithJsonSchema({"type": "string", "format": "time-zone"})
]

FLOW_ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$"
NAMESPACE_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$"
# Task ids appear in expressions (outputs.<id>.value), so Kestra forbids dots in them.
TASK_ID_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$"

FlowId = Annotated[str, Field(pattern=FLOW_ID_PATTERN, max_length=100)]
Namespace = Annotated[str, Field(pattern=NAMESPACE_PATTERN, max_length=150)]
TaskId = Annotated[str, Field(pattern=TASK_ID_PATTERN, max_length=100)]

LogLevel = Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
State = Literal[
    "CREATED",
    "QUEUED",
    "RUNNING",
    "PAUSED",
    "RETRYING",
    "RESTARTED",
    "KILLING",
    "SUCCESS",
    "WARNING",
    "FAILED",
    "KILLED",
    "CANCELLED",
    "SKIPPED",
    "RETRIED",
]


class Label(FlowModel):
    """One label in the list form (``- key: k``, ``value: v``)."""

    key: Str
    value: Any


# Labels are written either as a map or as a list of {key, value}; both are accepted.
Labels = dict[str, Any] | list[Label]


class WorkerGroup(FlowModel):
    """Which group of workers runs a task (Kestra EE feature; kept for compatibility)."""

    key: Str
    fallback: Literal["FAIL", "WAIT", "CANCEL"] | None = None
