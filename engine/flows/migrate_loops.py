"""ForEach -> Loop for ``headwater migrate``, and every expression of the flow rewritten
with what it means where it is (see :mod:`engine.flows.migrate_expr`).

A 1.x loop (``ForEach``, ``EachSequential``, ``EachParallel``) becomes a 2.0 ``Loop`` when
the Loop gives the same outcome:

- ``ForEach``: the type changes (``values`` and ``concurrencyLimit``, default 1 in both,
  carry over); ``EachSequential``: ``value`` becomes ``values`` (one at a time, the Loop's
  default); ``EachParallel``: ``value`` becomes ``values``, ``concurrent`` (default 0, no
  limit) ``concurrencyLimit``, and the tasks of one iteration, which EachParallel ran side
  by side, are wrapped in a ``Parallel`` (a Loop runs an iteration's tasks in order).
- Not migrated (reported): a loop with ``errors`` or ``finally`` (1.x runs them once for the
  loop, a Loop once per iteration); ``values`` written as a map or holding booleans or lists
  (1.x and 2.0 iterate over them differently); a task after the loop, a trigger or the
  flow's ``outputs`` reading the outputs or state of a task inside it (2.0 only exposes an
  iteration's outputs through the Loop's declared ``outputs``); and every expression the
  Loop cannot read the same way (:class:`~engine.flows.migrate_expr.Unmigratable`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from engine.flows.migrate_expr import LoopContext, Unmigratable, outside_reads, rewrite
from schemas.types import canonical_type

_FLOW = "io.kestra.plugin.core.flow."
FOREACH = f"{_FLOW}ForEach"
EACH_SEQUENTIAL = f"{_FLOW}EachSequential"
EACH_PARALLEL = f"{_FLOW}EachParallel"
V1_LOOPS = frozenset({FOREACH, EACH_SEQUENTIAL, EACH_PARALLEL})
LOOP = f"{_FLOW}Loop"
PARALLEL = f"{_FLOW}Parallel"
# 1.x flowables whose runs carry outputs, so that they count in `parents` without a value.
_WITH_OUTPUTS = frozenset(f"{_FLOW}{n}" for n in ("If", "Switch", "WaitFor", "Pause"))
# Keys holding tasks (their strings belong to those tasks, not to the one holding them).
_TASK_KEYS = frozenset({"tasks", "errors", "finally", "then", "else", "cases", "defaults"})
_NOT_RENDERED = frozenset({"description"})

Path = tuple[str | int, ...]


@dataclass(slots=True)
class TaskNode:
    task: dict[str, Any]
    path: Path
    canonical: str | None
    chain: list[TaskNode]  # enclosing tasks, closest first
    loops: list[TaskNode]  # enclosing 1.x loops, outermost first


@dataclass(slots=True)
class LoopReport:
    changes: list[tuple[Path, str]] = field(default_factory=list)
    manual: list[tuple[Path, str]] = field(default_factory=list)
    added: list[str] = field(default_factory=list)  # ids of the tasks the migration added


def _canonical(task: dict[str, Any]) -> str | None:
    raw = task.get("type")
    return canonical_type(raw) if isinstance(raw, str) else None


def walk(flow: dict[str, Any]) -> list[TaskNode]:
    """Every task of the flow with its enclosing tasks and loops."""
    out: list[TaskNode] = []

    def visit(container: dict[str, Any], path: Path, chain: list[TaskNode]) -> None:
        for key, value in container.items():
            if key not in _TASK_KEYS and not (key == "afterExecution" and not chain):
                continue
            if key == "cases" and isinstance(value, dict):
                for case, branch in value.items():
                    _visit_list(branch, (*path, "cases", case), chain)
            elif key != "cases":
                _visit_list(value, (*path, key), chain)

    def _visit_list(value: Any, path: Path, chain: list[TaskNode]) -> None:
        if not isinstance(value, list):
            return
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                continue
            task, task_path = item, (*path, index)
            if "task" in item and "type" not in item and isinstance(item.get("task"), dict):
                task, task_path = item["task"], (*task_path, "task")
            canonical = _canonical(task)
            loops = [n for n in reversed(chain) if n.canonical in V1_LOOPS]
            node = TaskNode(task, task_path, canonical, list(chain), loops)
            out.append(node)
            visit(task, task_path, [node, *chain])

    visit(flow, (), [])
    return out


def _value_loop(node: TaskNode) -> TaskNode | None:
    """The loop a 1.x task run's value comes from: the innermost loop enclosing it."""
    return node.loops[-1] if node.loops else None


def _context(node: TaskNode, inside: dict[str, list[str]]) -> LoopContext | None:
    """The loop context of an expression in ``node`` (a loop's own ``values`` too: 1.x
    renders them in the enclosing iteration, and ``node.loops`` excludes the node)."""
    loops = node.loops
    if not loops:
        return None
    ids = [str(loop.task.get("id")) for loop in loops]
    chain_values: list[int | None] = []
    for parent in node.chain:
        source = _value_loop(parent)
        if source is None and parent.canonical not in _WITH_OUTPUTS:
            continue  # no value, no outputs: not in 1.x's `parents`
        if source is None:
            chain_values.append(None)
        else:
            chain_values.append(len(loops) - 1 - loops.index(source))
    loop_tasks: dict[str, int] = {}
    foreign: set[str] = set()
    for task_id, task_loops in inside.items():
        if task_loops == ids[: len(task_loops)]:
            loop_tasks[task_id] = len(task_loops)
        else:
            foreign.add(task_id)
    return LoopContext(len(loops), chain_values, loop_tasks, frozenset(foreign))


def _strings(node: Any, path: Path) -> Iterator[tuple[Any, Any, Path]]:
    """(container, key, path) of every string value, not descending into task lists."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _TASK_KEYS or key in _NOT_RENDERED:
                continue
            if isinstance(value, str):
                yield node, key, (*path, key)
            else:
                yield from _strings(value, (*path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            if isinstance(item, str):
                yield node, index, (*path, index)
            else:
                yield from _strings(item, (*path, index))


def _replace(container: Any, key: Any, text: str) -> None:
    old = container[key]
    container[key] = type(old)(text) if type(old) is not str else text


def rewrite_expressions(flow: dict[str, Any], report: LoopReport) -> list[TaskNode]:
    """Rewrite every expression of the flow (tasks with their loop context, the rest
    without); returns the tasks (as found before any loop is converted)."""
    nodes = walk(flow)
    inside: dict[str, list[str]] = {
        str(n.task.get("id")): [str(loop.task.get("id")) for loop in n.loops]
        for n in nodes
        if n.loops
    }
    loop_task_ids = frozenset(inside)
    for node in nodes:
        context = _context(node, inside)
        for container, key, path in _strings(node.task, node.path):
            _rewrite_one(container, key, path, context, report)
            if context is None and loop_task_ids:
                _outside(container[key], path, loop_task_ids, report)
    for key in ("triggers", "outputs", "checks", "sla", "variables", "inputs", "labels"):
        if key in flow:
            for container, sub, path in _strings(flow[key], (key,)):
                _rewrite_one(container, sub, path, None, report)
                if loop_task_ids:
                    _outside(container[sub], path, loop_task_ids, report)
    return nodes


def _rewrite_one(
    container: Any, key: Any, path: Path, context: LoopContext | None, report: LoopReport
) -> None:
    text = container[key]
    try:
        new = rewrite(text, context)
    except Unmigratable as exc:
        report.manual.append((path, str(exc)))
        return
    if new != text:
        _replace(container, key, new)
        report.changes.append((path, "expression rewritten for Kestra 2.0"))


def _outside(text: Any, path: Path, inside: frozenset[str], report: LoopReport) -> None:
    if not isinstance(text, str):
        return
    for name in outside_reads(text, inside):
        report.manual.append(
            (
                path,
                f"reads the outputs of `{name}`, which runs inside a ForEach: in 2.0 a Loop "
                "only exposes what it declares in `outputs` (loopOutputs())",
            )
        )


def convert_loops(nodes: list[TaskNode], report: LoopReport, taken: set[str]) -> None:
    """Turn every 1.x loop into a Loop, or report why it cannot be."""
    for node in nodes:
        if node.canonical not in V1_LOOPS:
            continue
        task = node.task
        short = str(node.canonical).rsplit(".", 1)[-1]
        problems = [
            f"{short} `{task.get('id')}` has `{key}`: 1.x runs it once for the loop, a Loop "
            "runs it in every iteration"
            for key in ("errors", "finally")
            if task.get(key)
        ]
        values = task.get("values" if node.canonical == FOREACH else "value")
        if isinstance(values, dict):
            problems.append(f"{short} `{task.get('id')}` has values written as a map")
        if isinstance(values, list) and any(isinstance(v, bool | list) for v in values):
            problems.append(
                f"{short} `{task.get('id')}` iterates over booleans or lists, which a Loop "
                "does not take as values"
            )
        if problems:
            report.manual.extend((node.path, p) for p in problems)
            continue
        _to_loop(node, report, taken)


def _to_loop(node: TaskNode, report: LoopReport, taken: set[str]) -> None:
    task = node.task
    kind = node.canonical
    short = str(kind).rsplit(".", 1)[-1]
    task["type"] = type(task["type"])(LOOP) if type(task["type"]) is not str else LOOP
    if kind in (EACH_SEQUENTIAL, EACH_PARALLEL):
        _rename(task, "value", "values")
    if kind == EACH_PARALLEL:
        if "concurrent" in task:
            _rename(task, "concurrent", "concurrencyLimit")
        else:
            _insert_after(task, "values", "concurrencyLimit", 0)
        tasks = task.get("tasks")
        if isinstance(tasks, list) and len(tasks) > 1:
            wrapper_id = _unique(f"{task.get('id')}_parallel", taken)
            wrapper = type(tasks[0])() if isinstance(tasks[0], dict) else {}
            wrapper["id"] = wrapper_id
            wrapper["type"] = PARALLEL
            wrapper["tasks"] = tasks
            task["tasks"] = type(tasks)([wrapper])
            report.added.append(wrapper_id)
            report.changes.append(
                (node.path, f"EachParallel's tasks run side by side: wrapped in `{wrapper_id}`")
            )
    report.changes.append((node.path, f"{short} `{task.get('id')}` -> Loop"))


def _unique(wanted: str, taken: set[str]) -> str:
    name, n = wanted, 1
    while name in taken:
        n += 1
        name = f"{wanted}{n}"
    taken.add(name)
    return name


def rename_key(mapping: Any, old: str, new: str) -> None:
    """Rename a key in place, keeping its position (and its comment, for ruamel maps)."""
    _rename(mapping, old, new)


def _rename(mapping: Any, old: str, new: str) -> None:
    if old not in mapping:
        return
    keys = list(mapping.keys())
    position = keys.index(old)
    value = mapping[old]
    comment = None
    if hasattr(mapping, "ca") and old in mapping.ca.items:
        comment = mapping.ca.items.pop(old)
    del mapping[old]
    if hasattr(mapping, "insert"):
        mapping.insert(position, new, value)
        if comment is not None:
            mapping.ca.items[new] = comment
    else:
        items = list(mapping.items())
        items.insert(position, (new, value))
        mapping.clear()
        mapping.update(items)


def _insert_after(mapping: Any, after: str, key: str, value: Any) -> None:
    keys = list(mapping.keys())
    position = keys.index(after) + 1 if after in keys else len(keys)
    if hasattr(mapping, "insert"):
        mapping.insert(position, key, value)
    else:
        mapping[key] = value
