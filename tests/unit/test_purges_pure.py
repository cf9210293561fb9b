"""The purge path's pure parts: the executor's batch handling a PurgeExecution command, and the
projector's rows for ExecutionPurged / LogsPurged (what a batch keeps, and what it deletes)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.bus.consumer import Record
from engine.bus.topics import topics_for
from engine.bus.wire import (
    command_record,
    execution_purged_record,
    log_record,
    logs_purged_record,
)
from engine.executor.admission import Admission
from engine.executor.batch import BatchDecider
from engine.executor.inline import InlineRunner
from engine.executor.store import StateStore
from engine.flows.store import FlowStore
from engine.projector import build_batch
from engine.reducer.commands import PurgeExecution, StartExecution
from engine.settings import KafkaSettings
from schemas.envelope import Envelope, decode, encode

TOPICS = topics_for(KafkaSettings(topic_prefix="x."))
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
FLOW = {
    "id": "f",
    "namespace": "ns",
    "tasks": [{"id": "p", "type": "io.kestra.plugin.core.flow.Pause"}],
}
ENDED = {
    "id": "g",
    "namespace": "ns",
    "tasks": [{"id": "l", "type": "io.kestra.plugin.core.log.Log", "message": "x"}],
}


def decider() -> tuple[BatchDecider, StateStore]:
    store = StateStore(purge_after_s=3600)
    admission = Admission(TOPICS.commands.name, TOPICS.executor_state.name)
    inline = InlineRunner(TOPICS.logs.name, worker_id="ex-1", output_limit_bytes=65536)
    return BatchDecider(TOPICS, store, admission, FlowStore(), inline=inline), store


def commands(*cmds: Any) -> list[Record]:
    return [
        Record(TOPICS.commands.name, 0, i, *command_record(c), None, 0) for i, c in enumerate(cmds)
    ]


def start(execution_id: str, flow: dict[str, Any]) -> StartExecution:
    return StartExecution(
        command_id=f"s-{execution_id}",
        execution_id=execution_id,
        namespace="ns",
        flow_id=str(flow["id"]),
        flow=flow,
    )


def purge(execution_id: str) -> PurgeExecution:
    return PurgeExecution(command_id=f"p-{execution_id}", execution_id=execution_id)


def test_an_ended_execution_is_tombstoned_and_announced() -> None:
    batch, store = decider()
    batch.run(commands(start("done", ENDED)), NOW)
    state = store.get("done")
    assert state is not None
    assert state.state.is_terminal  # the Log ran inline
    result = batch.run(commands(purge("done")), NOW)
    assert store.get("done") is None
    assert "done" in store.purged
    snapshots = [r for r in result.records if r.topic == TOPICS.executor_state.name]
    assert [(r.key, r.value) for r in snapshots] == [(b"done", None)]
    (event,) = [r for r in result.records if r.topic == TOPICS.events.name]
    assert event.value is not None
    env = decode(event.value)
    assert (env.type, env.execution_id, env.seq) == ("ExecutionPurged", "done", state.seq + 1)
    # A late command for it is dropped, not decided.
    late = batch.run(commands(start("done", ENDED)), NOW)
    assert late.dropped == 1
    assert late.records == []


def test_a_running_execution_is_not_purged_and_an_unknown_one_still_is() -> None:
    batch, store = decider()
    batch.run(commands(start("paused", FLOW)), NOW)
    result = batch.run(commands(purge("paused")), NOW)
    assert result.dropped == 1
    assert result.records == []
    assert store.get("paused") is not None
    result = batch.run(commands(purge("long-gone")), NOW)
    events = [decode(r.value) for r in result.records if r.topic == TOPICS.events.name and r.value]
    assert [(e.type, e.execution_id, e.seq) for e in events] == [
        ("ExecutionPurged", "long-gone", 0)
    ]


# ---------------------------------------------------------------------------- projector

ROLES = {"e": "events", "l": "logs"}


def rec(topic: str, value: bytes, offset: int) -> Record:
    return Record(topic, 0, offset, b"k", value, None, 1000)


def event(kind: str, execution_id: str, seq: int, payload: dict[str, Any]) -> bytes:
    return encode(Envelope.new(kind, execution_id, seq, payload, occurred=NOW))


def line(log_id: str, execution_id: str, level: str, ts: str) -> bytes:
    return log_record(
        log_id=log_id,
        execution_id=execution_id,
        task_run_id="tr",
        task_id="t",
        attempt=1,
        level=level,
        message=log_id,
        timestamp=ts,
    )[1]


def test_projector_batch_drops_what_a_purge_covers() -> None:
    execution = {"id": "e1", "namespace": "ns", "flow_id": "f", "state": "SUCCESS", "history": []}
    run = {"id": "tr1", "task_id": "t", "state": "SUCCESS", "history": [], "attempts": []}
    other_run = {**run, "id": "tr2"}
    records = [
        rec("e", event("ExecutionUpdated", "e1", 3, execution), 0),
        rec("e", event("TaskRunUpdated", "e1", 2, run), 1),
        rec("e", event("TaskRunUpdated", "e2", 5, other_run), 2),
        rec("l", line("a", "e1", "INFO", "2024-06-01T10:00:00.000Z"), 3),
        rec("l", line("b", "e1", "DEBUG", "2024-06-01T10:00:00.000Z"), 4),
        rec("l", line("c", "e1", "INFO", "2024-06-01T11:30:00.000Z"), 5),
        rec("l", line("d", "e2", "INFO", "2024-06-01T10:00:00.000Z"), 6),
        rec("e", execution_purged_record("e1", 4, NOW)[1], 7),
        rec(
            "l",
            logs_purged_record(
                "e1", levels=["INFO"], start=None, end="2024-06-01T11:00:00.000Z", occurred=NOW
            )[1],
            8,
        ),
    ]
    batch = build_batch(records, ROLES)
    assert batch.poison == 0
    assert list(batch.executions) == []
    assert list(batch.task_runs) == ["tr2"]  # the other execution's run stays
    assert list(batch.execution_purges) == ["e1"]
    assert sorted(batch.logs) == ["b", "c", "d"]  # DEBUG and the later INFO line stay
    ((_, execution_id, levels, start, end, _),) = batch.log_purges
    assert (execution_id, levels, start) == ("e1", ["INFO"], None)
    assert end == datetime(2024, 6, 1, 11, 0, tzinfo=UTC)
