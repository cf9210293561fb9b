"""A real Headwater for the browser tests, run on an event loop in a background thread.

Tansu and PostgreSQL come from deploy/local (``make services-up``); the executor, worker,
projector, trigger runtime and API run in-process (``engine.app.App``) against a fresh
database and a unique topic prefix, so parallel test runs never share state. A second API
(same topics and database) requires a bearer token, for the dashboard's token prompt.
Selenium is synchronous, so the tests talk to this stack through :class:`LoopThread`.
"""

from __future__ import annotations

import asyncio
import pathlib
import tempfile
import threading
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from engine.app import App, listen
from engine.bus import BusAdmin, ensure_topics
from engine.errors import BusError, HeadwaterError
from engine.projector.databases import create_database, drop_database
from engine.settings import (
    ApiSettings,
    ExecutorSettings,
    PostgresSettings,
    ProjectorSettings,
    Settings,
    TriggerSettings,
    WorkerSettings,
    load_settings,
)

T = TypeVar("T")

# Starting every component: topic creation, three group joins (~half of the 3 s session
# timeout each on Tansu) and the first migration; generous for a loaded 2-core machine.
START_S = 90.0
# Components leave their groups and commit on stop (the worker's grace is set low below).
STOP_S = 60.0
TOKEN = "browser-test-token"


class LoopThread:
    """An asyncio loop in a daemon thread; ``run`` blocks the caller until a coroutine ends."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="stack-loop", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@dataclass
class BrowserStack:
    url: str
    secure_url: str
    settings: Settings
    dsn: str
    namespace: str = field(default_factory=lambda: f"browser.t{uuid.uuid4().hex[:6]}")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)

    def deploy(self, yaml_text: str) -> dict[str, Any]:
        with self.client() as c:
            yaml_type = {"content-type": "application/x-yaml"}
            r = c.post("/api/v1/flows", content=yaml_text, headers=yaml_type)
            assert r.status_code == 200, r.text
            return dict(r.json())

    def start(
        self, flow_id: str, inputs: dict[str, Any] | None = None, namespace: str | None = None
    ) -> str:
        with self.client() as c:
            path = f"/api/v1/executions/{namespace or self.namespace}/{flow_id}"
            r = c.post(path, json={"inputs": inputs or {}})
            assert r.status_code == 200, r.text
            return str(r.json()["id"])


def _settings(base: Settings, dsn: str, work: pathlib.Path) -> Settings:
    tag = uuid.uuid4().hex[:8]
    kafka = base.kafka.model_copy(
        update={
            "topic_prefix": f"tb{tag}.",
            "partitions": 2,
            "session_timeout_ms": 3000,
            "heartbeat_interval_ms": 500,
            "request_timeout_s": 5.0,
        }
    )
    return Settings(
        kafka=kafka,
        postgres=PostgresSettings(dsn=SecretStr(dsn)),
        projector=ProjectorSettings(group_id=f"pb-{tag}", poll_timeout_s=0.1),
        executor=ExecutorSettings(group_id=f"eb-{tag}"),
        triggers=TriggerSettings(group_prefix=f"trb-{tag}"),
        worker=WorkerSettings(
            work_dir=str(work / "work"), storage_dir=str(work / "storage"), shutdown_grace_s=2.0
        ),
    )


async def _start(app: App, stop: asyncio.Event) -> asyncio.Task[None]:
    task = asyncio.create_task(app.run(stop))
    ready = asyncio.create_task(app.ready.wait())
    await asyncio.wait([task, ready], timeout=START_S, return_when=asyncio.FIRST_COMPLETED)
    if not app.ready.is_set():
        ready.cancel()
        stop.set()
        await asyncio.wait([task], timeout=STOP_S)
        raise RuntimeError(f"the stack did not become ready: {app.health()} {app.failures}")
    return task


async def _stop(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    stop.set()
    await asyncio.wait(tasks, timeout=STOP_S)


def run_stack() -> Iterator[BrowserStack]:
    """The body of the session fixture: start everything, yield, stop everything."""
    base = load_settings()
    admin_dsn = base.postgres.dsn.get_secret_value()
    name = f"headwater_browser_{uuid.uuid4().hex[:10]}"
    loop = LoopThread()
    try:
        try:
            dsn = loop.run(create_database(admin_dsn, name), 30)
        except (OSError, asyncpg.PostgresError, HeadwaterError) as exc:
            pytest.fail(f"PostgreSQL not reachable ({exc}); start it with `make services-up`")
        with tempfile.TemporaryDirectory(prefix="hw-browser-") as tmp:
            settings = _settings(base, dsn, pathlib.Path(tmp))
            bus = BusAdmin(settings.kafka)
            try:
                loop.run(bus.wait_ready(), 30)
            except BusError as exc:
                pytest.fail(f"Kafka broker not reachable ({exc}); start it with `make services-up`")
            topics = loop.run(ensure_topics(bus, settings.kafka), 30)
            secure = settings.model_copy(update={"api": ApiSettings(api_keys=[SecretStr(TOKEN)])})
            sock, secure_sock = listen("127.0.0.1", 0), listen("127.0.0.1", 0)
            stop = asyncio.Event()
            app = App(settings, api_socket=sock)
            secure_app = App(secure, components=("api",), api_socket=secure_sock)
            tasks = [loop.run(_start(app, stop), START_S + STOP_S)]
            try:
                tasks.append(loop.run(_start(secure_app, stop), START_S + STOP_S))
                yield BrowserStack(app.api_url, secure_app.api_url, settings, dsn)
            finally:
                loop.run(_stop(stop, tasks), STOP_S + 10)
                loop.run(bus.delete_topics(t.name for t in topics.all()), 30)
        loop.run(drop_database(admin_dsn, name), 30)
    finally:
        loop.close()
