"""Health and metrics of the components that serve no HTTP API: a tiny asyncio HTTP server.

``headwater executor|worker|projector|triggers|server --health-port N`` (or
``HEADWATER_HEALTH__PORT``) serves, for probes and Prometheus:

- ``GET /health/live``  — 200 while the process's event loop answers (a stuck loop times out);
- ``GET /health/ready`` — 200 when the component's main loop runs and it says it is healthy
  (its own ``healthy()``: no crashed background task, lag under its limit...), else 503;
- ``GET /metrics``      — Prometheus text of the component's own counters.

Both health routes answer JSON with the component's ``health()`` details. The server speaks
just enough HTTP/1.1 for probes and scrapers (GET/HEAD, one request per connection) so it needs
no dependency and costs nothing when nobody asks. What a component exposes is read through a
:class:`Probe`; :mod:`engine.health.probes` builds one from each component's public attributes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.errors import ConfigError

log = logging.getLogger(__name__)

HEALTH_PORT_HELP = (
    "Serve /health/live, /health/ready and /metrics on this port (default HEADWATER_HEALTH__PORT; "
    "0 = off)."
)
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
# A probe's request is one line and a few headers: anything bigger is not a probe.
MAX_REQUEST_BYTES = 8192
# A client that does not finish its request head within this long is dropped (slowloris).
READ_TIMEOUT_S = 5.0

Sample = tuple[dict[str, str], float]


@dataclass(slots=True)
class Metric:
    """One Prometheus metric family: name, type, help and its samples."""

    name: str
    kind: str  # counter | gauge
    help: str
    samples: list[Sample] = field(default_factory=list)

    def render(self) -> str:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        for labels, value in self.samples:
            lines.append(f"{self.name}{_labels(labels)} {_number(value)}")
        return "\n".join(lines) + "\n"


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in sorted(labels.items())
    )
    return "{" + inner.replace("\n", "\\n") + "}"


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return repr(float(value)) if isinstance(value, float) else str(value)


@dataclass(slots=True)
class Probe:
    """What the health server asks one component (see :mod:`engine.health.probes`)."""

    name: str
    healthy: Callable[[], bool]
    details: Callable[[], dict[str, Any]]
    metrics: Callable[[], list[Metric]]
    # The component's main loop; once it is done (crashed, cancelled, returned) the
    # component is not ready, whatever its flags still say.
    task: asyncio.Future[Any] | None = None

    def ready(self) -> bool:
        if self.task is None or self.task.done():
            return False
        try:
            return bool(self.healthy())
        except Exception:  # a probe that cannot answer is a component that is not ready
            log.exception("health probe of %s failed", self.name)
            return False

    def report(self) -> dict[str, Any]:
        try:
            details = self.details()
        except Exception as exc:
            details = {"error": repr(exc)}
        task = self.task
        failure = None
        if task is not None and task.done() and not task.cancelled():
            error = task.exception()
            failure = repr(error) if error is not None else "stopped"
        elif task is not None and task.cancelled():
            failure = "cancelled"
        return {
            "component": self.name,
            "status": "UP" if self.ready() else "DOWN",
            "loop": failure or ("running" if task is not None else "not started"),
            "details": details,
        }

    def metrics_text(self) -> str:
        up = Metric(
            "headwater_component_ready",
            "gauge",
            "1 when the component's loop runs and it reports healthy.",
            [({"component": self.name}, 1 if self.ready() else 0)],
        )
        try:
            families = self.metrics()
        except Exception:
            log.exception("metrics of %s failed", self.name)
            families = []
        return "".join(m.render() for m in [up, *families])


class HealthServer:
    """Serves one :class:`Probe` on ``host:port`` (port 0 picks a free one: see ``.port``)."""

    def __init__(self, probe: Probe, host: str = "127.0.0.1", port: int = 0) -> None:
        self.probe = probe
        self.host = host
        self.requested_port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(
                self._handle, self.host, self.requested_port, limit=MAX_REQUEST_BYTES
            )
        except OSError as exc:
            raise ConfigError(
                f"the health server cannot listen on {self.host}:{self.requested_port} ({exc}); "
                "pass another --health-port (or HEADWATER_HEALTH__PORT)"
            ) from exc
        log.info("%s health server on %s:%d", self.probe.name, self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                await self._send(writer, 400, b'{"error":"bad request"}', "application/json")
                return
            method, path = _request_line(head)
            status, body, kind = self.answer(method, path)
            await self._send(writer, status, b"" if method == "HEAD" else body, kind, len(body))
        except asyncio.CancelledError:
            raise
        except (ConnectionError, OSError):
            pass  # the client went away: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def answer(self, method: str, path: str) -> tuple[int, bytes, str]:
        """(status, body, content type) of one request."""
        if not method:
            return 400, b'{"error":"bad request"}', "application/json"
        if method not in ("GET", "HEAD"):
            return 405, b'{"error":"method not allowed"}', "application/json"
        path = path.split("?", 1)[0]
        if path == "/health/live":
            return (
                200,
                orjson.dumps({"status": "UP", "component": self.probe.name}),
                "application/json",
            )
        if path in ("/health/ready", "/health"):
            report = self.probe.report()
            return (200 if report["status"] == "UP" else 503), _json(report), "application/json"
        if path == "/metrics":
            return 200, self.probe.metrics_text().encode(), PROMETHEUS_TEXT
        return 404, b'{"error":"not found"}', "application/json"

    @staticmethod
    async def _send(
        writer: asyncio.StreamWriter, status: int, body: bytes, kind: str, length: int | None = None
    ) -> None:
        reason = _REASONS.get(status, "OK")
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


def _json(value: Any) -> bytes:
    return orjson.dumps(value, default=str)


def _request_line(head: bytes) -> tuple[str, str]:
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    if len(parts) != 3:
        return "", ""
    return parts[0], parts[1]


@contextlib.asynccontextmanager
async def health_server(probe: Probe, host: str, port: int | None) -> AsyncIterator[Any]:
    """Serve ``probe`` while the block runs; nothing at all when ``port`` is 0 or None."""
    if not port:
        yield None
        return
    server = HealthServer(probe, host, port)
    await server.start()
    try:
        yield server
    finally:
        await server.close()
