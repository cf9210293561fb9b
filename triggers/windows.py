"""Flow-trigger windows: MultipleCondition and ``preconditions``, as Kestra keeps them.

Ported from Kestra 0.20: ``FlowTriggerService.computeExecutionsFromFlowTriggers``,
``MultipleConditionStorageInterface.getOrCreate``, ``MultipleConditionWindow``,
``models/triggers/TimeWindow``, ``plugin/core/condition/MultipleCondition`` and the
``Preconditions`` / ``UpstreamFlowCondition`` / ``FilterCondition`` of
``plugin/core/trigger/Flow``. Pure: the window progress is a JSON dict passed in and out (kept
in the trigger's state, ``extra.windows``), ``now`` is given.

A window (per MultipleCondition ``id`` or preconditions ``id``) is created by the first
execution evaluated while none is valid, with fixed bounds from ``timeWindow``:

- ``DURATION_WINDOW`` (default, ``window`` default P1D): aligned down from now (to midnight
  for a window of a day or more, to the hour for an hour or more, to a multiple of the
  window's minutes within the hour otherwise), plus ``windowAdvance``; it ends one
  millisecond before start + window.
- ``SLIDING_WINDOW``: from now to now + ``window`` (default P1D).
- ``DAILY_TIME_WINDOW``: today from ``startTime`` to ``endTime``.
- ``DAILY_TIME_DEADLINE``: today from midnight to ``deadline``.

A window is valid strictly between its bounds; an execution seen outside them is not
counted (a daily window before its start or after its deadline). Each named sub-condition
the execution meets is recorded true (results only ever become true). The trigger fires
when every named sub-condition of every window is true; then each complete window is
dropped when ``resetOnSuccess`` (default true), so a new window starts with the next
execution. Kestra drops a complete window even when another window of the same trigger is
still incomplete; so does this module. The legacy MultipleCondition properties ``window``
and ``windowAdvance`` set the duration window.

Sub-conditions: MultipleCondition's ``conditions`` map (name -> any condition, tested with
:func:`triggers.conditions.simple_holds`); preconditions' ``flows`` (each an
UpstreamFlowCondition: ``namespace``, ``flowId``, ``states`` (any when unset), ``labels``;
named ``condition_1``, ``condition_2``...) and ``where`` (each an ExecutionFilter: its
``filters`` on FLOW_ID, NAMESPACE, STATE or an EXPRESSION's rendering, joined by
``operand`` AND (default) or OR; named ``condition_<n>_<id>``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from engine.errors import ExpressionError
from engine.expressions import render
from engine.reducer.ids import iso, make_id, parse_iso
from schemas.flow.common import parse_duration
from triggers.conditions import simple_holds

JSON = dict[str, Any]

MULTIPLE = "io.kestra.plugin.core.condition.MultipleCondition"
_DAY = timedelta(days=1)
_MS = timedelta(milliseconds=1)
# TruthUtils.FALSE_VALUES
_FALSE = frozenset({"false", "0", "-0", ""})


@dataclass(slots=True)
class Window:
    """One MultipleCondition or preconditions block of a Flow trigger."""

    id: str
    kind: str  # TimeWindow.Type
    window: timedelta | None = None
    advance: timedelta | None = None
    start_time: time | None = None
    end_time: time | None = None
    deadline: time | None = None
    reset_on_success: bool = True
    # name -> ("condition", condition) | ("flow", UpstreamFlow) | ("where", ExecutionFilter)
    # | ("depends", a Kestra 2.0 dependsOn entry)
    checks: dict[str, tuple[str, JSON]] = field(default_factory=dict)
    # Kestra 2.0: how many checks complete the window: ALL, ANY or AT_LEAST `min_satisfied`.
    mode: str = "ALL"
    min_satisfied: int = 1

    def complete(self, met: set[str]) -> bool:
        count = len(set(self.checks) & met)
        if not self.checks:
            return False
        if self.mode == "ANY":
            return count >= 1
        if self.mode == "AT_LEAST":
            return count >= self.min_satisfied
        return count == len(self.checks)


def _duration(value: Any) -> timedelta | None:
    return parse_duration(str(value)) if value else None


def _time(value: Any) -> time | None:
    return time.fromisoformat(str(value)) if value else None


def _time_window(spec: Any, legacy: JSON) -> JSON:
    tw: JSON = dict(spec) if isinstance(spec, dict) else {}
    if legacy.get("window") is not None:
        tw["window"] = legacy["window"]
    if legacy.get("windowAdvance") is not None:
        tw["windowAdvance"] = legacy["windowAdvance"]
    return tw


def _window(id_: str, tw: JSON, reset: Any, checks: dict[str, tuple[str, JSON]]) -> Window:
    return Window(
        id=id_,
        kind=str(tw.get("type") or "DURATION_WINDOW"),
        window=_duration(tw.get("window")),
        advance=_duration(tw.get("windowAdvance")),
        start_time=_time(tw.get("startTime")),
        end_time=_time(tw.get("endTime")),
        deadline=_time(tw.get("deadline")),
        reset_on_success=reset is not False,
        checks=checks,
    )


# Kestra 2.0: a dependsOn entry matches these states unless it lists its own.
DEPENDS_ON_STATES = ("SUCCESS", "WARNING")


def depends_on_window(trigger: JSON) -> Window:
    """Kestra 2.0's ``dependsOn`` + ``window`` (Flow.DependsOnMultipleCondition and
    Window.toTimeWindow): ``deadline`` -> DAILY_TIME_DEADLINE, ``from``/``to`` ->
    DAILY_TIME_WINDOW, ``lookback`` -> SLIDING_WINDOW, else DURATION_WINDOW of ``every``
    (default a day) shifted by ``offset``. Each entry is named by a hash of what it is, so
    reordering entries keeps the progress. The window resets after firing when there is no
    ``window`` or when ``fireOnce`` is true."""
    spec = trigger.get("window") if isinstance(trigger.get("window"), dict) else None
    tw: JSON = {}
    if spec is not None:
        if spec.get("deadline"):
            tw = {"type": "DAILY_TIME_DEADLINE", "deadline": spec["deadline"]}
        elif spec.get("from") and spec.get("to"):
            tw = {"type": "DAILY_TIME_WINDOW", "startTime": spec["from"], "endTime": spec["to"]}
        elif spec.get("lookback"):
            tw = {"type": "SLIDING_WINDOW", "window": spec["lookback"]}
        else:
            tw = {"type": "DURATION_WINDOW", "window": spec.get("every")}
            if spec.get("offset"):
                tw["windowAdvance"] = spec["offset"]
    reset = True if spec is None else _flag(spec.get("fireOnce"))
    checks = {
        _dependency_key(dep): ("depends", dep)
        for dep in trigger.get("dependsOn") or []
        if isinstance(dep, dict)
    }
    window = _window(f"depends_on_{trigger.get('id')}", tw, reset, checks)
    window.mode = str(trigger.get("mode") or "ALL")
    try:
        window.min_satisfied = int(trigger.get("minSatisfied") or 1)
    except (TypeError, ValueError):
        window.min_satisfied = 1
    return window


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _dependency_key(dep: JSON) -> str:
    """Kestra's order-independent hash of an entry: namespace, flow id, when, states, labels."""
    states = ",".join(sorted(str(s) for s in dep.get("states") or []))
    raw = dep.get("labels")
    labels: JSON = raw if isinstance(raw, dict) else {}
    label_text = ",".join(f"{k}:{labels[k]}" for k in sorted(labels))
    return make_id(
        dep.get("namespace"), "_", dep.get("flowId"), dep.get("when"), states, label_text
    )


def depends_scope(execution: JSON, scope: JSON) -> JSON:
    """What a dependsOn entry's (and a 2.0 Flow trigger's) ``when`` renders with: the
    upstream execution's ``namespace``, ``flowId``, ``state``, ``labels``, flow ``outputs``
    and ``hasRetryAttempt``, beside its ``execution``, ``inputs`` and ``trigger``."""
    retried = any(len(run.get("attempts") or []) > 1 for run in execution.get("task_runs") or [])
    return {
        **scope,
        "namespace": execution.get("namespace"),
        "flowId": execution.get("flow_id"),
        "state": execution.get("state"),
        "labels": execution.get("labels") or {},
        "outputs": execution.get("outputs") or {},
        "hasRetryAttempt": retried,
    }


def _depends_holds(dep: JSON, execution: JSON, scope: JSON) -> bool:
    """Flow.DependencyCondition (states default SUCCESS, WARNING; labels all present)."""
    if dep.get("namespace") is not None and execution.get("namespace") != dep["namespace"]:
        return False
    if dep.get("flowId") is not None and execution.get("flow_id") != dep["flowId"]:
        return False
    if execution.get("state") not in (dep.get("states") or DEPENDS_ON_STATES):
        return False
    labels = dep.get("labels")
    if isinstance(labels, dict):
        have = execution.get("labels") or {}
        if not all(k in have and str(have[k]) == str(v) for k, v in labels.items()):
            return False
    when = dep.get("when")
    if when is None:
        return True
    return _truthy(render(str(when), depends_scope(execution, scope)).strip())


def windows_of(trigger: JSON) -> list[Window]:
    """The trigger's MultipleConditions (in order), its preconditions and its Kestra 2.0
    ``dependsOn``."""
    out = []
    if trigger.get("dependsOn"):
        out.append(depends_on_window(trigger))
    for index, condition in enumerate(trigger.get("conditions") or []):
        if not isinstance(condition, dict) or condition.get("type") != MULTIPLE:
            continue
        checks = {
            str(name): ("condition", sub)
            for name, sub in (condition.get("conditions") or {}).items()
            if isinstance(sub, dict)
        }
        tw = _time_window(condition.get("timeWindow"), condition)
        wid = str(condition.get("id") or f"multiple-{index}")
        out.append(_window(wid, tw, condition.get("resetOnSuccess"), checks))
    pre = trigger.get("preconditions")
    if isinstance(pre, dict):
        checks = {}
        number = 0
        for upstream in pre.get("flows") or []:
            number += 1
            checks[f"condition_{number}"] = ("flow", upstream)
        for where in pre.get("where") or []:
            number += 1
            checks[f"condition_{number}_{where.get('id')}"] = ("where", where)
        tw = _time_window(pre.get("timeWindow"), {})
        out.append(
            _window(str(pre.get("id") or "preconditions"), tw, pre.get("resetOnSuccess"), checks)
        )
    return out


def bounds(w: Window, now: datetime) -> tuple[datetime, datetime]:
    """MultipleConditionStorageInterface.getOrCreate: the window a first execution opens."""
    now = now.astimezone(UTC).replace(microsecond=0)
    midnight = now.replace(hour=0, minute=0, second=0)
    if w.kind == "SLIDING_WINDOW":
        return now, now + (w.window or _DAY)
    if w.kind == "DAILY_TIME_WINDOW":
        first, last = w.start_time or time(0), w.end_time or time(0)
        return midnight + _of_day(first), midnight + _of_day(last)
    if w.kind == "DAILY_TIME_DEADLINE":
        return midnight, midnight + _of_day(w.deadline or time(0))
    window = w.window or _DAY
    aligned = now
    if window >= _DAY:
        aligned = aligned.replace(hour=0)
    if window >= timedelta(hours=1):
        aligned = aligned.replace(minute=0)
    minutes = int(window.total_seconds() // 60)
    if minutes > 0:
        aligned = aligned.replace(second=0, minute=0) + timedelta(
            minutes=minutes * (now.minute // minutes if window < timedelta(hours=1) else 0)
        )
    opens = aligned + (w.advance or timedelta(0))
    return opens, opens + window - _MS


def _of_day(t: time) -> timedelta:
    # A time with an offset (Kestra 2.0's `deadline: "09:00:00+01:00"`) is that time in UTC.
    offset = t.utcoffset() or timedelta(0)
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second) - offset


def valid(progress: JSON, now: datetime) -> bool:
    """MultipleConditionWindow.isValid: after the start and strictly before the end (Kestra
    compares the current time, nanoseconds included, with a start truncated to the second:
    a window is valid the instant it opens)."""
    return parse_iso(str(progress["start"])) <= now < parse_iso(str(progress["end"]))


def _truthy(text: str | None) -> bool:
    return text is not None and text not in _FALSE


def _upstream_holds(upstream: JSON, execution: JSON) -> bool:
    """Flow.UpstreamFlowCondition."""
    if (
        upstream.get("namespace") is not None
        and execution.get("namespace") != upstream["namespace"]
    ):
        return False
    if upstream.get("flowId") is not None and execution.get("flow_id") != upstream["flowId"]:
        return False
    states = upstream.get("states")
    if states is not None and execution.get("state") not in states:
        return False
    labels = upstream.get("labels")
    if isinstance(labels, dict):
        have = execution.get("labels") or {}
        return all(str(have.get(k)) == str(v) and k in have for k, v in labels.items())
    return True


def _filter_holds(f: JSON, execution: JSON, scope: JSON) -> bool:
    """Flow.FilterCondition.evaluate for one filter."""
    name = str(f.get("field", ""))
    value = f.get("value")
    actual: str | None
    if name == "FLOW_ID":
        actual = execution.get("flow_id")
    elif name == "NAMESPACE":
        actual = execution.get("namespace")
    elif name == "STATE":
        actual = execution.get("state")
    elif name == "EXPRESSION":
        actual = render(str(value), scope)
    else:
        raise ValueError(f"unknown precondition filter field {name!r}")
    text = None if actual is None else str(actual)
    kind = str(f.get("type") or ("IS_TRUE" if name == "EXPRESSION" else ""))
    values = [str(v) for v in f.get("values") or []]
    if kind == "EQUAL_TO":
        return value is not None and str(value) == text
    if kind == "NOT_EQUAL_TO":
        return not (value is not None and str(value) == text)
    if kind == "IN":
        return text in values
    if kind == "NOT_IN":
        return text not in values
    if kind == "IS_TRUE":
        return _truthy(text)
    if kind == "IS_FALSE":
        return not _truthy(text)
    if kind == "IS_NULL":
        return text is None
    if kind == "IS_NOT_NULL":
        return text is not None
    if text is None:
        return False
    if kind == "STARTS_WITH":
        return text.startswith(str(value))
    if kind == "ENDS_WITH":
        return text.endswith(str(value))
    if kind == "REGEX":
        return re.fullmatch(str(value), text) is not None
    if kind == "CONTAINS":
        return str(value) in text
    raise ValueError(f"unknown precondition filter type {kind!r}")


def _where_holds(where: JSON, execution: JSON, scope: JSON) -> bool:
    filters = [f for f in where.get("filters") or [] if isinstance(f, dict)]
    results = (_filter_holds(f, execution, scope) for f in filters)
    return any(results) if where.get("operand") == "OR" else all(results)


def _holds(check: tuple[str, JSON], execution: JSON, scope: JSON) -> bool:
    kind, spec = check
    try:
        if kind == "flow":
            return _upstream_holds(spec, execution)
        if kind == "where":
            return _where_holds(spec, execution, scope)
        if kind == "depends":
            return _depends_holds(spec, execution, scope)
    except (ExpressionError, ValueError, re.error):
        return False  # Kestra logs "Evaluate Condition Failed" and counts it false
    return simple_holds(spec, execution, scope)


@dataclass(slots=True)
class Evaluation:
    """What one execution did to a trigger's windows."""

    complete: bool  # every sub-condition of every window is met: fire
    windows: JSON  # the new progress of every window (absent: dropped)
    # The executions that met the sub-conditions of the completed windows (for the id).
    execution_ids: list[str] = field(default_factory=list)
    # Kestra 2.0 dependsOn: the flow outputs of the upstream executions, by flow id.
    outputs: JSON = field(default_factory=dict)


def evaluate_windows(
    windows: list[Window], progress: JSON, execution: JSON, scope: JSON, now: datetime
) -> Evaluation:
    out: JSON = {wid: p for wid, p in progress.items() if isinstance(p, dict)}
    matched = False  # this execution met a dependsOn entry
    for w in windows:
        current = out.get(w.id)
        if current is None or not valid(current, now):
            start, end = bounds(w, now)
            current = {"start": iso(start), "end": iso(end), "results": {}}
        if not valid(current, now):  # a daily window outside its hours counts nothing
            out.pop(w.id, None)
            continue
        met = {
            name: execution.get("id")
            for name, check in w.checks.items()
            if _holds(check, execution, scope)
        }
        if met:
            results = dict(current.get("results") or {})
            results.update(met)
            updated = {**current, "results": results}
            if w.id.startswith("depends_on_"):
                matched = True
                # Kestra 2.0 passes each upstream flow's outputs on, by flow id.
                kept = dict(current.get("outputs") or {})
                kept[str(execution.get("flow_id"))] = execution.get("outputs") or {}
                updated["outputs"] = kept
            out[w.id] = updated
    complete = bool(windows) and all(
        w.complete(set((out.get(w.id) or {}).get("results") or {})) for w in windows
    )
    if any(w.id.startswith("depends_on_") for w in windows) and not matched:
        # Only an execution that meets an entry fires a dependsOn trigger: a window kept
        # complete (fireOnce false) must not fire for every other execution evaluated
        # (early Kestra 2.0 builds did: their migration guide warns about it).
        complete = False
    ids: set[str] = set()
    outputs: JSON = {}
    for w in windows:
        current = out.get(w.id) or {}
        results = current.get("results") or {}
        if w.complete(set(results)):
            if complete:
                ids.update(str(v) for v in results.values())
                outputs.update(current.get("outputs") or {})
            if w.reset_on_success:
                out.pop(w.id, None)
    return Evaluation(complete, out, sorted(ids), outputs)
