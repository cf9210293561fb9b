"""Checks that span more than one value, run on the normalized flow dict.

Shape and per-value checks (types, durations, cron, time zones) belong to the models; what
needs the whole flow lives here: task ids unique across the flow (nested tasks, ``errors``,
``finally`` and ``afterExecution`` included), trigger and input ids unique, and Dag
``dependsOn`` naming Dag tasks with no cycle. The checks tolerate wrong shapes (the models
report those), so they can run even when validation failed and all problems come out at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from engine.errors import ExpressionError
from engine.expressions import validate as validate_expression
from engine.flows.model_errors import Located, Path
from engine.flows.normalize import TASK_LIST_KEYS
from engine.flows.problems import format_path
from schemas.types import canonical_type, known_names, unknown_type_problem

_DAG = "io.kestra.plugin.core.flow.Dag"


def semantic_problems(flow: Any) -> list[Located]:
    """Every cross-value problem of a normalized flow dict."""
    if not isinstance(flow, dict):
        return []
    out: list[Located] = []
    tasks = list(walk_tasks(flow, ()))
    out.extend(_duplicates(tasks, "task"))
    for key, what in (("triggers", "trigger"), ("inputs", "input")):
        items = flow.get(key)
        if isinstance(items, list):
            entries: list[tuple[Path, dict[str, Any]]] = [
                ((key, i), item) for i, item in enumerate(items) if isinstance(item, dict)
            ]
            out.extend(_duplicates(entries, what))
    for path, task in tasks:
        if task.get("type") == _DAG:
            out.extend(_dag_problems(path, task))
    out.extend(_not_provided(flow, ()))
    return out


# Values Kestra never renders, and pluginDefaults (merged into the tasks, checked there).
_NOT_RENDERED = frozenset({"description", "pluginDefaults", "taskDefaults"})


def expression_problems(node: Any, path: Path = ()) -> Iterator[Located]:
    """Every string holding an expression, parsed as the engine will render it: syntax errors
    and unknown filters, functions and tests, where they are written.

    Not a deploy error: Kestra saves a flow without parsing its expressions (its own test
    flow ``flowable-with-parent-fail`` holds one that cannot parse), and such a task fails
    when it runs, with the parser's message. Tools may show these as warnings."""
    if isinstance(node, str):
        if "{{" in node or "{%" in node:
            try:
                validate_expression(node)
            except ExpressionError as exc:
                yield path, f"invalid expression: {exc.message}", "a valid Pebble expression", False
    elif isinstance(node, dict):
        for key, value in node.items():
            if key not in _NOT_RENDERED:
                yield from expression_problems(value, (*path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from expression_problems(item, (*path, index))


# Free-form places where a `type:` is not a task, trigger or condition type.
_FREE_FORM = frozenset(
    {"inputs", "outputs", "variables", "labels", "pluginDefaults", "taskDefaults", "taskRunner"}
)


def _not_provided(node: Any, path: Path) -> Iterator[Located]:
    """Every Kestra plugin type used anywhere (nested in conditions or inside a type we do not
    know too) that Headwater does not provide; the model errors stop at the outermost one."""
    if isinstance(node, dict):
        kind = node.get("type")
        if isinstance(kind, str) and canonical_type(kind) is None:
            message, not_provided = unknown_type_problem(kind, "task", known_names())
            if not_provided:
                yield (*path, "type"), message, None, False
        for key, value in node.items():
            if key not in _FREE_FORM and isinstance(value, dict | list):
                yield from _not_provided(value, (*path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _not_provided(item, (*path, index))


def walk_tasks(container: dict[str, Any], path: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(path, task) for every task below ``container``, depth first."""
    for key in TASK_LIST_KEYS:
        yield from _walk_list(container.get(key), (*path, key))
    cases = container.get("cases")
    if isinstance(cases, dict):
        for name, branch in cases.items():
            yield from _walk_list(branch, (*path, "cases", name))
    if "type" in container:
        yield from _walk_list(container.get("defaults"), (*path, "defaults"))
        on_pause = container.get("onPause")
        if isinstance(on_pause, dict):
            yield (*path, "onPause"), on_pause
            yield from walk_tasks(on_pause, (*path, "onPause"))


def _walk_list(value: Any, path: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    if not isinstance(value, list):
        return
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            continue
        task_path: Path = (*path, index)
        if "task" in item and "type" not in item:
            if not isinstance(item["task"], dict):
                continue
            task_path, item = (*task_path, "task"), item["task"]
        yield task_path, item
        yield from walk_tasks(item, task_path)


def _duplicates(entries: list[tuple[Path, dict[str, Any]]], what: str) -> list[Located]:
    first: dict[str, Path] = {}
    out: list[Located] = []
    for path, item in entries:
        ident = item.get("id")
        if not isinstance(ident, str):
            continue
        if ident in first:
            where = _show(first[ident])
            out.append(
                (
                    (*path, "id"),
                    f"duplicate {what} id '{ident}' (already used at {where})",
                    f"a {what} id unique in the flow",
                    False,
                )
            )
        else:
            first[ident] = path
    return out


def _dag_problems(path: Path, dag: dict[str, Any]) -> list[Located]:
    entries = dag.get("tasks")
    if not isinstance(entries, list):
        return []
    ids: dict[str, int] = {}
    edges: dict[str, list[str]] = {}
    out: list[Located] = []
    for index, entry in enumerate(entries):
        if isinstance(entry, dict) and isinstance(entry.get("task"), dict):
            ident = entry["task"].get("id")
            if isinstance(ident, str):
                ids.setdefault(ident, index)
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("task"), dict):
            continue
        ident = entry["task"].get("id")
        depends = entry.get("dependsOn")
        if not isinstance(ident, str) or not isinstance(depends, list):
            continue
        edges[ident] = []
        for dep_index, dep in enumerate(depends):
            if not isinstance(dep, str):
                continue
            if dep not in ids:
                out.append(
                    (
                        (*path, "tasks", index, "dependsOn", dep_index),
                        f"dependsOn '{dep}' is not a task of this Dag",
                        _known(sorted(ids)),
                        False,
                    )
                )
            else:
                edges[ident].append(dep)
    cycle = _find_cycle(edges)
    if cycle is not None:
        at = ids.get(cycle[0], 0)
        out.append(
            (
                (*path, "tasks", at, "dependsOn"),
                "Dag dependencies form a cycle: " + " -> ".join(cycle),
                "dependencies without cycles",
                False,
            )
        )
    return out


def _find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    # Iterative DFS with colours, so a 10 000-task Dag cannot hit the recursion limit.
    state: dict[str, int] = {}
    for start in edges:
        if state.get(start):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(edges.get(start, ())))]
        trail = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                trail.pop()
            elif state.get(child) == 1:
                return [*trail[trail.index(child) :], child]
            elif not state.get(child):
                state[child] = 1
                trail.append(child)
                stack.append((child, iter(edges.get(child, ()))))
    return None


def _known(ids: list[str]) -> str:
    return "one of " + ", ".join(ids) if ids else "the id of another task of this Dag"


def _show(path: Path) -> str:
    return format_path(path)
