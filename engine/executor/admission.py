"""The admission step: per-flow concurrency slots, decided where hw.admission is owned.

A StartExecution of a flow with ``concurrency`` (and a limit) is not decided at once: the
executor sends it to hw.admission (keyed ``namespace/flow id``), and whoever owns that
partition asks :func:`engine.reducer.admission.admit`, then forwards the StartExecution to
hw.commands with ``admission`` set (RUN, QUEUED, CANCELLED or FAILED) and marked decided. When
an execution of such a flow ends, the executor sends an AdmissionRelease; :func:`release` frees
its slot and each queued execution that now runs gets an ``Admitted`` command.

The slots of a flow are snapshotted (AdmissionSlots) to hw.executor-state under the flow key,
co-partitioned with hw.admission, after every change and before the input offsets are
committed, exactly like execution snapshots. A redelivered request is harmless (``admit`` is
idempotent for a running or queued id; the reducer drops the repeated StartExecution by command
id), and a request that comes back after its execution already ended (a redelivery across a
snapshot) is recognised from the bounded ``ended`` list and ignored instead of taking a slot
forever.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from engine.bus.consumer import Record
from engine.bus.producer import OutRecord
from engine.bus.wire import (
    admission_release_record,
    admission_request_record,
    command_record,
    decode_admission,
    flow_key,
    out,
    slots_record,
)
from engine.reducer.admission import FlowSlots, admit, release
from engine.reducer.commands import Admitted, StartExecution
from engine.reducer.ids import make_id
from schemas.envelope import EnvelopeError

log = logging.getLogger(__name__)

# Ended execution ids remembered per flow to ignore late requests (a redelivery comes from one
# uncommitted batch, so a few hundred cover it).
ENDED_MEMORY = 512


def needs_admission(cmd: StartExecution) -> bool:
    """Whether a StartExecution must go through the admission step first (a Loop iteration
    never does: it is part of its parent, which holds the slot)."""
    return cmd.loop is None and needs_admission_flow(cmd.flow)


def needs_admission_flow(flow: Any) -> bool:
    """Whether executions of this (normalized) flow hold concurrency slots."""
    concurrency = flow.get("concurrency") if isinstance(flow, dict) else None
    if not isinstance(concurrency, dict):
        return False
    try:
        return int(concurrency.get("limit", 0)) > 0
    except (TypeError, ValueError):
        return False


def request(topic: str, cmd: StartExecution) -> OutRecord:
    return out(topic, admission_request_record(cmd))


def release_for(
    topic: str, namespace: str, flow_id: str, execution_id: str, flow: Any
) -> OutRecord:
    concurrency = flow.get("concurrency") if isinstance(flow, dict) else None
    return out(topic, admission_release_record(namespace, flow_id, execution_id, concurrency))


@dataclass(slots=True)
class FlowAdmission:
    slots: FlowSlots
    partition: int
    ended: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**self.slots.to_dict(), "ended": list(self.ended)}


class Admission:
    """The slots of the owned hw.admission partitions and the decisions on them."""

    def __init__(self, commands_topic: str, state_topic: str) -> None:
        self.flows: dict[str, FlowAdmission] = {}
        self._commands = commands_topic
        self._state = state_topic

    def restore(self, partition: int, payload: dict[str, Any]) -> None:
        slots = payload.get("slots") or {}
        self.flows[flow_key(payload["namespace"], payload["flow_id"])] = FlowAdmission(
            FlowSlots.from_dict(slots), partition, list(slots.get("ended") or [])
        )

    def drop_partitions(self, partitions: set[int]) -> None:
        for key in [k for k, f in self.flows.items() if f.partition in partitions]:
            del self.flows[key]

    def handle(self, record: Record, outgoing: list[OutRecord], dirty: set[str]) -> None:
        """Decide one hw.admission record; appends the records to produce."""
        assert record.value is not None
        try:
            kind, value = decode_admission(record.value)
        except (EnvelopeError, ValueError, TypeError, KeyError) as exc:
            log.error(
                "admission record %s[%d]@%d skipped: %s",
                record.topic, record.partition, record.offset, exc,
            )  # fmt: skip
            return
        if kind == "request":
            self._request(record.partition, value, outgoing, dirty)
        else:
            self._release(record.partition, value, outgoing, dirty)

    def _entry(self, partition: int, namespace: str, flow_id: str) -> tuple[str, FlowAdmission]:
        key = flow_key(namespace, flow_id)
        entry = self.flows.get(key)
        if entry is None:
            entry = self.flows[key] = FlowAdmission(FlowSlots(), partition)
        return key, entry

    def _request(
        self, partition: int, cmd: StartExecution, outgoing: list[OutRecord], dirty: set[str]
    ) -> None:
        key, entry = self._entry(partition, cmd.namespace, cmd.flow_id)
        if cmd.execution_id in entry.ended:
            log.info("admission request of ended execution %s ignored", cmd.execution_id)
            return
        decision = admit(entry.slots, cmd.execution_id, cmd.flow.get("concurrency"))
        cmd.admission = decision.verdict
        outgoing.append(out(self._commands, command_record(cmd, admission_decided=True)))
        dirty.add(key)

    def _release(
        self, partition: int, payload: dict[str, Any], outgoing: list[OutRecord], dirty: set[str]
    ) -> None:
        key, entry = self._entry(partition, payload["namespace"], payload["flow_id"])
        execution_id = str(payload["execution_id"])
        decision = release(entry.slots, execution_id, payload.get("concurrency"))
        if execution_id not in entry.ended:
            entry.ended.append(execution_id)
            del entry.ended[:-ENDED_MEMORY]
        for admitted in decision.admitted:
            cmd = Admitted(command_id=make_id("admitted", admitted), execution_id=admitted)
            outgoing.append(out(self._commands, command_record(cmd)))
        dirty.add(key)

    def snapshots(self, dirty: set[str]) -> list[OutRecord]:
        records = []
        for key in dirty:
            entry = self.flows[key]
            namespace, _, flow_id = key.partition("/")
            records.append(out(self._state, slots_record(namespace, flow_id, entry.to_dict())))
        return records
