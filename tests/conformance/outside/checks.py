"""The manifest's assertions, checked on the execution JSON the API answers.

The same expectations as the in-process corpus test (``test_kestra_conformance.check``), read
from Kestra's shapes: ``state.current`` / ``state.histories``, ``taskRunList`` in Kestra's
order (the ``index`` assertions depend on it), each task run's ``value``, ``attempts`` and
``outputs``, ``labels`` as ``[{key, value}]``, ``trigger.variables``. A task run's loop
``value`` path (``["s1", "a a"]``) is rebuilt from ``parentTaskRunId``: the values of the
runs whose parent is a loop, from the root down.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]
_MISSING = object()
_LOOPS = ("ForEach", "EachSequential", "EachParallel", "ForEachItem")


@dataclass
class Outcome:
    """What one scenario produced, as the API showed it."""

    main: JSON
    logs: list[JSON] = field(default_factory=list)
    # flow id -> its executions (oldest first), for the scopes that look at other flows.
    by_flow: dict[str, list[JSON]] = field(default_factory=dict)
    snapshots: dict[str, JSON] = field(default_factory=dict)
    numbered: dict[str, JSON] = field(default_factory=dict)
    paused: JSON | None = None
    problems: list[str] = field(default_factory=list)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


def runs_of(execution: JSON) -> list[JSON]:
    return list(execution.get("taskRunList") or [])


def state_of(item: JSON) -> str:
    return str(item["state"]["current"])


def history_of(item: JSON) -> list[str]:
    return [str(h["state"]) for h in item["state"].get("histories") or []]


def value_path(run: JSON, runs: list[JSON]) -> list[str]:
    by_id = {r["id"]: r for r in runs}
    path: list[str] = []
    node: JSON | None = run
    while node is not None:
        parent = by_id.get(node.get("parentTaskRunId") or "")
        if parent is not None and str(parent.get("type", "")).endswith(_LOOPS):
            if node.get("value") is not None:
                path.append(str(node["value"]))
        node = parent
    return path[::-1]


def describe(execution: JSON | None) -> str:
    if execution is None:
        return "(no execution)"
    runs = runs_of(execution)
    parts = []
    for run in runs:
        values = value_path(run, runs)
        shown = f"{values}" if values else ""
        parts.append(f"{run['taskId']}{shown}={state_of(run)}/{len(run.get('attempts') or [])}att")
    return f"{state_of(execution)} [{', '.join(parts)}]"


def _path(data: Any, dotted: str) -> Any:
    value = data
    for part in dotted.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _ref_output(execution: JSON, ref: JSON) -> Any:
    runs = runs_of(execution)
    for run in runs:
        if run["taskId"] == ref["task_id"] and (
            "value" not in ref or value_path(run, runs) == [str(v) for v in ref["value"]]
        ):
            return _path(run.get("outputs") or {}, ref.get("output_key", "value"))
    return _MISSING


def parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _match(x: JSON, actual: Any, outcome: Outcome) -> str | None:
    kind = x.get("match", "equals")
    expected = x.get("output_value")
    if kind == "is_null":
        ok = actual is None or actual is _MISSING or actual == {}
    elif actual is _MISSING:
        return "is missing"
    elif kind == "equals":
        ok = actual == expected
    elif kind == "contains":
        ok = isinstance(actual, str | list | dict) and expected in actual
    elif kind == "startswith":
        ok = isinstance(actual, str) and actual.startswith(str(expected))
    elif kind == "regex_full":
        ok = isinstance(actual, str) and re.fullmatch(str(expected), actual) is not None
    elif kind == "has_items":
        ok = isinstance(actual, list) and all(item in actual for item in expected or [])
    elif kind == "datetime_within_10s_of_now":
        try:
            ok = abs((parse_time(str(actual)) - outcome.now).total_seconds()) <= 10
        except ValueError:
            ok = False
    elif kind in ("contains_output_of", "contains_prefixed_output_of"):
        ref = _ref_output(outcome.main, x["ref"])
        if ref is _MISSING:
            return f"has no reference: output of {x['ref']} is missing"
        expected = f"{x.get('prefix', '')}{ref}"
        ok = isinstance(actual, str) and expected in actual
    else:
        return f"uses unknown match kind {kind!r} (client)"
    return None if ok else f"{actual!r} does not {kind} {expected!r}"


def _task_extra(x: JSON, outcome: Outcome) -> list[str]:
    runs = runs_of(outcome.main)
    task_id = x["task_id"]
    label = f"task '{task_id}'" + (f" value={x['value']}" if "value" in x else "")
    if "count" in x:
        count = sum(1 for r in runs if r["taskId"] == task_id)
        return [] if count == x["count"] else [f"{label}: {count} task runs, expected {x['count']}"]
    if "index" in x:
        index = x["index"]
        if index >= len(runs):
            return [f"{label}: no task run at index {index} (only {len(runs)})"]
        if runs[index]["taskId"] != task_id:
            order = [r["taskId"] for r in runs]
            return [f"{label}: task run #{index} is '{runs[index]['taskId']}' (order {order})"]
        candidates = [runs[index]]
    else:
        wanted = [str(v) for v in x["value"]] if "value" in x else None
        candidates = [
            r
            for r in runs
            if r["taskId"] == task_id and (wanted is None or value_path(r, runs) == wanted)
        ]
        if not candidates:
            seen = [value_path(r, runs) for r in runs if r["taskId"] == task_id]
            return [f"{label}: no such task run (runs of this task have values {seen})"]
    out: list[str] = []
    for run in candidates:
        attempts = len(run.get("attempts") or [])
        if "state" in x and state_of(run) != x["state"]:
            out.append(f"{label}: state {state_of(run)}, expected {x['state']}")
        if "attempts" in x and attempts != x["attempts"]:
            out.append(f"{label}: {attempts} attempts, expected {x['attempts']}")
        if "attempts_min" in x and attempts < x["attempts_min"]:
            out.append(f"{label}: {attempts} attempts, expected >= {x['attempts_min']}")
        if x.get("outputs_not_null") and not run.get("outputs"):
            out.append(f"{label}: outputs are empty, expected some")
        history = history_of(run)
        for wanted_state, wanted_count in (x.get("history_count") or {}).items():
            got = history.count(wanted_state)
            if got != wanted_count:
                out.append(
                    f"{label}: {wanted_state} {got}x in history {history}, expected {wanted_count}x"
                )
        if "output_key" in x:
            actual = _path(run.get("outputs") or {}, x["output_key"])
            problem = _match(x, actual, outcome)
            if problem:
                out.append(f"{label}: outputs.{x['output_key']} {problem}")
    return out


def label_pairs(labels: Any) -> set[tuple[str, str]]:
    if isinstance(labels, dict):
        return {(str(k), str(v)) for k, v in labels.items()}
    if isinstance(labels, list):
        return {(str(i.get("key")), str(i.get("value"))) for i in labels if isinstance(i, dict)}
    return set()


def trigger_variables(execution: JSON) -> JSON:
    """Kestra's execution ``trigger`` is ``{id, type, variables}``."""
    trigger = execution.get("trigger") or {}
    variables = trigger.get("variables") if isinstance(trigger, dict) else None
    return variables if isinstance(variables, dict) else {}


def _resolve(raw: Any, outcome: Outcome) -> str:
    text = str(raw)
    main = outcome.main
    if text in ("<execution.id>", "<top parent id>", "<parent id>"):
        return str(main["id"])
    if m := re.fullmatch(r"<taskrun\.id of (.+)>", text):
        ids = [r["id"] for r in runs_of(main) if r["taskId"] == m.group(1)]
        return ids[0] if ids else f"<no task run '{m.group(1)}'>"
    if m := re.fullmatch(r"<(.+) execution id>", text):
        for flow_id, executions in outcome.by_flow.items():
            if flow_id.endswith(m.group(1)) and executions:
                return str(executions[0]["id"])
    return text


def _snapshot(name: str, x: JSON, snapshot: JSON | None) -> list[str]:
    if snapshot is None:
        return [f"{name}: there is no such moment in this run"]
    out = []
    if "state" in x and state_of(snapshot) != x["state"]:
        out.append(f"{name}: state {state_of(snapshot)}, expected {x['state']}")
    if "taskruns" in x and len(runs_of(snapshot)) != x["taskruns"]:
        out.append(f"{name}: {len(runs_of(snapshot))} task runs, expected {x['taskruns']}")
    return out


def _scope(x: JSON, outcome: Outcome) -> list[str]:
    main = outcome.main
    scope = str(x.get("scope"))
    if scope == "execution_outputs":
        out = []
        outputs = main.get("outputs")
        if "output_key" in x:
            problem = _match(x, _path(outputs or {}, x["output_key"]), outcome)
            if problem:
                out.append(f"execution outputs.{x['output_key']} {problem}")
        elif x.get("match") == "is_null":
            problem = _match(x, outputs, outcome)
            if problem:
                out.append(f"execution outputs {problem}")
        if "outputs_size" in x and len(outputs or {}) != x["outputs_size"]:
            out.append(f"execution outputs {outputs!r}: expected {x['outputs_size']} entries")
        return out
    if scope.startswith(("child_execution:", "triggered_execution:")):
        flow_id = scope.split(":", 1)[1]
        others = [e for e in outcome.by_flow.get(flow_id, []) if e["id"] != main["id"]]
        if not others:
            return [f"{scope}: no execution of flow '{flow_id}' was created"]
        out = []
        for other in others:
            if "state" in x and state_of(other) != x["state"]:
                out.append(f"{scope}: {describe(other)}, expected {x['state']}")
            for key, value in x.get("labels_contains") or []:
                wanted = _resolve(value, outcome)
                if (key, wanted) not in label_pairs(other.get("labels")):
                    out.append(f"{scope}: label {key}={wanted} missing from {other.get('labels')}")
        return out
    if scope == "trigger_variables":
        variables = trigger_variables(main)
        return [
            f"trigger.{key} is {variables.get(key)!r}, expected {_resolve(value, outcome)!r}"
            for key, value in x.items()
            if key not in ("task_id", "scope") and variables.get(key) != _resolve(value, outcome)
        ]
    if scope.startswith("execution#"):
        numbered = outcome.numbered.get(scope)
        if numbered is None:
            return [f"{scope}: there is no such execution"]
        out = []
        if "state" in x and state_of(numbered) != x["state"]:
            out.append(f"{scope}: {describe(numbered)}, expected {x['state']}")
        if "history_prefix" in x:
            history = history_of(numbered)
            if history[: len(x["history_prefix"])] != x["history_prefix"]:
                out.append(f"{scope}: history {history} does not start {x['history_prefix']}")
        return out
    if scope == "paused_snapshot":
        return _snapshot(scope, x, outcome.paused)
    if scope == "first_run" or re.fullmatch(r"run\d", scope):
        return _snapshot(scope, x, outcome.snapshots.get(scope))
    if scope == "all_taskruns":
        bad = [f"{r['taskId']}={state_of(r)}" for r in runs_of(main) if state_of(r) != x["state"]]
        return [f"all task runs should be {x['state']}: {', '.join(bad)}"] if bad else []
    if scope == "all_executions_of_flow":
        got = sorted(state_of(e) for e in outcome.by_flow.get(main["flowId"], []))
        wanted = sorted(x["states_any_order"])
        return [] if got == wanted else [f"executions of the flow ended {got}, expected {wanted}"]
    return [f"unknown extra scope {scope!r} (client)"]


def _logs(sc: JSON, outcome: Outcome) -> list[str]:
    out = []
    for entry in sc.get("logs") or []:
        pool = [
            r
            for r in outcome.logs
            if not entry.get("task_id") or r.get("taskId") == entry["task_id"]
        ]
        if entry.get("absent"):
            if pool:
                out.append(
                    f"log of '{entry.get('task_id')}' should be absent: {pool[0]['message']!r}"
                )
            continue
        kind = entry.get("match", "equals")
        expected = entry["message"]
        hits = [
            r
            for r in pool
            if (not entry.get("level") or r["level"] == entry["level"])
            and (expected == r["message"] if kind == "equals" else expected in r["message"])
        ]
        if not hits:
            seen = [f"{r['level']} {r.get('taskId')}: {r['message']!r}" for r in pool][:8]
            where = f" of '{entry['task_id']}'" if entry.get("task_id") else ""
            out.append(
                f"no {entry.get('level') or ''} log{where} that {kind} {expected!r}; seen: {seen}"
            )
    return out


def _labels(sc: JSON, outcome: Outcome) -> list[str]:
    have = label_pairs(outcome.main.get("labels"))
    out = []
    exact = sc.get("expect_labels_exact")
    if exact is not None:
        wanted = {(k, _resolve(v, outcome)) for k, v in exact}
        if have != wanted:
            out.append(f"labels {sorted(have)} != expected {sorted(wanted)}")
    for key, value in sc.get("expect_labels_contains") or []:
        pair = (key, _resolve(value, outcome))
        if pair not in have:
            out.append(f"label {pair[0]}={pair[1]} missing from {sorted(have)}")
    return out


def check(sc: JSON, outcome: Outcome) -> list[str]:
    """Every mismatch between what the API showed and the manifest, one line each."""
    out = list(outcome.problems)
    main = outcome.main
    if state_of(main) != sc["expect_state"]:
        out.append(f"final state {state_of(main)}, expected {sc['expect_state']}")
    runs = runs_of(main)
    if sc.get("expect_taskruns") is not None and len(runs) != sc["expect_taskruns"]:
        out.append(f"{len(runs)} task runs, expected {sc['expect_taskruns']}")
    failed_min = sc.get("expect_taskruns_failed_min")
    if failed_min is not None:
        failed = sum(1 for r in runs if state_of(r) == "FAILED")
        if failed < failed_min:
            out.append(f"{failed} FAILED task runs, expected at least {failed_min}")
    for x in sc.get("extra") or []:
        out.extend(_scope(x, outcome) if x.get("task_id") is None else _task_extra(x, outcome))
    out.extend(_logs(sc, outcome))
    out.extend(_labels(sc, outcome))
    if out:
        out.append(f"(execution: {describe(main)})")
    return out
