"""Trigger sources for the in-process conformance runner, driven through the real trigger code.

The runner has no bus, so the two trigger kinds the corpus exercises are fed directly:

- :class:`FlowTriggers` does what ``triggers.flow_trigger.FlowTriggerSource`` does with each
  ``ExecutionUpdated`` event it consumes from hw.events: every state change of an execution is
  offered to the Flow triggers of the deployed flows through :func:`triggers.flow_trigger.evaluate`
  (states, conditions, MultipleCondition and preconditions windows), and a firing becomes
  :func:`triggers.start.build_start`'s StartExecution. Window progress is kept per trigger,
  as the runtime keeps it in the trigger's state (``extra.windows``).
- :func:`call_webhook` does what the API's webhook route does: :func:`triggers.webhook.
  find_webhook`, then :func:`triggers.webhook.webhook_start` with the toggled state, and
  returns the :class:`~triggers.webhook.WebhookResult` whose ``status`` is Kestra's answer.

Only what the runtime and the route add around those calls (choosing the enabled triggers,
producing the command) is repeated here, in a few lines.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from engine.reducer.commands import StartExecution
from triggers import webhook as hook
from triggers.flow_trigger import evaluate, transition
from triggers.model import FLOW, TriggerRef
from triggers.start import build_start

if TYPE_CHECKING:
    from tests.conformance.harness import World

JSON = dict[str, Any]


def _enabled(world: World, ref: TriggerRef) -> bool | None:
    """The toggled state (None: never toggled), as triggers.state.effective_enabled has it."""
    disabled = world.triggers.disabled.get((ref.namespace, ref.flow_id, ref.trigger_id))
    return None if disabled is None else not disabled


@dataclass
class FlowTriggers:
    """The Flow-trigger source of the runner (see the module docstring)."""

    windows: dict[str, JSON] = field(default_factory=dict)  # ref key -> window progress
    fired: list[tuple[str, str]] = field(default_factory=list)  # (ref key, execution id)
    seen: dict[str, int] = field(default_factory=dict)  # execution id -> state change seen

    def bindings(self, world: World) -> list[tuple[TriggerRef, JSON]]:
        """The Flow triggers the runtime would run (TriggerRuntime.desired): flows not
        disabled, triggers enabled (a toggle wins over the YAML)."""
        out = []
        for (namespace, flow_id), flow in world.flows.items():
            if flow.get("disabled") is True:
                continue
            for trigger in flow.get("triggers") or []:
                if trigger.get("type") != FLOW:
                    continue
                ref = TriggerRef(namespace, flow_id, str(trigger.get("id")))
                toggled = _enabled(world, ref)
                if toggled if toggled is not None else trigger.get("disabled") is not True:
                    out.append((ref, trigger))
        return out

    def observe(self, world: World, summary: JSON, now: datetime) -> list[StartExecution]:
        """The StartExecutions the Flow triggers fire for one ExecutionUpdated payload."""
        step = transition(summary)
        if self.seen.get(str(summary.get("id")), -1) >= step:  # the same state again
            return []
        self.seen[str(summary.get("id"))] = step
        bindings = self.bindings(world)
        if not bindings:
            return []
        summary = orjson.loads(orjson.dumps(summary))  # as it arrives from hw.events
        commands = []
        for ref, trigger in bindings:
            outcome = evaluate(
                ref.namespace, ref.flow_id, trigger, summary, self.windows.get(ref.key, {}), now
            )
            if outcome.windows is not None:
                self.windows[ref.key] = outcome.windows
            if not outcome.fire:
                continue
            flow = copy.deepcopy(world.flow(ref.namespace, ref.flow_id))
            cmd, problem = build_start(
                ref, flow, trigger, outcome.coordinates, outcome.variables, now,
                render_scope=outcome.scope,
            )  # fmt: skip
            if problem is not None:  # the runtime records it and fails the execution
                world.problems.append(f"note: trigger {ref}: {problem}")
                cmd.error = f"trigger '{ref.trigger_id}': {problem}"
            self.fired.append((ref.key, cmd.execution_id))
            commands.append(cmd)
        return commands


def call_webhook(
    world: World,
    namespace: str,
    flow_id: str,
    key: str,
    *,
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
    parameters: list[tuple[str, str]] | None = None,
) -> hook.WebhookResult:
    """One call of ``/api/v1/executions/webhook/{namespace}/{flow_id}/{key}``; a started
    execution's command is queued in ``world``."""
    flow = world.flows.get((namespace, flow_id))
    trigger = hook.find_webhook(flow, key) if flow is not None else None
    if flow is None or trigger is None:
        return hook.WebhookResult(hook.NOT_FOUND, reason="no webhook with this flow and key")
    ref = TriggerRef(namespace, flow_id, str(trigger.get("id")))
    result = hook.webhook_start(
        namespace,
        flow_id,
        copy.deepcopy(flow),
        trigger,
        body=body,
        headers=headers or [],
        parameters=parameters or [],
        now=world.now,
        enabled=_enabled(world, ref),
    )
    if result.command is not None:
        world.queue.append(result.command)
    return result
