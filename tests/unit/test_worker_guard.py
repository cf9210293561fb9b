"""Task process groups die with their worker, even when the worker is SIGKILLed.

A stand-in worker (a Python subprocess with a :class:`ProcessGuard` and the real script
runner) starts a shell whose ``sleep`` is a grandchild in the task's own session; the test
SIGKILLs the stand-in and checks that no process of that group survives.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from engine.worker.guard import ProcessGuard

REPO = Path(__file__).resolve().parents[2]
# How long the group may take to disappear: the watchdog acts within milliseconds of EOF.
GONE_S = 5.0

_STAND_IN = """
import asyncio, sys
from engine.worker.guard import ProcessGuard
from executors.base import TaskContext
from executors.process import run_process

class Announce:
    def __init__(self, guard):
        self.guard = guard
    def register(self, pgid):
        self.guard.register(pgid)
        print(pgid, flush=True)
    def unregister(self, pgid):
        self.guard.unregister(pgid)

async def main():
    guard = ProcessGuard()
    ctx = TaskContext(execution_id="e", task_run_id="r", attempt=1, variables={},
                      process_watch=Announce(guard))
    await run_process(["/bin/sh", "-c", "sleep 30; echo never"], ctx, cwd=".", env={})

asyncio.run(main())
"""


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes whose process group is ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


async def eventually(predicate: Callable[[], bool], within_s: float = GONE_S) -> bool:
    """Whether ``predicate()`` holds at some check within ``within_s`` (polled)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        if predicate():
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)


async def wait_gone(pgid: int) -> list[int]:
    await eventually(lambda: not group_members(pgid))
    return group_members(pgid)


async def test_sigkilled_worker_takes_its_task_processes_along() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _STAND_IN, cwd=REPO, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        pgid = int(line)
        # The shell forks its sleep.
        assert await eventually(lambda: len(group_members(pgid)) >= 2), "no shell and sleep"
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        assert await wait_gone(pgid) == []
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_dead_watchdog_is_replaced_and_learns_the_running_groups() -> None:
    sleeper = await asyncio.create_subprocess_exec("sleep", "30", start_new_session=True)
    guard = ProcessGuard()
    try:
        guard.register(sleeper.pid)
        first = guard.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await asyncio.sleep(0.1)
        other = await asyncio.create_subprocess_exec("sleep", "30", start_new_session=True)
        guard.register(other.pid)  # notices the dead watchdog, starts another
        assert guard.pid not in (None, first)
        assert guard.restarts == 1
        await asyncio.to_thread(guard.close)  # EOF: the new watchdog kills both groups
        assert await wait_gone(sleeper.pid) == []
        assert await wait_gone(other.pid) == []
        await asyncio.wait_for(other.wait(), GONE_S)
    finally:
        for p in (sleeper,):
            if p.returncode is None:
                p.kill()
        await sleeper.wait()


async def test_unregistered_groups_are_left_alone() -> None:
    sleeper = await asyncio.create_subprocess_exec("sleep", "30", start_new_session=True)
    guard = ProcessGuard()
    try:
        guard.register(sleeper.pid)
        guard.unregister(sleeper.pid)
        await asyncio.to_thread(guard.close)
        assert group_members(sleeper.pid) == [sleeper.pid]
    finally:
        sleeper.kill()
        await sleeper.wait()


def test_close_without_start_is_a_no_op() -> None:
    ProcessGuard().close()


async def test_a_task_group_is_registered_before_the_loop_turns_after_the_fork(
    tmp_path: Path,
) -> None:
    """The child runs as soon as it is forked; a worker killed before the registration leaks
    its group. asyncio's subprocess_exec hands the process over several loop steps later
    (its pipes connected first), so the runner forks itself and registers at once."""
    from executors.base import TaskContext
    from executors.process import run_process

    loop = asyncio.get_running_loop()
    turned: list[bool] = []
    registered: list[tuple[int, bool]] = []

    class Watch:
        def register(self, pgid: int) -> None:
            registered.append((pgid, bool(turned)))

        def unregister(self, pgid: int) -> None:
            pass

    ctx = TaskContext(
        execution_id="e", task_run_id="r", attempt=1, variables={}, process_watch=Watch()
    )
    loop.call_soon(turned.append, True)  # runs at the loop's next turn
    result = await run_process(
        ["/bin/sh", "-c", "echo hi; exit 3"], ctx, cwd=str(tmp_path), env={"PATH": os.defpath}
    )
    assert result.exit_code == 3
    assert len(registered) == 1
    assert registered[0][1] is False, "registered only after the loop had turned"
