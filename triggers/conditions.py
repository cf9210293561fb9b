"""Kestra's trigger conditions, evaluated without I/O.

``conditions:`` of a trigger must all hold (Kestra's ``ConditionService.valid``): each
top-level condition is tested on its own and one that cannot be evaluated (a date that does
not parse, an undefined variable, an execution condition without an execution) counts as
false and is logged, as Kestra logs "Evaluate Condition Failed". Inside ``Not``/``Or`` such a
failure propagates to the enclosing top-level condition, so ``Not`` of a broken condition is
false, never true. What each type does (Kestra 0.20, ``io.kestra.plugin.core.condition``):

- ``ExecutionStatus`` (``in``, ``notIn``): the execution's state is in ``in`` (when given)
  and not in ``notIn`` (when given). ``ExecutionFlow`` (``namespace``, ``flowId``), equality.
  ``ExecutionNamespace`` (``namespace``, ``comparison`` EQUALS/PREFIX/SUFFIX, deprecated
  ``prefix``). ``ExecutionLabels`` (``labels``): every label is on the execution.
- ``ExecutionOutputs`` (``expression``): false when the execution has no outputs; else the
  expression, rendered with ``trigger.outputs`` = the execution's outputs, must not be blank
  nor ``false``. ``HasRetryAttempt`` (``in``, ``notIn``): some task run with more than one
  attempt has an attempt whose state passes ``in``/``notIn`` (read from the execution's
  ``task_runs``; an execution snapshot without task runs has none).
- ``Expression`` (``expression``): renders to neither blank nor ``false`` (Kestra's test,
  so ``0`` is true here).
- ``FlowCondition`` (``namespace``, ``flowId``) and ``FlowNamespaceCondition``
  (``namespace``, ``prefix`` default false), deprecated: they test the flow that evaluates
  the condition (the one owning the trigger), not the triggering execution's.
- ``DayWeek`` (``date`` default ``{{ trigger.date }}``, ``dayOfWeek``), ``Weekend``
  (``date``: Saturday or Sunday), ``DayWeekInMonth`` (``date``, ``dayOfWeek``,
  ``dayInMonth`` FIRST/SECOND/THIRD/FOURTH/LAST: the nth, or the last, such weekday of the
  date's month), ``PublicHoliday`` (``date``, ``country``, ``subDivision``; Jollyday in
  Kestra, the ``holidays`` package here). ``date`` is rendered then read as ``yyyy-MM-dd`` or
  as an ISO date-time with an offset, whose own local date counts (no conversion to UTC).
- ``TimeBetween`` (``date``, ``after``, ``before``: times with an offset): the time of day of
  ``date`` (a date-time with an offset) is strictly after ``after`` and/or strictly before
  ``before``, compared as Java's ``OffsetTime`` does: each time minus its offset, on one day
  with no wrap at midnight (``01:00+02:00`` is before ``00:30Z``). ``DateTimeBetween``
  (``date``, ``after``, ``before``: date-times with an offset): strictly between, as
  instants. Neither bound set is an evaluation error.
- ``Not`` (``conditions``): none holds. ``Or`` (``conditions``): at least one holds. Both
  stop at the first condition that holds, as Java streams do.

Contexts: a Schedule trigger tests, on each tick, only Kestra's ScheduleConditions
(:data:`schemas.flow.conditions.SCHEDULE_CONDITIONS`: Expression, ExecutionOutputs, the date
and time ones, Not, Or) with ``trigger`` = ``schedule`` = the tick's date/next/previous in
the schedule's zone; it ignores the others, as Kestra's ``Schedule.validateScheduleCondition``
does. A tick whose conditions fail starts no execution. Flow (and Webhook) triggers test
every condition with the triggering execution (none for a webhook).

MultipleCondition and the Flow trigger's ``preconditions`` are met only once each of their
named sub-conditions was matched by some execution within a time window; their progress is a
JSON-able dict (kept in the trigger's state, ``extra.windows``) passed in and returned.

Windows: ``DURATION_WINDOW`` (Kestra's default, fixed windows of ``window`` shifted by
``windowAdvance``), ``SLIDING_WINDOW`` (the last ``window``). Other window types are treated
as a fixed daily window. After firing, progress resets (``resetOnSuccess``, default true).
"""

from __future__ import annotations

import calendar
import functools
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import holidays

from engine.errors import ExpressionError
from engine.expressions import is_true, render
from engine.reducer.ids import iso, parse_iso
from schemas.flow.common import parse_duration
from schemas.flow.conditions import (
    DAYS,
    SCHEDULE_CONDITIONS,
    TRIGGER_DATE,
    parse_local_date,
    parse_offset_time,
    parse_zoned,
)

log = logging.getLogger(__name__)

JSON = dict[str, Any]

_C = "io.kestra.plugin.core.condition."
_DEFAULT_WINDOW = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NTH = {"FIRST": 0, "SECOND": 1, "THIRD": 2, "FOURTH": 3}


class ConditionError(Exception):
    """A condition that cannot be evaluated (Kestra's InternalException)."""


def condition_scope(flow_ref: JSON, execution: JSON | None, trigger: JSON) -> JSON:
    """The variables conditions render with."""
    scope: JSON = {"flow": flow_ref, "trigger": trigger}
    if execution is not None:
        scope["execution"] = {
            "id": execution.get("id"),
            "namespace": execution.get("namespace"),
            "flowId": execution.get("flow_id"),
            "state": execution.get("state"),
            "startDate": execution.get("start_date"),
            "labels": execution.get("labels") or {},
            "outputs": execution.get("outputs") or {},
        }
        scope["labels"] = execution.get("labels") or {}
        scope["outputs"] = execution.get("outputs") or {}
    return scope


def simple_holds(condition: JSON, execution: JSON | None, scope: JSON) -> bool:
    """One top-level condition (not windowed); one that cannot be evaluated is false."""
    try:
        return test(condition, execution, scope)
    except ConditionError as exc:
        log.warning(
            "[namespace: %s] [flow: %s] [condition: %s] evaluation failed: %s",
            (scope.get("flow") or {}).get("namespace"),
            (scope.get("flow") or {}).get("id"),
            condition.get("type"),
            exc,
        )
        return False


def all_hold(conditions: Iterable[JSON], execution: JSON | None, scope: JSON) -> bool:
    """Every condition holds (each evaluated on its own, stopping at the first false)."""
    return all(simple_holds(c, execution, scope) for c in conditions)


def when_holds(trigger: JSON, scope: JSON) -> bool:
    """Kestra 2.0's ``when`` of a trigger: absent, or rendered with ``scope`` to a truthy
    text (TruthUtils: anything but ``false``, ``0``, ``-0`` and blank). One that cannot be
    rendered is false and logged, as Kestra's ConditionService logs "Evaluate Condition
    Failed"."""
    when = trigger.get("when")
    if when is None:
        return True
    try:
        text = render(str(when), scope)
    except ExpressionError as exc:
        log.warning(
            "[namespace: %s] [flow: %s] [trigger: %s] Evaluate Condition Failed with error '%s'",
            (scope.get("flow") or {}).get("namespace"),
            (scope.get("flow") or {}).get("id"),
            trigger.get("id"),
            exc.message,
        )
        return False
    return text.strip() not in _FALSY


_FALSY = frozenset({"false", "0", "-0", ""})  # Kestra's TruthUtils.FALSE_VALUES


def schedule_holds(trigger: JSON, flow_ref: JSON, tick: JSON) -> bool:
    """Whether a Schedule ``trigger`` fires on the tick whose variables are ``tick``
    (``date``, ``next``, ``previous``): its ScheduleConditions (``conditions`` and the
    deprecated ``scheduleConditions``) all hold, other conditions being ignored; and its
    Kestra 2.0 ``when``, rendered with ``trigger`` = ``schedule`` = the tick, is truthy (a
    false one skips that date: the schedule goes on with the next one)."""
    scope = {"flow": flow_ref, "trigger": tick, "schedule": tick}
    conditions = [*(trigger.get("conditions") or []), *(trigger.get("scheduleConditions") or [])]
    kept = [c for c in conditions if isinstance(c, dict) and c.get("type") in SCHEDULE_CONDITIONS]
    return all_hold(kept, None, scope) and when_holds(trigger, scope)


def test(condition: JSON, execution: JSON | None, scope: JSON) -> bool:
    """Kestra's ``Condition.test``; raises ConditionError when it cannot be evaluated."""
    ctype = str(condition.get("type", "")).removeprefix(_C)
    check = _TESTS.get(ctype)
    if check is None:
        raise ConditionError(f"condition type {condition.get('type')!r} cannot be evaluated here")
    return check(condition, execution, scope)


def _render(template: Any, scope: JSON) -> str:
    try:
        return render(str(template), scope)
    except ExpressionError as exc:
        raise ConditionError(str(exc)) from None


def _kestra_true(text: str) -> bool:
    # Expression/ExecutionOutputs: !(render.isBlank() || render.trim().equals("false"))
    return text.strip() not in ("", "false")


def _need(execution: JSON | None) -> JSON:
    if execution is None:
        raise ConditionError("Invalid condition with null execution")
    return execution


def _states_pass(state: Any, condition: JSON) -> bool:
    allowed, denied = condition.get("in"), condition.get("notIn")
    return (allowed is None or state in allowed) and (denied is None or state not in denied)


def _expression(c: JSON, execution: JSON | None, scope: JSON) -> bool:
    return _kestra_true(_render(c.get("expression", ""), scope))


def _execution_outputs(c: JSON, execution: JSON | None, scope: JSON) -> bool:
    outputs = _need(execution).get("outputs")
    if not outputs:
        return False
    trigger = {**(scope.get("trigger") or {}), "outputs": outputs}
    return _kestra_true(_render(c.get("expression", ""), {**scope, "trigger": trigger}))


def _execution_status(c: JSON, execution: JSON | None, scope: JSON) -> bool:
    return _states_pass(str(_need(execution).get("state")), c)


def _has_retry_attempt(c: JSON, execution: JSON | None, scope: JSON) -> bool:
    runs = _need(execution).get("task_runs") or []
    return any(
        _states_pass(attempt.get("state"), c)
        for run in runs
        if len(run.get("attempts") or []) > 1
        for attempt in run["attempts"]
    )


def _execution_flow(c: JSON, execution: JSON | None, scope: JSON) -> bool:
    ex = _need(execution)
    return ex.get("namespace") == c.get("namespace") and ex.get("flow_id") == c.get("flowId")


def _execution_namespace(c: JSON, execution: JSON | None, scope: JSON) -> bool:
    namespace = str(_need(execution).get("namespace"))
    wanted = str(c.get("namespace", ""))
    comparison = c.get("comparison") or ("PREFIX" if _flag(c.get("prefix")) else "EQUALS")
    if comparison == "PREFIX":
        return namespace.startswith(wanted)
    if comparison == "SUFFIX":
        return namespace.endswith(wanted)
    return namespace == wanted


def _execution_labels(c: JSON, execution: JSON | None, scope: JSON) -> bool:
    return _labels_match(c.get("labels"), _need(execution).get("labels") or {})


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _flow_condition(c: JSON, execution: JSON | None, scope: JSON) -> bool:
    flow = scope.get("flow") or {}
    return flow.get("namespace") == c.get("namespace") and flow.get("id") == c.get("flowId")


def _flow_namespace(c: JSON, execution: JSON | None, scope: JSON) -> bool:
    namespace, wanted = str((scope.get("flow") or {}).get("namespace")), str(c.get("namespace"))
    return namespace.startswith(wanted) if _flag(c.get("prefix")) else namespace == wanted


def _date_of(c: JSON, scope: JSON) -> date:
    text = _render(c.get("date") or TRIGGER_DATE, scope)
    try:
        return parse_local_date(text)
    except ValueError as exc:
        raise ConditionError(str(exc)) from None


def _zoned_of(c: JSON, scope: JSON) -> datetime:
    text = _render(c.get("date") or TRIGGER_DATE, scope)
    try:
        return parse_zoned(text)
    except ValueError as exc:
        raise ConditionError(str(exc)) from None


def _weekday(c: JSON, scope: JSON) -> int:
    name = _render(c.get("dayOfWeek", ""), scope).strip()
    if name not in DAYS:
        raise ConditionError(f"dayOfWeek {name!r} is not one of {', '.join(DAYS)}")
    return DAYS.index(name)


def _day_week(c: JSON, execution: JSON | None, scope: JSON) -> bool:
    return _date_of(c, scope).weekday() == _weekday(c, scope)


def _weekend(c: JSON, execution: JSON | None, scope: JSON) -> bool:
    return _date_of(c, scope).weekday() >= calendar.SATURDAY


def _day_week_in_month(c: JSON, execution: JSON | None, scope: JSON) -> bool:
    day, weekday = _date_of(c, scope), _weekday(c, scope)
    which = _render(c.get("dayInMonth", ""), scope).strip()
    if day.weekday() != weekday:
        return False
    if which == "LAST":
        return day.day + 7 > calendar.monthrange(day.year, day.month)[1]
    if which not in _NTH:
        raise ConditionError(f"Invalid dayInMonth {which!r}")
    return (day.day - 1) // 7 == _NTH[which]


@functools.lru_cache(maxsize=64)
def _calendar(country: str, subdivision: str | None) -> holidays.HolidayBase:
    try:
        return holidays.country_holidays(country, subdiv=subdivision)
    except NotImplementedError as exc:
        raise ConditionError(f"no public holiday calendar for {country!r}: {exc}") from None


def _public_holiday(c: JSON, execution: JSON | None, scope: JSON) -> bool:
    if not c.get("country"):
        # Kestra falls back on the JVM's default locale; a server's locale is no basis for a
        # flow's calendar, so Headwater asks for the country.
        raise ConditionError("PublicHoliday needs a country (ISO 3166-1 alpha-2, e.g. FR)")
    country = _render(c["country"], scope).strip().upper()
    sub = _render(c["subDivision"], scope).strip().upper() if c.get("subDivision") else None
    if sub is not None and sub.startswith(country + "-"):
        sub = sub.removeprefix(country + "-")  # ISO 3166-2 "US-NY" -> "NY"
    return _date_of(c, scope) in _calendar(country, sub)


def _bound(value: Any, scope: JSON, parser: Any) -> Any:
    if value is None:
        return None
    try:
        return parser(_render(value, scope))
    except ValueError as exc:
        raise ConditionError(str(exc)) from None


def _between(current: Any, after: Any, before: Any) -> bool:
    if after is None and before is None:
        raise ConditionError("Invalid condition with no before nor after")
    return (after is None or current > after) and (before is None or current < before)


def _offset_nanos(t: time) -> int:
    # OffsetTime.compareTo: nano-of-day minus the offset, with no wrap at midnight.
    offset = t.utcoffset() or timedelta(0)
    seconds = t.hour * 3600 + t.minute * 60 + t.second - int(offset.total_seconds())
    return seconds * 1_000_000_000 + t.microsecond * 1000


def _time_between(c: JSON, execution: JSON | None, scope: JSON) -> bool:
    current = _zoned_of(c, scope).timetz()
    after = _bound(c.get("after"), scope, parse_offset_time)
    before = _bound(c.get("before"), scope, parse_offset_time)
    return _between(
        _offset_nanos(current),
        None if after is None else _offset_nanos(after),
        None if before is None else _offset_nanos(before),
    )


def _date_time_between(c: JSON, execution: JSON | None, scope: JSON) -> bool:
    current = _zoned_of(c, scope)
    after = _bound(c.get("after"), scope, parse_zoned)
    before = _bound(c.get("before"), scope, parse_zoned)
    return _between(current, after, before)


def _not(c: JSON, execution: JSON | None, scope: JSON) -> bool:
    return not any(test(sub, execution, scope) for sub in c.get("conditions") or [])


def _or(c: JSON, execution: JSON | None, scope: JSON) -> bool:
    return any(test(sub, execution, scope) for sub in c.get("conditions") or [])


_TESTS = {
    "Expression": _expression,
    "ExecutionOutputs": _execution_outputs,
    "ExecutionStatus": _execution_status,
    "HasRetryAttempt": _has_retry_attempt,
    "ExecutionFlow": _execution_flow,
    "ExecutionNamespace": _execution_namespace,
    "ExecutionLabels": _execution_labels,
    "FlowCondition": _flow_condition,
    "FlowNamespaceCondition": _flow_namespace,
    "DayWeek": _day_week,
    "Weekend": _weekend,
    "DayWeekInMonth": _day_week_in_month,
    "PublicHoliday": _public_holiday,
    "TimeBetween": _time_between,
    "DateTimeBetween": _date_time_between,
    "Not": _not,
    "Or": _or,
}


def _labels_match(wanted: Any, have: JSON) -> bool:
    if isinstance(wanted, list):
        wanted = {str(e.get("key")): e.get("value") for e in wanted if isinstance(e, dict)}
    if not isinstance(wanted, dict):
        return False
    return all(str(have.get(k)) == str(v) for k, v in wanted.items())


# --------------------------------------------------------------------- windowed conditions


@dataclass(slots=True)
class Windowed:
    """A MultipleCondition or preconditions block: named checks met within a window."""

    id: str
    checks: dict[str, list[JSON]]  # name -> conditions that must all hold
    window: timedelta = _DEFAULT_WINDOW
    advance: timedelta = timedelta(0)
    sliding: bool = False
    reset_on_success: bool = True
    where: dict[str, list[JSON]] = field(default_factory=dict)


def _duration(value: Any, default: timedelta) -> timedelta:
    return parse_duration(str(value)) if value else default


def from_multiple(condition: JSON, index: int) -> Windowed:
    checks = {str(name): [sub] for name, sub in (condition.get("conditions") or {}).items()}
    return Windowed(
        id=str(condition.get("id") or f"multiple-{index}"),
        checks=checks,
        window=_duration(condition.get("window"), _DEFAULT_WINDOW),
        advance=_duration(condition.get("windowAdvance"), timedelta(0)),
        reset_on_success=condition.get("resetOnSuccess") is not False,
    )


def from_preconditions(pre: JSON) -> Windowed:
    checks: dict[str, list[JSON]] = {}
    for i, flow in enumerate(pre.get("flows") or []):
        # Kestra's UpstreamFlow: namespace and flowId each match only when given.
        filters = [
            {"field": name, "type": "EQUAL_TO", "value": flow[key]}
            for name, key in (("NAMESPACE", "namespace"), ("FLOW_ID", "flowId"))
            if flow.get(key) is not None
        ]
        conds: list[JSON] = [{"type": "where", "filters": filters}]
        if flow.get("states"):
            conds.append({"type": _C + "ExecutionStatus", "in": flow.get("states")})
        if flow.get("labels"):
            conds.append({"type": _C + "ExecutionLabels", "labels": flow.get("labels")})
        checks[f"flow-{i}"] = conds
    for i, where in enumerate(pre.get("where") or []):
        checks[str(where.get("id") or f"where-{i}")] = [{**where, "type": "where"}]
    tw = pre.get("timeWindow") or {}
    return Windowed(
        id=str(pre.get("id") or "preconditions"),
        checks=checks,
        window=_duration(tw.get("window"), _DEFAULT_WINDOW),
        advance=_duration(tw.get("windowAdvance"), timedelta(0)),
        sliding=tw.get("type") == "SLIDING_WINDOW",
        reset_on_success=pre.get("resetOnSuccess") is not False,
    )


_FIELDS = {"FLOW_ID": "flow_id", "NAMESPACE": "namespace", "STATE": "state"}


def _where_holds(where: JSON, execution: JSON, scope: JSON) -> bool:
    """Kestra's precondition ExecutionFilter: each filter reads a field (an EXPRESSION
    renders its ``value``) and applies its type; AND (default) or OR between them."""
    results = []
    for f in where.get("filters") or []:
        name = str(f.get("field", ""))
        kind = f.get("type")
        actual: Any
        if name == "EXPRESSION":
            try:
                actual = render(str(f.get("value", "")), scope)
            except ExpressionError:
                results.append(False)
                continue
            kind = kind or "IS_TRUE"  # an expression alone is a truth test
        else:
            actual = execution.get(_FIELDS.get(name, name.lower()))
        results.append(_compare(str(kind or "EQUAL_TO"), actual, f))
    if not results:
        return True
    return any(results) if where.get("operand") == "OR" else all(results)


def _compare(kind: str, actual: Any, f: JSON) -> bool:
    value, values = f.get("value"), f.get("values") or []
    text = "" if actual is None else str(actual)
    checks = {
        "EQUAL_TO": lambda: actual is not None and text == str(value),
        "NOT_EQUAL_TO": lambda: actual is None or text != str(value),
        "IN": lambda: text in [str(v) for v in values],
        "NOT_IN": lambda: text not in [str(v) for v in values],
        "IS_TRUE": lambda: is_true(actual),
        "IS_FALSE": lambda: not is_true(actual),
        "STARTS_WITH": lambda: actual is not None and text.startswith(str(value)),
        "ENDS_WITH": lambda: actual is not None and text.endswith(str(value)),
        "CONTAINS": lambda: actual is not None and str(value) in text,
        "REGEX": lambda: actual is not None and re.fullmatch(str(value), text) is not None,
        "IS_NULL": lambda: actual is None,
        "IS_NOT_NULL": lambda: actual is not None,
    }
    check = checks.get(kind)
    return bool(check()) if check else False


def _window_start(w: Windowed, now: datetime) -> datetime:
    span = w.window.total_seconds() or _DEFAULT_WINDOW.total_seconds()
    offset = (now - _EPOCH - w.advance).total_seconds()
    return _EPOCH + w.advance + timedelta(seconds=(offset // span) * span)


def advance_window(
    w: Windowed, progress: JSON | None, execution: JSON, scope: JSON, now: datetime
) -> tuple[JSON, list[str] | None]:
    """Record which checks ``execution`` meets; returns (new progress, the execution ids that
    completed the window, or None while incomplete). A complete window is not reset here:
    the trigger fires only when all its windows are complete, and resets them then
    (:func:`after_firing`), so one window's progress is never lost waiting for another."""
    hits: dict[str, JSON] = dict((progress or {}).get("hits") or {})
    if w.sliding:
        floor = now - w.window
        hits = {k: v for k, v in hits.items() if parse_iso(str(v["at"])) >= floor}
        start = None
    else:
        start = iso(_window_start(w, now))
        if (progress or {}).get("start") != start:
            hits = {}
    for name, conds in w.checks.items():
        met = all(
            _where_holds(c, execution, scope)
            if c.get("type") == "where"
            else simple_holds(c, execution, scope)
            for c in conds
        )
        if met:
            hits[name] = {"execution_id": execution.get("id"), "at": iso(now)}
    new: JSON = {"start": start, "hits": hits}
    if w.checks and all(name in hits for name in w.checks):
        return new, sorted({str(h["execution_id"]) for h in hits.values()})
    return new, None


def after_firing(w: Windowed, progress: JSON) -> JSON:
    """The window's progress once the trigger fired (``resetOnSuccess``, default true)."""
    if not w.reset_on_success:
        return progress
    return {"start": progress.get("start"), "hits": {}}
