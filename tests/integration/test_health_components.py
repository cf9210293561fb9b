"""Real components behind the health server: ready once they run, 503 once their loop dies.

The executor and the projector run in process (their loops are crashed / cancelled here);
the worker runs as ``headwater worker --health-port`` in a subprocess, as deployed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from engine.bus import BusAdmin, ensure_topics
from engine.errors import BusError
from engine.executor import Executor
from engine.health.probes import executor_probe, projector_probe
from engine.health.server import HealthServer
from engine.projector import Projector
from engine.projector.databases import create_database, drop_database
from engine.settings import ExecutorSettings, ProjectorSettings, Settings

pytestmark = [pytest.mark.kafka]

# A group join is about half the session timeout on Tansu; generous for a loaded machine.
READY_S = 30.0
HEADWATER = Path(sys.executable).with_name("headwater")


def isolated(base: Settings) -> Settings:
    kafka = base.kafka.model_copy(
        update={
            "topic_prefix": f"t{uuid.uuid4().hex[:10]}.",
            "partitions": 2,
            "session_timeout_ms": 3000,
            "heartbeat_interval_ms": 500,
        }
    )
    return base.model_copy(
        update={
            "kafka": kafka,
            "executor": ExecutorSettings(group_id=f"ex-{uuid.uuid4().hex[:8]}"),
            "projector": ProjectorSettings(
                group_id=f"p-{uuid.uuid4().hex[:8]}", poll_timeout_s=0.2
            ),
        }
    )


@pytest.fixture
async def settings_for_test(settings: Settings) -> AsyncIterator[Settings]:
    s = isolated(settings)
    admin = BusAdmin(s.kafka)
    try:
        await admin.wait_ready()
    except BusError as exc:
        pytest.fail(f"Kafka broker not reachable ({exc}); start it with `make services-up`")
    topics = await ensure_topics(admin, s.kafka)
    yield s
    await admin.delete_topics(t.name for t in topics.all())


async def status(client: httpx.AsyncClient, path: str = "/health/ready") -> int:
    return (await client.get(path)).status_code


async def until_status(client: httpx.AsyncClient, code: int) -> None:
    async with asyncio.timeout(READY_S):
        while True:
            if await status(client) == code:
                return
            await asyncio.sleep(0.1)


async def test_executor_ready_then_503_when_its_loop_crashes(settings_for_test: Settings) -> None:
    executor = Executor(settings_for_test)
    probe = executor_probe(executor)
    server = HealthServer(probe)
    await server.start()
    stop = asyncio.Event()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            assert await status(client) == 503  # not started: not ready
            await executor.start()
            probe.task = asyncio.create_task(executor.run(stop))
            await until_status(client, 200)
            metrics = (await client.get("/metrics")).text
            assert "headwater_executor_commands_processed_total 0" in metrics
            assert 'headwater_component_ready{component="executor"} 1' in metrics
            executor.failure = RuntimeError("timer loop died")  # what a crashed task records
            await asyncio.wait([probe.task])
            answer = await client.get("/health/ready")
            assert answer.status_code == 503
            assert "timer loop died" in answer.json()["loop"]
            assert await status(client, "/health/live") == 200
    finally:
        stop.set()
        await executor.close()
        await server.close()


@pytest.fixture
def db(settings: Settings) -> Iterator[str]:
    admin = settings.postgres.dsn.get_secret_value()
    name = f"headwater_test_{uuid.uuid4().hex[:12]}"
    try:
        dsn = asyncio.run(create_database(admin, name))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL not reachable ({exc}); start it with `make services-up`")
    yield dsn
    asyncio.run(drop_database(admin, name))


@pytest.mark.postgres
async def test_projector_ready_then_503_when_its_loop_is_cancelled(
    settings_for_test: Settings, db: str
) -> None:
    s = settings_for_test
    projector = Projector(s.kafka, s.projector, db, name=uuid.uuid4().hex[:8])
    probe = projector_probe(projector)
    server = HealthServer(probe)
    await server.start()
    try:
        await projector.start()
        probe.task = asyncio.create_task(projector.run(asyncio.Event()))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            await until_status(client, 200)
            assert "headwater_projector_records_total" in (await client.get("/metrics")).text
            probe.task.cancel()
            await asyncio.wait([probe.task])
            answer = await client.get("/health/ready")
            assert (answer.status_code, answer.json()["loop"]) == (503, "cancelled")
    finally:
        await projector.close()
        await server.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_worker_command_serves_health_and_metrics(settings_for_test: Settings) -> None:
    port = free_port()
    env = {
        **os.environ,
        "HEADWATER_KAFKA__TOPIC_PREFIX": settings_for_test.kafka.topic_prefix,
        "HEADWATER_KAFKA__PARTITIONS": "2",
        "HEADWATER_KAFKA__SESSION_TIMEOUT_MS": "3000",
        "HEADWATER_KAFKA__HEARTBEAT_INTERVAL_MS": "500",
    }
    process = await asyncio.create_subprocess_exec(
        str(HEADWATER),
        "worker",
        "--health-port",
        str(port),
        "--log-level",
        "WARNING",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            async with asyncio.timeout(READY_S):
                while True:
                    try:
                        if await status(client) == 200:
                            break
                    except httpx.TransportError:
                        pass  # not listening yet
                    assert process.returncode is None, "the worker exited"
                    await asyncio.sleep(0.1)
            metrics = (await client.get("/metrics")).text
            assert 'headwater_worker_jobs_running{group="default"} 0' in metrics
            assert 'headwater_component_ready{component="worker"} 1' in metrics
            assert (await client.get("/health/live")).json()["component"] == "worker"
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(READY_S):
            _, err = await process.communicate()
        assert process.returncode == 0, err.decode()[-2000:]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
