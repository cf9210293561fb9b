"""graphql.Request against a real local HTTP receiver: the JSON payload and headers sent, data and
errors as outputs, failOnGraphQLErrors, a refused status, and encryptBody refused."""

from __future__ import annotations

from typing import Any

from executors.base import TaskContext, TaskOutcome
from tests.unit.api_receiver import run_plugin, serve


async def run(task: dict[str, Any]) -> tuple[TaskOutcome, TaskContext]:
    task = {"id": "q", "type": "io.kestra.plugin.graphql.Request", **task}
    return await run_plugin(task)


async def test_graphql_request() -> None:
    with serve() as api:
        data = {"repository": {"issues": {"edges": [{"node": {"title": "bug"}}]}}}
        api.on("POST", "/graphql", (200, {"data": data}))
        task = {
            "uri": api.url + "/graphql",
            "headers": {"Authorization": "Bearer {{ flow.id }}-token"},
            "query": "query($n: Int) { repository { issues(last: $n) { edges { node { title } } } }"
            " }",
            "variables": {"n": 20},
            "operationName": "",
        }
        outcome, _ = await run(task)
        assert outcome.state == "SUCCESS", outcome.error
        assert api.last.headers["authorization"] == "Bearer f-token"
        assert api.last.headers["content-type"] == "application/json"
        assert api.last.json == {"query": task["query"], "variables": {"n": 20}}
        assert outcome.outputs["body"] == data
        assert outcome.outputs["error"] is None
        assert outcome.outputs["code"] == 200
        assert outcome.outputs["uri"] == api.url + "/graphql"

        errors = [{"message": "Field 'x' doesn't exist"}]
        api.on("POST", "/graphql", (200, {"data": None, "errors": errors}))
        outcome, _ = await run({**task, "operationName": "Issues"})
        assert api.last.json["operationName"] == "Issues"
        assert (outcome.state, outcome.outputs["error"]) == ("SUCCESS", errors)
        outcome, _ = await run({**task, "failOnGraphQLErrors": True})
        assert (
            outcome.error
            == 'GraphQL query failed with errors: [{"message":"Field \'x\' doesn\'t exist"}]'
        )
        api.on("POST", "/graphql", (401, {"message": "Bad credentials"}))
        outcome, _ = await run(task)
        assert outcome.error == (
            "Failed http request with response code '401' and body:\n"
            '{"message": "Bad credentials"}'
        )
        outcome, _ = await run({**task, "encryptBody": True})
        assert (outcome.error or "").startswith("property 'encryptBody': Headwater has no output")
