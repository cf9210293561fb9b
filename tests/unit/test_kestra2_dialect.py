"""Which Kestra flow language a flow is written in, and the mistakes of mixing them: each a
located problem naming both sides."""

from __future__ import annotations

import pytest
import yaml

from engine.flows import FlowValidationError, load_flow
from engine.flows.dialect import V1, V2, dialect_of

HEAD = "id: f\nnamespace: company.team\n"
TASK = "  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n"


@pytest.mark.parametrize(
    ("body", "dialect"),
    [
        ("tasks:\n" + TASK, V1),  # neither: 1.x, valid in both
        ("tasks:\n" + TASK + "    runIf: '{{ true }}'\n", V1),  # runIf is an alias in 2.0
        ("tasks:\n" + TASK + "    when: '{{ true }}'\n", V2),
        (
            "tasks:\n  - id: l\n    type: io.kestra.plugin.core.flow.Loop\n    values: [1]\n"
            "    tasks:\n  " + TASK.replace("\n  ", "\n    "),
            V2,
        ),
        (
            "tasks:\n  - id: l\n    type: io.kestra.plugin.core.flow.ForEach\n    values: [1]\n"
            "    tasks:\n  " + TASK.replace("\n  ", "\n    "),
            V1,
        ),
        ("tasks:\n" + TASK.replace("hi", "\"{{ json('[]') }}\""), V1),
        ("tasks:\n" + TASK.replace("hi", '"{{ x is json }}"'), V1),  # the test is both
        (
            "tasks:\n" + TASK + "triggers:\n  - id: s\n    type: "
            "io.kestra.plugin.core.trigger.Schedule\n    cron: '@daily'\n"
            "    when: '{{ isWeekend(trigger.date) }}'\n",
            V2,
        ),
        ("tasks:\n" + TASK + "checks:\n  - condition: '{{ true }}'\n    message: m\n", V1),
        ("tasks:\n" + TASK + "checks:\n  - when: '{{ true }}'\n    message: m\n", V2),
        (
            "tasks:\n  - id: e\n    type: io.kestra.plugin.core.execution.Exit\n"
            "    state: CANCELLED\n",
            V2,
        ),
        ("tasks:\n  - id: e\n    type: io.kestra.core.tasks.log.Log\n    message: m\n", V1),
    ],
)
def test_a_flow_is_the_dialect_of_what_it_uses(body: str, dialect: str) -> None:
    source = HEAD + body
    load_flow(source)  # valid either way
    assert dialect_of(yaml.safe_load(source)) == dialect


def _problems(source: str) -> list[str]:
    with pytest.raises(FlowValidationError) as caught:
        load_flow(source, "f.yaml")
    return [str(p) for p in caught.value.problems]


def test_mixing_both_dialects_is_one_located_problem_naming_both() -> None:
    problems = _problems(
        HEAD + "pluginDefaults:\n  - type: io.kestra.plugin.core.log.Log\n    values:\n"
        "      level: WARN\ntasks:\n" + TASK + "    when: '{{ true }}'\n"
    )
    assert len(problems) == 1
    problem = problems[0]
    assert problem.startswith("f.yaml:11:5: tasks[0].when:")
    assert "a task's `when` (Kestra 2.0)" in problem
    assert "`pluginDefaults` (Kestra 1.x) at line 3" in problem


@pytest.mark.parametrize(
    ("body", "where", "says"),
    [
        (
            "tasks:\n  - id: l\n    type: io.kestra.plugin.core.flow.Loop\n    values: [1]\n"
            "    items: '{{ inputs.file }}'\n    tasks:\n  " + TASK.replace("\n  ", "\n    "),
            "tasks[0].items",
            "`items` is a property of ForEachItem (Kestra 1.x), not of Loop (Kestra 2.0)",
        ),
        (
            "tasks:\n" + TASK + "    when: '{{ true }}'\n    runIf: '{{ true }}'\n",
            "tasks[0].runIf",
            "`when` (Kestra 2.0) or `runIf` (its Kestra 1.x name), not both",
        ),
        (
            "tasks:\n" + TASK + "triggers:\n  - id: s\n    type: "
            "io.kestra.plugin.core.trigger.Schedule\n    cron: '@daily'\n    when: 'true'\n"
            "    conditions:\n      - type: io.kestra.plugin.core.condition.Weekend\n",
            "triggers[0].conditions",
            "`conditions` (Kestra 1.x) cannot be used with `when` (Kestra 2.0)",
        ),
        (
            "tasks:\n" + TASK + "checks:\n  - when: 'true'\n    condition: 'true'\n"
            "    message: m\n",
            "checks[0].condition",
            "`when` (Kestra 2.0) or `condition` (its Kestra 1.x name), not both",
        ),
        (
            "tasks:\n  - id: l\n    type: io.kestra.plugin.core.flow.ForEach\n    values: [1]\n"
            "    transmitFailed: false\n    tasks:\n  " + TASK.replace("\n  ", "\n    "),
            "tasks[0].transmitFailed",
            "`transmitFailed` is a property of Loop (Kestra 2.0), not of ForEach (Kestra 1.x)",
        ),
    ],
)
def test_a_construct_with_the_other_dialects_property_says_which_is_which(
    body: str, where: str, says: str
) -> None:
    problems = _problems(HEAD + body)
    assert len(problems) == 1, problems
    assert f": {where}: " in problems[0]
    assert says in problems[0]


def test_a_bad_json_schema_fails_the_load() -> None:
    problems = _problems(
        HEAD + "inputs:\n  - id: j\n    type: JSON\n    jsonSchema: '{\"type\": 12}'\n"
        "tasks:\n" + TASK
    )
    assert any("jsonSchema is not a valid JSON Schema" in p for p in problems)
