"""The API-talking CLI without a server: argument parsing, exit codes, error messages, and the
ApiClient's conversion of answers (problem bodies, SSE) with httpx's mock transport."""

from __future__ import annotations

import pathlib
import re
import socket

import httpx
import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.cli.apiclient import ApiClient, ApiError
from engine.cli.support import EXIT_UNREACHABLE, EXIT_USAGE
from engine.errors import NotFoundError, ServiceError
from engine.settings import ClientSettings

runner = CliRunner()

GOOD = """\
id: hello
namespace: company.team
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: hi
"""
BAD = """\
id: hello
namespace: company.team
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    mesage: hi
"""


def dead_url() -> str:
    """An address where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def no_api(monkeypatch: pytest.MonkeyPatch) -> str:
    url = dead_url()
    monkeypatch.setenv("HEADWATER_CLIENT__API_URL", url)
    return url


def write(tmp_path: pathlib.Path, text: str, name: str = "flow.yaml") -> pathlib.Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_run_invalid_flow_points_at_line_and_column(tmp_path: pathlib.Path, no_api: str) -> None:
    result = runner.invoke(app, ["run", str(write(tmp_path, BAD)), "-i", "a=1"])
    assert result.exit_code == EXIT_USAGE
    assert f"{tmp_path / 'flow.yaml'}:6:5: tasks[0].mesage: unknown property" in result.output
    assert "nothing was run" in result.output
    assert "Traceback" not in result.output


def test_run_rejects_an_input_without_equals(tmp_path: pathlib.Path, no_api: str) -> None:
    result = runner.invoke(app, ["run", str(write(tmp_path, GOOD)), "-i", "novalue"])
    assert result.exit_code == EXIT_USAGE
    assert "input 'novalue' is not key=value" in result.output


def test_run_names_the_unreachable_api(tmp_path: pathlib.Path, no_api: str) -> None:
    # Options after the file must parse too (`run f.yaml -i a=1`).
    result = runner.invoke(app, ["run", str(write(tmp_path, GOOD)), "-i", "name=x"])
    assert result.exit_code == EXIT_UNREACHABLE
    assert f"cannot reach the Headwater API at {no_api}" in result.output
    assert "headwater dev" in result.output
    assert "Traceback" not in result.output


def test_run_missing_file_is_a_usage_error(tmp_path: pathlib.Path, no_api: str) -> None:
    result = runner.invoke(app, ["run", str(tmp_path / "nope.yaml")])
    assert result.exit_code == EXIT_USAGE


@pytest.mark.parametrize(
    "args",
    [
        ["execution", "list"],
        ["execution", "show", "x"],
        ["execution", "logs", "x"],
        ["execution", "kill", "x"],
        ["execution", "resume", "x", "-i", "a=b"],
        ["execution", "restart", "x"],
        ["execution", "follow", "x"],
        ["flow", "list", "--json"],
        ["flow", "delete", "ns", "id"],
    ],
)
def test_every_api_command_explains_an_unreachable_api(args: list[str], no_api: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == EXIT_UNREACHABLE, result.output
    assert no_api in result.output


def test_flow_deploy_validates_before_calling_the_api(tmp_path: pathlib.Path, no_api: str) -> None:
    result = runner.invoke(app, ["flow", "deploy", str(write(tmp_path, GOOD, "a.yaml")),
                                 str(write(tmp_path, BAD, "b.yaml"))])  # fmt: skip
    assert result.exit_code == EXIT_USAGE
    assert "b.yaml:6:5" in result.output
    assert "nothing deployed" in result.output


def test_every_component_has_a_command() -> None:
    for name in ("executor", "worker", "projector", "triggers", "api", "server", "dev", "run"):
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)


# ------------------------------------------------------------------------------ ApiClient


def client(handler: object) -> ApiClient:
    transport = httpx.MockTransport(handler)  # type: ignore[arg-type]
    return ApiClient(ClientSettings(api_url="http://api.test/"), transport=transport)


async def test_problem_bodies_become_api_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"title": "Invalid inputs", "status": 422, "detail": "n: not an integer"}
        return httpx.Response(422, json=body)

    async with client(handler) as api:
        with pytest.raises(ApiError) as info:
            await api.start_execution("ns", "f", {"n": "x"})
    assert info.value.status == 422
    assert info.value.message == "Invalid inputs: n: not an integer"


async def test_404_is_not_found_and_401_asks_for_a_token() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/executions/gone"):
            return httpx.Response(404, json={"title": "Execution not found", "detail": "no x"})
        return httpx.Response(401, json={"title": "Unauthorized", "detail": "needs a key"})

    async with client(handler) as api:
        with pytest.raises(NotFoundError):
            await api.get_execution("gone")
        with pytest.raises(ApiError, match="HEADWATER_CLIENT__API_TOKEN"):
            await api.list_flows()


async def test_token_is_sent_and_pages_are_followed() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "cursor" in request.url.params:
            return httpx.Response(200, json={"results": [{"id": "b"}], "nextCursor": None})
        return httpx.Response(200, json={"results": [{"id": "a"}], "nextCursor": "c1"})

    settings = ClientSettings(api_url="http://api.test", api_token="s3cret")  # type: ignore[arg-type]
    async with ApiClient(settings, transport=httpx.MockTransport(handler)) as api:
        flows = await api.list_flows()
    assert [f["id"] for f in flows] == ["a", "b"]
    assert seen[0].headers["authorization"] == "Bearer s3cret"
    assert seen[0].url.path == "/api/v1/flows/search"


async def test_follow_parses_server_sent_events() -> None:
    stream = (
        b'event: execution\ndata: {"id": "e"}\n\n'
        b'event: log\ndata: {"logId": "1", "message": "hi"}\n\n'
        b'event: end\ndata: {"executionId": "e", "state": "SUCCESS"}\n\n'
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=stream, headers={"content-type": "text/event-stream"})

    async with client(handler) as api:
        events = [e async for e in api.follow("e")]
    assert [name for name, _ in events] == ["execution", "log", "end"]
    assert events[1][1]["message"] == "hi"


async def test_transport_errors_name_the_address() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with client(handler) as api:
        with pytest.raises(ServiceError, match=re.escape("the Headwater API at http://api.test")):
            await api.get_execution("x")


def test_task_table_nests_children_under_their_parent_in_api_order() -> None:
    from engine.cli.execution import _tree

    runs = [
        {"id": "c1", "taskId": "child1", "parentTaskRunId": "p"},
        {"id": "p", "taskId": "par"},
        {"id": "c2", "taskId": "child2", "parentTaskRunId": "p"},
        {"id": "g", "taskId": "grand", "parentTaskRunId": "c2"},
        {"id": "o", "taskId": "orphan", "parentTaskRunId": "gone"},
    ]
    shown = [("  " * depth) + run["taskId"] for depth, run in _tree(runs)]
    assert shown == ["par", "  child1", "  child2", "    grand", "orphan"]


def test_api_error_says_its_title_once() -> None:
    repeated = ApiError(422, "Invalid inputs", "Invalid inputs: input 'n': expected an INT")
    assert repeated.message == "Invalid inputs: input 'n': expected an INT"
    plain = ApiError(404, "Not found", "no execution x")
    assert plain.message == "Not found: no execution x"
    assert ApiError(500, "Server error", "").message == "Server error"
