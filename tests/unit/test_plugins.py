"""The plugin platform: a third-party package adds a type through the ``headwater.plugins``
entry point and it validates, appears in the schema and ``plugins list``, and runs; types we do
not provide are said to be Kestra plugins; blueprint ``extend:`` blocks are ignored.

The third-party package is a real distribution on ``sys.path`` (a module plus a
``.dist-info`` with ``entry_points.txt``), seen by a fresh interpreter, as pip would leave it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.flows import FlowValidationError, load_flow

PLUGIN_MODULE = '''
from typing import Any, ClassVar, Literal

from executors.base import TaskContext
from executors.plugin import TaskPlugin, render_int
from schemas.flow.common import IntOrExpr, Str


class Repeat(TaskPlugin):
    """Repeat a text a number of times."""

    family: ClassVar[str] = "acme"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.acme.OldRepeat",)

    type: Literal["io.kestra.plugin.acme.Repeat"]
    text: Str
    times: IntOrExpr = 2

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        text = ctx.render_str(self.text)
        times = render_int(ctx, self.times, "times")
        ctx.log("INFO", f"repeating {times} times")
        return {"value": text * times}


PLUGINS = [Repeat]
'''

FLOW = """
id: repeat
namespace: acme
tasks:
  - id: r
    type: io.kestra.plugin.acme.OldRepeat
    text: "{{ inputs.word }}"
    times: 3
"""

RUN = """
import asyncio, json, sys
from engine.flows import load_flow, flow_to_dict
from executors.base import TaskContext
from executors.registry import Registry, add_plugins

flow = flow_to_dict(load_flow(sys.stdin.read()))
task = flow["tasks"][0]
ctx = TaskContext.for_job(
    execution_id="e", task_run_id="t", attempt=0, task=task,
    variables={"flow": {"id": "repeat", "namespace": "acme"}, "inputs": {"word": "ab"}},
)
outcome = asyncio.run(add_plugins(Registry()).run(task, ctx))
print(json.dumps({"type": task["type"], "state": outcome.state, "outputs": outcome.outputs,
                  "logs": [line.message for line in ctx.logs]}))
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A directory holding an installed third-party plugin distribution and a broken one."""
    (tmp_path / "acme_headwater.py").write_text(PLUGIN_MODULE)
    info = tmp_path / "acme_headwater-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-headwater\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[headwater.plugins]\nacme = acme_headwater\nbroken = acme_missing_module\n"
    )
    return tmp_path


def _python(site: Path, code: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.getcwd()}"}
    return subprocess.run(
        [sys.executable, "-c", code],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _cli(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _python(
        site,
        f"import sys; sys.argv = ['headwater', *{list(args)!r}]\n"
        "from engine.cli import main; main()",
    )


def test_an_entry_point_plugin_validates_and_runs_under_its_alias(site: Path) -> None:
    done = _python(site, RUN, stdin=FLOW)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result == {
        "type": "io.kestra.plugin.acme.Repeat",  # the alias was normalized to the canonical name
        "state": "SUCCESS",
        "outputs": {"value": "ababab"},
        "logs": ["repeating 3 times"],
    }


def test_plugins_list_shows_the_plugin_and_reports_the_broken_one(site: Path) -> None:
    done = _cli(site, "plugins", "list", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["type"]: row for row in json.loads(done.stdout)}
    assert rows["io.kestra.plugin.acme.Repeat"] == {
        "type": "io.kestra.plugin.acme.Repeat",
        "kind": "runnable",
        "provider": "acme-headwater",
        "aliases": ["io.kestra.plugin.acme.OldRepeat"],
        "description": "Repeat a text a number of times.",
    }
    assert rows["io.kestra.plugin.core.log.Log"]["provider"] == "core"
    assert "warning: plugin not loaded: acme_missing_module (acme-headwater)" in done.stderr


def test_the_plugin_is_in_the_json_schema(site: Path) -> None:
    done = _python(
        site,
        "import json; from schemas.flow.jsonschema import flow_json_schema;"
        "print(json.dumps(flow_json_schema()))",
    )
    assert done.returncode == 0, done.stderr
    defs = json.loads(done.stdout)["$defs"]
    repeat = defs["Repeat"]
    assert repeat["properties"]["type"]["enum"][:1] == ["io.kestra.plugin.acme.Repeat"]
    assert "io.kestra.plugin.acme.OldRepeat" in repeat["properties"]["type"]["enum"]
    assert repeat["required"] == ["id", "type", "text"]


def test_a_wrong_property_of_a_plugin_is_located(site: Path) -> None:
    bad = FLOW.replace("times: 3", "times: many")
    code = (
        "import sys\nfrom engine.flows import load_flow, FlowValidationError\n"
        "try:\n    load_flow(sys.stdin.read(), 'f.yaml')\n"
        "except FlowValidationError as e:\n    print('\\n'.join(str(p) for p in e.problems))"
    )
    done = _python(site, code, stdin=bad)
    assert done.stdout.strip() == (
        "f.yaml:8:12: tasks[0].times: invalid value 'many' (expected an integer or an expression)"
    )


HEAD = "id: f\nnamespace: acme\n"


def _problems(text: str) -> list[str]:
    with pytest.raises(FlowValidationError) as caught:
        load_flow(text, "f.yaml")
    return [str(p) for p in caught.value.problems]


def test_a_kestra_plugin_we_do_not_provide_is_said_to_be_one_once_per_type() -> None:
    text = HEAD + textwrap.dedent("""\
        tasks:
          - id: q1
            type: io.kestra.plugin.jdbc.oracle.Queries
            sql: select 1
          - id: q2
            type: io.kestra.plugin.jdbc.oracle.Queries
            sql: select 2
        """)
    problems = _problems(text)
    assert len(problems) == 1, problems
    assert problems[0].startswith(
        "f.yaml:5:11: tasks[0].type: 'io.kestra.plugin.jdbc.oracle.Queries' is a Kestra "
        "plugin that Headwater does not provide (of jdbc, Headwater provides jdbc.duckdb, "
    )
    assert "did you mean" not in problems[0]


def test_the_hint_names_what_we_provide_of_the_same_family() -> None:
    from schemas.types import unknown_type_problem

    ee, is_plugin = unknown_type_problem("io.kestra.plugin.ee.nutanix.ahv.CreateVm", "task", [])
    assert is_plugin
    assert "Enterprise Edition" in ee
    other, _ = unknown_type_problem("io.kestra.plugin.acme.queue.Push", "task", [])
    assert other.endswith("packages Headwater provides)")
    assert "acme" not in other.split("(")[1]
    aws, _ = unknown_type_problem("io.kestra.plugin.aws.ecr.GetAuthToken", "task", [])
    assert "of aws, Headwater provides aws.athena," in aws
    assert "jdbc" not in aws
    core, _ = unknown_type_problem("io.kestra.plugin.core.execution.Count", "task", [])
    assert "(not one of the core types Headwater provides;" in core


def test_unknown_types_nested_in_conditions_are_reported_too() -> None:
    text = HEAD + textwrap.dedent("""\
        tasks:
          - {id: a, type: io.kestra.plugin.core.log.Log, message: hi}
        triggers:
          - id: t
            type: io.kestra.plugin.acme.queue.Trigger
            conditions:
              - type: io.kestra.plugin.core.condition.ExecutionStatus
                in: [SUCCESS]
              - type: io.kestra.plugin.acme.condition.Holiday
        """)
    problems = _problems(text)
    assert [p.split(": ", 2)[:2] for p in problems] == [
        ["f.yaml:7:11", "triggers[0].type"],
        ["f.yaml:11:15", "triggers[0].conditions[1].type"],
    ], problems
    assert "'io.kestra.plugin.acme.queue.Trigger' is a Kestra plugin" in problems[0]
    assert "'io.kestra.plugin.acme.condition.Holiday' is a Kestra plugin" in problems[1]


def test_a_misspelt_core_type_is_still_a_typo() -> None:
    problems = _problems(HEAD + "tasks:\n  - {id: a, type: io.kestra.plugin.core.log.Lgo}\n")
    assert problems == [
        "f.yaml:4:19: tasks[0].type: unknown task type 'io.kestra.plugin.core.log.Lgo'; did you "
        "mean 'io.kestra.plugin.core.log.Log'? (expected a known task type)"
    ]


def test_a_blueprint_extend_block_is_ignored() -> None:
    text = HEAD + textwrap.dedent("""\
        tasks:
          - {id: a, type: io.kestra.plugin.core.log.Log, message: hi}
        extend:
          title: Hello
          tags: [Getting Started]
          ee: false
          demo: true
          meta_description: a blueprint
        """)
    flow = load_flow(text, "f.yaml")
    assert flow.id == "f"
    assert "extend" not in flow.model_dump(exclude_none=True)


@pytest.mark.parametrize("first", ["schemas.flow.jsonschema", "executors.registry", "engine.cli"])
def test_every_builtin_plugin_loads_whatever_a_process_imports_first(first: str) -> None:
    # A built-in plugin that imports engine.flows (which imports the flow model, which is being
    # built from the plugins) failed only when the flow model was imported first: the type
    # vanished from that process's schema and registry, with one line in plugin_errors().
    code = (
        f"import {first}\n"
        "from schemas.plugins import plugin_errors, plugins\n"
        "print(len(plugins()))\n"
        "for line in plugin_errors(): print(line)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.splitlines()
    assert int(out[0]) > 300
    assert out[1:] == []
