"""Projector benchmark: events/s through the real broker into PostgreSQL, and projection lag.

Needs Tansu and Postgres from deploy/local (`make services-up`). Uses its own topic prefix
and database (dropped at the end). Prints one JSON document with parameters, results and the
machine.

1. throughput: N events (ExecutionUpdated + TaskRunUpdated + LogLine for N/4 executions) are
   produced first, then one projector drains them: events/s = N / drain time.
2. lag under load: events are produced at a fixed rate while the projector runs; lag is the
   event age when its batch is committed (now - record timestamp), p50/p99.

    .venv/bin/python benchmarks/bench_projector.py [--events 200000] [--rate 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from engine.bus import AsyncProducer, BusAdmin, OutRecord, ensure_topics
from engine.bus.wire import event_record, log_record, out
from engine.projector import Projector
from engine.projector.databases import create_database, drop_database
from engine.reducer.model import Event
from engine.settings import ProjectorSettings, Settings, load_settings


def _ts() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def events_for(n_exec: int, prefix: str, topics: Any) -> list[OutRecord]:
    """4 records per execution: RUNNING, a task run, a log line, SUCCESS."""
    records = []
    for i in range(n_exec):
        ex = f"{prefix}-{i}"
        now = _ts()
        summary = {
            "id": ex,
            "namespace": "bench",
            "flow_id": f"flow{i % 20}",
            "revision": 1,
            "state": "RUNNING",
            "history": [["CREATED", now], ["RUNNING", now]],
            "start_date": now,
            "end_date": None,
            "inputs": {"n": i},
            "labels": {"team": "bench"},
            "outputs": None,
            "trigger": None,
            "parent": None,
        }
        run = {
            "id": f"{ex}-t",
            "task_id": "t",
            "type": "io.kestra.plugin.core.log.Log",
            "parent_id": None,
            "values": [],
            "value": None,
            "branch": "tasks",
            "state": "SUCCESS",
            "history": [["CREATED", now], ["SUCCESS", now]],
            "attempts": [{"state": "SUCCESS", "history": [], "worker_id": "w"}],
            "outputs": {"v": i},
            "iteration": None,
            "data": {},
        }
        done = {**summary, "state": "SUCCESS", "end_date": now}
        records += [
            out(topics.events.name, event_record(Event("ExecutionUpdated", ex, 1, now, summary))),
            out(topics.events.name, event_record(Event("TaskRunUpdated", ex, 2, now, run))),
            out(
                topics.logs.name,
                log_record(
                    log_id=f"{ex}-t:1:0",
                    execution_id=ex,
                    task_run_id=f"{ex}-t",
                    task_id="t",
                    attempt=1,
                    level="INFO",
                    message=f"hello {i}",
                    timestamp=now,
                ),
            ),
            out(topics.events.name, event_record(Event("ExecutionUpdated", ex, 3, now, done))),
        ]
    return records


async def drain(projector: Projector, dsn: str, name: str, total: int) -> float:
    """Run the projector until `total` records are projected; returns seconds from the
    first projected batch to the last (excludes the group join)."""
    stop = asyncio.Event()
    task = asyncio.create_task(projector.run(stop))
    conn = await asyncpg.connect(dsn)
    first = None
    try:
        while True:
            seen = await conn.fetchval(
                "SELECT records_total FROM projector_status WHERE name = $1", name
            )
            seen = int(seen or 0)
            if seen and first is None:
                first = (time.perf_counter(), seen)
            if seen >= total:
                break
            if task.done():
                await task
            await asyncio.sleep(0.02)
        assert first is not None
        elapsed = time.perf_counter() - first[0]
        return total - first[1], elapsed
    finally:
        stop.set()
        await task
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rate", type=int, default=5_000, help="events/s for the lag run")
    parser.add_argument("--lag-seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=5_000)
    args = parser.parse_args()

    base: Settings = load_settings()
    kafka = base.kafka.model_copy(
        update={"topic_prefix": f"bench{uuid.uuid4().hex[:8]}.", "partitions": 4}
    )
    admin_dsn = base.postgres.dsn.get_secret_value()
    db = f"headwater_bench_{uuid.uuid4().hex[:8]}"
    dsn = await create_database(admin_dsn, db)
    admin = BusAdmin(kafka)
    topics = await ensure_topics(admin, kafka)
    result: dict[str, Any] = {
        "benchmark": "projector",
        "parameters": {
            "events": args.events,
            "batch_max_records": args.batch,
            "partitions": kafka.partitions,
            "lag_rate_per_s": args.rate,
            "lag_seconds": args.lag_seconds,
            "broker": "Tansu (memory)",
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }
    try:
        n_exec = args.events // 4
        records = events_for(n_exec, "tp", topics)
        async with AsyncProducer(kafka) as producer:
            await producer.produce_many(records)
        settings = ProjectorSettings(
            group_id="bench", batch_max_records=args.batch, poll_timeout_s=0.2
        )
        projector = Projector(kafka, settings, dsn, name="bench")
        await projector.start()
        counted, elapsed = await drain(projector, dsn, "bench", len(records))
        result["throughput"] = {
            "records": counted,
            "seconds": round(elapsed, 3),
            "events_per_s": round(counted / elapsed),
            "batches": projector.stats.batches,
        }
        conn = await asyncpg.connect(dsn)
        rows = await conn.fetchval("SELECT count(*) FROM executions WHERE state = 'SUCCESS'")
        await conn.close()
        result["throughput"]["executions_success"] = rows

        # Lag under a steady load: a new projector (same group) follows a paced producer.
        projector._ages.clear()
        stop = asyncio.Event()
        task = asyncio.create_task(projector.run(stop))
        per_tick = max(4, args.rate // 50)  # 50 ticks a second
        async with AsyncProducer(kafka) as producer:
            t_end = time.perf_counter() + args.lag_seconds
            i = 0
            while time.perf_counter() < t_end:
                tick = time.perf_counter()
                batch = events_for(per_tick // 4, f"lag{i}", topics)
                await producer.produce_many(batch)
                i += 1
                await asyncio.sleep(max(0.0, 0.02 - (time.perf_counter() - tick)))
        await asyncio.sleep(1.0)  # let the tail be projected
        stop.set()
        await task
        lag = projector.lag_percentiles()
        result["lag_under_load"] = {
            "produced": i * (per_tick // 4) * 4,
            "p50_ms": round(lag["p50_ms"] or 0, 1),
            "p99_ms": round(lag["p99_ms"] or 0, 1),
            "fetch_wait_max_ms": kafka.fetch_wait_max_ms,
        }
        await projector.close()
    finally:
        await admin.delete_topics(t.name for t in topics.all())
        await drop_database(admin_dsn, db)
    result["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
