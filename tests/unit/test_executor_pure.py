"""The executor's pure parts: the timer wheel, state restore and purge, admission glue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.bus.consumer import Record
from engine.bus.topics import topics_for
from engine.bus.wire import (
    admission_release_record,
    admission_request_record,
    command_record,
    decode_command_envelope,
    slots_record,
    state_record,
)
from engine.executor.admission import Admission, needs_admission_flow
from engine.executor.batch import BatchDecider
from engine.executor.store import StateStore
from engine.executor.timers import TimerWheel, parse_fire_at
from engine.flows.store import FlowStore
from engine.reducer.commands import StartExecution
from engine.reducer.model import ExecutionState, State, Timer
from engine.settings import KafkaSettings

T0 = "2024-06-01T12:00:00.000Z"
T1 = "2024-06-01T12:00:01.000Z"
T2 = "2024-06-01T12:00:02.000Z"


def _timer(execution: str, timer_id: str, at: str) -> Timer:
    return Timer(timer_id, execution, at, "retry")


def test_wheel_fires_in_time_order_and_only_when_due() -> None:
    wheel = TimerWheel()
    wheel.arm(0, _timer("e1", "b", T2))
    wheel.arm(1, _timer("e2", "a", T1))
    assert wheel.next_due() == parse_fire_at(T1)
    assert wheel.pop_due(parse_fire_at(T0)) == []
    due = wheel.pop_due(parse_fire_at(T2))
    assert [(d.execution_id, d.timer_id, d.partition) for d in due] == [
        ("e2", "a", 1),
        ("e1", "b", 0),
    ]
    assert len(wheel) == 0
    assert wheel.next_due() is None


def test_wheel_rearm_and_cancel_leave_no_stale_firing() -> None:
    wheel = TimerWheel()
    wheel.arm(0, _timer("e", "hb", T1))
    wheel.arm(0, _timer("e", "hb", T2))  # re-armed later: only the new time counts
    wheel.arm(0, _timer("e", "gone", T0))
    wheel.cancel("e", "gone")
    assert wheel.pop_due(parse_fire_at(T1)) == []
    assert [d.fire_at for d in wheel.pop_due(parse_fire_at(T2))] == [T2]


def test_wheel_drops_revoked_partitions() -> None:
    wheel = TimerWheel()
    wheel.arm(0, _timer("e0", "t", T1))
    wheel.arm(1, _timer("e1", "t", T1))
    wheel.drop_partitions({0})
    assert [d.execution_id for d in wheel.pop_due(parse_fire_at(T2))] == ["e1"]


def _state(execution: str, state: State, at: str = T0, **kw: object) -> ExecutionState:
    return ExecutionState(execution, "ns", "f", {"id": "f"}, state, [[state.value, at]], **kw)  # type: ignore[arg-type]


def _rec(partition: int, offset: int, key: bytes, value: bytes | None) -> Record:
    return Record("x.executor-state", partition, offset, key, value, None, 0)


def test_restore_last_value_wins_tombstones_purge_and_timers_rearm() -> None:
    running = _state("e1", State.RUNNING, timers={"t": _timer("e1", "t", T1)})
    old = _state("e1", State.CREATED)
    gone = _state("e2", State.SUCCESS)
    slots = slots_record("ns", "f", {"running": ["e1"], "queued": [], "ended": ["e0"]})
    records = [
        _rec(0, 0, b"e1", state_record(old)[1]),
        _rec(0, 1, b"e2", state_record(gone)[1]),
        _rec(0, 2, b"e1", state_record(running)[1]),
        _rec(0, 3, b"e2", None),
        _rec(0, 4, slots[0], slots[1]),
        _rec(0, 5, b"bad", b"not json"),
    ]
    store = StateStore(purge_after_s=60)
    loaded, found = store.restore(records)
    assert loaded == 1
    restored = store.get("e1")
    assert restored is not None
    assert restored.state == State.RUNNING
    assert store.get("e2") is None
    assert [d.timer_id for d in store.timers.pop_due(parse_fire_at(T2))] == ["t"]
    assert found[0][1]["slots"]["running"] == ["e1"]
    store.drop_partitions({0})
    assert store.executions == {}


def test_terminal_executions_are_purged_after_the_grace_period() -> None:
    store = StateStore(purge_after_s=10)
    store.put(2, _state("done", State.SUCCESS, at=T0))
    store.put(2, _state("busy", State.RUNNING, at=T0))
    assert store.due_purges(parse_fire_at(T0) + 9) == []
    assert store.due_purges(parse_fire_at(T0) + 10) == [("done", 2)]
    assert store.get("done") is None
    assert "done" in store.purged
    assert store.get("busy") is not None


def _start(execution: str) -> StartExecution:
    flow = {"id": "f", "namespace": "ns", "concurrency": {"limit": 1, "behavior": "QUEUE"}}
    return StartExecution(
        command_id=f"s-{execution}", execution_id=execution, namespace="ns", flow_id="f", flow=flow
    )


def test_admission_queues_then_admits_on_release_and_ignores_late_requests() -> None:
    assert needs_admission_flow(_start("x").flow)
    assert not needs_admission_flow({"concurrency": {"limit": 0}})
    adm = Admission("x.commands", "x.executor-state")
    out: list = []
    dirty: set[str] = set()
    for execution in ("a", "b"):
        key, value = admission_request_record(_start(execution))
        adm.handle(Record("x.admission", 1, 0, key, value, None, 0), out, dirty)
    verdicts = [decode_command_envelope(r.value)[1].admission for r in out]
    assert verdicts == ["RUN", "QUEUED"]
    assert all(decode_command_envelope(r.value)[0].payload["admission_decided"] for r in out)
    out.clear()
    key, value = admission_release_record("ns", "f", "a", {"limit": 1})
    adm.handle(Record("x.admission", 1, 1, key, value, None, 0), out, dirty)
    admitted = decode_command_envelope(out[0].value)[1]
    assert (admitted.type, admitted.execution_id) == ("Admitted", "b")
    out.clear()
    key, value = admission_request_record(_start("a"))  # redelivered after its end
    adm.handle(Record("x.admission", 1, 2, key, value, None, 0), out, dirty)
    assert out == []
    snapshot = adm.snapshots(dirty)
    assert len(snapshot) == 1
    assert snapshot[0].key == b"ns/f"


def _flow(message: str) -> dict[str, object]:
    return {
        "id": "f",
        "namespace": "ns",
        "revision": 3,
        "tasks": [{"id": "t", "type": "io.kestra.plugin.core.log.Log", "message": message}],
    }


def test_equal_flows_are_shared_and_a_changed_one_is_not() -> None:
    store = StateStore(purge_after_s=60)
    first = store.intern_flow(_flow("hi"))
    assert store.intern_flow(_flow("hi")) is first
    changed = _flow("other")  # same namespace, id and revision, different content
    assert store.intern_flow(changed) is changed
    assert store.intern_flow(_flow("other")) is changed
    not_a_flow: Any = "not a flow"
    assert store.intern_flow(not_a_flow) is not_a_flow


def test_batch_and_restore_share_one_flow_dict_per_revision() -> None:
    topics = topics_for(KafkaSettings(topic_prefix="x."))
    store = StateStore(purge_after_s=60)
    admission = Admission(topics.commands.name, topics.executor_state.name)
    decider = BatchDecider(topics, store, admission, FlowStore())
    starts = [
        StartExecution(
            command_id=f"s{i}", execution_id=f"e{i}", namespace="ns", flow_id="f", flow=_flow("x")
        )
        for i in range(3)
    ]
    records = [
        Record(topics.commands.name, 0, i, *command_record(cmd), None, 0)
        for i, cmd in enumerate(starts)
    ]
    result = decider.run(records, datetime(2024, 6, 1, tzinfo=UTC))
    assert result.decided == 3
    states = [store.get(f"e{i}") for i in range(3)]
    assert all(s is not None and s.flow is states[0].flow for s in states)  # type: ignore[union-attr]
    snapshots = [r for r in result.records if r.topic == topics.executor_state.name]
    assert len(snapshots) == 3
    # A new process restores the snapshots: equal flows are shared there too, and the
    # snapshots carry the whole flow (it was spliced in pre-serialized).
    again = StateStore(purge_after_s=60)
    loaded, _ = again.restore(
        _rec(0, i, r.key if isinstance(r.key, bytes) else b"", r.value)
        for i, r in enumerate(snapshots)
    )
    assert loaded == 3
    back = [again.get(f"e{i}") for i in range(3)]
    assert back[0] is not None
    assert back[0].flow == _flow("x")
    assert all(s is not None and s.flow is back[0].flow for s in back)
