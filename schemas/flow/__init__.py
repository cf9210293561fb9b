"""Pydantic models of a Kestra-format flow and everything in it.

``flow`` (the top level), ``tasks`` (the Task union, from ``tasks_flowable``,
``tasks_runnable``, ``tasks_plugins`` and the plugins of :mod:`schemas.plugins`), ``inputs``,
``triggers``, ``conditions``, ``retry`` and ``common`` (base model and value types). Loading
YAML, normalization and error reporting live in :mod:`engine.flows`.

The names below are imported on first use: a plugin module imports ``schemas.flow.task_base``
and ``schemas.flow.common`` while the Task union is being built from the plugins, so this
package must not build it merely because one of its modules is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schemas.flow.common import FlowModel, is_expression, parse_duration
    from schemas.flow.flow import Check, Concurrency, Flow, PluginDefault, Sla
    from schemas.flow.task_base import TaskBase
    from schemas.flow.tasks import TASK_MODELS, Task
    from schemas.flow.triggers import TRIGGER_MODELS

_WHERE: dict[str, str] = {
    "FlowModel": "common",
    "is_expression": "common",
    "parse_duration": "common",
    "Check": "flow",
    "Concurrency": "flow",
    "Flow": "flow",
    "PluginDefault": "flow",
    "Sla": "flow",
    "TaskBase": "task_base",
    "TASK_MODELS": "tasks",
    "Task": "tasks",
    "TRIGGER_MODELS": "triggers",
}

__all__ = [
    "TASK_MODELS",
    "TRIGGER_MODELS",
    "Check",
    "Concurrency",
    "Flow",
    "FlowModel",
    "PluginDefault",
    "Sla",
    "Task",
    "TaskBase",
    "is_expression",
    "parse_duration",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'schemas.flow' has no attribute {name!r}")
    return getattr(importlib.import_module(f"schemas.flow.{module}"), name)
