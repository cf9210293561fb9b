"""Normalize a raw flow dict into the form the engine consumes, without validating it.

The reducer works on plain dicts in Kestra's own key format. Before it sees a flow, three
things that users may write in several ways are made uniform:

* every ``type`` of a task, trigger or condition becomes its canonical name
  (``log`` and ``io.kestra.core.tasks.log.Log`` both become ``io.kestra.plugin.core.log.Log``);
  unknown types are left as written so that validation can report them with suggestions;
* ``pluginDefaults`` (and the older ``taskDefaults``) are merged into the matching plugins:
  a plugin's own values win over non-forced defaults, forced defaults win over the plugin;
  the merged list is kept under ``pluginDefaults`` so that normalizing twice changes nothing;
* inputs declared with the legacy ``name:`` get ``id:`` instead (flow inputs and Pause
  ``onResume`` inputs), and Switch ``cases`` keys become strings (YAML reads ``1:`` as an int,
  while Kestra compares the rendered value, a string, with the case keys).

Everything here is tolerant of wrong shapes: a value that is not what it should be is left
alone, so this can run on any ``yaml.safe_load`` output before validation.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from schemas.types import canonical_type

# Keys of a task (or of the flow) whose value is a list of tasks.
TASK_LIST_KEYS: tuple[str, ...] = ("tasks", "errors", "finally", "then", "else", "afterExecution")
# Keys of a task whose value is a map of name -> list of tasks.
TASK_MAP_KEYS: tuple[str, ...] = ("cases",)


def normalize_flow_dict(raw: dict[str, Any]) -> dict[str, Any]:
    """Return a normalized deep copy of ``raw`` (see the module docstring); never raises."""
    flow = copy.deepcopy(raw)
    if not isinstance(flow, dict):
        return flow
    # Kestra's blueprint catalog puts its metadata (title, tags, ...) under `extend:`; a
    # copied blueprint must load as it is, so the block is dropped unread.
    flow.pop("extend", None)
    defaults = _collect_defaults(flow)
    if defaults:
        flow["pluginDefaults"] = defaults
        flow.pop("taskDefaults", None)
    _normalize_inputs(flow.get("inputs"))
    for key in TASK_LIST_KEYS:
        if key != "then" and key != "else":
            _normalize_task_list(flow.get(key), defaults)
    triggers = flow.get("triggers")
    if isinstance(triggers, list):
        for trigger in triggers:
            _normalize_plugin(trigger, defaults)
    listeners = flow.get("listeners")
    if isinstance(listeners, list):
        for listener in listeners:
            if isinstance(listener, dict):
                _normalize_task_list(listener.get("tasks"), defaults)
                for condition in listener.get("conditions") or []:
                    _normalize_plugin(condition, defaults)
    return flow


def iter_tasks(container: Any) -> Iterator[dict[str, Any]]:
    """Every task dict in a flow or task, depth first, including nested and Dag-wrapped ones."""
    if not isinstance(container, dict):
        return
    for key in TASK_LIST_KEYS:
        for task in _task_list(container.get(key)):
            yield task
            yield from iter_tasks(task)
    listeners = container.get("listeners") if "type" not in container else None
    for listener in listeners if isinstance(listeners, list) else []:
        if isinstance(listener, dict):
            for task in _task_list(listener.get("tasks")):
                yield task
                yield from iter_tasks(task)
    for key in TASK_MAP_KEYS:
        cases = container.get(key)
        if isinstance(cases, dict):
            for branch in cases.values():
                for task in _task_list(branch):
                    yield task
                    yield from iter_tasks(task)
    # A Switch's `defaults` is a task list; at flow level the same word does not exist.
    if "type" in container:
        for task in _task_list(container.get("defaults")):
            yield task
            yield from iter_tasks(task)


def _task_list(value: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(value, list):
        return
    for item in value:
        if isinstance(item, dict) and "task" in item and "type" not in item:
            # Dag entries wrap their task: {task: {...}, dependsOn: [...]}.
            inner = item.get("task")
            if isinstance(inner, dict):
                yield inner
        elif isinstance(item, dict):
            yield item


def _normalize_task_list(value: Any, defaults: list[dict[str, Any]]) -> None:
    for task in _task_list(value):
        _normalize_task(task, defaults)


def _normalize_task(task: dict[str, Any], defaults: list[dict[str, Any]]) -> None:
    _normalize_plugin(task, defaults)
    for key in TASK_LIST_KEYS:
        _normalize_task_list(task.get(key), defaults)
    cases = task.get("cases")
    if isinstance(cases, dict):
        task["cases"] = {str(k): v for k, v in cases.items()}
        for branch in task["cases"].values():
            _normalize_task_list(branch, defaults)
    if isinstance(task.get("defaults"), list):
        _normalize_task_list(task["defaults"], defaults)
    _normalize_inputs(task.get("onResume"))


def _normalize_plugin(plugin: Any, defaults: list[dict[str, Any]]) -> None:
    """Canonicalize a task/trigger/condition's type, apply defaults, recurse into conditions."""
    if not isinstance(plugin, dict):
        return
    raw_type = plugin.get("type")
    if isinstance(raw_type, str):
        canonical = canonical_type(raw_type)
        if canonical is not None:
            plugin["type"] = canonical
            _apply_defaults(plugin, canonical, defaults)
    conditions = plugin.get("conditions")
    if isinstance(conditions, list):
        for condition in conditions:
            _normalize_plugin(condition, defaults)
    elif isinstance(conditions, dict):
        for condition in conditions.values():
            _normalize_plugin(condition, defaults)


def _normalize_inputs(inputs: Any) -> None:
    if not isinstance(inputs, list):
        return
    for index, item in enumerate(inputs):
        if isinstance(item, dict) and "name" in item and "id" not in item:
            # Rebuild to keep `id` where `name` was, so dumps read like the source.
            inputs[index] = {("id" if k == "name" else k): v for k, v in item.items()}


def _collect_defaults(flow: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for key in ("taskDefaults", "pluginDefaults"):
        entries = flow.get(key)
        if not isinstance(entries, list):
            continue
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("type"), str):
                entry = dict(entry)
                entry["type"] = canonical_type(entry["type"]) or entry["type"]
            out.append(entry)
    return out


def _matches(default_type: str, canonical: str) -> bool:
    # Kestra lets a default name a package prefix (e.g. io.kestra.plugin.core.log).
    return canonical == default_type or canonical.startswith(default_type + ".")


def _apply_defaults(plugin: dict[str, Any], canonical: str, defaults: list[dict[str, Any]]) -> None:
    soft: dict[str, Any] = {}
    forced: dict[str, Any] = {}
    for entry in defaults:
        if not isinstance(entry, dict):
            continue
        default_type, values = entry.get("type"), entry.get("values")
        if not isinstance(default_type, str) or not isinstance(values, dict):
            continue
        if _matches(default_type, canonical):
            target = forced if entry.get("forced") is True else soft
            deep_merge(target, values)
    if not soft and not forced:
        return
    own = {k: v for k, v in plugin.items()}
    merged = copy.deepcopy(soft)
    deep_merge(merged, own)
    deep_merge(merged, forced)
    merged["type"] = canonical  # a default can never change what the plugin is
    plugin.clear()
    # Keep the plugin's own key order first so that dumps read like the source.
    for key in own:
        plugin[key] = merged.pop(key)
    plugin.update(merged)


def deep_merge(target: dict[str, Any], extra: dict[str, Any]) -> None:
    """Merge ``extra`` into ``target`` in place: maps merge recursively, other values replace."""
    for key, value in extra.items():
        current = target.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            deep_merge(current, value)
        else:
            target[key] = copy.deepcopy(value)
