"""The health server of non-HTTP components: live/ready/metrics over a real socket.

Ready follows the component's main loop and its own ``healthy()``: a crashed or cancelled loop,
or a component that says it is unhealthy, answers 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import pytest

from engine.errors import ConfigError
from engine.health.probes import executor_probe, projector_probe, worker_probe
from engine.health.server import PROMETHEUS_TEXT, HealthServer, Metric, Probe, health_server


class Fake:
    def __init__(self) -> None:
        self.ok = True
        self.count = 0

    def probe(self) -> Probe:
        return Probe(
            "fake",
            lambda: self.ok,
            lambda: {"count": self.count},
            lambda: [Metric("fake_total", "counter", "Things.", [({"kind": 'a"b'}, self.count)])],
        )


@pytest.fixture
async def served() -> AsyncIterator[tuple[Fake, Probe, httpx.AsyncClient]]:
    fake = Fake()
    probe = fake.probe()
    stop = asyncio.Event()
    loop = probe.task = asyncio.create_task(stop.wait())
    server = HealthServer(probe, "127.0.0.1", 0)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            yield fake, probe, client
    finally:
        stop.set()
        await loop
        await server.close()


async def test_live_ready_and_metrics(served: tuple[Fake, Probe, httpx.AsyncClient]) -> None:
    fake, _, client = served
    fake.count = 3
    live = await client.get("/health/live")
    assert (live.status_code, live.json()) == (200, {"status": "UP", "component": "fake"})
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "UP"
    assert ready.json()["details"] == {"count": 3}
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"] == PROMETHEUS_TEXT
    assert 'headwater_component_ready{component="fake"} 1' in metrics.text
    assert "# TYPE fake_total counter" in metrics.text
    assert 'fake_total{kind="a\\"b"} 3' in metrics.text


async def test_unhealthy_component_is_not_ready_but_live(
    served: tuple[Fake, Probe, httpx.AsyncClient],
) -> None:
    fake, _, client = served
    fake.ok = False
    ready = await client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "DOWN"
    assert (await client.get("/health/live")).status_code == 200
    assert 'headwater_component_ready{component="fake"} 0' in (await client.get("/metrics")).text


async def test_a_crashed_loop_is_not_ready_and_says_why(
    served: tuple[Fake, Probe, httpx.AsyncClient],
) -> None:
    _, probe, client = served

    async def crash() -> None:
        raise RuntimeError("consumer died")

    probe.task = asyncio.create_task(crash())
    await asyncio.wait([probe.task])
    ready = await client.get("/health/ready")
    assert ready.status_code == 503
    assert "consumer died" in ready.json()["loop"]
    probe.task = asyncio.create_task(asyncio.sleep(3600))
    assert (await client.get("/health/ready")).status_code == 200
    probe.task.cancel()
    await asyncio.wait([probe.task])
    ready = await client.get("/health/ready")
    assert (ready.status_code, ready.json()["loop"]) == (503, "cancelled")


async def test_a_probe_that_raises_is_not_ready(
    served: tuple[Fake, Probe, httpx.AsyncClient],
) -> None:
    _, probe, client = served

    def broken() -> bool:
        raise ValueError("no")

    probe.healthy = broken
    assert (await client.get("/health/ready")).status_code == 503


async def test_other_paths_methods_and_garbage(
    served: tuple[Fake, Probe, httpx.AsyncClient],
) -> None:
    _, _, client = served
    assert (await client.get("/nope")).status_code == 404
    assert (await client.post("/health/live")).status_code == 405
    head = await client.head("/metrics")
    assert head.status_code == 200
    assert head.content == b""
    port = int(str(client.base_url).rsplit(":", 1)[1].rstrip("/"))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"NONSENSE\r\n\r\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400")


async def test_port_zero_means_no_server_and_a_taken_port_is_a_config_error() -> None:
    probe = Fake().probe()
    async with health_server(probe, "127.0.0.1", 0) as server:
        assert server is None
    first = HealthServer(probe, "127.0.0.1", 0)
    await first.start()
    try:
        with pytest.raises(ConfigError, match="--health-port"):
            async with health_server(probe, "127.0.0.1", first.port):
                pass
    finally:
        await first.close()


def _metrics(probe: Probe) -> dict[str, str]:
    """metric line name{labels} -> value."""
    out = {}
    for line in probe.metrics_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = value
    return out


def test_executor_probe_reads_health_and_needs_the_loop_running() -> None:
    state: dict[str, Any] = {"running": True, "processed": 7, "lag_s": 0.25, "assigned": [0, 1]}
    executor = SimpleNamespace(
        healthy=lambda: True,
        health=lambda: {"duplicates": 1, "dropped": 0, "executions": 2, "timers": 3, **state},
    )
    probe = executor_probe(executor)
    assert probe.healthy()
    metrics = _metrics(probe)
    assert metrics["headwater_executor_commands_processed_total"] == "7"
    assert metrics["headwater_executor_lag_seconds"] == "0.25"
    assert metrics["headwater_executor_assigned_partitions"] == "2"
    state.update(inline_tasks=40, batches=3, decide_s=0.5, produce_s=0.25)
    metrics = _metrics(probe)
    assert metrics["headwater_executor_inline_tasks_total"] == "40"
    assert metrics["headwater_executor_batches_total"] == "3"
    assert metrics["headwater_executor_batch_decide_seconds_total"] == "0.5"
    assert metrics["headwater_executor_batch_produce_seconds_total"] == "0.25"
    state["running"] = False
    assert not probe.healthy()


def test_worker_and_projector_probes() -> None:
    worker = SimpleNamespace(
        healthy=True,
        running={("a", 1): None},
        waiting={},
        completed=5,
        concurrency=4,
        group="",
        worker_id="w1",
        failure=None,
    )
    metrics = _metrics(worker_probe(worker))
    assert metrics['headwater_worker_jobs_running{group="default"}'] == "1"
    assert metrics['headwater_worker_jobs_finished_total{group="default"}'] == "5"
    stats = SimpleNamespace(
        records=10, batches=2, poison=1, last_lag_ms=1500.0, last_batch_monotonic=None
    )
    projector = SimpleNamespace(
        healthy=lambda: True,
        stats=stats,
        lag_percentiles=lambda: {"p50_ms": 20.0, "p99_ms": None},
        group_id="g",
        failure=None,
    )
    probe = projector_probe(projector)
    metrics = _metrics(probe)
    assert metrics["headwater_projector_records_total"] == "10"
    assert metrics["headwater_projector_lag_seconds"] == "1.5"
    assert metrics['headwater_projector_lag_quantile_seconds{quantile="0.5"}'] == "0.02"
    assert orjson.loads(orjson.dumps(probe.details()))["poison"] == 1
