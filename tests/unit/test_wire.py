"""Round trips of every record engine.bus.wire builds, and the flow store's pure core."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.bus import wire
from engine.bus.topics import topics_for
from engine.flows.store import FlowStore
from engine.reducer.commands import ParentRef, StartExecution, TaskResult
from engine.reducer.model import Event, ExecutionState, Job, State, StopJob
from engine.settings import KafkaSettings
from schemas.envelope import EnvelopeError, decode

NOW = datetime(2024, 6, 1, 12, 0, 0, 123000, tzinfo=UTC)


def _start() -> StartExecution:
    return StartExecution(
        command_id="c1",
        execution_id="e1",
        namespace="ns",
        flow_id="f",
        flow={"id": "f", "namespace": "ns", "tasks": []},
        inputs={"a": 1},
        parent=ParentRef("p", "tr", "ns", "parent"),
    )


def test_command_round_trip_keeps_every_field() -> None:
    cmd = _start()
    key, value = wire.command_record(cmd, occurred=NOW)
    assert key == b"e1"
    env, back = wire.decode_command_envelope(value)
    assert back == cmd
    assert env.type == "StartExecution"
    assert env.occurred == NOW
    assert not wire.admission_decided(env)
    env2, _ = wire.decode_command_envelope(wire.command_record(cmd, admission_decided=True)[1])
    assert wire.admission_decided(env2)


def test_task_result_round_trip() -> None:
    cmd = TaskResult(
        command_id="c2", execution_id="e1", task_run_id="tr", attempt=2, state="SUCCESS",
        outputs={"value": [1, {"x": None}]},
    )  # fmt: skip
    assert wire.decode_command(wire.command_record(cmd)[1]) == cmd


def test_a_record_that_is_no_command_is_a_poison_error() -> None:
    _, value = wire.job_record(Job("e", "tr", 1, {}, {}))
    with pytest.raises(EnvelopeError):
        wire.decode_command(value)
    with pytest.raises(EnvelopeError):
        wire.decode_command(b"not json")


def test_event_round_trip_and_deterministic_id() -> None:
    event = Event("TaskRunUpdated", "e1", 7, "2024-06-01T12:00:00.123Z", {"id": "tr"})
    key, value = wire.event_record(event)
    assert key == b"e1"
    assert wire.decode_event(value) == event
    assert decode(value).id == "e1:7"
    assert decode(value).seq == 7


def test_jobs_and_stop_jobs_share_key_and_topic() -> None:
    job = Job("e1", "tr", 1, {"type": "Log"}, {"inputs": {}}, "gpu", 3.5)
    stop = StopJob("e1", "tr", 1, "killed")
    jk, jv = wire.job_record(job)
    sk, sv = wire.stop_job_record(stop)
    assert jk == sk == b"e1"
    assert wire.decode_job(jv) == job
    assert wire.decode_job(sv) == stop
    topics = topics_for(KafkaSettings(topic_prefix="x."))
    assert wire.jobs_topic(topics, None) == "x.jobs"
    assert wire.jobs_topic(topics, "") == "x.jobs"
    assert wire.jobs_topic(topics, "gpu") == "x.jobs.gpu"


def test_log_lines() -> None:
    key, value = wire.log_record(
        log_id=wire.worker_log_id("tr", 1, 3), execution_id="e1", task_run_id="tr",
        task_id="t", attempt=1, level="INFO", message="hi", timestamp="2024-06-01T12:00:00.000Z",
    )  # fmt: skip
    payload = wire.decode_log(value)
    assert key == b"e1"
    assert payload["log_id"] == "tr:1:3"
    assert payload["message"] == "hi"
    event = Event(
        "LogEmitted", "e1", 4, "2024-06-01T12:00:00.000Z", {"level": "WARN", "message": "m"}
    )
    line = wire.decode_log(wire.log_record_from_event(event)[1])
    assert line["log_id"] == "e1:4"
    assert line["level"] == "WARN"


def test_flow_records_and_store() -> None:
    store = FlowStore()
    k, v = wire.flow_deployed_record("ns", "f", 1, "id: f", {"id": "f", "tasks": []}, NOW)
    assert k == b"ns/f"
    rec = wire.decode_flow(v)
    assert rec.flow == {"id": "f", "tasks": [], "revision": 1}
    store.apply(rec)
    store.apply(wire.decode_flow(wire.flow_deployed_record("ns", "f", 2, "id: f", {"id": "f"})[1]))
    assert store.get("ns", "f") == {"id": "f", "revision": 2}
    assert store.get("ns", "f", 1) is not None
    assert [r.revision for r in store.revisions("ns", "f")] == [1, 2]
    # A late, redelivered older revision does not become the latest.
    store.apply(rec)
    assert store.get("ns", "f") == {"id": "f", "revision": 2}
    store.apply(wire.decode_flow(wire.flow_deleted_record("ns", "f", 2)[1]))
    assert store.get("ns", "f") is None
    assert store.get("ns", "f", 2) is not None
    assert store.deleted("ns", "f")
    assert store.flows() == []
    assert store.get("ns", "other") is None


def test_snapshot_round_trip() -> None:
    state = ExecutionState("e1", "ns", "f", {"id": "f"}, State.RUNNING, [["RUNNING", "t"]], seq=9)
    key, value = wire.state_record(state)
    kind, back = wire.decode_snapshot(value)
    assert key == b"e1"
    assert kind == "execution"
    assert back.to_dict() == state.to_dict()
    k2, v2 = wire.slots_record("ns", "f", {"running": ["e1"], "queued": []})
    assert k2 == b"ns/f"
    assert wire.decode_snapshot(v2) == (
        "slots", {"namespace": "ns", "flow_id": "f", "slots": {"running": ["e1"], "queued": []}}
    )  # fmt: skip


def test_snapshots_carry_their_flow_after_it_was_cached() -> None:
    flow = {"id": "f", "namespace": "ns", "tasks": [{"id": "t", "type": "Log"}]}
    first = ExecutionState("e1", "ns", "f", flow, State.RUNNING, [["RUNNING", "t"]])
    other = ExecutionState("e2", "ns", "f", {"id": "g"}, State.RUNNING, [["RUNNING", "t"]])
    for state in (first, first, other, first):  # cached per flow dict, never mixed up
        payload = decode(wire.state_record(state)[1]).payload
        assert payload == state.to_dict()
    not_json: Any = {1: "x"}  # orjson refuses non-string keys
    bad = ExecutionState("e3", "ns", "f", not_json, State.RUNNING, [["RUNNING", "t"]])
    with pytest.raises(EnvelopeError, match="ExecutionSnapshot"):
        wire.state_record(bad)


def test_admission_records() -> None:
    cmd = _start()
    key, value = wire.admission_request_record(cmd)
    assert key == b"ns/f"
    assert wire.decode_admission(value) == ("request", cmd)
    key, value = wire.admission_release_record("ns", "f", "e1", {"limit": 1})
    kind, payload = wire.decode_admission(value)
    assert (key, kind, payload["execution_id"]) == (b"ns/f", "release", "e1")


def test_timer_command_ids_are_deterministic_per_arming() -> None:
    a = wire.timer_command_id("e", "t", "2024-01-01T00:00:00.000Z")
    assert a == wire.timer_command_id("e", "t", "2024-01-01T00:00:00.000Z")
    assert a != wire.timer_command_id("e", "t", "2024-01-01T00:00:01.000Z")
