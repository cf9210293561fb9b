"""The driver's view of a running Headwater: the API, the read model, and the run scenarios
that start executions through the API (chain-40-light, chain-10-heavy, fan-out).

Timestamps are the engine's own: the executions' and task runs' state histories as the
projector wrote them to PostgreSQL (the executor's clock, millisecond resolution).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import orjson

from benchmarks.suite import flows
from benchmarks.suite.stats import chain_split, end_time, first_time, median_of_runs

# Waiting longer than this for one execution means the stack is broken, not slow.
EXECUTION_WITHIN_S = 300.0
# How often the read model is asked whether executions finished: a cheap indexed query.
POLL_S = 0.01
# Flow folder -> hw.flows -> API: the flow sync polls every 0.5 s; a loaded machine is slower.
DEPLOY_WITHIN_S = 60.0
# The API's answer to one request (a loaded machine; a real answer takes milliseconds).
HTTP_TIMEOUT_S = 30.0


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


@dataclass
class Engine:
    """HTTP client on the API plus a connection pool on the read model."""

    api: httpx.AsyncClient
    db: asyncpg.Pool

    @classmethod
    async def connect(cls, url: str, dsn: str) -> Engine:
        api = httpx.AsyncClient(base_url=f"{url}/api/v1", timeout=HTTP_TIMEOUT_S)
        db = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
        return cls(api, db)

    async def close(self) -> None:
        await self.api.aclose()
        await self.db.close()

    async def wait_deployed(self, flow_ids: list[str]) -> None:
        async with asyncio.timeout(DEPLOY_WITHIN_S):
            for flow_id in flow_ids:
                path = f"/flows/{flows.NAMESPACE}/{flow_id}"
                while True:
                    if (await self.api.get(path)).status_code == 200:
                        break
                    await asyncio.sleep(0.1)

    async def start(self, flow_id: str) -> tuple[str, float]:
        sent = time.time()
        r = await self.api.post(f"/executions/{flows.NAMESPACE}/{flow_id}", json={"inputs": {}})
        r.raise_for_status()
        return str(r.json()["id"]), sent

    async def wait_terminal(self, ids: list[str], within_s: float = EXECUTION_WITHIN_S) -> None:
        async with asyncio.timeout(within_s):
            while True:
                done = await self.db.fetchval(
                    "SELECT count(*) FROM executions WHERE id = ANY($1) AND end_date IS NOT NULL",
                    ids,
                )
                if done >= len(ids):
                    return
                await asyncio.sleep(POLL_S)

    async def execution(self, exec_id: str) -> dict[str, Any]:
        row = await self.db.fetchrow(
            "SELECT state, state_history FROM executions WHERE id = $1", exec_id
        )
        assert row is not None, exec_id
        tasks = await self.db.fetch(
            "SELECT task_id, parent_id, state, state_history FROM task_runs"
            " WHERE execution_id = $1",
            exec_id,
        )
        return {
            "state": row["state"],
            "history": _json(row["state_history"]),
            "tasks": [
                {
                    "task_id": t["task_id"],
                    "parent_id": t["parent_id"],
                    "state": t["state"],
                    "history": _json(t["state_history"]),
                }
                for t in tasks
            ],
        }

    async def run_once(self, flow_id: str) -> tuple[dict[str, Any], float, float]:
        """(the execution's rows, when the API call was made, when its end was first seen in
        the read model: the user's view, to POLL_S)."""
        exec_id, sent = await self.start(flow_id)
        await self.wait_terminal([exec_id])
        seen = time.time()
        return await self.execution(exec_id), sent, seen


def _times(task: dict[str, Any]) -> tuple[float, float, float]:
    h = task["history"]
    created, started, ended = first_time(h, "CREATED"), first_time(h, "RUNNING"), end_time(h)
    if created is None or started is None or ended is None:
        raise RuntimeError(f"task {task['task_id']} has an incomplete history: {h}")
    return created, started, ended


def _chain_run(execution: dict[str, Any], sent: float, seen: float) -> dict[str, Any]:
    if execution["state"] != "SUCCESS":
        raise RuntimeError(f"benchmark execution ended {execution['state']}")
    start = first_time(execution["history"], "CREATED")
    end = end_time(execution["history"])
    if start is None or end is None:
        raise RuntimeError(f"execution history incomplete: {execution['history']}")
    split = chain_split([_times(t) for t in execution["tasks"]], end - start)
    return {
        **split,
        "api_to_end_ms": round((end - sent) * 1000, 2),
        "api_to_visible_ms": round((seen - sent) * 1000, 2),
    }


async def chain_scenario(engine: Engine, flow_id: str, runs: int) -> dict[str, Any]:
    """Warm-up, then ``runs`` executions one after another; medians of their splits."""
    await engine.run_once(flow_id)
    samples = [_chain_run(*(await engine.run_once(flow_id))) for _ in range(runs)]
    return {"runs": runs, "median": median_of_runs(samples), "samples": samples}


def fib_compute_s(repeat: int = 3) -> float:
    """Median seconds of the heavy task's own computation, run by the worker's interpreter."""
    times = []
    for _ in range(repeat):
        out = subprocess.run(
            ["python3", "-c", flows.FIB_SCRIPT], capture_output=True, text=True, check=True,
            timeout=300,
        )  # fmt: skip
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return sorted(times)[len(times) // 2]


async def task_compute_s(engine: Engine, exec_id: str) -> list[float]:
    """The compute time each heavy task printed (its stdout is in the logs table)."""
    rows = await engine.db.fetch("SELECT message FROM logs WHERE execution_id = $1", exec_id)
    out = []
    for row in rows:
        try:
            out.append(float(str(row["message"]).strip()))
        except ValueError:
            continue
    return out


async def heavy_scenario(engine: Engine, flow_id: str, n: int, runs: int) -> dict[str, Any]:
    """Like the chain, plus the overhead above the compute each task measured itself (the
    load of a shared machine changes between runs, so a separate baseline would not do)."""
    compute_s = await asyncio.to_thread(fib_compute_s)
    await engine.run_once(flow_id)
    samples = []
    for _ in range(runs):
        exec_id, sent = await engine.start(flow_id)
        await engine.wait_terminal([exec_id])
        sample = _chain_run(await engine.execution(exec_id), sent, time.time())
        # Logs are projected shortly after the execution's end: wait for all n.
        for _ in range(100):
            own = await task_compute_s(engine, exec_id)
            if len(own) >= n:
                break
            await asyncio.sleep(POLL_S)
        if len(own) >= n:
            sample["compute_ms"] = round(sum(own) / len(own) * 1000, 1)
            sample["above_compute_per_task_ms"] = round(
                (sample["total_ms"] / n) - sample["compute_ms"], 2
            )
        samples.append(sample)
    return {
        "runs": runs,
        "median": median_of_runs(samples),
        "samples": samples,
        "baseline_compute_per_task_ms": round(compute_s * 1000, 1),
    }


def _fanout_run(execution: dict[str, Any], sent: float, seen: float) -> dict[str, Any]:
    if execution["state"] != "SUCCESS":
        raise RuntimeError(f"fan-out execution ended {execution['state']}")
    start = first_time(execution["history"], "CREATED")
    end = end_time(execution["history"])
    if start is None or end is None:
        raise RuntimeError(f"execution history incomplete: {execution['history']}")
    items = [t for t in execution["tasks"] if t["task_id"] == "item"]
    created = sorted(c for c in (first_time(t["history"], "CREATED") for t in items) if c)
    started = sorted(s for s in (first_time(t["history"], "RUNNING") for t in items) if s)
    return {
        "items": len(items),
        "first_scheduled_s": round(created[0] - start, 3),
        "last_scheduled_s": round(created[-1] - start, 3),
        "last_started_s": round(started[-1] - start, 3),
        "complete_s": round(end - start, 3),
        "api_to_end_s": round(end - sent, 3),
        "api_to_visible_s": round(seen - sent, 3),
    }


async def fanout_scenario(engine: Engine, items: int, runs: int) -> dict[str, Any]:
    flow_id = f"fanout{items}"
    await engine.run_once(flow_id)
    samples = [_fanout_run(*(await engine.run_once(flow_id))) for _ in range(runs)]
    return {"runs": runs, "median": median_of_runs(samples), "samples": samples}
