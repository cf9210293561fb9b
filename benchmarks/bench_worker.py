"""Benchmark of the worker: per-task overhead of a trivial shell task and of an in-process task,
and jobs per second through one worker process against the real broker.

Prints one JSON document (params, machine, results). The throughput part uses the broker of the
settings (HEADWATER_KAFKA__BOOTSTRAP_SERVERS) and throw-away topics, deleted at the end; it is
measured after the worker joined its group (a warm-up job), from the first job produced to the
last TaskResult read back.

    .venv/bin/python benchmarks/bench_worker.py --shell-tasks 100 --inproc-tasks 5000 --jobs 2000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.bus import AsyncConsumer, AsyncProducer, BusAdmin, OutRecord
from engine.bus.wire import decode_command, job_record
from engine.reducer.model import Job
from engine.settings import Settings, WorkerSettings, load_settings
from engine.worker import Worker, build_registry
from executors.base import TaskContext

# Waiting longer than this for results means the worker is broken, not slow.
ARRIVAL_S = 300.0


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def _ctx() -> TaskContext:
    return TaskContext.for_job(
        execution_id="e",
        task_run_id=uuid.uuid4().hex[:16],
        attempt=1,
        task={"id": "t"},
        variables={"flow": {"id": "f", "namespace": "ns"}, "inputs": {"n": 1}},
        retain_logs=False,
    )


async def _per_task(task: dict[str, Any], n: int, settings: Settings) -> dict[str, float]:
    registry = build_registry(settings, Path(tempfile.gettempdir()) / "hw-bench-venvs")
    samples = []
    for _ in range(n):
        ctx = _ctx()
        start = time.perf_counter()
        outcome = await registry.run(task, ctx)
        samples.append(time.perf_counter() - start)
        assert outcome.state == "SUCCESS", outcome.error
    samples.sort()
    return {
        "tasks": n,
        "mean_ms": round(statistics.fmean(samples) * 1000, 3),
        "p50_ms": round(samples[len(samples) // 2] * 1000, 3),
        "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000, 3),
    }


def _job(task: dict[str, Any], i: int) -> Job:
    return Job(
        f"exec-{i % 512}",
        uuid.uuid4().hex[:16],
        1,
        {"id": "t", **task},
        {"flow": {"id": "f", "namespace": "ns"}, "inputs": {"i": i}},
        None,
        None,
    )


async def _throughput(
    base: Settings, task: dict[str, Any], n: int, concurrency: int
) -> dict[str, Any]:
    prefix = f"bw{uuid.uuid4().hex[:8]}."
    kafka = base.kafka.model_copy(update={"topic_prefix": prefix, "session_timeout_ms": 3000})
    tmp = Path(tempfile.mkdtemp(prefix="hw-bench-worker-"))
    worker_settings = WorkerSettings(
        concurrency=concurrency,
        work_dir=str(tmp / "work"),
        storage_dir=str(tmp / "storage"),
        venv_cache_dir=str(tmp / "venvs"),
    )
    settings = base.model_copy(update={"kafka": kafka, "worker": worker_settings})
    worker = Worker(settings)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    admin = BusAdmin(kafka)
    try:
        async with AsyncProducer(kafka) as producer, AsyncConsumer(kafka, "obs") as consumer:
            for _ in range(int(ARRIVAL_S / 0.05)):  # the worker creates the topics
                if f"{prefix}commands" in await admin.list_topics():
                    break
                await asyncio.sleep(0.05)
            await consumer.assign({(f"{prefix}commands", p): 0 for p in range(kafka.partitions)})
            warm = _job(task, -1)
            await producer.produce(f"{prefix}jobs", *job_record(warm))
            await _results(consumer, {warm.task_run_id})
            jobs = [_job(task, i) for i in range(n)]
            start = time.perf_counter()
            await producer.produce_many(
                OutRecord(f"{prefix}jobs", *job_record(job)) for job in jobs
            )
            await _results(consumer, {job.task_run_id for job in jobs})
            elapsed = time.perf_counter() - start
    finally:
        stop.set()
        await running
        await admin.delete_topics(t for t in await admin.list_topics() if t.startswith(prefix))
    return {
        "jobs": n,
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "jobs_per_s": round(n / elapsed, 1),
    }


async def _results(consumer: AsyncConsumer, wanted: set[str]) -> None:
    left = set(wanted)
    async with asyncio.timeout(ARRIVAL_S):
        while left:
            for record in await consumer.consume(5000, 0.2):
                command = decode_command(record.value or b"")
                if command.type == "TaskResult":
                    left.discard(getattr(command, "task_run_id", ""))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shell-tasks", type=int, default=100)
    parser.add_argument("--inproc-tasks", type=int, default=5000)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--shell-jobs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    settings = load_settings()
    shell = {"type": "io.kestra.plugin.scripts.shell.Commands", "commands": ["true"]}
    inproc = {"type": "io.kestra.plugin.core.debug.Return", "format": "v{{ inputs.n }}"}
    log_task = {"type": "io.kestra.plugin.core.log.Log", "message": "hello {{ inputs.i }}"}
    results = {
        "shell_task_overhead": await _per_task(shell, args.shell_tasks, settings),
        "inprocess_task_overhead": await _per_task(inproc, args.inproc_tasks, settings),
        "worker_inprocess_log_jobs": await _throughput(
            settings, log_task, args.jobs, args.concurrency
        ),
        "worker_shell_jobs": await _throughput(settings, shell, args.shell_jobs, args.concurrency),
    }
    print(
        __import__("json").dumps(
            {
                "benchmark": "worker",
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "params": vars(args) | {"bootstrap": settings.kafka.bootstrap_servers},
                "machine": _machine(),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
