"""The run variables Kestra gives every expression (RunVariables.DefaultBuilder,
RunContextCache): envs, globals, tasks."""

from __future__ import annotations

from engine.reducer.decide import decide, run_env
from engine.reducer.model import StartExecution
from tests.unit.test_reducer_support import EPOCH, Sim, flow, log


def test_run_env_takes_prefixed_environment_variables_lower_cased_minus_redacted() -> None:
    environ = {"KESTRA_MY_VAR": "1", "KESTRA_CONFIGURATION": "secret", "OTHER": "x"}
    env = run_env(environ, "KESTRA_", ["KESTRA_CONFIGURATION"], {"team": {"size": 3}})
    assert env == {"envs": {"my_var": "1"}, "globals": {"team": {"size": 3}}}


def test_envs_and_globals_are_always_variables() -> None:
    start = StartExecution(
        command_id="c", execution_id="e", namespace="ns", flow_id="f", flow=flow([log("a")])
    )
    decision = decide(None, start, EPOCH, env={"envs": {"x": "1"}, "globals": {"g": 2}})
    (job,) = decision.jobs
    assert job.context["envs"] == {"x": "1"}
    assert job.context["globals"] == {"g": 2}
    bare = decide(None, start, EPOCH)
    assert (bare.jobs[0].context["envs"], bare.jobs[0].context["globals"]) == ({}, {})


def test_tasks_holds_each_tasks_state_by_loop_value() -> None:
    sim = Sim()
    sim.start(
        flow(
            [
                log("a"),
                {"id": "each", "type": "io.kestra.plugin.core.flow.ForEach", "values": ["x", "y"],
                 "tasks": [log("in")]},
                log("last", message="{{ tasks.a.state }}"),
            ]
        )
    )  # fmt: skip
    sim.run()
    assert "tasks" not in next(j.context for j in sim.jobs if j.task["id"] == "a")
    tasks = next(j.context for j in sim.jobs if j.task["id"] == "last")["tasks"]
    assert tasks["a"] == {"state": "SUCCESS"}
    assert tasks["in"] == {"x": {"state": "SUCCESS"}, "y": {"state": "SUCCESS"}}
    assert tasks["last"] == {"state": "CREATED"}


def test_if_outputs_its_evaluation_result() -> None:
    sim = Sim()
    sim.start(
        flow([{"id": "if", "type": "io.kestra.plugin.core.flow.If", "condition": "{{ 1 > 2 }}",
               "then": [log("yes")], "else": [log("no")]}])
    )  # fmt: skip
    sim.run()
    run = next(r for r in sim.state().task_runs.values() if r.task_id == "if")
    assert run.outputs == {"evaluationResult": False}


def test_parents_lists_each_parent_with_a_value_or_outputs_closest_first() -> None:
    sim = Sim()
    sim.start(
        flow([{"id": "each", "type": "io.kestra.plugin.core.flow.ForEach", "values": ["v"],
               "tasks": [{"id": "if", "type": "io.kestra.plugin.core.flow.If",
                          "condition": "true", "then": [log("in")]}]},
              log("top")])
    )  # fmt: skip
    sim.run()
    inner = next(j.context for j in sim.jobs if j.task["id"] == "in")
    # The If (inside the loop: the loop value, and its outputs); the ForEach run itself has
    # neither a value nor outputs, so it is not listed.
    assert inner["parents"] == [{"taskrun": {"value": "v"}, "outputs": {"evaluationResult": True}}]
    assert inner["parent"] == inner["parents"][0]
    top = next(j.context for j in sim.jobs if j.task["id"] == "top")
    assert top["parents"] == []
    assert "parent" not in top
