"""The worker process end to end against the real broker (Tansu from deploy/local).

Jobs are produced to a fresh topic prefix exactly as the executor would (``engine.bus.wire``); the
test reads what the worker sends back on hw.commands and hw.logs.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from engine.bus import AsyncConsumer, AsyncProducer, BusAdmin, ensure_topics
from engine.bus.wire import decode_command, decode_log, job_record, stop_job_record
from engine.errors import BusError
from engine.reducer.commands import Command
from engine.reducer.model import Job, StopJob
from engine.settings import Settings, WorkerSettings
from engine.worker import Worker

pytestmark = pytest.mark.kafka

PARTITIONS = 2
# How long a test waits for the worker's answers: a group join takes about half the session
# timeout on Tansu, so this leaves room for a slow, shared machine.
ARRIVAL_S = 30.0
SECRET = "hunter2-very-secret"


def worker_settings(base: Settings, tmp: Path, **worker: Any) -> Settings:
    """Settings with a fresh topic prefix, quick group joins and private directories."""
    kafka = base.kafka.model_copy(
        update={
            "topic_prefix": f"w{uuid.uuid4().hex[:10]}.",
            "partitions": PARTITIONS,
            "session_timeout_ms": 3000,
            "heartbeat_interval_ms": 500,
            "request_timeout_s": 5.0,
        }
    )
    values: dict[str, Any] = {
        "concurrency": 4,
        "heartbeat_interval_s": 0.3,
        "shutdown_grace_s": 5.0,
        "work_dir": str(tmp / "work"),
        "storage_dir": str(tmp / "storage"),
        "venv_cache_dir": str(tmp / "venvs"),
        **worker,
    }
    return base.model_copy(update={"kafka": kafka, "worker": WorkerSettings(**values)})


@pytest.fixture
async def wsettings(settings: Settings, tmp_path: Path) -> AsyncIterator[Settings]:
    s = worker_settings(settings, tmp_path)
    admin = BusAdmin(s.kafka)
    try:
        await admin.wait_ready()
    except BusError as exc:
        pytest.fail(f"Kafka broker not reachable ({exc}); start it with `make services-up`")
    await ensure_topics(admin, s.kafka)
    yield s
    prefix = s.kafka.topic_prefix
    await admin.delete_topics(n for n in await admin.list_topics() if n.startswith(prefix))


def make_job(
    task: dict[str, Any],
    *,
    execution_id: str | None = None,
    timeout: float | None = None,
    context: dict[str, Any] | None = None,
) -> Job:
    ctx = {"flow": {"id": "f", "namespace": "company.team"}, "inputs": {}, **(context or {})}
    return Job(
        execution_id or uuid.uuid4().hex,
        uuid.uuid4().hex[:16],
        1,
        {"id": "t1", **task},
        ctx,
        None,
        timeout,
    )


class Observer:
    """Reads hw.commands and hw.logs of one prefix from the start (no group join)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        prefix = settings.kafka.topic_prefix
        self.commands_topic = f"{prefix}commands"
        self.logs_topic = f"{prefix}logs"
        self.commands: list[Command] = []
        self.logs: list[dict[str, Any]] = []
        self._consumer = AsyncConsumer(settings.kafka, f"obs-{uuid.uuid4().hex[:8]}")

    async def __aenter__(self) -> Observer:
        await self._consumer.start()
        parts = {
            (t, p): 0 for t in (self.commands_topic, self.logs_topic) for p in range(PARTITIONS)
        }
        await self._consumer.assign(parts)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.close()

    async def poll(self) -> None:
        for record in await self._consumer.consume(5000, 0.2):
            assert record.value is not None
            if record.topic == self.commands_topic:
                self.commands.append(decode_command(record.value))
            else:
                self.logs.append(decode_log(record.value))

    async def until(self, predicate: Any, what: str) -> None:
        try:
            async with asyncio.timeout(ARRIVAL_S):
                while not predicate():
                    await self.poll()
        except TimeoutError:
            pytest.fail(f"timed out waiting for {what}; commands seen: {self.commands!r}")

    def of(self, job: Job, type_: str) -> list[Any]:
        return [
            c
            for c in self.commands
            if c.type == type_
            and getattr(c, "task_run_id", None) == job.task_run_id
            and getattr(c, "attempt", None) == job.attempt
        ]

    def result(self, job: Job) -> Any:
        results = self.of(job, "TaskResult")
        return results[0] if results else None

    def log_lines(self, job: Job) -> list[dict[str, Any]]:
        return [line for line in self.logs if line["task_run_id"] == job.task_run_id]


async def produce(settings: Settings, *items: Job | StopJob) -> None:
    topic = f"{settings.kafka.topic_prefix}jobs"
    async with AsyncProducer(settings.kafka) as producer:
        for item in items:
            key, value = job_record(item) if isinstance(item, Job) else stop_job_record(item)
            await producer.produce(topic, key, value)


async def run_worker(settings: Settings) -> tuple[Worker, asyncio.Event, asyncio.Task[None]]:
    worker = Worker(settings)
    stop = asyncio.Event()
    return worker, stop, asyncio.create_task(worker.run(stop))


async def stop_worker(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    async with asyncio.timeout(ARRIVAL_S):
        await task


async def test_jobs_run_and_report_started_heartbeat_result_and_logs(
    wsettings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_DB_PASSWORD", base64.b64encode(SECRET.encode()).decode())
    shell = make_job(
        {
            "type": "io.kestra.plugin.scripts.shell.Commands",
            "commands": [
                "echo hello from {{ flow.id }}",
                "echo \"password is {{ secret('DB_PASSWORD') }}\"",
                "sleep 1",
                'echo \'::{"outputs": {"answer": 42}}::\'',
            ],
        }
    )
    log_task = make_job(
        {"type": "io.kestra.plugin.core.log.Log", "message": "in-process {{ inputs.who }}"},
        context={"inputs": {"who": "me"}},
    )
    worker, stop, task = await run_worker(wsettings)
    async with Observer(wsettings) as obs:
        await produce(wsettings, shell, log_task)
        await obs.until(lambda: obs.result(shell) and obs.result(log_task), "both results")
        # A redelivered job (same task run and attempt) is skipped; a later job on the same
        # partition (same execution id) proves the duplicate was read before it.
        follow = make_job(
            {"type": "io.kestra.plugin.core.debug.Return", "format": "x"},
            execution_id=shell.execution_id,
        )
        await produce(wsettings, shell, follow)
        await obs.until(lambda: obs.result(follow), "the follow-up result")
        # The result says how many lines the attempt sent: all of them arrive.
        await obs.until(
            lambda: len(obs.log_lines(shell)) >= max(2, obs.result(shell).log_lines),
            "the shell task's logs",
        )
    await stop_worker(stop, task)

    assert len(obs.of(shell, "TaskResult")) == 1
    started, result = obs.of(shell, "TaskStarted"), obs.result(shell)
    assert len(started) == 1
    assert started[0].worker_id == result.worker_id == worker.worker_id
    assert obs.commands.index(started[0]) < obs.commands.index(result)
    assert obs.of(shell, "Heartbeat"), "a 1 s task with 0.3 s heartbeats sends some"
    assert result.state == "SUCCESS"
    assert result.outputs == {"exitCode": 0, "vars": {"answer": 42}}

    messages = [line["message"] for line in obs.log_lines(shell)]
    assert messages[0] == "hello from f"
    assert "password is ********" in messages
    assert all(SECRET not in repr(line) for line in obs.logs)
    ids = [line["log_id"] for line in obs.log_lines(shell)]
    assert ids == [f"{shell.task_run_id}:1:{n}" for n in range(len(ids))]
    assert result.log_lines == len(ids)
    assert all(line["level"] == "INFO" and line["timestamp"] for line in obs.log_lines(shell))

    logged = obs.log_lines(log_task)
    assert [(line["level"], line["message"]) for line in logged] == [("INFO", "in-process me")]
    assert obs.result(log_task).state == "SUCCESS"
    assert obs.result(log_task).log_lines == 1

    admin = BusAdmin(wsettings.kafka)
    committed = await admin.committed_offsets(f"{wsettings.kafka.topic_prefix}workers")
    assert sum(committed.values()) == 4, "every job record, duplicate included, is committed"


async def test_stop_job_kills_and_timeout_fails(wsettings: Settings) -> None:
    long = make_job({"type": "io.kestra.plugin.scripts.shell.Commands", "commands": ["sleep 60"]})
    timed = make_job(
        {"type": "io.kestra.plugin.scripts.shell.Commands", "commands": ["sleep 60"]},
        timeout=0.5,
    )
    broken = make_job({"type": "io.kestra.plugin.core.log.Log", "message": "{{ nope.nope }}"})
    _, stop, task = await run_worker(wsettings)
    async with Observer(wsettings) as obs:
        await produce(wsettings, long, timed, broken)
        await obs.until(lambda: obs.of(long, "TaskStarted"), "the long task to start")
        stopper = StopJob(long.execution_id, long.task_run_id, long.attempt, "kill")
        await produce(wsettings, stopper)
        await obs.until(
            lambda: obs.result(long) and obs.result(timed) and obs.result(broken), "3 results"
        )
    await stop_worker(stop, task)
    assert obs.result(long).state == "KILLED"
    assert obs.result(timed).state == "FAILED"
    assert "timed out after PT0.5S" in obs.result(timed).error
    failed = obs.result(broken)
    assert failed.state == "FAILED"
    assert "nope" in failed.error
    assert failed.error_logs
    assert failed.error_logs[0]["level"] == "ERROR"


async def test_a_flood_of_log_lines_reaches_hw_logs_whole_and_in_order(
    wsettings: Settings,
) -> None:
    """100,000 lines of one task: every one on hw.logs once, in order, with consecutive ids,
    and the TaskResult says how many were sent (what a reader of the read model waits for)."""
    count = 100_000
    flood = make_job(
        {"type": "io.kestra.plugin.scripts.shell.Commands", "commands": [f"seq 1 {count}"]}
    )
    _, stop, task = await run_worker(wsettings)
    async with Observer(wsettings) as obs:
        await produce(wsettings, flood)
        await obs.until(lambda: obs.result(flood), "the flood's result")
        await obs.until(
            lambda: len(obs.log_lines(flood)) >= obs.result(flood).log_lines, "every line"
        )
    await stop_worker(stop, task)
    result = obs.result(flood)
    assert result.state == "SUCCESS"
    assert result.log_lines == count
    lines = obs.log_lines(flood)
    assert [line["message"] for line in lines] == [str(n) for n in range(1, count + 1)]
    assert [line["log_id"] for line in lines] == [
        f"{flood.task_run_id}:1:{n}" for n in range(count)
    ]
