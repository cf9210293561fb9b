"""App: the one object that wires every Headwater component from one Settings object.

``headwater server`` and ``headwater dev`` run all of them in one process; the per-component
commands (``headwater executor``, ``worker``, ...) run one each, to scale them separately.

    app = App(settings)                      # or App(settings, components=("api", "worker"))
    await app.run(stop)                      # until `stop` is set, or a component fails

Each component runs as a supervised asyncio task and shares the ``stop`` event. A component
that fails (or returns while it should be running) stops all the others and :meth:`run`
raises a ServiceError naming it: a crashed consumer never lingers silently in a process that
looks alive. ``app.ready`` is set once the API listens; ``app.health()`` reports each part.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any

import uvicorn

from engine.errors import ConfigError, ServiceError
from engine.settings import Settings

log = logging.getLogger(__name__)

COMPONENTS = ("executor", "worker", "projector", "triggers", "api")
# After `stop`, components get the worker's shutdown grace (running tasks finish) plus this
# margin to leave their consumer groups; whatever still runs then is cancelled.
SHUTDOWN_MARGIN_S = 10.0
# uvicorn's own wait for open connections (an SSE follower never ends by itself).
API_GRACEFUL_S = 2
# How often the API task checks whether uvicorn has started listening (the ready signal).
_STARTED_POLL_S = 0.01


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers (the App's owner decides when to stop), and
    ticking once a second instead of ten times (its tick's work is once a second anyway): an
    idle process stays idle. Setting ``should_exit`` ends the wait at once."""

    _exit: asyncio.Event | None = None
    _exiting = False

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    @property
    def should_exit(self) -> bool:
        return self._exiting

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._exiting = value
        if value and self._exit is not None:
            self._exit.set()

    async def main_loop(self) -> None:
        self._exit = asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864_000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit.wait(), 1.0)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket for the API; a taken port is a ConfigError that says what to do."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        why = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc})"
        raise ConfigError(
            f"the API address {host}:{port} {why}; pass another --port (or set "
            "HEADWATER_API__PORT), or stop what listens there"
        ) from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class App:
    """Every component of one Headwater process, wired from ``settings``."""

    def __init__(
        self,
        settings: Settings,
        *,
        components: Sequence[str] = COMPONENTS,
        api_socket: socket.socket | None = None,
        api_log_level: str = "warning",
    ) -> None:
        unknown = set(components) - set(COMPONENTS)
        if unknown:
            raise ConfigError(f"unknown components {sorted(unknown)}; choose from {COMPONENTS}")
        self.settings = settings
        self.components = tuple(c for c in COMPONENTS if c in components)
        self.ready = asyncio.Event()
        self.failures: dict[str, BaseException] = {}
        self._api_socket = api_socket
        self._api_log_level = api_log_level
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._parts: dict[str, Any] = {}

    @property
    def api_url(self) -> str:
        sock = self._api_socket
        host, port = (
            sock.getsockname()[:2] if sock else (self.settings.api.host, self.settings.api.port)
        )
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - display only
        return f"http://{shown}:{port}"

    async def run(self, stop: asyncio.Event) -> None:
        """Run every component until ``stop`` is set; raise if one of them failed."""
        if "api" in self.components and self._api_socket is None:
            self._api_socket = listen(self.settings.api.host, self.settings.api.port)
        if "api" not in self.components:
            self.ready.set()
        starters: dict[str, Callable[[asyncio.Event], Awaitable[None]]] = {
            "executor": self._executor,
            "worker": self._worker,
            "projector": self._projector,
            "triggers": self._triggers,
            "api": self._api,
        }
        for name in self.components:
            self._tasks[name] = asyncio.create_task(
                self._guard(name, starters[name], stop), name=name
            )
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait(
                [stopping, *self._tasks.values()], return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stop.set()
            stopping.cancel()
            await self._drain()
        if self.failures:
            name, exc = next(iter(self.failures.items()))
            raise ServiceError(
                f"the {name} component failed: {exc!r}; every component was stopped",
                retriable=False,
                component=name,
            ) from exc

    async def _guard(
        self, name: str, body: Callable[[asyncio.Event], Awaitable[None]], stop: asyncio.Event
    ) -> None:
        try:
            await body(stop)
            if not stop.is_set():
                raise ServiceError(f"{name} stopped by itself", retriable=False)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            log.exception("component %s failed", name)
            self.failures.setdefault(name, exc)
            stop.set()

    async def _drain(self) -> None:
        tasks = list(self._tasks.values())
        if not tasks:
            return
        budget = self.settings.worker.shutdown_grace_s + SHUTDOWN_MARGIN_S
        _, pending = await asyncio.wait(tasks, timeout=budget)
        for task in pending:
            log.warning(
                "component %s did not stop within %.0f s; cancelling it", task.get_name(), budget
            )
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        # Drop the stopped components: their Kafka clients are released now, not when the
        # broker is already gone (librdkafka would log every lost connection on stderr).
        self._parts.clear()

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.components:
            task = self._tasks.get(name)
            failure = self.failures.get(name)
            state = "FAILED" if failure else "RUNNING" if task and not task.done() else "STOPPED"
            out[name] = {"status": state, "failure": repr(failure) if failure else None}
        return out

    # ----------------------------------------------------------------------- components

    async def _executor(self, stop: asyncio.Event) -> None:
        from engine.executor import Executor

        executor = Executor(self.settings)
        self._parts["executor"] = executor
        try:
            await executor.start()
            await executor.run(stop)
        finally:
            await executor.close()

    async def _worker(self, stop: asyncio.Event) -> None:
        from engine.worker import Worker

        worker = Worker(self.settings)
        self._parts["worker"] = worker
        await worker.run(stop)

    async def _projector(self, stop: asyncio.Event) -> None:
        from engine.projector import Projector
        from engine.stores.secrets import secret_masker

        s = self.settings
        projector = Projector(
            s.kafka, s.projector, s.postgres.dsn.get_secret_value(), masker=secret_masker(s)
        )
        self._parts["projector"] = projector
        try:
            await projector.start()
            await projector.run(stop)
        finally:
            await projector.close()

    async def _triggers(self, stop: asyncio.Event) -> None:
        from triggers.runtime import run_triggers

        await run_triggers(self.settings, stop)

    async def _api(self, stop: asyncio.Event) -> None:
        from engine.api import create_app

        assert self._api_socket is not None
        api = create_app(self.settings)
        services = api.state.services
        config = uvicorn.Config(
            api,
            log_level=self._api_log_level,
            lifespan="on",
            timeout_graceful_shutdown=API_GRACEFUL_S,
        )
        server = _Server(config)
        self._parts["api"] = server
        serving = asyncio.create_task(server.serve(sockets=[self._api_socket]))
        stopped = asyncio.create_task(stop.wait())
        try:
            # Ready = listening and connected to Kafka (writes would get a 503 before that);
            # uvicorn and the API expose both only as flags.
            while not (server.started and services.bus_ready):
                if serving.done() or stop.is_set():
                    break
                await asyncio.sleep(_STARTED_POLL_S)
            else:
                self.ready.set()
            await asyncio.wait([serving, stopped], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            server.should_exit = True
            await serving
