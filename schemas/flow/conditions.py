"""Trigger conditions (``conditions:`` of a trigger), tagged by canonical ``type``.

Kestra's ``io.kestra.plugin.core.condition.*`` classes (v0.20 source), with their properties
and defaults; :mod:`triggers.conditions` documents and implements how each is evaluated. The
date parsers of Kestra's ``DateUtils`` (Java's ``ZonedDateTime.parse``, ``OffsetTime.parse``,
``LocalDate.parse``) live here, so that a bad ``after:`` fails when the flow is loaded (as
Jackson fails in Kestra) and the evaluator parses rendered values the same way.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from schemas.flow.common import (
    BoolOrExpr,
    Duration,
    FlowModel,
    Labels,
    State,
    Str,
    is_expression,
)

_C = "io.kestra.plugin.core.condition"
TRIGGER_DATE = "{{ trigger.date }}"

# ------------------------------------------------------------------ Kestra's date grammar

_OFFSET = r"(Z|[+-]\d{2}:\d{2}(?::\d{2})?)"
_TIME = r"(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
# ISO_ZONED_DATE_TIME: an offset is required, a [region id] may follow it.
_ZONED = re.compile(rf"(\d{{4}})-(\d{{2}})-(\d{{2}})T{_TIME}{_OFFSET}(?:\[[A-Za-z0-9_/+-]+\])?")
_OFFSET_TIME = re.compile(rf"{_TIME}{_OFFSET}")
_LOCAL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _zone(offset: str) -> timezone:
    if offset == "Z":
        return UTC
    sign = -1 if offset[0] == "-" else 1
    parts = [int(p) for p in offset[1:].split(":")]
    seconds = parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0)
    return timezone(sign * timedelta(seconds=seconds))


def _clock(hour: str, minute: str, second: str | None, fraction: str | None) -> time:
    micros = int((fraction or "0").ljust(6, "0")[:6])
    return time(int(hour), int(minute), int(second or 0), micros)


def parse_zoned(text: str) -> datetime:
    """Java's ``ZonedDateTime.parse``: ``2024-01-01T08:30:00+02:00`` (``Z``, a ``[Zone]``
    suffix, fractions and second-less times allowed); ValueError otherwise. The local
    date and time stay as written (a region id only names the zone of that offset)."""
    m = _ZONED.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not an ISO-8601 date-time with an offset")
    y, mo, d, hh, mm, ss, frac, offset = m.groups()
    day = date(int(y), int(mo), int(d))
    return datetime.combine(day, _clock(hh, mm, ss, frac), _zone(offset))


def parse_offset_time(text: str) -> time:
    """Java's ``OffsetTime.parse``: ``16:19:12+02:00`` (the offset is required)."""
    m = _OFFSET_TIME.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not an ISO-8601 time with an offset, e.g. 08:00:00+02:00")
    hh, mm, ss, frac, offset = m.groups()
    return _clock(hh, mm, ss, frac).replace(tzinfo=_zone(offset))


def parse_local_date(text: str) -> date:
    """Kestra's ``DateUtils.parseLocalDate``: ``2024-01-01``, else a zoned date-time's own
    local date (no conversion to UTC)."""
    stripped = text.strip()
    if _LOCAL_DATE.fullmatch(stripped):
        return date.fromisoformat(stripped)
    return parse_zoned(stripped).date()


def _checked(parser: Any, name: str) -> Any:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise PydanticCustomError("string_expected", "expected a string")
        if not is_expression(value):
            try:
                parser(value)
            except ValueError as exc:
                raise PydanticCustomError(name, str(exc)) from None
        return value

    return check


def _one_of(values: tuple[str, ...]) -> Any:
    def check(value: Any) -> str:
        if isinstance(value, str) and (value in values or is_expression(value)):
            return value
        raise PydanticCustomError(
            "enum_or_expression",
            "expected one of {values} or an expression",
            {"values": ", ".join(values)},
        )

    return check


DAYS: tuple[str, ...] = (
    "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY",
)  # fmt: skip
DAYS_IN_MONTH: tuple[str, ...] = ("FIRST", "LAST", "SECOND", "THIRD", "FOURTH")
_EXPR = {"type": "string", "pattern": r"\{[{%]"}

# Not dynamic in Kestra 0.20 (enums, OffsetTime, ZonedDateTime); expressions are accepted too
# because Kestra's later versions made them Property<...>.
DayOfWeek = Annotated[
    str,
    PlainValidator(_one_of(DAYS)),
    WithJsonSchema({"anyOf": [{"enum": list(DAYS)}, _EXPR]}),
]
DayInMonth = Annotated[
    str,
    PlainValidator(_one_of(DAYS_IN_MONTH)),
    WithJsonSchema({"anyOf": [{"enum": list(DAYS_IN_MONTH)}, _EXPR]}),
]
OffsetTimeStr = Annotated[
    str,
    PlainValidator(_checked(parse_offset_time, "offset_time")),
    WithJsonSchema({"type": "string", "examples": ["08:00:00+02:00"]}),
]
ZonedDateTimeStr = Annotated[
    str,
    PlainValidator(_checked(parse_zoned, "zoned_date_time")),
    WithJsonSchema({"type": "string", "examples": ["2024-01-01T08:30:00Z"]}),
]


# ------------------------------------------------------------------------------ the models


class _ConditionBase(FlowModel):
    # Kestra lets any condition carry an id; only MultipleCondition needs one.
    id: Str | None = None
    description: Str | None = None


class ExecutionStatusCondition(_ConditionBase):
    """The triggering execution ended in (or not in) one of these states."""

    type: Literal["io.kestra.plugin.core.condition.ExecutionStatus"]
    in_: list[State] | None = Field(default=None, alias="in")
    notIn: list[State] | None = None


class ExecutionFlowCondition(_ConditionBase):
    """The triggering execution belongs to this flow."""

    type: Literal["io.kestra.plugin.core.condition.ExecutionFlow"]
    namespace: Str
    flowId: Str


class ExecutionNamespaceCondition(_ConditionBase):
    """The triggering execution's namespace equals / starts with / ends with this one."""

    type: Literal["io.kestra.plugin.core.condition.ExecutionNamespace"]
    namespace: Str
    comparison: Literal["EQUALS", "PREFIX", "SUFFIX"] | None = None
    prefix: BoolOrExpr | None = Field(default=None, description="deprecated: use comparison")


class ExecutionLabelsCondition(_ConditionBase):
    """The triggering execution carries these labels."""

    type: Literal["io.kestra.plugin.core.condition.ExecutionLabels"]
    labels: Labels


class ExecutionOutputsCondition(_ConditionBase):
    """An expression over the triggering execution's outputs (``trigger.outputs``)."""

    type: Literal["io.kestra.plugin.core.condition.ExecutionOutputs"]
    expression: Str = Field(min_length=1)


class HasRetryAttemptCondition(_ConditionBase):
    """Some task run of the triggering execution was retried, with an attempt in (not in)
    these states."""

    type: Literal["io.kestra.plugin.core.condition.HasRetryAttempt"]
    in_: list[State] | None = Field(default=None, alias="in")
    notIn: list[State] | None = None


class FlowConditionModel(_ConditionBase):
    """Deprecated (use ExecutionFlow): the flow evaluating the condition is this one."""

    type: Literal["io.kestra.plugin.core.condition.FlowCondition"]
    namespace: Str
    flowId: Str


class FlowNamespaceConditionModel(_ConditionBase):
    """Deprecated (use ExecutionNamespace): the evaluating flow's namespace is (or starts
    with, ``prefix: true``) this one."""

    type: Literal["io.kestra.plugin.core.condition.FlowNamespaceCondition"]
    namespace: Str
    prefix: BoolOrExpr = False


class ExpressionCondition(_ConditionBase):
    """An expression that must render to true."""

    type: Literal["io.kestra.plugin.core.condition.Expression"]
    expression: Str = Field(min_length=1)


class DayWeekCondition(_ConditionBase):
    """``date`` falls on ``dayOfWeek``."""

    type: Literal["io.kestra.plugin.core.condition.DayWeek"]
    date: Str = TRIGGER_DATE
    dayOfWeek: DayOfWeek


class DayWeekInMonthCondition(_ConditionBase):
    """``date`` is the FIRST / SECOND / THIRD / FOURTH / LAST ``dayOfWeek`` of its month."""

    type: Literal["io.kestra.plugin.core.condition.DayWeekInMonth"]
    date: Str = TRIGGER_DATE
    dayOfWeek: DayOfWeek
    dayInMonth: DayInMonth


class WeekendCondition(_ConditionBase):
    """``date`` is a Saturday or a Sunday."""

    type: Literal["io.kestra.plugin.core.condition.Weekend"]
    date: Str = TRIGGER_DATE


class PublicHolidayCondition(_ConditionBase):
    """``date`` is a public holiday of ``country`` (ISO 3166-1 alpha-2), optionally of one
    ``subDivision`` (ISO 3166-2) of it."""

    type: Literal["io.kestra.plugin.core.condition.PublicHoliday"]
    date: Str = Field(default=TRIGGER_DATE, min_length=1)
    country: Str | None = None
    subDivision: Str | None = None


class TimeBetweenCondition(_ConditionBase):
    """The time of day of ``date`` is after ``after`` and/or before ``before``."""

    type: Literal["io.kestra.plugin.core.condition.TimeBetween"]
    date: Str = TRIGGER_DATE
    after: OffsetTimeStr | None = None
    before: OffsetTimeStr | None = None


class DateTimeBetweenCondition(_ConditionBase):
    """``date`` is after ``after`` and/or before ``before``."""

    type: Literal["io.kestra.plugin.core.condition.DateTimeBetween"]
    date: Str = TRIGGER_DATE
    after: ZonedDateTimeStr | None = None
    before: ZonedDateTimeStr | None = None


class NotCondition(_ConditionBase):
    """None of ``conditions`` holds."""

    type: Literal["io.kestra.plugin.core.condition.Not"]
    conditions: list[Condition] = Field(min_length=1)


class OrCondition(_ConditionBase):
    """At least one of ``conditions`` holds."""

    type: Literal["io.kestra.plugin.core.condition.Or"]
    conditions: list[Condition] = Field(min_length=1)


class MultipleCondition(_ConditionBase):
    """All named conditions must have been met by some execution within a time window."""

    type: Literal["io.kestra.plugin.core.condition.MultipleCondition"]
    window: Duration | None = None
    windowAdvance: Duration | None = None
    conditions: dict[str, Condition]
    resetOnSuccess: BoolOrExpr | None = None


Condition = Annotated[
    ExecutionStatusCondition
    | ExecutionFlowCondition
    | ExecutionNamespaceCondition
    | ExecutionLabelsCondition
    | ExecutionOutputsCondition
    | HasRetryAttemptCondition
    | FlowConditionModel
    | FlowNamespaceConditionModel
    | ExpressionCondition
    | DayWeekCondition
    | DayWeekInMonthCondition
    | WeekendCondition
    | PublicHolidayCondition
    | TimeBetweenCondition
    | DateTimeBetweenCondition
    | NotCondition
    | OrCondition
    | MultipleCondition,
    Field(discriminator="type"),
]

for _model in (NotCondition, OrCondition, MultipleCondition):
    _model.model_rebuild()

CONDITION_MODELS: dict[str, type[Any]] = {
    f"{_C}.ExecutionStatus": ExecutionStatusCondition,
    f"{_C}.ExecutionFlow": ExecutionFlowCondition,
    f"{_C}.ExecutionNamespace": ExecutionNamespaceCondition,
    f"{_C}.ExecutionLabels": ExecutionLabelsCondition,
    f"{_C}.ExecutionOutputs": ExecutionOutputsCondition,
    f"{_C}.HasRetryAttempt": HasRetryAttemptCondition,
    f"{_C}.FlowCondition": FlowConditionModel,
    f"{_C}.FlowNamespaceCondition": FlowNamespaceConditionModel,
    f"{_C}.Expression": ExpressionCondition,
    f"{_C}.DayWeek": DayWeekCondition,
    f"{_C}.DayWeekInMonth": DayWeekInMonthCondition,
    f"{_C}.Weekend": WeekendCondition,
    f"{_C}.PublicHoliday": PublicHolidayCondition,
    f"{_C}.TimeBetween": TimeBetweenCondition,
    f"{_C}.DateTimeBetween": DateTimeBetweenCondition,
    f"{_C}.Not": NotCondition,
    f"{_C}.Or": OrCondition,
    f"{_C}.MultipleCondition": MultipleCondition,
}

# Kestra's ScheduleCondition interface: the conditions a Schedule trigger evaluates on each
# tick (it ignores the others: they test an execution, which a tick does not have).
SCHEDULE_CONDITIONS: frozenset[str] = frozenset(
    f"{_C}.{name}"
    for name in (
        "Expression", "ExecutionOutputs", "DayWeek", "DayWeekInMonth", "Weekend",
        "PublicHoliday", "TimeBetween", "DateTimeBetween", "Not", "Or",
    )
)  # fmt: skip
