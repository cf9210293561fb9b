"""Flow trigger: start a flow when executions of other flows end.

Parser: an hw.events ``ExecutionUpdated`` snapshot in a terminal state -> the trigger
variables Kestra gives (``trigger.executionId``, ``trigger.namespace``, ``trigger.flowId``,
``trigger.flowRevision``, ``trigger.state``, ``trigger.executionLabels``, ``trigger.outputs``).
:func:`evaluate` is pure: ``states`` (default: any terminal state), then ``conditions``, then
MultipleConditions and ``preconditions`` windows. An execution never fires Flow triggers of
its own flow (a flow triggering itself would loop forever).

Source: one consumer group on hw.events for all Flow triggers of the runtime. Each batch is
evaluated against the current Flow triggers, the StartExecutions are awaited, then the offsets
are committed. Window progress lives in each trigger's state (``extra.windows``); with several
trigger processes, each sees a share of the partitions, so preconditions spanning flows are
exact only with one trigger process (see the report in the module's commit).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.bus.consumer import AsyncConsumer, Record
from engine.errors import BusError
from engine.reducer.states import TERMINAL
from schemas.envelope import EnvelopeError, decode
from triggers.conditions import (
    Windowed,
    advance_window,
    after_firing,
    condition_scope,
    from_multiple,
    from_preconditions,
    simple_holds,
)
from triggers.ids import flow_coordinates, multiple_coordinates
from triggers.model import SourceContext, settle
from triggers.payloads import MalformedPayload

log = logging.getLogger(__name__)

JSON = dict[str, Any]

_TERMINAL = frozenset(s.value for s in TERMINAL)
_MULTIPLE = "io.kestra.plugin.core.condition.MultipleCondition"
EXECUTION_UPDATED = "ExecutionUpdated"


def parse(summary: JSON) -> JSON:
    """The ``trigger.*`` variables of an ended execution (its ExecutionUpdated payload)."""
    return {
        "executionId": summary.get("id"),
        "namespace": summary.get("namespace"),
        "flowId": summary.get("flow_id"),
        "flowRevision": summary.get("revision"),
        "state": summary.get("state"),
        "executionLabels": summary.get("labels") or {},
        "outputs": summary.get("outputs") or {},
    }


@dataclass(slots=True)
class Outcome:
    fire: bool
    coordinates: str = ""
    variables: JSON = field(default_factory=dict)
    windows: JSON | None = None  # new window progress when it changed


def evaluate(
    namespace: str,
    flow_id: str,
    trigger: JSON,
    summary: JSON,
    windows: JSON,
    now: datetime,
    seq: int | None = None,
) -> Outcome:
    """Should the Flow ``trigger`` of flow (namespace, flow_id) fire for this ended
    execution? ``windows`` is the trigger's window progress (id -> progress); ``seq`` is the
    event's sequence number (see :func:`triggers.ids.flow_coordinates`)."""
    state = str(summary.get("state"))
    if state not in _TERMINAL:
        return Outcome(False)
    if summary.get("namespace") == namespace and summary.get("flow_id") == flow_id:
        return Outcome(False)
    if trigger.get("states") and state not in trigger["states"]:
        return Outcome(False)
    variables = parse(summary)
    scope = condition_scope({"id": flow_id, "namespace": namespace}, summary, variables)
    conditions = trigger.get("conditions") or []
    simple = [c for c in conditions if c.get("type") != _MULTIPLE]
    if not all(simple_holds(c, summary, scope) for c in simple):
        return Outcome(False)
    windowed: list[Windowed] = [
        from_multiple(c, i) for i, c in enumerate(conditions) if c.get("type") == _MULTIPLE
    ]
    if isinstance(trigger.get("preconditions"), dict):
        windowed.append(from_preconditions(trigger["preconditions"]))
    if not windowed:
        end = summary.get("end_date")
        coordinates = flow_coordinates(str(summary.get("id")), state, end if seq is None else seq)
        return Outcome(True, coordinates, variables)
    new_windows = dict(windows)
    completed: list[tuple[str, list[str]]] = []
    for w in windowed:
        progress, ids = advance_window(w, windows.get(w.id), summary, scope, now)
        new_windows[w.id] = progress
        if ids is not None:
            completed.append((w.id, ids))
    if len(completed) < len(windowed):
        return Outcome(False, windows=new_windows)
    for w in windowed:
        new_windows[w.id] = after_firing(w, new_windows[w.id])
    wid, ids = completed[0]
    return Outcome(True, multiple_coordinates(wid, ids), variables, new_windows)


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
            ended = _ended_execution(record)
            if ended is None:
                continue
            summary, seq = ended
            for ctx in self._bindings():
                if ctx.ref.key in windows:
                    current = windows[ctx.ref.key][1]
                else:
                    current = dict((ctx.state().get("extra") or {}).get("windows") or {})
                outcome = evaluate(
                    ctx.ref.namespace, ctx.ref.flow_id, ctx.trigger, summary, current,
                    self._clock(), seq,
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
        return await ctx.fire(outcome.coordinates, outcome.variables)
    except MalformedPayload as exc:
        raw = {k: v for k, v in outcome.variables.items() if k != "outputs"}
        return await ctx.malformed(outcome.coordinates, raw, f"flow trigger: {exc}")


def _ended_execution(record: Record) -> tuple[JSON, int] | None:
    if record.value is None:
        return None
    try:
        env = decode(record.value)
    except EnvelopeError as exc:
        log.error("hw.events %d@%d skipped: %s", record.partition, record.offset, exc)
        return None
    if env.type != EXECUTION_UPDATED or env.payload.get("state") not in _TERMINAL:
        return None
    return env.payload, env.seq
