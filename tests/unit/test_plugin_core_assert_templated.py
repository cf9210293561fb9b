"""execution.Assert and templating.TemplatedTask run by a registry holding the core tasks, the
HTTP Download and every plugin: the errors and logs Assert gives, and a templated Download
against a real local HTTP server (storage on disk), a templated Return, and refused specs."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from engine.stores.storage import LocalStorage, TaskLocation
from executors.base import TaskContext, TaskOutcome
from executors.registry import add_plugins, core_registry
from tests.unit.api_receiver import http_server

VARS: dict[str, Any] = {
    "flow": {"id": "f", "namespace": "company.team"},
    "execution": {"id": "e1"},
    "inputs": {"param": "ok", "prop": "uri"},
}


def registry() -> Any:
    return add_plugins(core_registry())


async def run(task: dict[str, Any], tmp_path: Path) -> tuple[TaskOutcome, TaskContext]:
    reg = registry()
    storage = LocalStorage(tmp_path / "storage")
    ctx = TaskContext.for_job(
        execution_id="e1",
        task_run_id="r1",
        attempt=1,
        task=task,
        variables=VARS,
        storage=storage.for_task(TaskLocation("company.team", "f", "e1", task["id"], "r1")),
        working_dir=str(tmp_path / "work"),
        registry=reg,
    )
    return await reg.run(task, ctx), ctx


def errors(ctx: TaskContext) -> list[str]:
    return [line.message for line in ctx.logs if line.level == "ERROR"]


ASSERT = "io.kestra.plugin.core.execution.Assert"


async def test_assert_passes_when_every_condition_holds(tmp_path: Path) -> None:
    task = {"id": "a", "type": ASSERT, "conditions": ["{{ inputs.param == 'ok' }}", "yes"]}
    outcome, ctx = await run(task, tmp_path)
    assert outcome.state == "SUCCESS"
    assert outcome.metrics == {"success": 2, "failed": 0}
    assert errors(ctx) == []


async def test_assert_counts_false_and_unrenderable_conditions(tmp_path: Path) -> None:
    conditions = ["{{ inputs.param == 'ok' }}", "{{ 1 + 1 == 3 }}", "0", "{{ nope.x }}"]
    task = {"id": "a", "type": ASSERT, "conditions": conditions, "errorMessage": "in {{ flow.id }}"}
    outcome, ctx = await run(task, tmp_path)
    assert outcome.state == "FAILED"
    assert outcome.error == "3 assertions failed!\nin f"
    assert errors(ctx)[:2] == ["Assertion `{{ 1 + 1 == 3 }}` failed!", "Assertion `0` failed!"]
    assert errors(ctx)[2].startswith("Assertion `{{ nope.x }}` failed, failed to render `")
    one = {"id": "a", "type": ASSERT, "conditions": ["false"]}
    outcome, _ = await run(one, tmp_path)
    assert outcome.error == "1 assertion failed!"


class _Files(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"a,b\n1,2\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    with http_server(_Files) as httpd:
        yield f"http://127.0.0.1:{httpd.server_port}"


TEMPLATED = "io.kestra.plugin.core.templating.TemplatedTask"


async def test_templated_download_runs_the_rendered_task(server: str, tmp_path: Path) -> None:
    spec = "type: io.kestra.plugin.core.http.Download\n{{ inputs.prop }}: " + server + "/d.csv\n"
    outcome, _ = await run({"id": "tpl", "type": TEMPLATED, "spec": spec}, tmp_path)
    assert outcome.state == "SUCCESS", outcome.error
    uri = outcome.outputs["uri"]
    assert uri.startswith("kestra:///company/team/f/executions/e1/tasks/tpl/r1/")
    assert LocalStorage(tmp_path / "storage").local_path_sync(uri).read_bytes() == b"a,b\n1,2\n"


async def test_templated_core_task_and_its_failure(tmp_path: Path) -> None:
    spec = "id: inner\ntype: io.kestra.core.tasks.debugs.Return\nformat: '{{ '{{' }} flow.id }}'\n"
    outcome, _ = await run({"id": "tpl", "type": TEMPLATED, "spec": spec}, tmp_path)
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {"value": "f"}
    spec = "type: io.kestra.plugin.core.execution.Fail\nerrorMessage: inner failure\n"
    outcome, ctx = await run({"id": "tpl", "type": TEMPLATED, "spec": spec}, tmp_path)
    assert outcome.state == "FAILED"
    assert outcome.error == "inner failure"
    assert errors(ctx) == ["inner failure"]


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        (
            "type: io.kestra.plugin.core.flow.Sequential\ntasks: []\n",
            "The templated task must be a runnable task",
        ),
        (
            f"type: {TEMPLATED}\nspec: x\n",
            f"The templated task cannot be of type '{TEMPLATED}'",
        ),
        ("just text", "property 'spec' must render to the YAML map of one task with a type"),
        ("type: [unclosed", "property 'spec' is not valid YAML"),
    ],
)
async def test_templated_specs_that_are_refused(spec: str, error: str, tmp_path: Path) -> None:
    outcome, _ = await run({"id": "tpl", "type": TEMPLATED, "spec": spec}, tmp_path)
    assert outcome.state == "FAILED"
    assert (outcome.error or "").startswith(error)


async def test_templated_invalid_task_names_the_property(tmp_path: Path) -> None:
    spec = "type: io.kestra.plugin.core.http.Download\nuri: http://x\nbogus: 1\n"
    outcome, _ = await run({"id": "tpl", "type": TEMPLATED, "spec": spec}, tmp_path)
    assert outcome.state == "FAILED"
    assert (outcome.error or "").startswith("the templated task is invalid: bogus")
