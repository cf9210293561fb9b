"""Pause as Kestra runs it (Pause.java, ExecutorService.handlePausedDelay,
ExecutionService.resume/markAs): durations from expressions, the histories, onResume."""

from __future__ import annotations

from typing import Any

from engine.reducer.model import Resume
from engine.reducer.states import State
from tests.unit.test_reducer_support import Sim, flow, log

PAUSE = "io.kestra.plugin.core.flow.Pause"


def _history(item: Any) -> list[str]:
    return [h[0] for h in item.history]


def _logs(sim: Sim) -> list[str]:
    return [e.payload["message"] for d in sim.decisions for e in d.events if e.type == "LogEmitted"]


def test_delay_from_an_input_resumes_with_kestras_histories() -> None:
    sim = Sim()
    sim.start(
        flow(
            [{"id": "p", "type": PAUSE, "delay": "{{ inputs.wait }}"}, log("after")],
            inputs=[{"id": "wait", "type": "DURATION"}],
        ),
        inputs={"wait": "PT2S"},
    )
    sim.run()
    state = sim.state()
    pause = next(r for r in state.task_runs.values() if r.task_id == "p")
    assert _history(pause) == ["CREATED", "RUNNING", "PAUSED", "RUNNING", "SUCCESS"]
    paused_at = next(h[1] for h in pause.history if h[0] == "PAUSED")
    resumed_at = pause.history[3][1]
    assert (paused_at, resumed_at) == ("2024-01-01T00:00:00.000Z", "2024-01-01T00:00:02.000Z")
    assert _history(state) == ["CREATED", "RUNNING", "PAUSED", "RESTARTED", "RUNNING", "SUCCESS"]
    assert "Flow restarted" in _logs(sim)


def test_timeout_fails_the_paused_run_directly() -> None:
    sim = Sim()
    sim.start(flow([{"id": "p", "type": PAUSE, "timeout": "{{ 'PT1S' }}"}, log("after")]))
    sim.run()
    pause = next(iter(sim.state().task_runs.values()))
    assert _history(pause) == ["CREATED", "RUNNING", "PAUSED", "FAILED"]
    assert sim.state().state == State.FAILED


def test_a_delay_that_does_not_render_or_parse_fails_the_task_with_the_message() -> None:
    for bad in ("{{ inputs.nope }}", "soon"):
        sim = Sim()
        sim.start(flow([{"id": "p", "type": PAUSE, "delay": bad}]))
        sim.run()
        assert sim.state().state == State.FAILED
        assert any(m.startswith("Pause p:") for m in _logs(sim))


def test_a_blank_rendering_means_no_delay_and_resume_gives_typed_on_resume_outputs() -> None:
    sim = Sim()
    spec = [{"id": "n", "type": "INT"}, {"id": "opt", "type": "STRING", "required": False}]
    sim.start(flow([{"id": "p", "type": PAUSE, "delay": "{{ '' }}", "onResume": spec}]))
    sim.run()
    assert sim.state().state == State.PAUSED
    run_id = next(iter(sim.state().task_runs))
    sim.send(Resume(command_id="r1", execution_id="e1", inputs={}))
    assert sim.state().state == State.PAUSED  # refused: n is required
    assert any("missing required input" in m for m in _logs(sim))
    sim.send(Resume(command_id="r2", execution_id="e1", task_run_id=run_id, inputs={"n": "7"}))
    sim.run()
    pause = sim.state().task_runs[run_id]
    assert pause.outputs == {"onResume": {"n": 7, "opt": None}}
    assert sim.state().state == State.SUCCESS


def test_two_parallel_pauses_restart_the_execution_only_when_both_resumed() -> None:
    sim = Sim()
    sim.start(
        flow([{"id": "par", "type": "io.kestra.plugin.core.flow.Parallel",
               "tasks": [{"id": "p1", "type": PAUSE}, {"id": "p2", "type": PAUSE}]}])
    )  # fmt: skip
    sim.run()
    runs = {r.task_id: r.id for r in sim.state().task_runs.values()}
    sim.send(Resume(command_id="r1", execution_id="e1", task_run_id=runs["p1"]))
    assert sim.state().state == State.PAUSED
    sim.send(Resume(command_id="r2", execution_id="e1", task_run_id=runs["p2"]))
    sim.run()
    assert _history(sim.state())[-3:] == ["RESTARTED", "RUNNING", "SUCCESS"]


RESUME = "io.kestra.plugin.core.execution.Resume"


def test_a_resume_task_resumes_its_own_paused_task_with_inputs() -> None:
    sim = Sim()
    pause = {"id": "p", "type": PAUSE, "onResume": [{"id": "ok", "type": "BOOLEAN"}]}
    sim.start(
        flow([{"id": "par", "type": "io.kestra.plugin.core.flow.Parallel",
               "tasks": [pause, {"id": "r", "type": RESUME, "inputs": {"ok": "{{ true }}"}}]}])
    )  # fmt: skip
    sim.run()
    runs = {r.task_id: r for r in sim.state().task_runs.values()}
    assert runs["r"].state == State.SUCCESS
    assert [a.state for a in runs["r"].attempts] == [State.SUCCESS]
    assert runs["p"].outputs == {"onResume": {"ok": True}}
    assert sim.state().state == State.SUCCESS


def test_a_resume_task_targets_another_execution_or_fails_with_kestras_message() -> None:
    sim = Sim()
    sim.start(flow([{"id": "r", "type": RESUME, "executionId": "{{ 'other' }}"}]))
    sim.run(route_children=False)
    assert [(c.type, c.execution_id) for c in sim.outgoing] == [("Resume", "other")]
    for task, message in (
        ({"id": "r", "type": RESUME}, "The execution is not paused"),
        ({"id": "r", "type": RESUME, "namespace": "n"}, "should only be set when `executionId`"),
        ({"id": "r", "type": RESUME, "executionId": "x", "flowId": "f"}, "Both `namespace`"),
    ):
        failed = Sim()
        failed.start(flow([task]))
        failed.run()
        assert failed.state().state == State.FAILED
        assert any(message in m for m in _logs(failed))
