"""Reducer semantics, one behaviour per test, through a simulated worker and clock."""

from __future__ import annotations

from typing import Any

from engine.reducer.decide import decide
from engine.reducer.model import (
    ChildExecutionEnded,
    ExecutionState,
    Heartbeat,
    Job,
    Kill,
    Replay,
    Restart,
    Resume,
    StartExecution,
    TaskResult,
    TimerFired,
)
from engine.reducer.states import State
from tests.unit.test_reducer_support import EPOCH, Sim, default_worker, fail, flow, log

FLOW = "io.kestra.plugin.core.flow."


def test_sequential_tasks_run_in_order_and_history_is_kept() -> None:
    sim = Sim()
    sim.start(flow([log("a"), log("b"), log("c")]))
    sim.run()
    assert [j.task["id"] for j in sim.jobs] == ["a", "b", "c"]
    st = sim.state()
    assert [h[0] for h in st.history] == ["CREATED", "RUNNING", "SUCCESS"]
    assert [h[0] for h in st.task_runs[sim.jobs[0].task_run_id].history] == [
        "CREATED",
        "RUNNING",
        "SUCCESS",
    ]


def test_failure_stops_the_list_runs_errors_then_finally() -> None:
    sim = Sim()
    sim.start(flow([log("a"), fail("b"), log("c")], errors=[log("e")], **{"finally": [log("z")]}))
    sim.run()
    assert sim.runs() == {
        "a": State.SUCCESS,
        "b": State.FAILED,
        "e": State.SUCCESS,
        "z": State.SUCCESS,
    }
    assert sim.state().state == State.FAILED


def test_parallel_respects_concurrent_limit() -> None:
    held: list[Job] = []
    sim = Sim(worker=lambda job: held.append(job), started=False)  # type: ignore[arg-type,func-returns-value]
    sim.start(
        flow(
            [
                {
                    "id": "p",
                    "type": f"{FLOW}Parallel",
                    "concurrent": 2,
                    "tasks": [log("a"), log("b"), log("c")],
                }
            ]
        )
    )
    sim.run()
    assert [j.task["id"] for j in held] == ["a", "b"]


def test_foreach_values_iterations_and_limit() -> None:
    sim = Sim()
    sim.start(
        flow([{"id": "fe", "type": f"{FLOW}ForEach", "values": '["x", "y"]', "tasks": [log("a")]}])
    )
    sim.run()
    assert sim.runs() == {"fe": State.SUCCESS, "a[x]": State.SUCCESS, "a[y]": State.SUCCESS}
    job = sim.jobs[0]
    assert job.context["taskrun"]["value"] == "x"


def test_foreach_null_value_fails_with_kestra_message() -> None:
    sim = Sim()
    sim.start(
        flow([{"id": "fe", "type": f"{FLOW}ForEach", "values": [1, None], "tasks": [log("a")]}])
    )
    sim.run()
    assert sim.state().state == State.FAILED
    logs = [e.payload["message"] for d in sim.decisions for e in d.events if e.type == "LogEmitted"]
    assert any("Found '1' null values on Each" in m for m in logs)


def test_nested_each_outputs_nest_by_value() -> None:
    def worker(job: Job) -> tuple[str, dict[str, Any]]:
        return "SUCCESS", {"value": job.context["taskrun"]["value"]}

    sim = Sim(worker=worker)
    sim.start(
        flow(
            [
                {
                    "id": "o",
                    "type": f"{FLOW}EachSequential",
                    "value": ["s1"],
                    "tasks": [
                        {
                            "id": "i",
                            "type": f"{FLOW}EachSequential",
                            "value": ["a"],
                            "tasks": [log("r")],
                        }
                    ],
                },
                log("after"),
            ]
        )
    )
    sim.run()
    last = sim.jobs[-1]
    assert last.context["outputs"]["r"]["s1"]["a"] == {"value": "a"}


def test_if_and_switch_without_match() -> None:
    sim = Sim()
    sim.start(
        flow(
            [
                {
                    "id": "if",
                    "type": f"{FLOW}If",
                    "condition": "false",
                    "then": [log("t")],
                    "else": [log("e")],
                }
            ]
        )
    )
    sim.run()
    assert sim.runs() == {"if": State.SUCCESS, "e": State.SUCCESS}
    sim2 = Sim()
    sim2.start(
        flow([{"id": "sw", "type": f"{FLOW}Switch", "value": "nope", "cases": {"a": [log("a")]}}])
    )
    sim2.run()
    assert sim2.runs() == {"sw": State.FAILED}


def test_dag_respects_depends_on() -> None:
    sim = Sim()
    sim.start(
        flow(
            [
                {
                    "id": "d",
                    "type": f"{FLOW}Dag",
                    "tasks": [
                        {"task": log("c"), "dependsOn": ["a", "b"]},
                        {"task": log("a")},
                        {"task": log("b"), "dependsOn": ["a"]},
                    ],
                }
            ]
        )
    )
    sim.run()
    assert [j.task["id"] for j in sim.jobs] == ["a", "b", "c"]
    assert sim.state().state == State.SUCCESS


def test_disabled_task_has_no_run_and_run_if_skips() -> None:
    sim = Sim()
    sim.start(flow([log("a", disabled=True), log("b", runIf="false"), log("c")]))
    sim.run()
    assert sim.runs() == {"b": State.SKIPPED, "c": State.SUCCESS}


def test_allow_failure_and_allow_warning() -> None:
    sim = Sim()
    sim.start(flow([fail("a", allowFailure=True), log("b")]))
    sim.run()
    assert sim.runs() == {"a": State.WARNING, "b": State.SUCCESS}
    assert sim.state().state == State.WARNING
    sim2 = Sim()
    sim2.start(flow([fail("a", allowFailure=True, allowWarning=True)]))
    sim2.run()
    assert sim2.state().state == State.SUCCESS


def test_retry_constant_counts_attempts_and_waits_on_timers() -> None:
    sim = Sim()
    sim.start(flow([fail("a", retry={"type": "constant", "interval": "PT10S", "maxAttempt": 3})]))
    sim.run()
    run = next(iter(sim.state().task_runs.values()))
    assert len(run.attempts) == 3
    assert run.state == State.FAILED
    assert (sim.now - EPOCH).total_seconds() == 20


def test_retry_then_success_with_warning_on_retry() -> None:
    calls: list[int] = []

    def worker(job: Job) -> tuple[str, dict[str, Any]]:
        calls.append(job.attempt)
        return ("FAILED", {}) if job.attempt == 1 else ("SUCCESS", {})

    sim = Sim(worker=worker)
    sim.start(
        flow(
            [
                log(
                    "a",
                    retry={
                        "type": "exponential",
                        "interval": "PT1S",
                        "maxAttempt": 5,
                        "warningOnRetry": True,
                    },
                )
            ]
        )
    )
    sim.run()
    assert calls == [1, 2]
    assert sim.state().state == State.WARNING


def test_timeout_fails_attempt_and_stops_job() -> None:
    sim = Sim(worker=lambda job: None)
    sim.start(flow([log("a", timeout="PT5S")]))
    sim.run()
    assert sim.state().state == State.FAILED
    assert any(s.reason == "timeout" for d in sim.decisions for s in d.stop_jobs)


def test_lost_worker_gets_the_same_attempt_redispatched() -> None:
    sim = Sim(worker=lambda job: None)
    sim.start(flow([log("a")]))
    sim.run(max_steps=6, must_settle=False)  # start, started, then the heartbeat fires
    assert len(sim.jobs) >= 2
    assert {(j.task_run_id, j.attempt) for j in sim.jobs} == {(sim.jobs[0].task_run_id, 1)}


def test_heartbeat_postpones_loss() -> None:
    sim = Sim(worker=lambda job: None)
    sim.start(flow([log("a")]))
    sim.send(sim.queue.pop(0))
    sim.send(sim.queue.pop(0))
    job = sim.jobs[0]
    sim.now = EPOCH.replace(second=20)
    sim.send(Heartbeat(command_id="hb", execution_id="e1", task_run_id=job.task_run_id, attempt=1))
    timer_id = next(iter(sim.timers))
    sim.now = EPOCH.replace(second=35)
    decision = sim.send(TimerFired(command_id="t", execution_id="e1", timer_id=timer_id))
    assert decision.jobs == []


def test_pause_resume_validates_on_resume_inputs() -> None:
    sim = Sim()
    sim.start(
        flow(
            [
                {"id": "p", "type": f"{FLOW}Pause", "onResume": [{"id": "n", "type": "INT"}]},
                log("after"),
            ]
        )
    )
    sim.run()
    assert sim.state().state == State.PAUSED
    sim.send(Resume(command_id="r1", execution_id="e1", inputs={}))
    assert sim.state().state == State.PAUSED  # refused: `n` is required
    sim.queue.append(Resume(command_id="r2", execution_id="e1", inputs={"n": "4"}))
    sim.run()
    assert sim.state().state == State.SUCCESS
    assert sim.jobs[-1].context["outputs"]["p"] == {"onResume": {"n": 4}}


def test_pause_timeout_fails() -> None:
    sim = Sim()
    sim.start(flow([{"id": "p", "type": f"{FLOW}Pause", "timeout": "PT1S"}]))
    sim.run()
    run = next(iter(sim.state().task_runs.values()))
    assert [h[0] for h in run.history] == ["CREATED", "RUNNING", "PAUSED", "FAILED"]


def test_waitfor_max_iterations_fails_when_asked() -> None:
    sim = Sim()
    sim.start(
        flow(
            [
                {
                    "id": "w",
                    "type": f"{FLOW}WaitFor",
                    "condition": "false",
                    "failOnMaxReached": True,
                    "checkFrequency": {"maxIterations": 3, "interval": "PT1S"},
                    "tasks": [log("a")],
                }
            ]
        )
    )
    sim.run()
    assert sim.state().state == State.FAILED
    assert len(sim.jobs) == 3


def test_subflow_outgoing_start_and_child_end() -> None:
    sim = Sim()
    sim.start(flow([{"id": "s", "type": f"{FLOW}Subflow", "namespace": "ns", "flowId": "child"}]))
    sim.run(route_children=False)
    (start,) = sim.outgoing
    assert isinstance(start, StartExecution)
    assert start.parent is not None
    assert start.parent.wait
    run_id = start.parent.task_run_id
    sim.send(
        ChildExecutionEnded(
            command_id="c",
            execution_id="e1",
            child_execution_id=start.execution_id,
            parent_task_run_id=run_id,
            state="FAILED",
        )
    )
    assert sim.state().state == State.FAILED


def test_subflow_through_router_reaches_success() -> None:
    sim = Sim()
    sim.child_flow = flow([log("inner")])
    sim.start(flow([{"id": "s", "type": f"{FLOW}Subflow", "namespace": "ns", "flowId": "f"}]))
    sim.run()
    assert sim.state().state == State.SUCCESS
    child = next(s for k, s in sim.states.items() if k != "e1")
    assert child.labels["system.correlationId"] == "e1"


def test_kill_stops_running_jobs_then_killed() -> None:
    sim = Sim(worker=lambda job: None)
    sim.start(flow([log("a"), log("b")]))
    sim.send(sim.queue.pop(0))
    sim.send(sim.queue.pop(0))
    decision = sim.send(Kill(command_id="k", execution_id="e1"))
    assert sim.state().state == State.KILLING
    assert [s.reason for s in decision.stop_jobs] == ["killed"]
    job = sim.jobs[0]
    sim.send(
        TaskResult(
            command_id="r",
            execution_id="e1",
            task_run_id=job.task_run_id,
            attempt=1,
            state="KILLED",
        )
    )
    assert sim.state().state == State.KILLED
    assert sim.runs() == {"a": State.KILLED}


def test_restart_retries_failed_task_with_new_attempt() -> None:
    answers = iter(["FAILED", "SUCCESS", "SUCCESS"])
    sim = Sim(worker=lambda job: (next(answers), {}))
    sim.start(flow([log("a"), log("b")]))
    sim.run()
    assert sim.state().state == State.FAILED
    sim.queue.append(Restart(command_id="rs", execution_id="e1"))
    sim.run()
    st = sim.state()
    assert st.state == State.SUCCESS
    assert [h[0] for h in st.history] == [
        "CREATED",
        "RUNNING",
        "FAILED",
        "RESTARTED",
        "RUNNING",
        "SUCCESS",
    ]
    assert [len(r.attempts) for r in st.task_runs.values()] == [2, 1]


def test_replay_copies_runs_before_the_chosen_one() -> None:
    sim = Sim()
    sim.start(flow([log("a"), log("b"), log("c")]))
    sim.run()
    runs = list(sim.state().task_runs.values())
    decision = sim.send(
        Replay(command_id="rp", execution_id="e1", task_run_id=runs[1].id, new_execution_id="e2")
    )
    (out,) = decision.commands
    assert isinstance(out.command, StartExecution)
    assert [r["task_id"] for r in out.command.seed_task_runs or []] == ["a"]
    sim.queue.append(out.command)
    sim.run()
    assert sim.runs("e2") == {"a": State.SUCCESS, "b": State.SUCCESS, "c": State.SUCCESS}
    assert [j.task["id"] for j in sim.jobs[3:]] == ["b", "c"]


def test_labels_from_task_result_and_flow_outputs() -> None:
    def worker(job: Job) -> tuple[str, dict[str, Any]]:
        return "SUCCESS", {"value": "v"}

    sim = Sim(worker=worker)
    sim.start(
        flow([log("a")], outputs=[{"id": "o", "type": "STRING", "value": "{{ outputs.a.value }}"}])
    )
    sim.send(sim.queue.pop(0))
    job = sim.jobs[0]
    sim.send(
        TaskResult(
            command_id="r",
            execution_id="e1",
            task_run_id=job.task_run_id,
            attempt=1,
            state="SUCCESS",
            outputs={"value": "v"},
            labels=[{"key": "k", "value": "x"}],
        )
    )
    st = sim.state()
    assert st.labels["k"] == "x"
    assert st.outputs == {"o": "v"}


def test_create_new_execution_retry_marks_retried_and_starts_next() -> None:
    sim = Sim()
    sim.start(
        flow(
            [
                fail(
                    "a",
                    retry={
                        "behavior": "CREATE_NEW_EXECUTION",
                        "type": "constant",
                        "interval": "PT1S",
                        "maxAttempt": 3,
                    },
                )
            ]
        )
    )
    sim.run()
    states = sorted(s.state.value for s in sim.states.values())
    assert states == ["FAILED", "RETRIED", "RETRIED"]


def test_duplicates_stale_and_unknown_commands_change_nothing() -> None:
    sim = Sim(worker=lambda job: None)
    sim.start(flow([log("a")]))
    sim.send(sim.queue.pop(0))
    job = sim.jobs[0]
    result = TaskResult(
        command_id="r", execution_id="e1", task_run_id=job.task_run_id, attempt=1, state="SUCCESS"
    )
    sim.send(result)
    before = sim.state().to_dict()
    assert sim.send(result).duplicate
    assert sim.state().to_dict() == before
    stale = sim.send(
        TaskResult(
            command_id="r2",
            execution_id="e1",
            task_run_id=job.task_run_id,
            attempt=7,
            state="FAILED",
        )
    )
    assert "stale attempt 7" in stale.events[0].payload["message"]
    unknown = decide(None, Kill(command_id="k", execution_id="nope"), EPOCH)
    assert unknown.state is None
    assert "unknown execution nope" in unknown.events[0].payload["message"]


def test_internal_errors_become_data() -> None:
    state = ExecutionState.from_dict(
        Sim().__dict__
        and {
            "execution_id": "e1",
            "namespace": "ns",
            "flow_id": "f",
            "flow": {"id": "f", "tasks": "not-a-list-but-walked"},
            "state": "RUNNING",
            "history": [["RUNNING", "2024-01-01T00:00:00.000Z"]],
            "task_runs": [
                {"id": "x", "task_id": "t", "type": "t", "state": "BOGUS", "history": []}
            ][:0],
        }
    )
    state.flow["tasks"] = [{"id": "a", "type": f"{FLOW}Sequential", "tasks": 5}]
    decision = decide(state, Resume(command_id="r", execution_id="e1"), EPOCH)
    assert decision.state is not None  # answered, did not raise


def test_state_round_trips_exactly() -> None:
    sim = Sim(worker=lambda job: None, started=False)
    sim.start(
        flow(
            [
                {
                    "id": "fe",
                    "type": f"{FLOW}ForEach",
                    "values": ["a", "b"],
                    "concurrencyLimit": 0,
                    "tasks": [log("x", retry={"maxAttempt": 2})],
                }
            ]
        )
    )
    sim.run(max_steps=4)
    data = sim.state().to_dict()
    assert ExecutionState.from_dict(data).to_dict() == data


def test_scheduled_start_waits_for_its_timer() -> None:
    sim = Sim(worker=default_worker)
    sim.start(flow([log("a")]), scheduled="2024-01-01T00:01:00.000Z")
    sim.send(sim.queue.pop(0))
    assert sim.state().state == State.CREATED
    assert sim.jobs == []
    sim.run()
    assert sim.state().state == State.SUCCESS
