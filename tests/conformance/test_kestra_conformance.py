"""Kestra's conformance corpus, one test per scenario of ``manifest.json``.

Each test runs the scenario in process (:mod:`tests.conformance.harness` does the running) and
compares the result with the manifest here, reporting every mismatch at once. A scenario that
needs a component Headwater does not have yet fails with ``MISSING COMPONENT`` naming it:
nothing here is skipped.
"""

from __future__ import annotations

import pathlib
import re
from typing import Any

import pytest

from engine.reducer.model import ExecutionState, TaskRun
from engine.reducer.trigger import trigger_variables
from tests.conformance.harness import (
    HarnessError,
    Run,
    Unsupported,
    World,
    execute,
    load_manifest,
    parse_time,
    scenario_ids,
)
from tests.conftest import CONFORMANCE

pytestmark = pytest.mark.conformance

# Read at collection time so that each scenario is its own test id; a missing corpus gives
# one failing test (through the conformance_dir fixture) instead of a collection error.
SCENARIOS: list[dict[str, Any]] = (
    load_manifest(CONFORMANCE) if CONFORMANCE.is_dir() else [{"scenario": "corpus-missing"}]
)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=scenario_ids(SCENARIOS))
async def test_kestra_scenario(scenario: dict[str, Any], conformance_dir: pathlib.Path) -> None:
    failures = await run_scenario(scenario, conformance_dir)
    assert not failures, (
        f"{scenario['scenario']} ({scenario.get('category')}; {scenario['file']}):\n  "
        + "\n  ".join(failures)
    )


async def run_scenario(sc: dict[str, Any], corpus: pathlib.Path) -> list[str]:
    """Every mismatch between the run and the manifest (empty when the scenario passes)."""
    variants = sc.get("input_variants") or [sc.get("inputs")]
    failures: list[str] = []
    for number, inputs in enumerate(variants, start=1):
        prefix = f"[variant {number}: inputs={inputs!r}] " if len(variants) > 1 else ""
        try:
            run = await execute(sc, corpus, inputs)
        except Unsupported as exc:
            failures.append(f"{prefix}MISSING COMPONENT: {exc}")
            continue
        except HarnessError as exc:
            failures.append(f"{prefix}{exc}")
            continue
        failures.extend(prefix + f for f in check(sc, run))
    return failures


# ==== assertions ================================================================================

_MISSING = object()


def _runs(state: ExecutionState) -> list[TaskRun]:
    return list(state.task_runs.values())


def describe(state: ExecutionState | None) -> str:
    """A compact picture of an execution for failure messages."""
    if state is None:
        return "(no execution)"
    parts = []
    for tr in state.task_runs.values():
        vals = f"{tr.values}" if tr.values else ""
        parts.append(f"{tr.task_id}{vals}={tr.state.value}/{len(tr.attempts)}att")
    return f"{state.state.value} [{', '.join(parts)}]"


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


def _ref_output(state: ExecutionState, ref: dict[str, Any]) -> Any:
    for tr in _runs(state):
        if tr.task_id == ref["task_id"] and (
            "value" not in ref or tr.values == [str(v) for v in ref["value"]]
        ):
            return _path(tr.outputs, ref.get("output_key", "value"))
    return _MISSING


def _match(x: dict[str, Any], actual: Any, world: World, state: ExecutionState) -> str | None:
    """None when ``actual`` satisfies the extra's ``match``, else why not."""
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
            ok = abs((parse_time(str(actual)) - world.now).total_seconds()) <= 10
        except ValueError:
            ok = False
    elif kind in ("contains_output_of", "contains_prefixed_output_of"):
        ref = _ref_output(state, x["ref"])
        if ref is _MISSING:
            return f"has no reference: output of {x['ref']} is missing"
        expected = f"{x.get('prefix', '')}{ref}"
        ok = isinstance(actual, str) and expected in actual
    else:
        return f"uses unknown match kind {kind!r} (harness)"
    return None if ok else f"{actual!r} does not {kind} {expected!r}"


def _check_task_extra(x: dict[str, Any], world: World, state: ExecutionState) -> list[str]:
    runs = _runs(state)
    task_id = x["task_id"]
    label = f"task '{task_id}'" + (f" value={x['value']}" if "value" in x else "")
    if "count" in x:
        count = sum(1 for tr in runs if tr.task_id == task_id)
        return [] if count == x["count"] else [f"{label}: {count} task runs, expected {x['count']}"]
    if "index" in x:
        index = x["index"]
        if index >= len(runs):
            return [f"{label}: no task run at index {index} (only {len(runs)})"]
        if runs[index].task_id != task_id:
            return [f"{label}: task run #{index} is '{runs[index].task_id}', not '{task_id}'"]
        candidates = [runs[index]]
    else:
        wanted = [str(v) for v in x["value"]] if "value" in x else None
        candidates = [
            tr for tr in runs if tr.task_id == task_id and (wanted is None or tr.values == wanted)
        ]
        if not candidates:
            seen = [tr.values for tr in runs if tr.task_id == task_id]
            return [f"{label}: no such task run (runs of this task have values {seen})"]
    out: list[str] = []
    for tr in candidates:
        if "state" in x and tr.state.value != x["state"]:
            out.append(f"{label}: state {tr.state.value}, expected {x['state']}")
        if "attempts" in x and len(tr.attempts) != x["attempts"]:
            out.append(f"{label}: {len(tr.attempts)} attempts, expected {x['attempts']}")
        if "attempts_min" in x and len(tr.attempts) < x["attempts_min"]:
            out.append(f"{label}: {len(tr.attempts)} attempts, expected >= {x['attempts_min']}")
        if x.get("outputs_not_null") and not tr.outputs:
            out.append(f"{label}: outputs are empty, expected some")
        for wanted_state, wanted_count in (x.get("history_count") or {}).items():
            got = sum(1 for h in tr.history if h[0] == wanted_state)
            if got != wanted_count:
                history = [h[0] for h in tr.history]
                out.append(
                    f"{label}: {wanted_state} {got}x in history {history}, expected {wanted_count}x"
                )
        if "output_key" in x:
            actual = _path(tr.outputs, x["output_key"])
            problem = _match(x, actual, world, state)
            if problem:
                out.append(f"{label}: outputs.{x['output_key']} {problem}")
    return out


def _snapshot_check(name: str, x: dict[str, Any], snapshot: dict[str, Any] | None) -> list[str]:
    if snapshot is None:
        return [f"{name}: there is no such moment in this run"]
    out = []
    if "state" in x and snapshot["state"] != x["state"]:
        out.append(f"{name}: state {snapshot['state']}, expected {x['state']}")
    if "taskruns" in x and len(snapshot["task_runs"]) != x["taskruns"]:
        out.append(f"{name}: {len(snapshot['task_runs'])} task runs, expected {x['taskruns']}")
    return out


def _label_pairs(labels: Any) -> set[tuple[str, str]]:
    if isinstance(labels, dict):
        return {(str(k), str(v)) for k, v in labels.items()}
    if isinstance(labels, list):
        return {(str(i.get("key")), str(i.get("value"))) for i in labels if isinstance(i, dict)}
    return set()


def _resolve(raw: Any, run: Run, state: ExecutionState) -> str:
    """Replace a manifest placeholder (``<execution.id>``, ``<taskrun.id of X>``) by its value."""
    text = str(raw)
    if text in ("<execution.id>", "<top parent id>", "<parent id>"):
        return run.main
    if m := re.fullmatch(r"<taskrun\.id of (.+)>", text):
        ids = [tr.id for tr in _runs(state) if tr.task_id == m.group(1)]
        return ids[0] if ids else f"<no task run '{m.group(1)}'>"
    if m := re.fullmatch(r"<(.+) execution id>", text):
        for flow_id, states in _by_flow(run.world).items():
            if flow_id.endswith(m.group(1)):
                return str(states[0].execution_id)
    return text


def _by_flow(world: World) -> dict[str, list[ExecutionState]]:
    out: dict[str, list[ExecutionState]] = {}
    for execution_id in world.created:
        state = world.states[execution_id]
        out.setdefault(state.flow_id, []).append(state)
    return out


def _check_scope(x: dict[str, Any], run: Run, state: ExecutionState) -> list[str]:
    world = run.world
    scope = str(x.get("scope"))
    if scope == "execution_outputs":
        out = []
        outputs = state.outputs
        if "output_key" in x:
            problem = _match(x, _path(outputs or {}, x["output_key"]), world, state)
            if problem:
                out.append(f"execution outputs.{x['output_key']} {problem}")
        elif x.get("match") == "is_null":
            problem = _match(x, outputs, world, state)
            if problem:
                out.append(f"execution outputs {problem}")
        if "outputs_size" in x and len(outputs or {}) != x["outputs_size"]:
            out.append(f"execution outputs {outputs!r}: expected {x['outputs_size']} entries")
        return out
    if scope.startswith(("child_execution:", "triggered_execution:")):
        flow_id = scope.split(":", 1)[1]
        others = [s for s in world.executions_of(flow_id) if s.execution_id != run.main]
        if not others:
            return [f"{scope}: no execution of flow '{flow_id}' was created"]
        out = []
        for other in others:
            if "state" in x and other.state.value != x["state"]:
                out.append(f"{scope}: state {describe(other)}, expected {x['state']}")
            for key, value in x.get("labels_contains") or []:
                wanted = value
                if value == "<parent id>" and other.parent is not None:
                    wanted = other.parent.execution_id
                elif str(value).startswith("<"):
                    wanted = _resolve(value, run, state)
                if (key, wanted) not in _label_pairs(other.labels):
                    out.append(f"{scope}: label {key}={wanted} missing from {other.labels}")
        return out
    if scope == "trigger_variables":
        trigger = trigger_variables(state.trigger) or {}
        return [
            f"trigger.{key} is {trigger.get(key)!r}, expected {_resolve(value, run, state)!r}"
            for key, value in x.items()
            if key not in ("task_id", "scope") and trigger.get(key) != _resolve(value, run, state)
        ]
    if scope.startswith("execution#"):
        numbered = world.states.get(run.numbered.get(scope, ""))
        if numbered is None:
            return [f"{scope}: there is no such execution"]
        out = []
        if "state" in x and numbered.state.value != x["state"]:
            out.append(f"{scope}: {describe(numbered)}, expected {x['state']}")
        if "history_prefix" in x:
            history = [h[0] for h in numbered.history]
            if history[: len(x["history_prefix"])] != x["history_prefix"]:
                out.append(f"{scope}: history {history} does not start {x['history_prefix']}")
        return out
    if scope == "paused_snapshot":
        return _snapshot_check(scope, x, world.paused.get(run.main))
    if scope == "first_run" or re.fullmatch(r"run\d", scope):
        return _snapshot_check(scope, x, run.snapshots.get(scope))
    if scope == "all_taskruns":
        bad = [
            f"{tr.task_id}={tr.state.value}" for tr in _runs(state) if tr.state.value != x["state"]
        ]
        return [f"all task runs should be {x['state']}: {', '.join(bad)}"] if bad else []
    if scope == "all_executions_of_flow":
        got = sorted(s.state.value for s in world.executions_of(state.flow_id))
        wanted = sorted(x["states_any_order"])
        return [] if got == wanted else [f"executions of the flow ended {got}, expected {wanted}"]
    return [f"unknown extra scope {scope!r} (harness)"]


def _check_logs(sc: dict[str, Any], run: Run) -> list[str]:
    out = []
    records = run.world.logs_of(run.main)
    for entry in sc.get("logs") or []:
        pool = [r for r in records if not entry.get("task_id") or r.task_id == entry["task_id"]]
        if entry.get("absent"):
            if pool:
                out.append(f"log of '{entry.get('task_id')}' should be absent: {pool[0].message!r}")
            continue
        kind = entry.get("match", "equals")
        expected = entry["message"]
        hits = [
            r
            for r in pool
            if (not entry.get("level") or r.level == entry["level"])
            and (expected == r.message if kind == "equals" else expected in r.message)
        ]
        if not hits:
            seen = [f"{r.level} {r.task_id}: {r.message!r}" for r in pool][:8]
            where = f" of '{entry['task_id']}'" if entry.get("task_id") else ""
            out.append(
                f"no {entry.get('level') or ''} log{where} that {kind} {expected!r}; seen: {seen}"
            )
    return out


def _check_labels(sc: dict[str, Any], run: Run, state: ExecutionState) -> list[str]:
    have = _label_pairs(state.labels)
    out = []
    exact = sc.get("expect_labels_exact")
    if exact is not None:
        wanted = {(k, _resolve(v, run, state)) for k, v in exact}
        if have != wanted:
            out.append(f"labels {sorted(have)} != expected {sorted(wanted)}")
    for key, value in sc.get("expect_labels_contains") or []:
        pair = (key, _resolve(value, run, state))
        if pair not in have:
            out.append(f"label {pair[0]}={pair[1]} missing from {sorted(have)}")
    return out


def check(sc: dict[str, Any], run: Run) -> list[str]:
    """Compare one run with the manifest; every mismatch is one line."""
    world = run.world
    out = [f"harness: {p}" for p in world.problems if not p.startswith("note:")]
    state = world.states.get(run.main)
    if state is None:
        return [*out, "the execution under test was never created"]
    if state.state.value != sc["expect_state"]:
        out.append(f"final state {state.state.value}, expected {sc['expect_state']}")
    runs = _runs(state)
    if sc.get("expect_taskruns") is not None and len(runs) != sc["expect_taskruns"]:
        out.append(f"{len(runs)} task runs, expected {sc['expect_taskruns']}")
    failed_min = sc.get("expect_taskruns_failed_min")
    if failed_min is not None:
        failed = sum(1 for tr in runs if tr.state.value == "FAILED")
        if failed < failed_min:
            out.append(f"{failed} FAILED task runs, expected at least {failed_min}")
    for x in sc.get("extra") or []:
        if x.get("task_id") is None:
            out.extend(_check_scope(x, run, state))
        else:
            out.extend(_check_task_extra(x, world, state))
    out.extend(_check_logs(sc, run))
    out.extend(_check_labels(sc, run, state))
    if out:
        out.append(f"(execution: {describe(state)})")
    return out
