"""The ``trigger`` variable and the execution's ``trigger`` field, per trigger type, as Kestra
fills them (RunVariables, ExecutionTrigger, Webhook/Flow/Schedule.evaluate,
ExecutableUtils.subflowExecution)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.reducer.model import StartExecution
from engine.reducer.trigger import execution_variables, trigger_variables
from tests.unit.test_reducer_support import Sim, flow, log
from triggers import webhook as hook
from triggers.cron import parse_cron
from triggers.flow_trigger import evaluate
from triggers.model import TriggerRef
from triggers.schedule import variables as schedule_variables
from triggers.start import build_start

NOW = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
WEBHOOK = {"id": "hook", "type": "io.kestra.plugin.core.trigger.Webhook", "key": "k"}


def _context_of(sim: Sim, task_id: str) -> dict[str, Any]:
    return next(j.context for j in sim.jobs if j.task["id"] == task_id)


def test_webhook_trigger_is_kestras_execution_trigger_and_only_variables_are_exposed() -> None:
    f = flow([log("a")], triggers=[WEBHOOK])
    result = hook.webhook_start(
        "ns", "f", f, WEBHOOK,
        body=b'{"id": 41}', headers=[("content-type", "application/json")],
        parameters=[("p", "1")], now=NOW,
    )  # fmt: skip
    cmd = result.command
    assert cmd is not None
    assert cmd.trigger == {
        "id": "hook",
        "type": "io.kestra.plugin.core.trigger.Webhook",
        "variables": {
            "body": {"id": 41},
            "headers": {"Content-Type": ["application/json"]},
            "parameters": {"p": ["1"]},
        },
    }
    sim = Sim()
    sim.start(f, trigger=cmd.trigger)
    sim.run()
    seen = _context_of(sim, "a")["trigger"]
    assert seen == cmd.trigger["variables"]
    assert "type" not in seen  # Kestra: the trigger's id and type are not variables
    assert "id" not in seen


def test_webhook_body_that_is_not_an_object_or_array_stays_text() -> None:
    assert hook.variables(b"42", [], [])["body"] == "42"
    assert hook.variables(b"[1, 2]", [], [])["body"] == [1, 2]
    assert hook.variables(b"not json", [], [])["body"] == "not json"
    assert hook.variables(b"", [], [])["body"] is None


def test_flow_trigger_variables_are_kestras_five_and_inputs_see_the_upstream() -> None:
    summary = {
        "id": "up-1",
        "namespace": "company",
        "flow_id": "up",
        "revision": 4,
        "state": "SUCCESS",
        "history": [["CREATED", "t"], ["RUNNING", "t"], ["SUCCESS", "t"]],
        "inputs": {"who": "ada"},
        "labels": {"team": "a"},
        "outputs": {"total": 3},
        "task_outputs": {"t": {"value": "v"}},
    }
    trigger = {
        "id": "listen",
        "type": "io.kestra.plugin.core.trigger.Flow",
        "inputs": {
            "a": "{{ outputs.t.value }}",
            "b": "{{ trigger.outputs.total }}",
            "c": "{{ inputs.who }}",
        },
    }
    outcome = evaluate("company", "down", trigger, summary, {}, NOW)
    assert outcome.fire
    assert outcome.variables == {
        "executionId": "up-1",
        "namespace": "company",
        "flowId": "up",
        "flowRevision": 4,
        "state": "SUCCESS",
    }
    down = flow([log("x")], triggers=[trigger])
    cmd, problem = build_start(
        TriggerRef("company", "down", "listen"), down, trigger, outcome.coordinates,
        outcome.variables, NOW, render_scope=outcome.scope,
    )  # fmt: skip
    assert problem is None
    assert cmd.inputs == {"a": "v", "b": "3", "c": "ada"}
    assert cmd.trigger is not None
    assert cmd.trigger["type"] == "io.kestra.plugin.core.trigger.Flow"


def test_flow_trigger_fires_on_any_listed_state_never_created_nor_its_own_flow() -> None:
    running = {
        "id": "u",
        "namespace": "n",
        "flow_id": "up",
        "state": "RUNNING",
        "history": [[]] * 2,
    }
    assert not evaluate("n", "down", {}, running, {}, NOW).fire  # default: terminal states
    assert evaluate("n", "down", {"states": ["RUNNING"]}, running, {}, NOW).fire
    paused = {**running, "state": "PAUSED", "history": [[]] * 3}
    assert evaluate("n", "down", {"states": ["PAUSED"]}, paused, {}, NOW).fire
    created = {**running, "state": "CREATED"}
    assert not evaluate("n", "down", {"states": ["CREATED"]}, created, {}, NOW).fire
    own = {**running, "flow_id": "down"}
    assert not evaluate("n", "down", {"states": ["RUNNING"]}, own, {}, NOW).fire


def test_schedule_dates_are_iso_with_z_and_the_execution_keeps_them_as_schedule() -> None:
    cron = parse_cron("0 * * * *")
    tick = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    dates = schedule_variables(cron, tick)
    assert dates == {
        "date": "2025-03-01T10:00:00Z",
        "next": "2025-03-01T11:00:00Z",
        "previous": "2025-03-01T09:00:00Z",
    }
    trigger = {"id": "s", "type": "io.kestra.plugin.core.trigger.Schedule", "variables": dates}
    assert trigger_variables(trigger) == dates
    assert execution_variables(trigger) == {"schedule": dates}


def test_subflow_child_trigger_names_the_task_and_the_parent() -> None:
    sim = Sim()
    parent = flow([{"id": "call", "type": "io.kestra.plugin.core.flow.Subflow", "namespace": "ns",
                    "flowId": "child"}], revision=7)  # fmt: skip
    sim.start(parent)
    sim.run(route_children=False)
    (start,) = sim.outgoing
    assert isinstance(start, StartExecution)
    assert start.trigger == {
        "id": "call",
        "type": "io.kestra.plugin.core.flow.Subflow",
        "variables": {"executionId": "e1", "namespace": "ns", "flowId": "f", "flowRevision": 7},
    }


def test_a_legacy_trigger_of_bare_variables_still_reads() -> None:
    assert trigger_variables({"body": 1}) == {"body": 1}
    assert trigger_variables(None) is None
    assert execution_variables({"body": 1}) == {}


def test_trigger_inputs_that_do_not_render_fail_the_execution_with_the_message() -> None:
    trigger = {"id": "listen", "type": "io.kestra.plugin.core.trigger.Flow",
               "inputs": {"x": "{{ trigger.nope.deeper }}"}}  # fmt: skip
    down = flow([log("a")], triggers=[trigger])
    cmd, problem = build_start(
        TriggerRef("ns", "down", "listen"), down, trigger, "c", {"executionId": "u"}, NOW,
        render_scope={"trigger": {"outputs": {}}},
    )  # fmt: skip
    assert problem is not None
    cmd.error = f"trigger 'listen': {problem}"  # what the runtime does with the problem
    sim = Sim()
    sim.queue.append(cmd)
    sim.run()
    state = sim.states[cmd.execution_id]
    assert state.state.value == "FAILED"
    assert not state.task_runs
    logs = [e.payload for d in sim.decisions for e in d.events if e.type == "LogEmitted"]
    assert any(p["level"] == "ERROR" and "input 'x'" in p["message"] for p in logs)
