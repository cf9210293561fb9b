"""``headwater migrate``: rewrite a Kestra 1.x flow in Kestra 2.0's language.

The YAML is edited in place with ruamel.yaml, so comments, key order, quoting and layout
stay as written; only what changes is rewritten. What it does (kestra-io/docs,
``migration-guide/v2.0.0``), in this order:

1. legacy type names (``io.kestra.core.tasks.*``) become their current names; ``debug.Echo``
   becomes ``log.Log`` (``format`` -> ``message``);
2. ``pluginDefaults`` and ``taskDefaults`` are inlined into every task, trigger and
   condition they apply to (a value the plugin sets wins over a default, a ``forced`` one
   wins over the plugin; maps merge), then removed;
3. every expression is rewritten: ``json()`` -> ``fromJson()``, ``| json`` -> ``| toJson``,
   and inside loops what reads the iteration (:mod:`.migrate_expr`);
4. ForEach, EachSequential, EachParallel -> Loop (:mod:`.migrate_loops`);
5. ``runIf`` -> ``when`` on tasks, ``condition`` -> ``when`` on checks, Exit's ``CANCELED``
   -> ``CANCELLED``;
6. trigger ``conditions`` -> ``when``; a Flow trigger's conditions, ``preconditions`` and
   MultipleCondition -> ``dependsOn`` + ``window`` (:mod:`.migrate_conditions`).

A flow with anything that cannot be rewritten to the same outcome (ForEachItem, a removed
task, ``listeners``, an expression 2.0 cannot read the same way...) is left exactly as it
is, and each such thing is reported with where it is: half a migration would be a flow in
two dialects, which does not load. The rewritten flow is loaded again before it is
returned; one with a problem the original did not have is reported the same way (a plugin
Headwater does not provide is in both, and does not stop the migration).
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from engine.flows.dialect import REMOVED_IN_2, V1, constructs
from engine.flows.migrate_conditions import (
    depends_on,
    needs_scoped_outputs,
    schedule_when,
    trigger_when,
)
from engine.flows.migrate_expr import Unmigratable
from engine.flows.migrate_loops import (
    LoopReport,
    Path,
    convert_loops,
    rename_key,
    rewrite_expressions,
    walk,
)
from engine.flows.normalize import deep_merge
from engine.flows.problems import format_path
from schemas.types import canonical_type

_CORE = "io.kestra.plugin.core."
ECHO = f"{_CORE}debug.Echo"
LOG = f"{_CORE}log.Log"
EXIT = f"{_CORE}execution.Exit"
SCHEDULE = f"{_CORE}trigger.Schedule"
FLOW_TRIGGER = f"{_CORE}trigger.Flow"
DOCS = "https://kestra.io/docs/migration-guide/v2.0.0/"


@dataclass(slots=True)
class Note:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(slots=True)
class Migration:
    """The outcome for one flow: ``text`` is what to write (the source itself when nothing
    changed or something could not be migrated)."""

    source: str
    text: str
    changes: list[Note] = field(default_factory=list)
    manual: list[Note] = field(default_factory=list)
    error: str | None = None
    # Ids of the tasks the rewrite added (a Parallel keeping EachParallel's side by side).
    added: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.text != self.source

    @property
    def status(self) -> str:
        """``error`` (unreadable), ``manual`` (left as is), ``migrated``, or ``ok``."""
        if self.error is not None:
            return "error"
        if self.manual:
            return "manual"
        return "migrated" if self.changed else "ok"


def _yaml(source: str) -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long line the user wrote on one
    try:
        _, indent, offset = load_yaml_guess_indent(source)
    except YAMLError:
        indent, offset = 2, 0
    indent = indent or 2
    offset = offset or 0
    mapping = max(2, indent - offset) if offset else indent
    yaml.indent(mapping=mapping, sequence=max(indent, offset + 2), offset=offset)
    return yaml


def migrate_text(source: str, filename: str = "<flow>") -> Migration:
    """Rewrite one flow's YAML text; never raises for a bad flow (see :class:`Migration`)."""
    yaml = _yaml(source)
    try:
        data = yaml.load(source)
    except YAMLError as exc:
        return Migration(source, source, error=f"invalid YAML: {exc}")
    if not isinstance(data, dict):
        return Migration(source, source, error="a flow must be a mapping")
    changes: list[tuple[Path, str]] = []
    manual: list[tuple[Path, str]] = []
    _type_names(data, changes)
    _inline_defaults(data, changes, manual)
    report = LoopReport()
    nodes = rewrite_expressions(data, report)
    convert_loops(nodes, report, {str(n.task.get("id")) for n in nodes})
    changes.extend(report.changes)
    manual.extend(report.manual)
    _renames(data, changes)
    _triggers(data, changes, manual)
    for construct in constructs(data):
        if construct.dialect == V1 and not any(construct.path[: len(p)] == p for p, _ in manual):
            manual.append((construct.path, _why(construct.what)))
    notes = [Note(format_path(p), m) for p, m in _dedupe(changes)]
    todo = [Note(format_path(p), m) for p, m in _dedupe(manual)]
    if todo:
        return Migration(source, source, notes, todo)
    if not changes:
        return Migration(source, source, notes)
    out = io.StringIO()
    yaml.dump(data, out)
    text = out.getvalue()
    problem = _new_problems(source, text, filename)
    if problem is not None:
        return Migration(source, source, notes, [Note("", problem)])
    return Migration(source, text, notes, added=report.added)


def _dedupe(items: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
    return list(dict.fromkeys(items))


def _why(what: str) -> str:
    return f"{what} has no automatic Kestra 2.0 rewrite; migrate it by hand ({DOCS})"


def _problems(text: str, filename: str) -> list[str]:
    from engine.flows.loader import load_flow
    from engine.flows.problems import FlowValidationError

    try:
        load_flow(text, filename)
    except FlowValidationError as exc:
        return [p.message for p in exc.problems]
    return []


def _new_problems(source: str, text: str, filename: str) -> str | None:
    """What the rewritten flow gets wrong that the original did not (a plugin Headwater
    does not provide is no problem of the migration: the original has it too)."""
    new = _problems(text, filename)
    if not new:
        return None
    before = set(_problems(source, filename))
    added = [m for m in new if m not in before]
    if not added:
        return None
    return "the rewritten flow does not load: " + "; ".join(added)


# ---------------------------------------------------------------------------- type names


# Keys whose `type:` entries are data (input/output types), or handled on their own.
_DATA = frozenset(
    {"inputs", "outputs", "variables", "labels", "pluginDefaults", "taskDefaults", "onResume"}
)


def _plugins(node: Any, path: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every dict with a ``type`` under tasks, triggers and their conditions."""
    out: list[tuple[Path, dict[str, Any]]] = []
    if isinstance(node, dict):
        if isinstance(node.get("type"), str):
            out.append((path, node))
        for key, value in node.items():
            if key not in _DATA:
                out.extend(_plugins(value, (*path, key)))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            out.extend(_plugins(item, (*path, index)))
    return out


def _set_type(plugin: dict[str, Any], name: str) -> None:
    old = plugin["type"]
    plugin["type"] = type(old)(name) if type(old) is not str else name


def _type_names(flow: dict[str, Any], changes: list[tuple[Path, str]]) -> None:
    for path, plugin in _plugins(flow, ()):
        raw = str(plugin["type"])
        canonical = canonical_type(raw)
        if canonical == ECHO:
            _set_type(plugin, LOG)
            rename_key(plugin, "format", "message")
            changes.append((path, "debug.Echo -> log.Log (format -> message)"))
        elif canonical is not None and raw != canonical and raw.startswith("io.kestra.core."):
            _set_type(plugin, canonical)
            changes.append((path, f"legacy type {raw} -> {canonical}"))


# ----------------------------------------------------------------------- plugin defaults


def _inline_defaults(
    flow: dict[str, Any], changes: list[tuple[Path, str]], manual: list[tuple[Path, str]]
) -> None:
    entries: list[dict[str, Any]] = []
    keys = [k for k in ("taskDefaults", "pluginDefaults") if k in flow]
    for key in keys:
        for entry in flow.get(key) or []:
            if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
                manual.append(((key,), "a default without a type"))
                continue
            entries.append(entry)
    if not keys:
        return
    for path, plugin in _plugins({k: v for k, v in flow.items() if k not in keys}, ()):
        canonical = canonical_type(str(plugin["type"])) or str(plugin["type"])
        soft: dict[str, Any] = {}
        forced: dict[str, Any] = {}
        for entry in entries:
            wanted = canonical_type(str(entry["type"])) or str(entry["type"])
            if canonical == wanted or canonical.startswith(wanted + "."):
                values = entry.get("values")
                if isinstance(values, dict):
                    target = forced if entry.get("forced") is True else soft
                    deep_merge(target, values)
        if soft or forced:
            if _add_defaults(plugin, soft, forced=False) | _add_defaults(
                plugin, forced, forced=True
            ):
                changes.append((path, "plugin defaults inlined"))
    for key in keys:
        del flow[key]
        changes.append(((key,), f"`{key}` removed (its values are inlined)"))


def _add_defaults(target: dict[str, Any], values: dict[str, Any], *, forced: bool) -> bool:
    changed = False
    for key, value in values.items():
        if key == "type":
            continue
        current = target.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            changed |= _add_defaults(current, value, forced=forced)
        elif key not in target or (forced and current != value):
            target[key] = copy.deepcopy(value)
            changed = True
    return changed


# --------------------------------------------------------------------------- renames


def _renames(flow: dict[str, Any], changes: list[tuple[Path, str]]) -> None:
    for node in walk(flow):
        task = node.task
        if "runIf" in task and "when" not in task:
            rename_key(task, "runIf", "when")
            changes.append(((*node.path, "runIf"), "runIf -> when"))
        if node.canonical == EXIT and str(task.get("state", "")).strip().upper() == "CANCELED":
            old = task["state"]
            task["state"] = type(old)("CANCELLED") if type(old) is not str else "CANCELLED"
            changes.append(((*node.path, "state"), "CANCELED -> CANCELLED"))
    for index, check in enumerate(flow.get("checks") or []):
        if isinstance(check, dict) and "condition" in check and "when" not in check:
            rename_key(check, "condition", "when")
            changes.append((("checks", index, "condition"), "condition -> when"))


# --------------------------------------------------------------------------- triggers


def _triggers(
    flow: dict[str, Any], changes: list[tuple[Path, str]], manual: list[tuple[Path, str]]
) -> None:
    for index, trigger in enumerate(flow.get("triggers") or []):
        if not isinstance(trigger, dict) or "when" in trigger:
            continue
        path: Path = ("triggers", index)
        canonical = canonical_type(str(trigger.get("type"))) if trigger.get("type") else None
        try:
            if canonical == FLOW_TRIGGER:
                _flow_trigger(trigger, path, changes, manual)
            elif canonical == SCHEDULE:
                if "conditions" in trigger or "scheduleConditions" in trigger:
                    when, notes = schedule_when(trigger)
                    _set_when(trigger, when, ("conditions", "scheduleConditions"))
                    changes.append((path, "conditions -> when"))
                    changes.extend((path, n) for n in notes)
            elif "conditions" in trigger:
                _set_when(trigger, trigger_when(trigger), ("conditions",))
                changes.append((path, "conditions -> when"))
        except Unmigratable as exc:
            manual.append((path, str(exc)))


def _set_when(trigger: dict[str, Any], when: str | None, remove: tuple[str, ...]) -> None:
    keys = list(trigger.keys())
    position = min((keys.index(k) for k in remove if k in keys), default=len(keys))
    for key in remove:
        trigger.pop(key, None)
    if when is None:
        return
    if hasattr(trigger, "insert"):
        trigger.insert(position, "when", when)
    else:
        trigger["when"] = when


def _flow_trigger(
    trigger: dict[str, Any],
    path: Path,
    changes: list[tuple[Path, str]],
    manual: list[tuple[Path, str]],
) -> None:
    if "conditions" not in trigger and "preconditions" not in trigger:
        return
    entries, window = depends_on(trigger)
    if needs_scoped_outputs(trigger, entries):
        manual.append(
            (
                (*path, "inputs"),
                "reads trigger.outputs of several upstream flows: 2.0 scopes them by flow id "
                "(trigger.outputs.<flowId>.<key>)",
            )
        )
        return
    keys = list(trigger.keys())
    position = min(
        (keys.index(k) for k in ("conditions", "preconditions") if k in keys), default=len(keys)
    )
    for key in ("conditions", "preconditions"):
        trigger.pop(key, None)
    if hasattr(trigger, "insert"):
        trigger.insert(position, "dependsOn", entries)
        if window is not None:
            trigger.insert(position + 1, "window", window)
    else:
        trigger["dependsOn"] = entries
        if window is not None:
            trigger["window"] = window
    changes.append(
        (path, "conditions/preconditions -> dependsOn" + (" + window" if window else ""))
    )


__all__ = ["REMOVED_IN_2", "Migration", "Note", "migrate_text"]
