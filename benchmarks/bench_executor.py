"""Executor throughput through the real broker: commands decided per second on one executor.

A backlog is produced first: for each of N executions of a one-task flow, StartExecution,
TaskStarted and TaskResult (SUCCESS), keyed by execution id so their order holds. Then one
executor (in process) starts, and the clock runs from its first decided command to the last.
Every decision's events, jobs and snapshot are produced and acknowledged, and offsets committed,
as in production. Prints JSON with parameters, results and the machine.

The machine is often shared, so besides the rate it reports CPU seconds per command over the
same interval (the whole process, and the event-loop thread that decides): those move far
less with other load than the rate does. Compare medians of several runs.

Usage: .venv/bin/python benchmarks/bench_executor.py [--executions N] [--batch B]
Needs the broker of `make services-up`; uses its own topic prefix and deletes it afterwards.
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

from engine.bus import AsyncProducer, BusAdmin, OutRecord, ensure_topics
from engine.bus.wire import command_record
from engine.executor import Executor
from engine.flows.normalize import normalize_flow_dict
from engine.reducer.commands import Command, StartExecution, TaskResult, TaskStarted
from engine.reducer.decide import decide
from engine.settings import ExecutorSettings, Settings

TARGET = 5000.0  # commands/s on one core (the brief's target)
# The run must finish within this many seconds or the benchmark reports a failure.
LIMIT_S = 300.0


def commands_for(index: int, flow: dict[str, object]) -> list[Command]:
    execution_id = f"bench-{index}"
    start = StartExecution(
        command_id=f"s{index}", execution_id=execution_id, namespace="bench", flow_id="one",
        flow=flow,
    )  # fmt: skip
    # The job's task-run id, exactly as the executor will compute it.
    job = decide(None, start, datetime.now(UTC)).jobs[0]
    return [
        start,
        TaskStarted(
            command_id=f"t{index}",
            execution_id=execution_id,
            task_run_id=job.task_run_id,
            attempt=1,
        ),
        TaskResult(
            command_id=f"r{index}",
            execution_id=execution_id,
            task_run_id=job.task_run_id,
            attempt=1,
            state="SUCCESS",
            outputs={"value": index},
        ),
    ]


async def main(executions: int, batch: int, partitions: int) -> dict[str, object]:
    base = Settings()
    kafka = base.kafka.model_copy(
        update={"topic_prefix": f"bench{uuid.uuid4().hex[:8]}.", "partitions": partitions}
    )
    settings = Settings(
        kafka=kafka,
        executor=ExecutorSettings(group_id=f"bench-{uuid.uuid4().hex[:8]}", max_batch=batch),
    )
    admin = BusAdmin(kafka)
    topics = await ensure_topics(admin, kafka)
    flow = normalize_flow_dict(
        {
            "id": "one",
            "namespace": "bench",
            "tasks": [{"id": "ret", "type": "io.kestra.plugin.core.debug.Return", "format": "x"}],
        }
    )
    records: list[OutRecord] = []
    for i in range(executions):
        for cmd in commands_for(i, flow):
            key, value = command_record(cmd)
            records.append(OutRecord(topics.commands.name, key, value))
    async with AsyncProducer(kafka) as producer:
        await producer.produce_batch(records)
    total = len(records)
    del records  # not the executor's memory: keep it out of its heap and GC
    executor = Executor(settings)
    await executor.start()
    stop = asyncio.Event()
    task = asyncio.create_task(executor.run(stop))
    try:
        first = None
        cpu_first = (os.times(), time.thread_time())
        async with asyncio.timeout(LIMIT_S):
            while executor.processed < total:
                if first is None and executor.processed > 0:
                    first = (time.perf_counter(), executor.processed)
                    cpu_first = (os.times(), time.thread_time())
                if task.done():
                    task.result()
                await asyncio.sleep(0.005)
        end = time.perf_counter()
        cpu_end = (os.times(), time.thread_time())
        terminal = sum(1 for o in executor.store.executions.values() if o.state.state.is_terminal)
    finally:
        stop.set()
        await task
        await executor.close()
        await admin.delete_topics(
            n for n in await admin.list_topics() if n.startswith(kafka.topic_prefix)
        )
    assert first is not None
    elapsed = end - first[0]
    decided = total - first[1]
    rate = decided / elapsed
    (t0, loop0), (t1, loop1) = cpu_first, cpu_end
    process_cpu = (t1.user - t0.user) + (t1.system - t0.system)
    return {
        "benchmark": "executor_commands_per_second",
        "parameters": {
            "executions": executions,
            "commands": total,
            "max_batch": batch,
            "partitions": partitions,
            "flow": "one Return task (3 commands per execution)",
            "broker": "Tansu (memory engine) on 127.0.0.1",
        },
        "results": {
            "commands_per_s": round(rate, 1),
            "elapsed_s": round(elapsed, 3),
            "executions_terminal": terminal,
            "process_cpu_us_per_command": round(process_cpu / decided * 1e6, 1),
            "loop_thread_cpu_us_per_command": round((loop1 - loop0) / decided * 1e6, 1),
            "target_commands_per_s": TARGET,
            "meets_target": rate >= TARGET,
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--executions", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.executions, args.batch, args.partitions)), indent=2))
