"""Real HTTP servers on 127.0.0.1 that play a service's API for the plugin tests.

:func:`http_server` serves any request handler from a thread. :func:`serve` plays a SaaS API:
a test gives it routes: ``(METHOD, path-with-query) -> handler``, where a handler gets the
request (method, path, query, headers, raw body, parsed JSON) and returns ``(status, body)``
or ``(status, body, headers)``
(a body that is not bytes/str is sent as JSON, a text as text/plain), or a list of answers
played one per call (the last one repeats: a job's status moving from running to success).
Every request is recorded so that the test asserts exactly what the service would have
received. :func:`webhooks` plays notification webhooks (every POST accepted, a ``/status/NNN``
path answering NNN).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from engine.stores.storage import LocalStorage, TaskLocation
from executors.base import TaskContext, TaskOutcome
from executors.registry import Registry, add_plugins


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def target(self) -> str:
        return f"{self.method} {self.path}"


# (status, body) or (status, body, extra response headers)
Answer = tuple[int, Any] | tuple[int, Any, dict[str, str]]
Handler = Callable[[Request], Answer] | Answer | list[Answer]


@dataclass
class Receiver:
    url: str = ""
    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    _calls: dict[str, int] = field(default_factory=dict)

    def on(self, method: str, path: str, handler: Handler) -> None:
        self.routes[f"{method} {path}"] = handler
        self._calls[f"{method} {path}"] = 0

    def answer(self, request: Request, raw_path: str) -> Answer:
        key = f"{request.method} {raw_path}"
        if key not in self.routes:
            key = request.target
        handler = self.routes.get(key)
        if handler is None:
            return 404, {"error": f"no route for {request.method} {raw_path}"}
        count = self._calls.get(key, 0)
        self._calls[key] = count + 1
        if callable(handler):
            return handler(request)
        if isinstance(handler, list):
            return handler[min(count, len(handler) - 1)]
        return handler

    def sent(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == path]

    @property
    def last(self) -> Request:
        return self.requests[-1]


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    """``handler`` served on 127.0.0.1 (a free port) from a daemon thread; stopped after."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handle(BaseHTTPRequestHandler):
        def _any(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            parts = urlsplit(self.path)
            request = Request(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(size),
            )
            receiver.requests.append(request)
            status, body, *extra = receiver.answer(request, self.path)
            kind = "text/plain"
            if isinstance(body, str):
                data = body.encode()
            elif isinstance(body, bytes):
                data = body
            else:
                data, kind = json.dumps(body).encode(), "application/json"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            for name, value in (extra[0] if extra else {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        def log_message(self, *args: Any) -> None:
            pass

    with http_server(Handle) as server:
        receiver.url = f"http://127.0.0.1:{server.server_port}"
        yield receiver


class Webhooks:
    """What :func:`webhooks` received: ``requests`` as ``{"method", "path", "headers",
    "body"}`` (the path with its query, the headers as sent, the body as text)."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self.url = f"http://127.0.0.1:{server.server_port}"
        self.requests: list[dict[str, Any]] = []

    @property
    def last(self) -> dict[str, Any]:
        return self.requests[-1]

    def json(self, index: int = -1) -> Any:
        request = self.requests[index]
        assert request["headers"]["Content-Type"] == "application/json"
        return json.loads(request["body"])


@contextmanager
def webhooks(ok: bytes) -> Iterator[Webhooks]:
    """Accepts every POST: the status is the NNN of a ``/status/NNN`` path (else 200), the body
    ``ok``, or an invalid-token error for a status of 300 or more."""
    received: list[dict[str, Any]] = []

    class Handle(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(size).decode()
            received.append(
                {"method": "POST", "path": self.path, "headers": dict(self.headers), "body": body}
            )
            match = re.search(r"/status/(\d{3})", self.path)
            status = int(match.group(1)) if match else 200
            answer = ok if status < 300 else b'{"error":"invalid_token"}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    with http_server(Handle) as server:
        hooks = Webhooks(server)
        hooks.requests = received
        yield hooks


class FakeTime:
    """A clock and a sleeper for polling tests: sleeping advances the clock at once."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
        self.slept: list[float] = []

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float, cancelled: Any) -> bool:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)
        return not cancelled.is_set()


def context(
    task: dict[str, Any],
    variables: dict[str, Any] | None = None,
    time: FakeTime | None = None,
    **hooks: Any,
) -> TaskContext:
    time = time or FakeTime()
    return TaskContext.for_job(
        execution_id="exec1",
        task_run_id="tr1",
        attempt=0,
        task=task,
        variables=variables or {"flow": {"id": "f", "namespace": "company.team"}},
        clock=time.clock,
        sleeper=time.sleep,
        **hooks,
    )


# Where run_plugin's internal storage keeps the task's files.
LOC = TaskLocation("company.team", "f", "exec1", "t", "tr1")


async def run_plugin(
    task: dict[str, Any],
    *,
    time: FakeTime | None = None,
    storage_dir: Path | None = None,
    location: TaskLocation = LOC,
    **hooks: Any,
) -> tuple[TaskOutcome, TaskContext]:
    """Run ``task`` as a worker does (through the plugin registry), in :func:`context`; with
    ``storage_dir``, on a real internal storage below it."""
    if storage_dir is not None:
        hooks["storage"] = LocalStorage(storage_dir / "storage").for_task(location)
    ctx = context(task, time=time, **hooks)
    return await add_plugins(Registry()).run(task, ctx), ctx
