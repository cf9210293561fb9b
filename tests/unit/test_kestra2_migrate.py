"""``headwater migrate``: what it rewrites, what it keeps as written, what it refuses — and
that a rewritten trigger decides exactly as the original did (over every day of a year)."""

from __future__ import annotations

import pathlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from engine.cli.migrate import app
from engine.flows import flow_to_dict, load_flow
from engine.flows.migrate import migrate_text
from triggers.conditions import schedule_holds
from triggers.flow_trigger import evaluate

HEAD = "id: f\nnamespace: company.team\n"
C = "io.kestra.plugin.core.condition."


def migrated(source: str) -> str:
    result = migrate_text(source)
    assert result.status == "migrated", [str(n) for n in result.manual]
    return result.text


def test_comments_quoting_and_layout_are_kept() -> None:
    source = HEAD + (
        "# why this flow exists\n"
        "tasks:\n"
        "    - id: t   # the only task\n"
        "      type: io.kestra.plugin.core.debug.Return\n"
        "      format: 'a {{ json(\"[1]\")[0] }} b'\n"
        '      runIf: "{{ true }}"\n'
    )
    text = migrated(source)
    assert "# why this flow exists\n" in text
    assert "    - id: t   # the only task\n" in text
    assert "      format: 'a {{ fromJson(\"[1]\")[0] }} b'\n" in text
    assert '      when: "{{ true }}"\n' in text
    assert migrate_text(text).status == "ok"  # idempotent


def test_json_test_and_to_json_filter() -> None:
    text = migrated(
        HEAD + "tasks:\n  - id: t\n    type: io.kestra.plugin.core.debug.Return\n"
        '    format: "{{ x is json }} {{ [1] | json }}"\n'
    )
    assert '"{{ x is json }} {{ [1] | toJson }}"' in text


def test_plugin_defaults_are_inlined_soft_and_forced() -> None:
    text = migrated(
        HEAD
        + """pluginDefaults:
  - type: io.kestra.plugin.core.http
    values:
      method: POST
      headers:
        A: "1"
  - type: io.kestra.plugin.core.http.Request
    forced: true
    values:
      options:
        readTimeout: PT5S
tasks:
  - id: get
    type: io.kestra.plugin.core.http.Request
    uri: http://x
    method: GET
    headers:
      B: "2"
    options:
      readTimeout: PT1M
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: untouched
"""
    )
    task = yaml.safe_load(text)["tasks"][0]
    assert task["method"] == "GET"  # the task's own value wins over a default
    assert task["headers"] == {"B": "2", "A": "1"}  # maps merge
    assert task["options"] == {"readTimeout": "PT5S"}  # a forced default wins
    assert "pluginDefaults" not in yaml.safe_load(text)
    assert flow_to_dict(load_flow(text))["tasks"][0] == {
        **flow_to_dict(load_flow(text))["tasks"][0]
    }


def test_each_parallel_becomes_a_loop_running_its_tasks_side_by_side() -> None:
    text = migrated(
        HEAD
        + """tasks:
  - id: each
    type: io.kestra.core.tasks.flows.EachParallel
    value: '["a", "b"]'
    tasks:
      - id: one
        type: io.kestra.plugin.core.debug.Return
        format: "{{ taskrun.value }}"
      - id: two
        type: io.kestra.plugin.core.debug.Return
        format: "{{ taskrun.value }}!"
"""
    )
    loop = yaml.safe_load(text)["tasks"][0]
    assert loop["type"] == "io.kestra.plugin.core.flow.Loop"
    assert loop["values"] == '["a", "b"]'
    assert loop["concurrencyLimit"] == 0
    (wrapper,) = loop["tasks"]
    assert wrapper["type"] == "io.kestra.plugin.core.flow.Parallel"
    assert [t["format"] for t in wrapper["tasks"]] == ["{{ item.value }}", "{{ item.value }}!"]


def test_a_parent_value_that_does_not_exist_is_refused() -> None:
    # The parent of a loop's direct child is the loop's own run, which has no value at the
    # top level: 1.x fails to render it, and there is nothing to translate it to.
    result = migrate_text(
        HEAD
        + """tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: [a]
    tasks:
      - id: t
        type: io.kestra.plugin.core.debug.Return
        format: "{{ parent.taskrun.value }}"
"""
    )
    assert result.status == "manual"
    assert "has no loop value here" in str(result.manual[0])


def test_nested_loops_map_each_value_to_its_loop() -> None:
    text = migrated(
        HEAD
        + """tasks:
  - id: outer
    type: io.kestra.plugin.core.flow.ForEach
    values: [1, 2]
    tasks:
      - id: inner
        type: io.kestra.plugin.core.flow.ForEach
        values: '["{{ taskrun.value }}a"]'
        tasks:
          - id: out
            type: io.kestra.plugin.core.debug.Return
            format: "{{ parents[0].taskrun.value }}/{{ taskrun.value }}/{{ taskrun.iteration }}"
          - id: read
            type: io.kestra.plugin.core.debug.Return
            format: "{{ outputs.out[parent.taskrun.value][taskrun.value].value }}"
"""
    )
    outer = yaml.safe_load(text)["tasks"][0]
    inner = outer["tasks"][0]
    assert inner["values"] == '["{{ item.value }}a"]'  # rendered in the outer iteration
    out, read = inner["tasks"]
    assert out["format"] == "{{ item.parent.value }}/{{ item.value }}/{{ item.index }}"
    assert read["format"] == "{{ outputs.out.value }}"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            """tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: [a, b]
    tasks:
      - id: t
        type: io.kestra.plugin.core.debug.Return
        format: x
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.t['a'].value }}"
""",
            "reads the outputs of `t`, which runs inside a ForEach",
        ),
        (
            """tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: [a, b]
    tasks:
      - id: t
        type: io.kestra.plugin.core.debug.Return
        format: x
    errors:
      - id: e
        type: io.kestra.plugin.core.log.Log
        message: failed
""",
            "1.x runs it once for the loop, a Loop runs it in every iteration",
        ),
        (
            """tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: [a, b]
    tasks:
      - id: t
        type: io.kestra.plugin.core.debug.Return
        format: "{{ parents }}"
""",
            "`parents` is read as a whole",
        ),
        (
            """tasks:
  - id: items
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{ inputs.file }}"
    subflow:
      namespace: company.team
      flowId: child
""",
            "task type `ForEachItem` has no automatic Kestra 2.0 rewrite",
        ),
    ],
)
def test_what_cannot_be_rewritten_leaves_the_flow_as_it_is(body: str, reason: str) -> None:
    source = (
        HEAD + body + "triggers:\n  - id: s\n    type: io.kestra.plugin.core.trigger.Schedule\n"
        "    cron: '@daily'\n    conditions:\n"
        "      - type: io.kestra.plugin.core.condition.Weekend\n"
    )
    result = migrate_text(source)
    assert result.status == "manual"
    assert result.text == source  # never half a migration
    assert any(reason in str(note) for note in result.manual), [str(n) for n in result.manual]


SCHEDULE_CONDITIONS: list[dict[str, Any]] = [
    {"type": C + "Weekend"},
    {"type": C + "DayWeek", "dayOfWeek": "TUESDAY"},
    {
        "type": C + "DayWeekInMonth",
        "dayOfWeek": "FRIDAY",
        "dayInMonth": "LAST",
    },
    {
        "type": C + "DayWeekInMonth",
        "dayOfWeek": "MONDAY",
        "dayInMonth": "SECOND",
    },
    {"type": C + "PublicHoliday", "country": "FR"},
    {
        "type": C + "Not",
        "conditions": [
            {"type": C + "Weekend"},
            {
                "type": C + "PublicHoliday",
                "country": "DE",
                "subDivision": "BY",
            },
        ],
    },
    {
        "type": C + "Or",
        "conditions": [
            {"type": C + "DayWeek", "dayOfWeek": "MONDAY"},
            {
                "type": C + "Expression",
                "expression": "{{ trigger.date | date('dd') == '15' }}",
            },
        ],
    },
    {
        "type": C + "DateTimeBetween",
        "after": "2024-03-10T00:00:00Z",
        "before": "2024-09-01T12:00:00+02:00",
    },
    {
        "type": C + "TimeBetween",
        "after": "08:00:00Z",
        "before": "17:30:00Z",
    },
    {"type": C + "ExecutionStatus", "in": ["SUCCESS"]},
]


@pytest.mark.parametrize("condition", SCHEDULE_CONDITIONS, ids=lambda c: c["type"].rsplit(".")[-1])
def test_a_migrated_schedule_fires_on_exactly_the_same_dates(condition: dict[str, Any]) -> None:
    before = {
        "id": "s",
        "type": "io.kestra.plugin.core.trigger.Schedule",
        "cron": "0 * * * *",
        "conditions": [condition],
    }
    source = HEAD + "tasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: m\n"
    source += yaml.safe_dump({"triggers": [before]}, sort_keys=False)
    after = yaml.safe_load(migrated(source))["triggers"][0]
    assert "conditions" not in after
    flow_ref = {"id": "f", "namespace": "company.team"}
    moment = datetime(2024, 1, 1, 5, 0, tzinfo=UTC)
    while moment.year == 2024:
        tick = {"date": moment.isoformat().replace("+00:00", "Z"), "next": None, "previous": None}
        assert schedule_holds(after, flow_ref, tick) == schedule_holds(before, flow_ref, tick), tick
        moment += timedelta(hours=19)  # every day, at a different hour


def _summary(flow_id: str, state: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"{flow_id}-{state}",
        "namespace": extra.pop("namespace", "company.team"),
        "flow_id": flow_id,
        "state": state,
        "history": [["CREATED", "t"], [state, "t"]],
        "labels": extra.pop("labels", {}),
        "outputs": extra.pop("outputs", {}),
        "task_runs": extra.pop("task_runs", []),
    }


FLOW_TRIGGERS: list[dict[str, Any]] = [
    {
        "conditions": [
            {
                "type": C + "ExecutionFlow",
                "namespace": "company.team",
                "flowId": "up",
            },
            {
                "type": C + "ExecutionStatus",
                "in": ["FAILED", "WARNING"],
            },
        ]
    },
    {
        "states": ["SUCCESS", "PAUSED"],
        "conditions": [
            {
                "type": C + "ExecutionNamespace",
                "namespace": "company",
                "comparison": "PREFIX",
            },
            {"type": C + "ExecutionLabels", "labels": {"env": "prod"}},
        ],
    },
    {
        "conditions": [
            {
                "type": C + "ExecutionOutputs",
                "expression": "{{ trigger.outputs.rows > 1 }}",
            },
        ]
    },
    {"conditions": [{"type": C + "HasRetryAttempt"}]},
]
UPSTREAM = [
    _summary(flow, state, **extra)
    for flow in ("up", "other")
    for state in ("SUCCESS", "WARNING", "FAILED", "PAUSED", "KILLED")
    for extra in (
        {},
        {"labels": {"env": "prod"}, "outputs": {"rows": 3}},
        {"namespace": "company.sales", "outputs": {"rows": 0}},
        {"task_runs": [{"attempts": [{"state": "FAILED"}, {"state": "SUCCESS"}]}]},
    )
]


@pytest.mark.parametrize("spec", FLOW_TRIGGERS, ids=range(len(FLOW_TRIGGERS)))
def test_a_migrated_flow_trigger_fires_for_exactly_the_same_executions(
    spec: dict[str, Any],
) -> None:
    before = {"id": "t", "type": "io.kestra.plugin.core.trigger.Flow", **spec}
    source = HEAD + "tasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: m\n"
    source += yaml.safe_dump({"triggers": [before]}, sort_keys=False)
    after = yaml.safe_load(migrated(source))["triggers"][0]
    assert "dependsOn" in after
    now = datetime(2024, 6, 1, tzinfo=UTC)
    for summary in UPSTREAM:
        old = evaluate("company.team", "down", before, summary, {}, now).fire
        new = evaluate("company.team", "down", after, summary, {}, now).fire
        assert new == old, (summary, after)


def test_cli_check_exits_1_and_writes_nothing_then_migrates_into_a_directory(
    tmp_path: pathlib.Path,
) -> None:
    flows = tmp_path / "flows"
    (flows / "sub").mkdir(parents=True)
    v1 = (
        HEAD + "tasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: m\n"
        "    runIf: '{{ true }}'\n"
    )
    clean = HEAD + "tasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: m\n"
    (flows / "a.yaml").write_text(v1)
    (flows / "sub" / "b.yml").write_text(clean)
    runner = CliRunner()
    checked = runner.invoke(app, ["--check", str(flows)])
    assert checked.exit_code == 1
    assert f"✎ {flows / 'a.yaml'}" in checked.output
    assert f"✔ {flows / 'sub' / 'b.yml'}" in checked.output
    assert "runIf -> when" in checked.output
    assert (flows / "a.yaml").read_text() == v1
    out = tmp_path / "out"
    done = runner.invoke(app, ["-o", str(out), str(flows)])
    assert done.exit_code == 0, done.output
    assert "when: '{{ true }}'" in (out / "a.yaml").read_text()
    assert (out / "sub" / "b.yml").read_text() == clean
    assert runner.invoke(app, ["--check", str(out)]).exit_code == 0
    in_place = runner.invoke(app, [str(flows / "a.yaml")])
    assert in_place.exit_code == 0
    assert (flows / "a.yaml").read_text() == (out / "a.yaml").read_text()


def test_cli_reports_what_needs_a_hand_and_exits_1(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "f.yaml"
    source = (
        HEAD + "tasks:\n  - id: t\n    type: io.kestra.plugin.core.trigger.Toggle\n"
        "    flowId: x\n    trigger: y\n"
    )
    path.write_text(source)
    result = CliRunner().invoke(app, [str(path)])
    assert result.exit_code == 1
    assert f"⚠ {path}" in result.output
    assert "✗ tasks[0].type: task type `Toggle`" in result.output
    assert path.read_text() == source
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: [unclosed\n")
    assert CliRunner().invoke(app, [str(bad)]).exit_code == 1
