"""Trigger ``conditions`` -> ``when`` (and a Flow trigger's conditions, ``preconditions``
and MultipleCondition -> ``dependsOn`` + ``window``) for ``headwater migrate``.

Following the 2.0 migration guide's tables, with 1.x's own semantics kept exact:

- a condition on a Schedule, Webhook or message trigger becomes an expression, several
  joined with ``and`` (each had to hold): Expression -> its expression; DayWeek ->
  ``dayOfWeek(date) == 'D'``; Weekend -> ``isWeekend(date)``; DayWeekInMonth ->
  ``isDayWeekInMonth(date, 'D', 'N')``; PublicHoliday -> ``isPublicHoliday(date, 'C'[, 'S'])``;
  DateTimeBetween -> the date's epoch milliseconds strictly between the bounds';
  TimeBetween (bounds in UTC, a schedule in UTC) -> the date's UTC time of day strictly
  between them; Not -> ``not (a or b)``; Or -> ``(a or b)``. A Schedule ignored the
  conditions that test an execution: they are dropped (and said so).
- a Flow trigger's simple conditions become one ``dependsOn`` entry: ExecutionFlow ->
  ``namespace`` + ``flowId``, ExecutionNamespace -> ``namespace`` (a PREFIX/SUFFIX
  comparison -> ``when`` with ``startsWith``/``endsWith``), ExecutionStatus -> ``states``,
  ExecutionLabels -> ``labels``, ExecutionOutputs and Expression -> ``when``
  (``trigger.outputs`` is ``outputs`` there), HasRetryAttempt -> ``when: hasRetryAttempt``.
  The entry's ``states`` are always written: 2.0's default (SUCCESS, WARNING) is not 1.x's
  (every terminal state, or the trigger's ``states``).
- ``preconditions.flows`` and the ExecutionFlow sub-conditions of a MultipleCondition each
  become an entry; ``timeWindow``/``window`` -> ``window`` (DAILY_TIME_DEADLINE ->
  ``deadline``, DAILY_TIME_WINDOW -> ``from``/``to``, SLIDING_WINDOW -> ``lookback``,
  DURATION_WINDOW -> ``every`` + ``offset``) with ``fireOnce: true`` (1.x resets after
  firing unless ``resetOnSuccess: false``).
- Anything else (a condition whose date or values are expressions the rewrite cannot read,
  ``where`` filters, Or/Not on a Flow trigger, ``trigger.outputs`` of several upstream
  flows) is reported, never guessed.
"""

from __future__ import annotations

import re
from typing import Any

from engine.expressions.lexer import tokenize_template
from engine.expressions.runtime import EvalError
from engine.flows.migrate_expr import Unmigratable
from schemas.flow.conditions import (
    DAYS,
    DAYS_IN_MONTH,
    SCHEDULE_CONDITIONS,
    parse_offset_time,
    parse_zoned,
)
from schemas.types import canonical_type

_C = "io.kestra.plugin.core.condition."
TERMINAL = ["SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED", "SKIPPED"]


def inner(template: Any) -> str | None:
    """The expression of a template that is exactly one ``{{ ... }}``, else None."""
    if not isinstance(template, str):
        return None
    text = template.strip()
    try:
        segments = tokenize_template(text)
    except EvalError:
        return None
    if len(segments) != 1 or segments[0].kind != "output":
        return None
    start = text.index("{{") + 2
    end = text.rindex("}}")
    body = text[start:end].strip()
    return body.strip("-").strip() if body else None


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _value(raw: Any, what: str) -> str:
    """A condition property as an expression: its ``{{ }}`` inner text, or a literal."""
    if isinstance(raw, str) and ("{{" in raw or "{%" in raw):
        found = inner(raw)
        if found is None:
            raise Unmigratable(f"{what} {raw!r} is not a single expression")
        return f"({found})"
    return _literal(str(raw))


def _date(condition: dict[str, Any]) -> str:
    raw = condition.get("date")
    return "trigger.date" if raw is None else _value(raw, "date")


def _kind(condition: dict[str, Any]) -> str:
    raw = condition.get("type")
    canonical = canonical_type(raw) if isinstance(raw, str) else None
    return (canonical or str(raw)).removeprefix(_C)


def expression_of(condition: dict[str, Any], *, utc_dates: bool) -> str:
    """One 1.x condition as a 2.0 expression (no braces); raises Unmigratable."""
    kind = _kind(condition)
    if kind == "Expression":
        found = inner(condition.get("expression"))
        if found is None:
            raise Unmigratable("an Expression condition that is not a single {{ expression }}")
        return f"({found})"
    if kind == "DayWeek":
        return f"dayOfWeek({_date(condition)}) == {_day(condition.get('dayOfWeek'))}"
    if kind == "Weekend":
        return f"isWeekend({_date(condition)})"
    if kind == "DayWeekInMonth":
        which = str(condition.get("dayInMonth"))
        if which not in DAYS_IN_MONTH:
            raise Unmigratable(f"dayInMonth {which!r} is an expression")
        day = _day(condition.get("dayOfWeek"))
        return f"isDayWeekInMonth({_date(condition)}, {day}, '{which}')"
    if kind == "PublicHoliday":
        country = condition.get("country")
        if not country:
            raise Unmigratable("PublicHoliday has no country (2.0's isPublicHoliday needs one)")
        args = [_date(condition), _value(country, "country")]
        if condition.get("subDivision"):
            args.append(_value(condition["subDivision"], "subDivision"))
        return f"isPublicHoliday({', '.join(args)})"
    if kind == "DateTimeBetween":
        return _between(condition, _instant, f"({_date(condition)} | timestampMilli)")
    if kind == "TimeBetween":
        if not utc_dates:
            raise Unmigratable("TimeBetween on dates that are not in UTC")
        clock = f"({_date(condition)} | date('HH:mm:ss.SSS', timeZone='UTC'))"
        return _between(condition, _utc_time, clock)
    if kind in ("Not", "Or"):
        subs = [c for c in condition.get("conditions") or [] if isinstance(c, dict)]
        if not subs:
            raise Unmigratable(f"{kind} without conditions")
        joined = " or ".join(expression_of(c, utc_dates=utc_dates) for c in subs)
        return f"not ({joined})" if kind == "Not" else f"({joined})"
    raise Unmigratable(f"the condition type `{kind}` has no `when` equivalent here")


def _day(raw: Any) -> str:
    if raw not in DAYS:
        raise Unmigratable(f"dayOfWeek {raw!r} is not a day name")
    return f"'{raw}'"


def _instant(text: str) -> str:
    moment = parse_zoned(text)
    return str(int(moment.timestamp() * 1000))


def _utc_time(text: str) -> str:
    clock = parse_offset_time(text)
    if clock.utcoffset():
        raise Unmigratable(f"TimeBetween bound {text!r} is not in UTC")
    millis = clock.microsecond // 1000
    return _literal(f"{clock.hour:02}:{clock.minute:02}:{clock.second:02}.{millis:03}")


def _between(condition: dict[str, Any], parse: Any, current: str) -> str:
    parts = []
    for key, op in (("after", ">"), ("before", "<")):
        raw = condition.get(key)
        if raw is None:
            continue
        if not isinstance(raw, str) or "{{" in raw:
            raise Unmigratable(f"`{key}` {raw!r} is an expression")
        try:
            parts.append(f"{current} {op} {parse(raw)}")
        except ValueError as exc:
            raise Unmigratable(str(exc)) from None
    if not parts:
        raise Unmigratable("a between condition with neither `after` nor `before`")
    return " and ".join(parts)


def when_of(expressions: list[str]) -> str:
    if len(expressions) == 1:
        text = expressions[0]
        if text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
            text = text[1:-1]
        return "{{ " + text + " }}"
    return "{{ " + " and ".join(expressions) + " }}"


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if depth < 0:
            return False
    return depth == 0


def schedule_when(trigger: dict[str, Any]) -> tuple[str | None, list[str]]:
    """A Schedule's conditions as ``when`` (None: nothing left) and notes on dropped ones."""
    conditions = [
        c
        for key in ("conditions", "scheduleConditions")
        for c in trigger.get(key) or []
        if isinstance(c, dict)
    ]
    kept, notes = [], []
    for condition in conditions:
        canonical = _C + _kind(condition)
        if canonical not in SCHEDULE_CONDITIONS:
            notes.append(f"condition {_kind(condition)} was ignored by a Schedule: dropped")
            continue
        kept.append(condition)
    zone = str(trigger.get("timezone") or "UTC")
    utc = zone in ("UTC", "Etc/UTC", "Z", "GMT")
    expressions = [expression_of(c, utc_dates=utc) for c in kept]
    return (when_of(expressions) if expressions else None), notes


def trigger_when(trigger: dict[str, Any]) -> str | None:
    """Another trigger's conditions as ``when``."""
    conditions = [c for c in trigger.get("conditions") or [] if isinstance(c, dict)]
    expressions = [expression_of(c, utc_dates=False) for c in conditions]
    return when_of(expressions) if expressions else None


# --------------------------------------------------------------------------- Flow triggers


def _outputs_when(expression: Any) -> str:
    found = inner(expression)
    if found is None:
        raise Unmigratable("an ExecutionOutputs expression that is not a single {{ expression }}")
    return f"({_scoped(found)})"


_TRIGGER_OUTPUTS = re.compile(r"(?<![.\w])trigger\.outputs\b")


def _scoped(expression: str) -> str:
    """1.x conditions read the upstream flow outputs as ``trigger.outputs``; a 2.0
    dependsOn ``when`` reads them as ``outputs``."""
    return _TRIGGER_OUTPUTS.sub("outputs", expression)


def _states(base: list[str], status: dict[str, Any]) -> list[str]:
    """The states left once an ExecutionStatus condition (``in``, ``notIn``) applies."""
    if status.get("in"):
        base = [s for s in (str(x) for x in status["in"]) if s in base]
    if status.get("notIn"):
        denied = {str(x) for x in status["notIn"]}
        base = [s for s in base if s not in denied]
    return base


def depends_on(trigger: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """A 1.x Flow trigger's conditions/preconditions as (dependsOn entries, window)."""
    simple: list[dict[str, Any]] = []
    multiple: list[dict[str, Any]] = []
    for condition in trigger.get("conditions") or []:
        if isinstance(condition, dict):
            (multiple if _kind(condition) == "MultipleCondition" else simple).append(condition)
    blocks = [*multiple]
    pre = trigger.get("preconditions")
    if isinstance(pre, dict):
        blocks.append(pre)
    if len(blocks) > 1:
        raise Unmigratable("several windowed conditions: 2.0 has one window per trigger")
    if not blocks:
        return [_entry(_fields(trigger, simple))], None
    block = blocks[0]
    if block.get("where"):
        raise Unmigratable("preconditions `where` filters have no dependsOn equivalent")
    entries: list[dict[str, Any]] = []
    if "flows" in block:  # preconditions: each upstream flow, after the simple conditions
        base = _fields(trigger, simple)
        for upstream in block.get("flows") or []:
            entry = {k: v for k, v in base.items() if k not in ("namespace", "flowId")}
            entry.update(
                {k: upstream[k] for k in ("namespace", "flowId", "labels") if upstream.get(k)}
            )
            if upstream.get("states"):
                entry["states"] = [s for s in upstream["states"] if s in base["states"]]
            entries.append(_entry(entry))
        return entries, _window(block.get("timeWindow") or {}, block)
    # MultipleCondition: each named sub-condition, after the simple conditions.
    for sub in (block.get("conditions") or {}).values():
        if not isinstance(sub, dict):
            raise Unmigratable("a MultipleCondition sub-condition that is not a condition")
        entries.append(_entry(_fields(trigger, [*simple, sub])))
    tw = dict(block.get("timeWindow") or {})
    if block.get("window") is not None:
        tw["window"] = block["window"]
    if block.get("windowAdvance") not in (None, "P0D", "PT0S"):
        tw["windowAdvance"] = block["windowAdvance"]
    return entries, _window(tw, block)


def _fields(trigger: dict[str, Any], conditions: list[dict[str, Any]]) -> dict[str, Any]:
    """One dependsOn entry holding what every one of ``conditions`` asks of an execution."""
    base: dict[str, Any] = {}
    whens: list[str] = []
    states = [str(s) for s in trigger.get("states") or TERMINAL]
    for condition in conditions:
        kind = _kind(condition)
        if kind == "ExecutionStatus":
            states = _states(states, condition)
        elif kind == "ExecutionFlow":
            for key in ("namespace", "flowId"):
                if base.get(key, condition.get(key)) != condition.get(key):
                    raise Unmigratable("conditions naming two different upstream flows")
                base[key] = condition.get(key)
        elif kind == "ExecutionNamespace":
            comparison = condition.get("comparison") or (
                "PREFIX" if condition.get("prefix") in (True, "true") else "EQUALS"
            )
            namespace = str(condition.get("namespace"))
            if comparison == "EQUALS":
                base["namespace"] = namespace
            else:
                test = "startsWith" if comparison == "PREFIX" else "endsWith"
                whens.append(f"(namespace | {test}({_literal(namespace)}))")
        elif kind == "ExecutionLabels":
            labels = condition.get("labels")
            if isinstance(labels, list):
                labels = {str(e.get("key")): e.get("value") for e in labels if isinstance(e, dict)}
            base["labels"] = {**base.get("labels", {}), **dict(labels or {})}
        elif kind == "ExecutionOutputs":
            whens.append(_outputs_when(condition.get("expression")))
        elif kind == "HasRetryAttempt":
            if condition.get("in") or condition.get("notIn"):
                raise Unmigratable("HasRetryAttempt with `in`/`notIn` has no 2.0 equivalent")
            whens.append("hasRetryAttempt")
        elif kind == "Expression":
            found = inner(condition.get("expression"))
            if found is None:
                raise Unmigratable("an Expression condition that is not a single {{ expression }}")
            whens.append(f"({_scoped(found)})")
        else:
            raise Unmigratable(f"a Flow trigger's condition `{kind}` has no dependsOn equivalent")
    base["states"] = states
    if whens:
        base["when"] = when_of(whens)
    return base


def _entry(values: dict[str, Any]) -> dict[str, Any]:
    order = ("namespace", "flowId", "states", "labels", "when")
    return {k: values[k] for k in order if values.get(k) is not None}


def _window(tw: dict[str, Any], block: dict[str, Any]) -> dict[str, Any]:
    kind = str(tw.get("type") or "DURATION_WINDOW")
    out: dict[str, Any] = {}
    if kind == "DAILY_TIME_DEADLINE":
        out["deadline"] = tw.get("deadline")
    elif kind == "DAILY_TIME_WINDOW":
        out["from"], out["to"] = tw.get("startTime"), tw.get("endTime")
    elif kind == "SLIDING_WINDOW":
        out["lookback"] = tw.get("window") or "P1D"
    else:
        out["every"] = tw.get("window") or "P1D"
        if tw.get("windowAdvance"):
            out["offset"] = tw["windowAdvance"]
    out["fireOnce"] = block.get("resetOnSuccess") is not False
    return out


def needs_scoped_outputs(trigger: dict[str, Any], entries: list[dict[str, Any]]) -> bool:
    """Whether the trigger's inputs read ``trigger.outputs`` unscoped while 2.0 would scope
    them by flow id (several entries)."""
    if len(entries) <= 1:
        return False
    return "trigger.outputs" in str(trigger.get("inputs") or "")
