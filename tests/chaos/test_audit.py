"""The chaos audit itself: a clean history passes, and each kind of anomaly is caught.

Pure (no servers): the evidence is built by hand as the components would have written it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.envelope import Envelope
from tests.chaos.audit import Evidence, audit
from tests.chaos.flows import expected_id

NS = "chaos.t"
KEY = "k1"
MAIN_ID = expected_id(NS, KEY)
CHILD_ID = "child-1"
AT = datetime(2025, 1, 1, tzinfo=UTC)
AFTER_ID = "after-1"


def updated(eid: str, flow: str, seq: int, state: str, **extra: Any) -> Envelope:
    history = [["CREATED", "t0"], ["RUNNING", "t1"]] + ([[state, "t2"]] if state else [])
    payload = {"id": eid, "flow_id": flow, "state": state, "history": history, **extra}
    return Envelope.new("ExecutionUpdated", eid, seq, payload, occurred=AT)


def _flow_trigger(upstream: str) -> dict[str, Any]:
    """An execution's ``trigger`` as a Flow trigger writes it (Kestra's ExecutionTrigger)."""
    return {
        "id": "on-main",
        "type": "io.kestra.plugin.core.trigger.Flow",
        "variables": {"executionId": upstream},
    }


def task_run(eid: str, seq: int, run_id: str, task_id: str, values: list[str]) -> Envelope:
    payload = {"id": run_id, "task_id": task_id, "parent_id": None, "values": values}
    return Envelope.new("TaskRunUpdated", eid, seq, payload, occurred=AT)


def result(run_id: str, attempt: int, command_id: str) -> Envelope:
    payload = {"command_id": command_id, "task_run_id": run_id, "attempt": attempt}
    return Envelope.new("TaskResult", "x", 0, payload, occurred=AT)


def clean() -> Evidence:
    events = [
        updated(MAIN_ID, "main", 1, "RUNNING"),
        task_run(MAIN_ID, 2, "r1", "item", ["a"]),
        task_run(MAIN_ID, 3, "r1", "item", ["a"]),  # the same run, updated
        task_run(MAIN_ID, 4, "r2", "item", ["b"]),
        updated(CHILD_ID, "child", 5, "SUCCESS", parent={"execution_id": MAIN_ID}),
        updated(MAIN_ID, "main", 9, "SUCCESS"),
        updated(AFTER_ID, "after", 3, "SUCCESS", trigger=_flow_trigger(MAIN_ID)),
    ]
    commands = [result("r1", 1, "c1"), result("r1", 1, "c1"), result("r1", 2, "c2")]
    rows = {MAIN_ID: ("SUCCESS", 9), CHILD_ID: ("SUCCESS", 5), AFTER_ID: ("SUCCESS", 3)}
    return Evidence(NS, events, commands, rows, {KEY: MAIN_ID}, {KEY: MAIN_ID})


def kinds(evidence: Evidence) -> dict[str, int]:
    return {k: len(v) for k, v in audit(evidence).anomalies.items() if v}


def test_a_clean_run_has_no_anomaly() -> None:
    report = audit(clean())
    assert report.anomaly_count == 0, report.details()
    assert report.executions == {"main": 1, "child": 1, "after": 1}
    assert report.task_results == 2  # a re-produced command (same id) is one result


def test_an_execution_left_running_is_not_terminal() -> None:
    e = clean()
    e.events.append(updated(CHILD_ID, "child", 6, "RUNNING", parent={"execution_id": MAIN_ID}))
    e.rows[CHILD_ID] = ("RUNNING", 6)
    assert kinds(e) == {"not-terminal": 1}


def test_a_trigger_event_without_execution_is_lost() -> None:
    e = clean()
    e.expected["k2"] = expected_id(NS, "k2")
    assert kinds(e) == {"lost": 1, "not-accepted": 1}


def test_a_second_main_execution_is_unexpected() -> None:
    e = clean()
    e.events.append(updated("other", "main", 1, "SUCCESS"))
    e.events.append(updated("c2", "child", 1, "SUCCESS", parent={"execution_id": "other"}))
    e.events.append(updated("a2", "after", 1, "SUCCESS", trigger=_flow_trigger("other")))
    e.rows.update({"other": ("SUCCESS", 1), "c2": ("SUCCESS", 1), "a2": ("SUCCESS", 1)})
    assert kinds(e) == {"unexpected-execution": 1}


def test_the_api_answering_another_id_is_caught() -> None:
    e = clean()
    e.accepted[KEY] = "not-derived"
    assert kinds(e) == {"wrong-id": 1}


def test_two_task_runs_for_one_iteration_ran_twice() -> None:
    e = clean()
    e.events.append(task_run(MAIN_ID, 5, "r9", "item", ["a"]))
    assert kinds(e) == {"ran-twice": 1}


def test_an_execution_running_again_after_its_end_ran_twice() -> None:
    e = clean()
    again = updated(MAIN_ID, "main", 12, "SUCCESS")
    history = [["RUNNING", "t1"], ["SUCCESS", "t2"], ["RUNNING", "t3"], ["SUCCESS", "t4"]]
    again.payload["history"] = history
    e.events.append(again)
    e.rows[MAIN_ID] = ("SUCCESS", 12)
    assert kinds(e) == {"ran-twice": 1}


def test_two_children_or_two_followers_ran_twice_and_none_is_missing() -> None:
    e = clean()
    e.events.append(updated("c2", "child", 1, "SUCCESS", parent={"execution_id": MAIN_ID}))
    e.events.append(updated("a2", "after", 1, "SUCCESS", trigger=_flow_trigger(MAIN_ID)))
    e.rows.update({"c2": ("SUCCESS", 1), "a2": ("SUCCESS", 1)})
    assert kinds(e) == {"ran-twice": 2}
    e = clean()
    e.events = [env for env in e.events if env.execution_id not in (CHILD_ID, AFTER_ID)]
    e.rows = {MAIN_ID: e.rows[MAIN_ID]}
    assert kinds(e) == {"missing-follow-up": 2}


def test_two_results_of_one_attempt_are_caught() -> None:
    e = clean()
    e.commands.append(result("r1", 1, "c3"))
    assert kinds(e) == {"two-results": 1}


def test_conflicting_events_with_one_seq_are_caught() -> None:
    e = clean()
    e.events.append(updated(MAIN_ID, "main", 9, "FAILED"))
    e.rows[MAIN_ID] = ("FAILED", 9)
    assert kinds(e) == {"conflicting-events": 1, "not-success": 1}


def test_the_read_model_must_equal_the_topic() -> None:
    e = clean()
    e.rows[MAIN_ID] = ("RUNNING", 1)
    e.rows["ghost"] = ("SUCCESS", 1)
    del e.rows[AFTER_ID]
    assert kinds(e) == {"read-model": 3}


def test_a_failed_execution_is_not_success() -> None:
    e = clean()
    e.events.append(updated(CHILD_ID, "child", 7, "FAILED", parent={"execution_id": MAIN_ID}))
    e.rows[CHILD_ID] = ("FAILED", 7)
    assert kinds(e) == {"not-success": 1}
