"""GitHub's workflow dispatch and repository search against a real local HTTP receiver: the calls
the github-api library makes (repository, workflow, dispatch; search pages followed through
``Link`` headers, open pull requests counted per repository) and the fetch types."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.stores.storage import LocalStorage
from executors import ion
from executors.base import TaskContext, TaskOutcome
from tests.unit.api_receiver import Answer, Request, run_plugin, serve

TOKEN = "ghp_T0KEN"


async def run(
    task: dict[str, Any], tmp_path: Path | None = None
) -> tuple[TaskOutcome, TaskContext]:
    return await run_plugin({"id": "t", **task}, storage_dir=tmp_path)


async def test_run_workflow_dispatches() -> None:
    with serve() as api:
        api.on("GET", "/repos/acme/app", (200, {"full_name": "acme/app"}))
        api.on(
            "GET",
            "/repos/acme/app/actions/workflows/deploy.yml",
            (200, {"id": 161335, "name": "Deploy"}),
        )
        api.on("POST", "/repos/acme/app/actions/workflows/161335/dispatches", (204, ""))
        task = {
            "type": "io.kestra.plugin.github.actions.RunWorkflow",
            "oauthToken": TOKEN,
            "endpoint": api.url,
            "repository": "acme/app",
            "workflowId": "deploy.yml",
            "ref": "main",
            "inputs": {"triggered_by": "kestra", "execution": "{{ flow.id }}"},
        }
        outcome, _ = await run(task)
        assert outcome.state == "SUCCESS", outcome.error
        assert outcome.outputs == {}
        assert [r.target for r in api.requests][
            -1
        ] == "POST /repos/acme/app/actions/workflows/161335/dispatches"
        assert api.last.json == {
            "ref": "main",
            "inputs": {"triggered_by": "kestra", "execution": "f"},
        }
        assert api.last.headers["authorization"] == f"token {TOKEN}"
        api.on(
            "GET", "/repos/acme/app/actions/workflows/deploy.yml", (404, {"message": "Not Found"})
        )
        outcome, _ = await run(task)
        assert outcome.error == (
            "GitHub: GET /repos/acme/app/actions/workflows/deploy.yml failed with HTTP 404: "
            '{"message": "Not Found"}'
        )


def repo(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "full_name": f"acme/{name}",
        "html_url": f"https://github.com/acme/{name}",
        "owner": {"login": "acme"},
        "stargazers_count": 5,
        "forks_count": 1,
        "open_issues_count": 2,
        "updated_at": "2025-01-01T00:00:00Z",
        "visibility": "public",
        "default_branch": "main",
    }


async def test_repository_search_pages_and_fetch_types(tmp_path: Path) -> None:
    with serve() as api:

        def search(request: Request) -> Answer:
            if request.query.get("page") == ["2"]:
                return 200, {"total_count": 2, "items": [repo("two")]}
            link = f'<{api.url}/search/repositories?page=2>; rel="next"'
            return 200, {"total_count": 2, "items": [repo("one")]}, {"Link": link}

        api.on("GET", "/search/repositories", search)
        api.on("GET", "/repos/acme/one/pulls?state=open", (200, [{"number": 1}, {"number": 2}]))
        api.on("GET", "/repos/acme/two/pulls?state=open", (200, []))
        task = {
            "type": "io.kestra.plugin.github.repositories.Search",
            "oauthToken": TOKEN,
            "endpoint": api.url,
            "query": "topic:kestra",
            "language": "java",
            "visibility": "PUBLIC",
            "sort": "STARS",
            "order": "DESC",
            "fetchType": "FETCH",
        }
        outcome, _ = await run(task)
        assert outcome.state == "SUCCESS", outcome.error
        first = api.sent("GET", "/search/repositories")[0]
        assert first.query == {
            "q": ["is:public topic:kestra language:java"],
            "sort": ["stars"],
            "order": ["desc"],
        }
        assert api.sent("GET", "/search/repositories")[1].query == {"page": ["2"]}
        rows = outcome.outputs["rows"]
        assert outcome.outputs["size"] == 2
        assert [r["full_name"] for r in rows] == ["acme/one", "acme/two"]
        assert rows[0] == {
            "name": "one",
            "full_name": "acme/one",
            "url": "https://github.com/acme/one",
            "description": None,
            "owner": "acme",
            "forks_count": 1,
            "stars_count": 5,
            "pull_request_count": 2,
            "issues_count": 2,
            "updated": "2025-01-01T00:00:00Z",
            "created": None,
            "language": None,
            "archived": False,
            "fork": False,
            "disabled": False,
            "template": False,
            "default_branch": "main",
            "visibility": "PUBLIC",
        }
        outcome, _ = await run({**task, "fetchType": "STORE"}, tmp_path)
        stored = LocalStorage(tmp_path / "storage").read_sync(outcome.outputs["uri"])
        assert [r["name"] for r in ion.loads(stored.decode())] == ["one", "two"]
        outcome, _ = await run({**task, "fetchType": "FETCH_ONE"})
        assert outcome.outputs["row"]["name"] == "one"
