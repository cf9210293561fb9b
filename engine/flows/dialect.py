"""Which Kestra flow language a flow is written in: 1.x or 2.0, by what it uses.

Kestra 2.0 changed the flow language (kestra-io/docs, ``migration-guide/v2.0.0``). Headwater
runs both, unchanged; a flow is one or the other by the constructs it uses:

- **2.0 only**: the ``Loop`` task; ``when`` on a task, a trigger or a check; a Flow trigger's
  ``dependsOn``, ``window``, ``mode``, ``minSatisfied`` and ``onMiss``; ``jsonSchema`` on a
  JSON input; ``Exit`` with ``state: CANCELLED``; the ``loopOutputs()`` function.
- **1.x only** (removed in 2.0): the ``ForEach``, ``ForEachItem``, ``EachSequential``,
  ``EachParallel``, ``debug.Echo``, ``log.Fetch``, ``execution.Resume``, ``state.*``,
  ``storage.LocalFiles`` and ``trigger.Toggle`` tasks; every ``condition.*`` type; the legacy
  ``io.kestra.core.*`` type names; a trigger's ``conditions`` (and a Schedule's
  ``scheduleConditions``); a Flow trigger's ``preconditions``; ``pluginDefaults`` and
  ``taskDefaults``; ``listeners``; ``Exit`` with ``state: CANCELED``; the ``json()``
  function and the ``json`` filter.
- Everything else is both (``runIf`` and a check's ``condition`` are 2.0's deprecated
  aliases of ``when``, ``WaitFor`` its alias of ``LoopUntil``).

A flow with constructs of both is invalid: :func:`mixed` names the first of each, and the
loader reports it where the 2.0 one is written. :func:`conflicts` finds the same mistake
inside one construct (a ``Loop`` given ForEachItem's ``items``, a task with ``when`` and
``runIf``), as a problem at the offending property that says which dialect each side is.
A flow with neither is 1.x (every 1.x flow without removed constructs also runs on 2.0).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from engine.expressions.scan import expression_tokens, filter_uses, function_calls
from engine.flows.model_errors import Located, Path
from engine.flows.semantic import walk_tasks
from schemas.types import canonical_type

V1 = "1.x"
V2 = "2.0"

_CORE = "io.kestra.plugin.core."
LOOP = f"{_CORE}flow.Loop"
EXIT = f"{_CORE}execution.Exit"
FLOW_TRIGGER = f"{_CORE}trigger.Flow"
SCHEDULE = f"{_CORE}trigger.Schedule"

# Core types Kestra 2.0 removed (canonical names), with what replaces them.
REMOVED_IN_2: dict[str, str] = {
    f"{_CORE}flow.ForEach": "Loop",
    f"{_CORE}flow.ForEachItem": "Split + Loop + Subflow",
    f"{_CORE}flow.EachSequential": "Loop (concurrencyLimit: 1)",
    f"{_CORE}flow.EachParallel": "Loop (concurrencyLimit: 0)",
    f"{_CORE}debug.Echo": "io.kestra.plugin.core.log.Log",
    f"{_CORE}log.Fetch": "io.kestra.plugin.kestra.logs.Fetch",
    f"{_CORE}execution.Resume": "the API",
    f"{_CORE}state.Get": "io.kestra.plugin.core.kv.Get",
    f"{_CORE}state.Set": "io.kestra.plugin.core.kv.Set",
    f"{_CORE}state.Delete": "io.kestra.plugin.core.kv.Delete",
    f"{_CORE}storage.LocalFiles": "WorkingDirectory inputFiles/outputFiles",
    f"{_CORE}trigger.Toggle": "the API",
}
_CONDITION = f"{_CORE}condition."

# Properties of 1.x loops that a Loop does not have: property -> the 1.x type it belongs to.
_V1_LOOP_PROPERTIES = {
    "items": "ForEachItem",
    "batch": "ForEachItem",
    "subflow": "ForEachItem",
    "namespace": "ForEachItem",
    "flowId": "ForEachItem",
    "inputs": "ForEachItem",
    "wait": "ForEachItem",
    "value": "EachSequential/EachParallel",
    "concurrent": "EachParallel",
}
# Properties of a Loop that the 1.x loops do not have.
_V2_LOOP_PROPERTIES = ("transmitFailed", "outputs", "fetchType")
_V1_LOOPS = {f"{_CORE}flow.ForEach", f"{_CORE}flow.EachSequential", f"{_CORE}flow.EachParallel"}
_V2_FLOW_TRIGGER = ("dependsOn", "window", "mode", "minSatisfied", "onMiss")


@dataclass(frozen=True, slots=True)
class Construct:
    """One thing in a flow that only one dialect has; ``path`` is where it is written."""

    dialect: str
    what: str
    path: Path
    at_key: bool = True


def dialect_of(raw: Any) -> str:
    """``2.0`` when the flow uses a 2.0 construct, else ``1.x``."""
    return V2 if any(c.dialect == V2 for c in constructs(raw)) else V1


def mixed(raw: Any, ignore: frozenset[Path] = frozenset()) -> tuple[Construct, Construct] | None:
    """The first 2.0 and the first 1.x construct of a flow that uses both, else None;
    constructs at ``ignore`` (already reported by :func:`conflicts`) do not count."""
    found = [c for c in constructs(raw) if not any(c.path[: len(p)] == p for p in ignore)]
    first2 = next((c for c in found if c.dialect == V2), None)
    first1 = next((c for c in found if c.dialect == V1), None)
    return (first2, first1) if first2 and first1 else None


def constructs(raw: Any) -> list[Construct]:
    """Every dialect-specific construct of a raw (not normalized) flow dict, in document
    order of discovery: flow keys, tasks, triggers, checks, inputs, expressions."""
    if not isinstance(raw, dict):
        return []
    return list(_constructs(raw))


def _constructs(flow: dict[str, Any]) -> Iterator[Construct]:
    for key in ("pluginDefaults", "taskDefaults", "listeners"):
        if key in flow:
            yield Construct(V1, f"`{key}`", (key,))
    for path, task in walk_tasks(flow, ()):
        yield from _task(path, task)
    for listener_index, listener in enumerate(_dicts(flow.get("listeners"))):
        for index, task in enumerate(_dicts(listener.get("tasks"))):
            yield from _task(("listeners", listener_index, "tasks", index), task)
    for index, trigger in enumerate(_dicts(flow.get("triggers"))):
        yield from _trigger(("triggers", index), trigger)
    for index, check in enumerate(_dicts(flow.get("checks"))):
        if "when" in check:
            yield Construct(V2, "a check's `when`", ("checks", index, "when"))
    for index, spec in enumerate(_dicts(flow.get("inputs"))):
        if spec.get("type") == "JSON" and "jsonSchema" in spec:
            yield Construct(V2, "`jsonSchema` on a JSON input", ("inputs", index, "jsonSchema"))
    yield from _expressions(flow, ())


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _type_construct(raw_type: Any, path: Path, what: str) -> Iterator[Construct]:
    if not isinstance(raw_type, str):
        return
    canonical = canonical_type(raw_type)
    if raw_type.startswith("io.kestra.core.") and canonical is not None:
        yield Construct(V1, f"the legacy type name `{raw_type}`", path, False)
    elif canonical in REMOVED_IN_2:
        short = canonical.rsplit(".", 1)[-1]
        yield Construct(V1, f"{what} type `{short}`", path, False)
    elif canonical is not None and canonical.startswith(_CONDITION):
        yield Construct(V1, f"the condition type `{canonical.rsplit('.', 1)[-1]}`", path, False)


def _task(path: Path, task: dict[str, Any]) -> Iterator[Construct]:
    raw_type = task.get("type")
    canonical = canonical_type(raw_type) if isinstance(raw_type, str) else None
    if canonical == LOOP:
        yield Construct(V2, "task type `Loop`", (*path, "type"), False)
    yield from _type_construct(raw_type, (*path, "type"), "task")
    if "when" in task:
        yield Construct(V2, "a task's `when`", (*path, "when"))
    if canonical == EXIT and isinstance(task.get("state"), str):
        if task["state"].strip().upper() == "CANCELLED":
            yield Construct(V2, "Exit state `CANCELLED`", (*path, "state"), False)
        elif task["state"].strip().upper() == "CANCELED":
            yield Construct(V1, "Exit state `CANCELED`", (*path, "state"), False)


def _trigger(path: Path, trigger: dict[str, Any]) -> Iterator[Construct]:
    yield from _type_construct(trigger.get("type"), (*path, "type"), "trigger")
    if "when" in trigger:
        yield Construct(V2, "a trigger's `when`", (*path, "when"))
    for key in _V2_FLOW_TRIGGER:
        if key in trigger:
            yield Construct(V2, f"a Flow trigger's `{key}`", (*path, key))
    for key in ("conditions", "scheduleConditions", "preconditions"):
        if key in trigger:
            yield Construct(V1, f"a trigger's `{key}`", (*path, key))


# Values that are never expressions Kestra renders.
_NOT_RENDERED = frozenset({"description", "pluginDefaults", "taskDefaults"})


def _expressions(node: Any, path: Path) -> Iterator[Construct]:
    if isinstance(node, str):
        tokens = expression_tokens(node)
        if not tokens:
            return
        if function_calls(tokens, "loopOutputs"):
            yield Construct(V2, "the `loopOutputs()` function", path, False)
        if function_calls(tokens, "json"):
            yield Construct(V1, "the `json()` function (2.0: `fromJson()`)", path, False)
        if filter_uses(tokens, "json"):
            yield Construct(V1, "the `json` filter (2.0: `toJson`)", path, False)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key not in _NOT_RENDERED:
                yield from _expressions(value, (*path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _expressions(item, (*path, index))


def conflicts(raw: Any) -> list[Located]:
    """A 2.0 construct given a 1.x property (or the reverse), where the property is written;
    the message says which dialect each belongs to."""
    if not isinstance(raw, dict):
        return []
    out: list[Located] = []
    for path, task in walk_tasks(raw, ()):
        out.extend(_task_conflicts(path, task))
    for index, trigger in enumerate(_dicts(raw.get("triggers"))):
        out.extend(_trigger_conflicts(("triggers", index), trigger))
    for index, check in enumerate(_dicts(raw.get("checks"))):
        if "when" in check and "condition" in check:
            out.append(
                (
                    ("checks", index, "condition"),
                    "a check takes `when` (Kestra 2.0) or `condition` (its Kestra 1.x name), "
                    "not both",
                    "only `when`",
                    True,
                )
            )
    return out


def _task_conflicts(path: Path, task: dict[str, Any]) -> Iterator[Located]:
    raw_type = task.get("type")
    canonical = canonical_type(raw_type) if isinstance(raw_type, str) else None
    if "when" in task and "runIf" in task:
        yield (
            (*path, "runIf"),
            "a task takes `when` (Kestra 2.0) or `runIf` (its Kestra 1.x name), not both",
            "only `when`",
            True,
        )
    if canonical == LOOP:
        for key, owner in _V1_LOOP_PROPERTIES.items():
            if key in task:
                yield (
                    (*path, key),
                    f"`{key}` is a property of {owner} (Kestra 1.x), not of Loop (Kestra 2.0)"
                    + ("; a Loop iterates over `values`" if key in ("items", "value") else ""),
                    "Loop's properties: values, tasks, concurrencyLimit, transmitFailed, "
                    "outputs, fetchType, errors, finally",
                    True,
                )
    elif canonical in _V1_LOOPS:
        short = canonical.rsplit(".", 1)[-1] if canonical else "?"
        for key in _V2_LOOP_PROPERTIES:
            if key in task:
                yield (
                    (*path, key),
                    f"`{key}` is a property of Loop (Kestra 2.0), not of {short} (Kestra 1.x); "
                    "`headwater migrate` rewrites this loop as a Loop",
                    None,
                    True,
                )


def _trigger_conflicts(path: Path, trigger: dict[str, Any]) -> Iterator[Located]:
    v2 = [k for k in ("when", *_V2_FLOW_TRIGGER) if k in trigger]
    v1 = [k for k in ("conditions", "scheduleConditions", "preconditions") if k in trigger]
    if v2 and v1:
        for key in v1:
            yield (
                (*path, key),
                f"`{key}` (Kestra 1.x) cannot be used with `{v2[0]}` (Kestra 2.0) in one "
                "trigger; Kestra 2.0 writes conditions as `when`"
                + (" and `dependsOn`" if trigger.get("type") == FLOW_TRIGGER else ""),
                f"only `{v2[0]}`",
                True,
            )


def conflict_paths(raw: Any) -> set[Path]:
    """Where :func:`conflicts` reports (so model errors at the same place are dropped)."""
    return {path for path, *_ in conflicts(raw)}


__all__ = [
    "LOOP",
    "REMOVED_IN_2",
    "V1",
    "V2",
    "Construct",
    "conflict_paths",
    "conflicts",
    "constructs",
    "dialect_of",
    "mixed",
]
