"""http.Download against a real HTTP server on 127.0.0.1 started here, into a real LocalStorage:
the stored bytes, outputs, file names, the request sent (params, headers, auth, body), status
and size checks, timeouts, and a 24 MB download whose peak Python memory stays far below it."""

from __future__ import annotations

import base64
import time
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from engine.flows import flow_to_dict, load_flow
from engine.stores.storage import LocalStorage, TaskLocation
from executors.base import TaskContext, TaskOutcome
from executors.registry import Registry, add_plugins
from tests.unit.api_receiver import http_server

BIG = 24 * 1024 * 1024
CHUNK = bytes(range(256)) * 256  # 64 KiB


def big_body(size: int) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        part = CHUNK[: size - sent]
        sent += len(part)
        yield part


class Server:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None):
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size) if size else b""
                parts = urlsplit(self.path)
                server.requests.append(
                    {
                        "method": self.command,
                        "path": parts.path,
                        "query": parse_qs(parts.query),
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )
                path = parts.path
                if path == "/big.bin":
                    self.send_response(200)
                    self.send_header("Content-Length", str(BIG))
                    self.send_header("X-Multi", "a")
                    self.send_header("X-Multi", "b")
                    self.end_headers()
                    for part in big_body(BIG):
                        self.wfile.write(part)
                elif path == "/data/orders.csv":
                    self._send(200, b"id,total\n1,10\n", {"Content-Type": "text/csv"})
                elif path == "/disposition":
                    value = 'attachment; filename="../../etc/report 2024.csv"'
                    self._send(200, b"x", {"Content-Disposition": value})
                elif path == "/disposition-star":
                    value = "attachment; filename*=UTF-8''na%C3%AFve.txt"
                    self._send(200, b"y", {"Content-Disposition": value})
                elif path == "/empty":
                    self._send(200, b"")
                elif path == "/missing":
                    self._send(404, b"no such file here")
                elif path == "/short":
                    self.send_response(200)
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    self.wfile.write(b"only fifty bytes" * 3)
                    self.wfile.flush()
                    self.close_connection = True
                elif path == "/auth":
                    expected = "Basic " + base64.b64encode(b"alice:s3cr3t-pw").decode()
                    if self.headers.get("Authorization") != expected:
                        self._send(401, b"who are you?")
                    else:
                        self._send(200, b"welcome")
                elif path == "/redirect":
                    self._send(302, b"", {"Location": "/data/orders.csv"})
                elif path == "/sse":
                    body = (
                        b": hello comment\n"
                        b'id: 1\nevent: greet\ndata: {"msg": "hi"}\n\n'
                        b"data: line1\r\ndata: line2\n\n"
                        b"\n"
                        b'retry: 3000\ndata: {"msg": "there", "n": 2}\n\n'
                        b"data: pending, never dispatched\n"
                    )
                    self._send(200, body, {"Content-Type": "text/event-stream"})
                elif path == "/slow":
                    time.sleep(3)
                    self._send(200, b"late")
                else:  # echo
                    self._send(200, body or b"echo")

        self.handler = Handler
        self.url = ""

    @property
    def last(self) -> dict[str, Any]:
        return self.requests[-1]


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    with http_server(s.handler) as httpd:
        s.url = f"http://127.0.0.1:{httpd.server_port}"
        yield s


LOC = TaskLocation("company.team", "dl", "exec1", "get", "run1")
VARS: dict[str, Any] = {
    "flow": {"id": "dl", "namespace": "company.team"},
    "execution": {"id": "exec1"},
}


def ctx_for(task: dict[str, Any], tmp_path: Path) -> TaskContext:
    storage = LocalStorage(tmp_path / "storage")
    work = tmp_path / "work"
    return TaskContext.for_job(
        execution_id="exec1",
        task_run_id="run1",
        attempt=1,
        task=task,
        variables=VARS,
        storage=storage.for_task(LOC),
        working_dir=str(work),
        secrets=frozenset({"s3cr3t-pw"}),
    )


async def run(task: dict[str, Any], tmp_path: Path) -> tuple[TaskOutcome, TaskContext]:
    task = {"id": "get", "type": "io.kestra.plugin.core.http.Download", **task}
    ctx = ctx_for(task, tmp_path)
    outcome = await add_plugins(Registry()).run(task, ctx)
    return outcome, ctx


def stored(tmp_path: Path, uri: str) -> Path:
    return LocalStorage(tmp_path / "storage").local_path_sync(uri)


async def test_a_big_download_is_streamed_to_storage(server: Server, tmp_path: Path) -> None:
    tracemalloc.start()
    try:
        outcome, _ = await run({"uri": f"{server.url}/big.bin"}, tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.state == "SUCCESS", outcome.error
    out = outcome.outputs
    assert out["uri"].startswith("kestra:///company/team/dl/executions/exec1/tasks/get/run1/")
    assert out["uri"].endswith("/big.bin")
    assert out["code"] == 200
    assert out["length"] == BIG
    assert out["headers"]["X-Multi"] == ["a", "b"]
    assert out["headers"]["Content-Length"] == [str(BIG)]
    assert outcome.metrics == {"response.length": BIG}
    path = stored(tmp_path, out["uri"])
    assert path.stat().st_size == BIG
    with path.open("rb") as f:
        assert f.read(len(CHUNK)) == CHUNK
    # 24 MB went through; Python never held more than a few write batches of it.
    assert peak < 8 * 1024 * 1024, peak
    # The temporary file was moved, not left behind in the working directory.
    assert [p.name for p in (tmp_path / "work").iterdir()] == []


async def test_request_params_headers_and_method(server: Server, tmp_path: Path) -> None:
    task = {
        "uri": f"{server.url}/echo path",
        "method": "POST",
        "body": "hello {{ flow.id }}",
        "contentType": "text/plain",
        "params": {"q": "x y", "tag": ["a", "b"]},
        "headers": {"X-Flow": "{{ flow.namespace }}"},
        "saveAs": "answer.txt",
    }
    outcome, _ = await run(task, tmp_path)
    assert outcome.state == "SUCCESS", outcome.error
    request = server.last
    assert request["method"] == "POST"
    assert request["path"] == "/echo%20path"
    assert request["query"] == {"q": ["x y"], "tag": ["a", "b"]}
    assert request["headers"]["X-Flow"] == "company.team"
    assert request["headers"]["Content-Type"] == "text/plain"
    assert request["headers"]["User-Agent"] == "Kestra"
    assert outcome.outputs["uri"].endswith("/answer.txt")
    assert stored(tmp_path, outcome.outputs["uri"]).read_bytes() == b"hello dl"


async def test_file_names_from_the_uri_and_content_disposition(
    server: Server, tmp_path: Path
) -> None:
    outcome, _ = await run({"uri": f"{server.url}/data/orders.csv"}, tmp_path)
    assert outcome.outputs["uri"].endswith("/orders.csv")
    assert stored(tmp_path, outcome.outputs["uri"]).read_bytes() == b"id,total\n1,10\n"
    outcome, _ = await run({"uri": f"{server.url}/disposition"}, tmp_path)
    assert outcome.outputs["uri"].endswith("/report_2024.csv")  # no path, safe characters
    outcome, _ = await run({"uri": f"{server.url}/disposition-star"}, tmp_path)
    assert outcome.outputs["uri"].endswith("/na_ve.txt")


async def test_redirects_are_followed_unless_disabled(server: Server, tmp_path: Path) -> None:
    outcome, _ = await run({"uri": f"{server.url}/redirect"}, tmp_path)
    assert outcome.state == "SUCCESS"
    assert outcome.outputs["code"] == 200
    no_follow = {"uri": f"{server.url}/redirect", "options": {"followRedirects": False}}
    outcome, _ = await run(no_follow, tmp_path)
    assert outcome.state == "FAILED"
    assert (outcome.error or "").startswith("No response from server")


async def test_an_error_status_fails_with_the_body_unless_allowed(
    server: Server, tmp_path: Path
) -> None:
    outcome, ctx = await run({"uri": f"{server.url}/missing"}, tmp_path)
    assert outcome.state == "FAILED"
    assert outcome.error == (
        "Failed http request with response code '404' and body:\nno such file here"
    )
    assert any(line.level == "ERROR" for line in ctx.logs)
    allowed = {"uri": f"{server.url}/missing", "options": {"allowFailed": True}}
    outcome, _ = await run(allowed, tmp_path)
    assert outcome.state == "SUCCESS"
    assert outcome.outputs["code"] == 404
    codes = {"uri": f"{server.url}/data/orders.csv", "options": {"allowedResponseCodes": [201]}}
    outcome, _ = await run(codes, tmp_path)
    assert outcome.state == "FAILED"
    assert "response code '200'" in (outcome.error or "")


async def test_empty_responses(server: Server, tmp_path: Path) -> None:
    outcome, _ = await run({"uri": f"{server.url}/empty"}, tmp_path)
    assert outcome.state == "FAILED"
    assert (outcome.error or "").startswith("No response from server")
    outcome, ctx = await run({"uri": f"{server.url}/empty", "failOnEmptyResponse": False}, tmp_path)
    assert outcome.state == "SUCCESS"
    assert outcome.outputs["length"] == 0
    assert stored(tmp_path, outcome.outputs["uri"]).read_bytes() == b""
    assert [line.message for line in ctx.logs if line.level == "WARN"] == [
        f"File '{server.url}/empty' is empty"
    ]


async def test_a_truncated_body_fails(server: Server, tmp_path: Path) -> None:
    outcome, _ = await run({"uri": f"{server.url}/short"}, tmp_path)
    assert outcome.state == "FAILED"
    assert f"HTTP GET {server.url}/short failed" in (outcome.error or "")
    assert [p.name for p in (tmp_path / "work").iterdir()] == []


async def test_basic_auth_and_its_password_stays_out_of_logs(
    server: Server, tmp_path: Path
) -> None:
    auth = {"type": "BASIC", "username": "alice", "password": "s3cr3t-pw"}
    task = {"uri": f"{server.url}/auth", "options": {"auth": auth, "logs": ["REQUEST_HEADERS"]}}
    outcome, ctx = await run(task, tmp_path)
    assert outcome.state == "SUCCESS", outcome.error
    assert stored(tmp_path, outcome.outputs["uri"]).read_bytes() == b"welcome"
    assert all("s3cr3t-pw" not in line.message for line in ctx.logs)
    legacy = {"uri": f"{server.url}/auth", "options": {"basicAuthUser": "alice"}}
    outcome, _ = await run(legacy, tmp_path)
    assert outcome.state == "FAILED"
    assert "response code '401'" in (outcome.error or "")


async def test_a_silent_server_times_out(server: Server, tmp_path: Path) -> None:
    task = {"uri": f"{server.url}/slow", "options": {"timeout": {"readIdleTimeout": "PT0.3S"}}}
    outcome, _ = await run(task, tmp_path)
    assert outcome.state == "FAILED"
    assert "ReadTimeout" in (outcome.error or "")


async def test_an_unreachable_host_and_a_bad_uri_fail_clearly(tmp_path: Path) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_port
    outcome, _ = await run({"uri": f"http://127.0.0.1:{port}/x"}, tmp_path)
    assert outcome.state == "FAILED"
    assert (outcome.error or "").startswith(f"HTTP GET http://127.0.0.1:{port}/x failed: Connect")
    outcome, _ = await run({"uri": "ftp://example.com/file"}, tmp_path)
    assert (
        outcome.error
        == "property 'uri': 'ftp://example.com/file' is not an http:// or https:// URL"
    )


def test_flows_validate_with_download_and_its_old_name() -> None:
    flow = flow_to_dict(
        load_flow(
            "id: f\nnamespace: company.team\ntasks:\n"
            "  - id: a\n    type: io.kestra.plugin.fs.http.Download\n    uri: https://x/y.csv\n"
            "  - id: b\n    type: io.kestra.plugin.core.http.Download\n    uri: https://x/z\n"
            "    options:\n      timeout:\n        connectTimeout: PT5S\n"
            "      auth:\n        type: BEARER\n        token: t\n"
        )
    )
    assert [t["type"] for t in flow["tasks"]] == ["io.kestra.plugin.core.http.Download"] * 2
    with pytest.raises(Exception, match="unknownOption"):
        load_flow(
            "id: f\nnamespace: n\ntasks:\n  - id: a\n"
            "    type: io.kestra.plugin.core.http.Download\n"
            "    uri: https://x\n    options:\n      unknownOption: 1\n"
        )


SSE = "io.kestra.plugin.core.http.SseRequest"


async def test_sse_events(server: Server, tmp_path: Path) -> None:
    task = {"id": "sse", "type": SSE, "uri": f"{server.url}/sse", "headers": {"X-A": "b"}}
    outcome, _ = await run(task, tmp_path)
    assert outcome.state == "SUCCESS", outcome.error
    assert server.last["headers"]["X-A"] == "b"
    assert outcome.outputs == {
        "uri": f"{server.url}/sse",
        "size": 3,
        "events": [
            {"data": {"msg": "hi"}, "id": "1", "name": "greet", "comment": "hello comment"},
            {"data": "line1\nline2"},
            {"data": {"msg": "there", "n": 2}, "retry": "PT3S"},
        ],
    }
    assert outcome.metrics == {"size": 3}


async def test_sse_jq_concatenation(server: Server, tmp_path: Path) -> None:
    task = {
        "id": "sse",
        "type": SSE,
        "uri": f"{server.url}/sse",
        "concatJqExpression": ".data.msg",
    }
    outcome, _ = await run(task, tmp_path)
    assert outcome.state == "FAILED"  # the plain-text event has no .data.msg
    assert "Failed to resolve JQ expression '.data.msg'" in (outcome.error or "")
    outcome, _ = await run({**task, "failedOnMissingJq": False}, tmp_path)
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {"uri": f"{server.url}/sse", "size": 3, "result": "hithere"}
    outcome, _ = await run({**task, "concatJqExpression": ".[["}, tmp_path)
    assert (outcome.error or "").startswith("property 'concatJqExpression'")
