"""Building the StartExecution of a trigger event (pure).

The execution's ``trigger`` is Kestra's ExecutionTrigger, ``{id, type, variables}`` (see
:mod:`engine.reducer.trigger`): the reducer exposes ``variables`` to expressions as
``trigger``. Kestra renders a trigger's ``inputs`` with the trigger variables
(``{{ trigger.value }}``), so the inputs here are rendered with ``trigger``, ``flow`` and
``labels`` in scope (a Flow trigger passes its own scope: the upstream execution's variables);
an input whose expression fails keeps its text and the failure is reported to the caller,
never raised.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.errors import ExpressionError
from engine.expressions import render_value
from engine.reducer.commands import StartExecution
from engine.reducer.ids import iso
from engine.reducer.trigger import execution_trigger
from triggers.ids import execution_id
from triggers.model import TriggerRef

JSON = dict[str, Any]


def labels_of(value: Any) -> JSON:
    """Kestra labels as a dict (they come as a map or as a list of {key, value})."""
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, list):
        return {str(e.get("key")): e.get("value") for e in value if isinstance(e, dict)}
    return {}


def render_inputs(inputs: Any, variables: JSON) -> tuple[JSON, str | None]:
    """(rendered inputs, first problem or None)."""
    if not isinstance(inputs, dict):
        return {}, None
    out: JSON = {}
    problem: str | None = None
    for name, value in inputs.items():
        try:
            out[str(name)] = render_value(value, variables)
        except ExpressionError as exc:
            out[str(name)] = value
            problem = problem or f"input {name!r}: {exc.message}"
    return out, problem


def event_scope(ref: TriggerRef, flow: JSON, variables: JSON) -> JSON:
    """What a trigger event's expressions (its ``inputs``, Kestra 2.0's ``when``) render with:
    ``trigger`` (the event's variables), ``flow`` and the flow's ``labels``."""
    return {
        "trigger": variables,
        "flow": {"id": ref.flow_id, "namespace": ref.namespace, "revision": flow.get("revision")},
        "labels": labels_of(flow.get("labels")),
    }


def build_start(
    ref: TriggerRef,
    flow: JSON,
    trigger: JSON,
    coordinates: str,
    variables: JSON,
    now: datetime,
    *,
    labels: JSON | None = None,
    inputs: JSON | None = None,
    render_scope: JSON | None = None,
) -> tuple[StartExecution, str | None]:
    """The command for one trigger event and an input-rendering problem (or None).

    ``render_scope`` replaces the variables the trigger's ``inputs`` are rendered with."""
    exec_id = execution_id(ref.namespace, ref.flow_id, ref.trigger_id, coordinates)
    scope = render_scope or event_scope(ref, flow, variables)
    rendered, problem = render_inputs(trigger.get("inputs"), scope)
    if inputs:
        rendered.update(inputs)
    all_labels = labels_of(trigger.get("labels"))
    all_labels.update(labels or {})
    cmd = StartExecution(
        command_id=f"start:{exec_id}",
        execution_id=exec_id,
        namespace=ref.namespace,
        flow_id=ref.flow_id,
        flow=flow,
        inputs=rendered,
        labels=all_labels,
        trigger=execution_trigger(ref.trigger_id, str(trigger.get("type", "")), variables),
        created=iso(now),
    )
    return cmd, problem
