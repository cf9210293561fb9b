"""The executor's in-memory state: executions and admission slots of the owned partitions.

One :class:`StateStore` per executor process. It holds the latest :class:`ExecutionState` of
every execution whose hw.commands partition this process owns, and the admission
``FlowSlots`` snapshots found beside them (handed to the admission step). Both are
restored from hw.executor-state (co-partitioned with hw.commands and hw.admission: same
partition count, same keys) by :meth:`restore`, last value wins, a tombstone (value None)
means purged.

Purge: a terminal execution stays here ``purge_after_s`` after its end (so a Restart or a late
child result still finds it), then :meth:`due_purges` hands it to the processor, which writes a
tombstone and forgets it. The deadline is computed from the state's own end time, so it needs
no bookkeeping of its own across restarts.

Pure: no I/O, times passed in.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.bus.consumer import Record
from engine.bus.wire import decode_snapshot
from engine.executor.timers import TimerWheel, parse_fire_at
from engine.reducer.model import JSON, ExecutionState
from schemas.envelope import EnvelopeError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Owned:
    state: ExecutionState
    partition: int


class StateStore:
    def __init__(self, purge_after_s: float) -> None:
        self.executions: dict[str, Owned] = {}
        self.timers = TimerWheel()
        self.purge_after_s = purge_after_s
        self._purges: list[tuple[float, str]] = []
        # Executions purged (by this process, or tombstoned in the restored partitions;
        # bounded), to tell "purged" from "not restored" (batch.py).
        self.purged: dict[str, None] = {}
        # (namespace, id, revision) -> the one flow dict executions of that flow share.
        self._flows: dict[tuple[Any, Any, Any], JSON] = {}

    # --- flows ---------------------------------------------------------------------------

    def intern_flow(self, flow: JSON) -> JSON:
        """The shared dict equal to ``flow``: every StartExecution (and every snapshot) brings
        its own copy of its flow, so without this each execution kept one in memory and the
        reducer re-indexed it (index_tasks, enabled task lists: cached per flow dict). An
        equal dict is the same flow whatever its key says, so a mismatch simply replaces it."""
        if not isinstance(flow, dict):  # a malformed command: the reducer reports it
            return flow
        key = (flow.get("namespace"), flow.get("id"), flow.get("revision"))
        known = self._flows.get(key)
        if known is flow:
            return flow
        if known is not None and known == flow:
            return known
        if len(self._flows) >= _FLOW_MEMORY:
            self._flows.clear()
        self._flows[key] = flow
        return flow

    # --- executions ----------------------------------------------------------------------

    def get(self, execution_id: str) -> ExecutionState | None:
        owned = self.executions.get(execution_id)
        return owned.state if owned is not None else None

    def put(self, partition: int, state: ExecutionState) -> None:
        """Store the state after a decision (timers are updated by the caller's deltas)."""
        self.executions[state.execution_id] = Owned(state, partition)
        if state.state.is_terminal and not state.timers:
            self._schedule_purge(state)

    def _schedule_purge(self, state: ExecutionState) -> None:
        end = parse_fire_at(state.history[-1][1]) if state.history else 0.0
        heapq.heappush(self._purges, (end + self.purge_after_s, state.execution_id))

    def due_purges(self, now: float) -> list[tuple[str, int]]:
        """(execution id, partition) of terminal executions whose grace period is over.

        They are removed from memory; the caller tombstones them. An execution that was
        restarted since (no longer terminal) is not purged."""
        out: list[tuple[str, int]] = []
        while self._purges and self._purges[0][0] <= now:
            _, execution_id = heapq.heappop(self._purges)
            owned = self.executions.get(execution_id)
            if owned is None or not owned.state.state.is_terminal or owned.state.timers:
                continue
            end = parse_fire_at(owned.state.history[-1][1]) + self.purge_after_s
            if end > now:  # it ended again later (restarted and failed again): wait more
                heapq.heappush(self._purges, (end, execution_id))
                continue
            del self.executions[execution_id]
            self.timers.cancel_execution(execution_id)
            self._remember_purged(execution_id)
            out.append((execution_id, owned.partition))
        return out

    def forget(self, execution_id: str) -> int | None:
        """Drop an execution purged on request (PurgeExecution); its partition, if held."""
        owned = self.executions.pop(execution_id, None)
        self.timers.cancel_execution(execution_id)
        self._remember_purged(execution_id)
        return owned.partition if owned is not None else None

    def _remember_purged(self, execution_id: str) -> None:
        self.purged[execution_id] = None
        if len(self.purged) > _PURGED_MEMORY:
            del self.purged[next(iter(self.purged))]

    # --- partitions -----------------------------------------------------------------------

    def restore(self, records: Iterable[Record]) -> tuple[int, list[tuple[int, JSON]]]:
        """Apply hw.executor-state records of newly assigned partitions (in offset order per
        partition): last value per key wins, a tombstone removes. Returns how many executions
        were loaded and the (partition, payload) of the admission slots found (for
        :class:`~engine.executor.admission.Admission`). Poison records are logged and
        skipped: one bad snapshot must not stop a partition."""
        latest: dict[bytes, Record] = {}
        for r in records:
            if r.key is not None:
                latest[r.key] = r
        loaded = 0
        slots: list[tuple[int, JSON]] = []
        for key, r in latest.items():
            if r.value is None:
                # A tombstone is a purge: remember it, so a late command for this execution
                # is told apart from one whose state was not restored (batch.py).
                self.executions.pop(key.decode(), None)
                self._remember_purged(key.decode())
                continue
            try:
                kind, value = decode_snapshot(r.value)
            except EnvelopeError as exc:
                log.error("snapshot %s[%d]@%d skipped: %s", r.topic, r.partition, r.offset, exc)
                continue
            if kind == "slots":
                slots.append((r.partition, value))
                continue
            state: ExecutionState = value
            state.flow = self.intern_flow(state.flow)
            self.put(r.partition, state)
            for timer in state.timers.values():
                self.timers.arm(r.partition, timer)
            loaded += 1
        return loaded, slots

    def drop_partitions(self, partitions: set[int]) -> None:
        """Forget what this process no longer owns (after a revoke or a lost assignment)."""
        for execution_id in [e for e, o in self.executions.items() if o.partition in partitions]:
            del self.executions[execution_id]
        self.timers.drop_partitions(partitions)
        self._purges = [(t, e) for t, e in self._purges if e in self.executions]
        heapq.heapify(self._purges)


# How many purged execution ids to remember for clearer "dropped" logs.
_PURGED_MEMORY = 10_000
# Distinct flow revisions shared at once; past it the table restarts (sharing is an
# optimisation: an execution holding a dropped flow dict keeps working with it).
_FLOW_MEMORY = 1024
