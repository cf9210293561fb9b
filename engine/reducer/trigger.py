"""The execution's ``trigger``: Kestra's ``ExecutionTrigger``, and the variables it gives.

Kestra stores what started an execution as ``{id, type, variables}`` (``ExecutionTrigger``:
the trigger's id, its type, and its output as a map) and ``RunContext``/``RunVariables`` expose
only ``variables`` as the ``trigger`` expression variable: ``{{ trigger.body }}`` for a
webhook, ``{{ trigger.executionId }}`` for a Flow trigger, ``{{ trigger.date }}`` for a
Schedule. ``trigger.id`` and ``trigger.type`` are therefore *not* expression variables (they
are undefined unless the trigger's output has such keys), exactly as in Kestra.

Per trigger type (Kestra 0.20 sources):

- Webhook (``plugin/core/trigger/Webhook.java``): ``body`` (the JSON object or array when the
  body parses as one, else the text, null without a body), ``headers`` and ``parameters``
  (name -> list of values).
- Flow (``plugin/core/trigger/Flow.java``): ``executionId``, ``namespace``, ``flowId``,
  ``flowRevision``, ``state`` of the execution that fired it. Its ``inputs`` are rendered with
  that execution's variables plus ``trigger.outputs`` (the upstream flow outputs).
- Schedule (``plugin/core/trigger/Schedule.java``): ``date``, ``next``, ``previous`` (ISO-8601
  with offset, ``Z`` for UTC); the execution also gets the legacy variable ``schedule`` with
  the same map (``Execution.variables`` = ``{"schedule": ...}``).
- Subflow child (``runners/ExecutableUtils.subflowExecution``): id and type of the parent's
  Subflow task, variables ``executionId``, ``namespace``, ``flowId``, ``flowRevision`` of the
  parent.

Executions stored before this shape existed hold the bare variables; they are read as such.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]
SCHEDULE_TYPES = frozenset(
    {"io.kestra.plugin.core.trigger.Schedule", "io.kestra.core.models.triggers.types.Schedule"}
)


def execution_trigger(trigger_id: str, trigger_type: str, variables: JSON | None) -> JSON:
    """Kestra's ExecutionTrigger: what the execution resource shows as ``trigger``."""
    return {"id": trigger_id, "type": trigger_type, "variables": variables}


def is_execution_trigger(trigger: Any) -> bool:
    return (
        isinstance(trigger, dict)
        and isinstance(trigger.get("id"), str)
        and isinstance(trigger.get("type"), str)
        and "variables" in trigger
    )


def trigger_variables(trigger: Any) -> JSON | None:
    """The ``trigger`` expression variable of an execution (None: undefined)."""
    if trigger is None:
        return None
    if is_execution_trigger(trigger):
        variables = trigger["variables"]
        return variables if isinstance(variables, dict) else None
    return trigger if isinstance(trigger, dict) else None


def execution_variables(trigger: Any) -> JSON:
    """Kestra's ``Execution.variables`` (merged into the render variables): a Schedule's
    execution keeps its dates under ``schedule`` too, for flows written before ``trigger``."""
    if is_execution_trigger(trigger) and trigger["type"] in SCHEDULE_TYPES:
        variables = trigger_variables(trigger)
        if variables is not None:
            return {"schedule": variables}
    return {}
