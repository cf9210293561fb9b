"""A table of invalid flows, each with the problem and the place it must be reported at."""

from __future__ import annotations

import pytest

from engine.flows import FlowValidationError, load_flow

HEAD = "id: f\nnamespace: io.kestra.tests\n"

# (name, yaml, [(line, column, path, words the message must contain)])
CASES: list[tuple[str, str, list[tuple[int, int, str, str]]]] = [
    (
        "duplicate task ids, nested and in errors",
        HEAD
        + "tasks:\n"
        + "  - id: a\n"
        + "    type: sequential\n"
        + "    tasks:\n"
        + "      - {id: b, type: log, message: x}\n"
        + "errors:\n"
        + "  - {id: b, type: log, message: y}\n",
        [(9, 10, "errors[0].id", "duplicate task id 'b' (already used at tasks[0].tasks[0])")],
    ),
    (
        "cyclic dag",
        HEAD
        + "tasks:\n"
        + "  - id: dag\n"
        + "    type: io.kestra.plugin.core.flow.Dag\n"
        + "    tasks:\n"
        + "      - task: {id: a, type: log, message: x}\n"
        + "        dependsOn: [c]\n"
        + "      - task: {id: b, type: log, message: x}\n"
        + "        dependsOn: [a]\n"
        + "      - task: {id: c, type: log, message: x}\n"
        + "        dependsOn: [b]\n",
        [(8, 20, "tasks[0].tasks[0].dependsOn", "cycle: a -> c -> b -> a")],
    ),
    (
        "dag depends on an unknown task",
        HEAD
        + "tasks:\n"
        + "  - id: dag\n"
        + "    type: dag\n"
        + "    tasks:\n"
        + "      - task: {id: a, type: log, message: x}\n"
        + "        dependsOn: [nope]\n",
        [(8, 21, "tasks[0].tasks[0].dependsOn[0]", "'nope' is not a task of this Dag")],
    ),
    (
        "bad input type",
        HEAD + "inputs:\n  - id: x\n    type: STRNG\ntasks:\n  - {id: a, type: log, message: x}\n",
        [(5, 11, "inputs[0].type", "unknown input type 'STRNG'; did you mean 'STRING'?")],
    ),
    (
        "a typo in a Dag entry's task: the task's own properties are suggested",
        HEAD
        + "tasks:\n"
        + "  - id: dag\n"
        + "    type: dag\n"
        + "    tasks:\n"
        + "      - task: {id: a, type: log, mesage: x}\n",
        [
            (7, 15, "tasks[0].tasks[0].task.message", "missing required property 'message'"),
            (7, 34, "tasks[0].tasks[0].task.mesage", "did you mean 'message'?"),
        ],
    ),
    (
        "unknown task type with a suggestion",
        HEAD + "tasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Lag\n    message: x\n",
        [(5, 11, "tasks[0].type", "did you mean 'io.kestra.plugin.core.log.Log'")],
    ),
    (
        "unknown property with a suggestion",
        HEAD + "tasks:\n  - id: a\n    type: log\n    mesage: x\n",
        [
            (4, 5, "tasks[0].message", "missing required property 'message'"),
            (6, 5, "tasks[0].mesage", "unknown property 'mesage'; did you mean 'message'?"),
        ],
    ),
    (
        "a Kestra property we do not provide is not called a typo",
        HEAD + "tasks:\n  - id: a\n    type: log\n    message: x\n    assets: {outputs: []}\n",
        [
            (
                7,
                5,
                "tasks[0].assets",
                "'assets' is a Kestra property that Headwater does not provide: asset lineage",
            )
        ],
    ),
    (
        "bad cron and bad time zone",
        HEAD
        + "tasks:\n  - {id: a, type: log, message: x}\n"
        + "triggers:\n"
        + "  - id: s\n"
        + "    type: schedule\n"
        + "    cron: '0 25 * * *'\n"
        + "    timezone: Europe/Atlantis\n",
        [
            (8, 11, "triggers[0].cron", "hour value '25' out of range 0-23"),
            (9, 15, "triggers[0].timezone", "IANA time zone"),
        ],
    ),
    (
        "cron with a wrong number of fields",
        HEAD + "tasks:\n  - {id: a, type: log, message: x}\n"
        "triggers:\n  - {id: s, type: schedule, cron: '* * *'}\n",
        [(6, 35, "triggers[0].cron", "5 fields (6 with seconds) or a macro like @daily; it has 3")],
    ),
    (
        "bad durations",
        HEAD
        + "tasks:\n"
        + "  - id: a\n"
        + "    type: sleep\n"
        + "    duration: 5 seconds\n"
        + "    timeout: PT\n"
        + "    retry: {type: constant, interval: 1h}\n",
        [
            (6, 15, "tasks[0].duration", "ISO-8601 duration"),
            (7, 14, "tasks[0].timeout", "ISO-8601 duration"),
            (8, 39, "tasks[0].retry.interval", "ISO-8601 duration"),
        ],
    ),
    (
        "missing id and namespace",
        "tasks:\n  - {id: a, type: log, message: x}\n",
        [
            (1, 1, "id", "missing required property 'id'"),
            (1, 1, "namespace", "missing required property 'namespace'"),
        ],
    ),
    (
        "bad flow id",
        "id: -bad id\nnamespace: n\ntasks:\n  - {id: a, type: log, message: x}\n",
        [(1, 5, "id", "invalid value '-bad id'")],
    ),
    (
        "bad YAML syntax",
        HEAD + "tasks:\n  - id: a\n    type: log\n   message: x\n",
        [(6, 4, "", "invalid YAML")],
    ),
    (
        "unterminated quote: reported where it opens, not at the end of the file",
        HEAD + 'tasks:\n  - id: a\n    type: log\n    message: "oops\n'
        "  - id: b\n    type: log\n    message: fine\n",
        [(6, 14, "", "invalid YAML: found unexpected end of stream")],
    ),
    (
        "duplicate YAML key",
        HEAD + "tasks:\n  - id: a\n    type: log\n    message: x\n    message: y\n",
        [(7, 5, "message", "duplicate key 'message' (first defined on line 6)")],
    ),
    (
        "subflow without its target",
        HEAD + "tasks:\n  - id: s\n    type: subflow\n    namespace: io.kestra.tests\n",
        [(4, 5, "tasks[0].flowId", "missing required property 'flowId'")],
    ),
    (
        "int property given a word",
        HEAD
        + "tasks:\n  - id: p\n    type: parallel\n    concurrent: many\n"
        + "    tasks: [{id: a, type: log, message: x}]\n",
        [(6, 17, "tasks[0].concurrent", "expected an integer or an expression")],
    ),
    (
        "concurrency behavior",
        HEAD
        + "concurrency: {limit: 0, behavior: DROP}\ntasks:\n  - {id: a, type: log, message: x}\n",
        [
            (3, 22, "concurrency.limit", "expected a limit of at least 1"),
            (3, 35, "concurrency.behavior", "'QUEUE', 'CANCEL' or 'FAIL'"),
        ],
    ),
    (
        "task without a type",
        HEAD + "tasks:\n  - id: a\n    message: x\n",
        [(4, 5, "tasks[0]", "missing required property 'type'")],
    ),
]


@pytest.mark.parametrize(("name", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_invalid_flow_is_reported_where_it_is(
    name: str, text: str, expected: list[tuple[int, int, str, str]]
) -> None:
    with pytest.raises(FlowValidationError) as caught:
        load_flow(text, "flow.yaml")
    got = [(p.line, p.column, p.path, str(p)) for p in caught.value.problems]
    assert len(got) == len(expected), "\n".join(g[3] for g in got)
    for (line, column, path, words), problem in zip(expected, got, strict=True):
        assert problem[:3] == (line, column, path), problem[3]
        assert words in problem[3]
        assert problem[3].startswith(f"flow.yaml:{line}:{column}: ")


def test_all_problems_are_reported_at_once() -> None:
    text = (
        HEAD
        + "tasks:\n"
        + "  - {id: a, type: lgo, message: x}\n"
        + "  - {id: a, type: sleep, duration: soon}\n"
        + "  - {id: c, type: log, message: x, colour: red}\n"
    )
    with pytest.raises(FlowValidationError) as caught:
        load_flow(text, "f.yaml")
    problems = caught.value.problems
    assert [p.line for p in problems] == [4, 5, 5, 6]
    message = str(caught.value)
    assert message.splitlines()[0] == "invalid flow: 4 problems"
    assert "unknown task type 'lgo'; did you mean 'log'" in message
    assert "duplicate task id 'a'" in message
    assert "unknown property 'colour'" in message
    assert caught.value.flow_id == "f"
    assert caught.value.to_dict()["problems"][0]["line"] == 4


def test_on_yes_and_no_are_text_as_kestra_reads_yaml() -> None:
    """YAML 1.2 booleans only: a polling trigger's ``on:`` is a key, ``yes`` a string."""
    from engine.flows.yaml_marks import load_marked

    data = load_marked("on: CREATE\nflag: yes\noff: no\nreal: true\nfalse_: FALSE\n").data
    assert data == {"on": "CREATE", "flag": "yes", "off": "no", "real": True, "false_": False}
    flow = load_flow(
        HEAD
        + "tasks:\n  - {id: a, type: log, message: x}\n"
        + "triggers:\n"
        + "  - id: watch\n    type: io.kestra.plugin.gcp.gcs.Trigger\n"
        + "    from: gs://bucket/in/\n    on: CREATE\n",
        "f.yaml",
    )
    assert flow.triggers[0].on == "CREATE"  # type: ignore[union-attr]
