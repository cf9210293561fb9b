"""Flow trigger: start a flow when executions of other flows change state.

Kestra 0.20 (``plugin/core/trigger/Flow.java``, ``services/FlowTriggerService``, called by the
executor on every execution state change):

- an execution is evaluated each time its state changes (never for CREATED, and never by a
  trigger of its own flow: a flow triggering itself would loop forever);
- ``states`` (default: the terminal states SUCCESS, WARNING, FAILED, KILLED, CANCELLED,
  RETRIED, SKIPPED; RUNNING, PAUSED, ... may be listed) filters first, then the trigger's
  ``conditions`` (all but MultipleCondition) must hold, then every MultipleCondition and the
  ``preconditions`` window must be complete (:mod:`triggers.windows`);
- the new execution's ``trigger`` is ``{id, type: io.kestra.plugin.core.trigger.Flow,
  variables: {executionId, namespace, flowId, flowRevision, state}}`` of the execution that
  fired it; its ``inputs`` are rendered with that execution's variables (its ``outputs`` of
  tasks, ``inputs``, ``labels``, ``execution.id``...) and ``trigger.outputs``, its flow
  outputs (Headwater also keeps the five trigger variables under ``trigger`` there). An input
  that fails to render is recorded as the trigger's error (Kestra logs "Failed to trigger
  flow ... invalid inputs" and starts nothing) and the execution is created FAILED with the
  message, so the failure shows where executions are watched.

Kestra 2.0 (``dependsOn``, ``window``, ``mode``, ``minSatisfied``, the trigger's ``when``;
docs/semantics/kestra2.md): each ``dependsOn`` entry is a check of one window
(:func:`triggers.windows.depends_on_window`); without ``states`` a dependsOn trigger looks
at every state change (each entry filters on its own states, SUCCESS and WARNING by default)
and a 2.0 trigger without dependsOn at the terminal states and PAUSED; the trigger's ``when``
is tested once the window is updated, with the upstream execution's ``namespace``,
``flowId``, ``state``, ``labels``, flow ``outputs`` and ``hasRetryAttempt``; the new
execution's ``trigger.outputs`` are scoped by upstream flow id. A Loop iteration (Kestra's
LOOP kind) never fires a Flow trigger.

Parser: an hw.events ``ExecutionUpdated`` snapshot. Several snapshots show the same state (a
label or an output changed since); a state change is identified by the length of the state
history, so the execution a transition starts has one id however often it is seen.

Source: one consumer group on hw.events for all Flow triggers of the runtime. Each batch is
evaluated against the current Flow triggers, the StartExecutions are awaited, then the offsets
are committed. Window progress lives in each trigger's state (``extra.windows``); with several
trigger processes, each sees a share of the partitions, so preconditions spanning flows are
exact only with one trigger process (see the report in the module's commit).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.bus.consumer import AsyncConsumer, Record
from engine.errors import BusError
from engine.reducer.states import TERMINAL
from schemas.envelope import EnvelopeError, decode
from triggers.conditions import condition_scope, simple_holds, when_holds
from triggers.ids import multiple_coordinates
from triggers.model import SourceContext, settle
from triggers.payloads import MalformedPayload
from triggers.windows import MULTIPLE, depends_scope, evaluate_windows, windows_of

log = logging.getLogger(__name__)

JSON = dict[str, Any]

TERMINAL_STATES = frozenset(s.value for s in TERMINAL)
ANY_STATE = frozenset(
    ("QUEUED", "RUNNING", "PAUSED", "RETRYING", "RESTARTED", "KILLING", *TERMINAL_STATES)
)
EXECUTION_UPDATED = "ExecutionUpdated"
# Executions whose last evaluated state change the source remembers (to skip the repeated
# snapshots of one state); a forgotten one is evaluated again and starts the same id.
REMEMBERED = 10_000


def parse(summary: JSON) -> JSON:
    """Flow.Output: the ``trigger.*`` variables of an execution (its ExecutionUpdated payload)."""
    return {
        "executionId": summary.get("id"),
        "namespace": summary.get("namespace"),
        "flowId": summary.get("flow_id"),
        "flowRevision": summary.get("revision"),
        "state": summary.get("state"),
    }


def transition(summary: JSON) -> int:
    """Which state change of its execution this snapshot shows (1 = the first state)."""
    return len(summary.get("history") or [])


def state_coordinates(summary: JSON) -> str:
    """One execution reaching one state once (a restarted execution that ends again has a
    longer history, so it fires again)."""
    return f"flow-state-{summary.get('id')}-{summary.get('state')}-{transition(summary)}"


def inputs_scope(namespace: str, flow_id: str, summary: JSON) -> JSON:
    """What a Flow trigger's ``inputs`` render with: ``runContextFactory.of(flow, execution)``
    of the upstream execution, and ``trigger.outputs`` its flow outputs."""
    return {
        "flow": {"id": flow_id, "namespace": namespace},
        "execution": {
            "id": summary.get("id"),
            "startDate": summary.get("start_date"),
            "originalId": summary.get("original_execution_id") or summary.get("id"),
        },
        "inputs": summary.get("inputs") or {},
        "labels": summary.get("labels") or {},
        "outputs": summary.get("task_outputs") or {},
        # Kestra puts only `outputs` here; the trigger's own variables are kept beside it
        # (a superset: `{{ trigger.executionId }}` renders instead of failing).
        "trigger": {**parse(summary), "outputs": summary.get("outputs") or {}},
    }


@dataclass(slots=True)
class Outcome:
    fire: bool
    coordinates: str = ""
    variables: JSON = field(default_factory=dict)
    windows: JSON | None = None  # new window progress when it changed
    scope: JSON | None = None  # the variables the trigger's inputs render with


def evaluate(
    namespace: str,
    flow_id: str,
    trigger: JSON,
    summary: JSON,
    windows: JSON,
    now: datetime,
    seq: int | None = None,
) -> Outcome:
    """Should the Flow ``trigger`` of flow (namespace, flow_id) fire for this state of an
    execution? ``windows`` is the trigger's window progress (id -> progress). ``seq`` is
    unused (kept for callers of the former signature)."""
    state = str(summary.get("state"))
    if state == "CREATED" or summary.get("kind") == "LOOP":  # a Loop iteration is no execution
        return Outcome(False)  # of its own for Flow triggers (Kestra: only NORMAL ones)
    if summary.get("namespace") == namespace and summary.get("flow_id") == flow_id:
        return Outcome(False)
    depends = bool(trigger.get("dependsOn"))
    if trigger.get("states"):
        states = trigger["states"]
    elif depends:  # each dependsOn entry filters on its own states
        states = ANY_STATE
    elif "when" in trigger:  # Kestra 2.0's default: the terminal states and PAUSED
        states = TERMINAL_STATES | {"PAUSED"}
    else:
        states = TERMINAL_STATES
    if state not in states:
        return Outcome(False)
    variables = parse(summary)
    # Conditions also see ``trigger.outputs`` (the upstream flow outputs), as they did before
    # the trigger variables were narrowed to Kestra's five.
    seen = {**variables, "outputs": summary.get("outputs") or {}}
    scope = condition_scope({"id": flow_id, "namespace": namespace}, summary, seen)
    conditions = [c for c in trigger.get("conditions") or [] if isinstance(c, dict)]
    simple = [c for c in conditions if c.get("type") != MULTIPLE]
    if not all(simple_holds(c, summary, scope) for c in simple):
        return Outcome(False)
    inputs = inputs_scope(namespace, flow_id, summary)
    blocks = windows_of(trigger)
    if not blocks:
        if not when_holds(trigger, depends_scope(summary, inputs)):
            return Outcome(False)
        return Outcome(True, state_coordinates(summary), variables, scope=inputs)
    result = evaluate_windows(blocks, windows, summary, scope, now)
    changed = result.windows if result.windows != windows else None
    # Kestra 2.0 records what the execution met first, then tests the trigger's `when`.
    if not result.complete or not when_holds(trigger, depends_scope(summary, inputs)):
        return Outcome(False, windows=changed)
    if depends:
        inputs["trigger"]["outputs"] = scoped_outputs(trigger, result.outputs)
    wid = blocks[0].id
    coordinates = multiple_coordinates(wid, result.execution_ids)
    return Outcome(True, coordinates, variables, changed, inputs)


def scoped_outputs(trigger: JSON, by_flow: JSON) -> JSON:
    """Kestra 2.0: ``trigger.outputs.<flowId>.<key>``; with a single dependsOn entry the
    unscoped ``trigger.outputs.<key>`` works too (a flow id never hides an output key)."""
    out: JSON = {}
    entries = [d for d in trigger.get("dependsOn") or [] if isinstance(d, dict)]
    if len(entries) == 1:
        for flow_outputs in by_flow.values():
            if isinstance(flow_outputs, dict):
                out.update(flow_outputs)
    out.update(by_flow)
    return out


# How many events one poll hands over; a batch is committed only when all its commands are in.
_BATCH = 500


class FlowTriggerSource:
    """Consumes hw.events for every Flow trigger the runtime currently has enabled."""

    def __init__(
        self,
        consumer: AsyncConsumer,
        bindings: Callable[[], list[SourceContext]],
        poll_timeout_s: float,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._consumer = consumer
        self._bindings = bindings
        self._poll_timeout_s = poll_timeout_s
        self._clock = clock or (lambda: datetime.now(UTC))
        # execution id -> the last state change evaluated (see REMEMBERED).
        self._seen: OrderedDict[str, int] = OrderedDict()

    def _state_change(self, record: Record) -> JSON | None:
        """The snapshot when it shows a state change not evaluated yet, else None."""
        summary = _execution_update(record)
        if summary is None:
            return None
        execution_id = str(summary.get("id"))
        step = transition(summary)
        if self._seen.get(execution_id, -1) >= step:
            return None
        self._seen[execution_id] = step
        self._seen.move_to_end(execution_id)
        if len(self._seen) > REMEMBERED:
            self._seen.popitem(last=False)
        return summary

    async def run(self) -> None:
        while True:
            try:
                records = await self._consumer.consume(_BATCH, self._poll_timeout_s)
            except BusError as exc:
                if not exc.retriable:
                    raise
                log.warning("flow triggers: %s", exc)
                continue
            if not records:
                continue
            await self.handle(records)
            await self._consumer.commit(records)

    async def handle(self, records: list[Record]) -> None:
        futures = []
        # Window progress changes are kept here during the batch and persisted only after
        # every command of the batch is durable: a window reset recorded before its command
        # was in Kafka would lose the firing if the process died in between.
        windows: dict[str, tuple[SourceContext, JSON]] = {}
        for record in records:
            summary = self._state_change(record)
            if summary is None:
                continue
            for ctx in self._bindings():
                if ctx.ref.key in windows:
                    current = windows[ctx.ref.key][1]
                else:
                    current = dict((ctx.state().get("extra") or {}).get("windows") or {})
                outcome = evaluate(
                    ctx.ref.namespace, ctx.ref.flow_id, ctx.trigger, summary, current,
                    self._clock(),
                )  # fmt: skip
                if outcome.windows is not None:
                    windows[ctx.ref.key] = (ctx, outcome.windows)
                if outcome.fire:
                    future = await _fire(ctx, outcome)
                    if future is not None:
                        futures.append(future)
        await settle(futures)
        for ctx, progress in windows.values():
            await ctx.record(extra={"windows": progress})


async def _fire(ctx: SourceContext, outcome: Outcome) -> asyncio.Future[Any] | None:
    """Fire, or apply the malformed policy when the command cannot be encoded (outputs nested
    too deep): raising would restart the source on the same hw.events record, forever."""
    try:
        return await ctx.fire(outcome.coordinates, outcome.variables, render_scope=outcome.scope)
    except MalformedPayload as exc:
        return await ctx.malformed(outcome.coordinates, outcome.variables, f"flow trigger: {exc}")


def _execution_update(record: Record) -> JSON | None:
    if record.value is None:
        return None
    try:
        env = decode(record.value)
    except EnvelopeError as exc:
        log.error("hw.events %d@%d skipped: %s", record.partition, record.offset, exc)
        return None
    if env.type != EXECUTION_UPDATED or env.payload.get("state") in (None, "CREATED"):
        return None
    return env.payload
