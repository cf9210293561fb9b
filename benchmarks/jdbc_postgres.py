"""CopyIn and Query STORE of N rows (default 1,000,000) on PostgreSQL, as a worker runs them.

    HEADWATER_LOCAL_DIR=... .venv/bin/python benchmarks/jdbc_postgres.py [--rows N] [--dsn DSN]

Makes a CSV of N rows (id, name, amount, day, at), stores it in a local internal storage, then
times ``io.kestra.plugin.jdbc.postgresql.CopyIn`` into a fresh table and ``Query`` with
``fetchType: STORE`` of the whole table (rows streamed to an Ion file). Prints one JSON object
with the parameters, each step's seconds and rows/s, and the machine. Not run by the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from engine.settings import Settings
from engine.stores.storage import LocalStorage, TaskLocation
from executors.base import TaskContext, run_task
from executors.plugin import PluginExecutor
from executors.plugins.jdbc import CopyIn, PgQuery


def _csv(rows: int) -> bytes:
    lines = ["id,name,amount,day,at"]
    lines += [
        f"{i},name-{i},{i % 1000}.{i % 100:02d},2024-01-{i % 28 + 1:02d},"
        f"2024-01-01 00:00:{i % 60:02d}+00"
        for i in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def _ctx(storage: LocalStorage, task_id: str) -> TaskContext:
    ctx = TaskContext.for_job(
        execution_id="bench",
        task_run_id=task_id,
        attempt=1,
        task={"id": task_id, "logLevel": "INFO"},
        variables={"flow": {"id": "bench", "namespace": "bench"}},
    )
    ctx.storage = storage.for_task(TaskLocation("bench", "bench", "bench", task_id, "r1"))
    return ctx


async def _timed(cls: Any, task: dict[str, Any], ctx: TaskContext) -> tuple[float, Any]:
    start = time.perf_counter()
    outcome = await run_task(PluginExecutor(cls), task, ctx)
    elapsed = time.perf_counter() - start
    if outcome.state != "SUCCESS":
        raise SystemExit(f"{task['id']} failed: {outcome.error}")
    return elapsed, outcome


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dsn", default=Settings().postgres.dsn.get_secret_value())
    args = parser.parse_args()
    table = f"hw_bench_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="hw-bench-jdbc-") as tmp:
        storage = LocalStorage(Path(tmp) / "storage")
        made = time.perf_counter()
        source = storage.put_sync(TaskLocation("bench", "bench", "bench", "src", "r0"), "rows.csv",
                                  _csv(args.rows))  # fmt: skip
        csv_s = time.perf_counter() - made
        url = "jdbc:" + args.dsn
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            conn.execute(
                f"CREATE TABLE {table} (id bigint, name text, amount numeric(8,2), day date, "
                "at timestamptz)"
            )
        try:
            copy_s, copied = await _timed(
                CopyIn,
                {
                    "id": "copy",
                    "type": CopyIn.type_name(),
                    "url": url,
                    "from": source,
                    "table": table,
                    "format": "CSV",
                    "header": True,
                },
                _ctx(storage, "copy"),
            )
            store_s, stored = await _timed(
                PgQuery,
                {
                    "id": "store",
                    "type": PgQuery.type_name(),
                    "url": url,
                    "fetchType": "STORE",
                    "sql": f"SELECT * FROM {table}",
                },
                _ctx(storage, "store"),
            )
            ion_bytes = storage.path_of(stored.outputs["uri"]).stat().st_size
        finally:
            with psycopg.connect(args.dsn, autocommit=True) as conn:
                conn.execute(f"DROP TABLE IF EXISTS {table}")
    print(
        json.dumps(
            {
                "benchmark": "jdbc_postgres",
                "parameters": {"rows": args.rows, "columns": 5},
                "results": {
                    "csv_make_s": round(csv_s, 3),
                    "copy_in_s": round(copy_s, 3),
                    "copy_in_rows": copied.outputs["rowCount"],
                    "copy_in_rows_per_s": round(args.rows / copy_s),
                    "query_store_s": round(store_s, 3),
                    "query_store_rows": stored.outputs["size"],
                    "query_store_rows_per_s": round(args.rows / store_s),
                    "ion_bytes": ion_bytes,
                },
                "machine": {
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
