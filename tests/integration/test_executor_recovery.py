"""Executor restarts and failover through the real broker: state and timers survive."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator

import pytest

from engine.bus import AsyncConsumer
from engine.bus.wire import decode_event
from engine.reducer.model import State
from engine.settings import Settings
from tests.conformance.e2e_stack import Stack, stack_settings

pytestmark = pytest.mark.kafka

RETRY = """
id: retry
namespace: io.test
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
    retry:
      type: constant
      interval: PT1S
      maxAttempts: 2
"""

SLEEPY = """
id: sleepy
namespace: io.test
tasks:
  - id: first
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT0.5S
  - id: second
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT0.5S
  - id: last
    type: io.kestra.plugin.core.debug.Return
    format: "{{ execution.id }}"
"""
EXECUTIONS = 6
# Seconds to wait for a subprocess executor to join its group and take partitions.
JOIN_S = 30.0


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    s = await Stack(stack_settings()).start()
    try:
        yield s
    finally:
        await s.close()


async def test_restart_restores_state_and_rearms_a_pending_retry_timer(stack: Stack) -> None:
    await stack.deploy(RETRY)
    execution_id = await stack.start_execution("io.test", "retry")

    def retry_pending() -> bool:
        state = stack.state(execution_id)
        return bool(state and any(t.kind == "retry" for t in state.timers.values()))

    await stack.wait(retry_pending, "a pending retry timer")
    # Crash-like stop: the loop is cancelled mid-flight, nothing more is decided here.
    await stack.stop_executor(clean=False)
    executor = await stack.start_executor()
    state = await stack.wait_terminal(execution_id)
    run = next(iter(state.task_runs.values()))
    assert state.state == State.FAILED
    assert len(run.attempts) == 2, "the retry timer did not fire after the restart"
    assert executor.healthy()


def _env(settings: Settings) -> dict[str, str]:
    k, e = settings.kafka, settings.executor
    return {
        **os.environ,
        "HEADWATER_KAFKA__TOPIC_PREFIX": k.topic_prefix,
        "HEADWATER_KAFKA__PARTITIONS": str(k.partitions),
        "HEADWATER_KAFKA__SESSION_TIMEOUT_MS": str(k.session_timeout_ms),
        "HEADWATER_KAFKA__HEARTBEAT_INTERVAL_MS": str(k.heartbeat_interval_ms),
        "HEADWATER_KAFKA__FETCH_WAIT_MAX_MS": str(k.fetch_wait_max_ms),
        "HEADWATER_EXECUTOR__GROUP_ID": e.group_id,
        "HEADWATER_EXECUTOR__POLL_TIMEOUT_S": str(e.poll_timeout_s),
        "HEADWATER_EXECUTOR__INLINE_TASKS": str(e.inline_tasks).lower(),
    }


async def test_two_executor_processes_one_killed_mid_run() -> None:
    # Every task goes to the worker: the point is that no job is dispatched twice.
    settings = stack_settings(partitions=4, inline_tasks=False)
    stack = await Stack(settings).start(executor=False)
    procs: list[asyncio.subprocess.Process] = []
    events = AsyncConsumer(settings.kafka, f"obs-{uuid.uuid4().hex[:8]}")
    try:
        for _ in range(2):
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "engine.executor",
                    env=_env(settings),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            )
        await stack.deploy(SLEEPY)
        await events.start()
        await events.subscribe([stack.topics.events.name])
        latest: dict[str, tuple[int, str]] = {}

        async def observe() -> None:
            records = await events.consume(500, 0.1)
            for r in records:
                event = decode_event(r.value or b"")
                if event.type == "ExecutionUpdated":
                    seq, _ = latest.get(event.execution_id, (-1, ""))
                    if event.seq > seq:
                        latest[event.execution_id] = (event.seq, event.payload["state"])

        # Executions are started only once both processes run; wait for the first to finish.
        first = await stack.start_execution("io.test", "sleepy")
        async with asyncio.timeout(JOIN_S * 2):
            while latest.get(first, (0, ""))[1] != "SUCCESS":
                await observe()
        ids = [await stack.start_execution("io.test", "sleepy") for _ in range(EXECUTIONS)]
        async with asyncio.timeout(JOIN_S):
            while sum(1 for i in ids if latest.get(i, (0, ""))[1] == "RUNNING") < EXECUTIONS:
                await observe()
        procs[0].send_signal(signal.SIGKILL)
        await procs[0].wait()
        async with asyncio.timeout(JOIN_S * 2):
            while not all(latest.get(i, (0, ""))[1] in ("SUCCESS", "FAILED") for i in ids):
                await observe()
        assert {i: latest[i][1] for i in ids} == dict.fromkeys(ids, "SUCCESS")
        assert stack.worker is not None
        assert max(stack.worker.ran.values()) == 1
        # Every task of every execution ran exactly once (3 per execution, plus the first).
        assert len(stack.worker.ran) == 3 * (EXECUTIONS + 1)
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                async with asyncio.timeout(20):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await events.close()
        await stack.close()
