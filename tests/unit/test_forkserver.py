"""Python Script tasks forked from a warm interpreter (executors.forkserver, executors/_zygote.py)
behave as ``python script.py`` did: their own process, session and group, the task's
environment and directory, exit codes, tracebacks, shutdown, kills; and fall back to a fresh
process when the server cannot serve them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from executors.base import LogLine, run_task
from executors.python import PythonEnvironments, PythonScriptTask
from tests.integration.test_executors_scripts import alive, context, eventually, read_pid

REPORT = """
import json, os, sys
print("::" + json.dumps({"outputs": {
    "pid": os.getpid(), "ppid": os.getppid(), "pgid": os.getpgid(0), "sid": os.getsid(0),
    "cwd": os.getcwd(), "argv": sys.argv, "path0": sys.path[0], "name": __name__,
    "env": dict(os.environ), "stdin": sys.stdin.read(), "file": __file__,
}}) + "::")
"""


async def script(
    envs: PythonEnvironments, tmp: Path, source: str, **task: Any
) -> tuple[Any, list[LogLine]]:
    ctx, lines = context(tmp)
    outcome = await run_task(PythonScriptTask(envs), {"id": "t", "script": source, **task}, ctx)
    return outcome, lines


def errors(lines: list[LogLine]) -> list[str]:
    return [line.message for line in lines if line.level == "ERROR"]


async def test_a_forked_script_is_its_own_process_with_the_tasks_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEADWATER_HIDDEN", "worker-only")
    envs = PythonEnvironments("python3", tmp_path / "venvs")
    first, _ = await script(envs, tmp_path / "a", REPORT, env={"GREETING": "hi {{ flow.id }}"})
    second, _ = await script(envs, tmp_path / "b", REPORT)
    assert first.state == second.state == "SUCCESS", (first.error, second.error)
    one, two = first.outputs["vars"], second.outputs["vars"]
    # Forked by one server (not the worker), each a new process leading its session and group.
    assert one["ppid"] == two["ppid"] != os.getpid()
    assert one["pid"] != two["pid"]
    for run, folder in ((one, tmp_path / "a"), (two, tmp_path / "b")):
        assert run["pid"] == run["pgid"] == run["sid"]
        assert run["cwd"] == str(folder)
        assert run["argv"] == [run["file"]]
        assert Path(run["file"]).parent == folder
        assert run["path0"] == str(folder.resolve())
        assert run["name"] == "__main__"
        assert run["stdin"] == ""
        assert "HEADWATER_HIDDEN" not in run["env"]
        assert run["env"]["WORKING_DIR"] == str(folder)
    assert one["env"]["GREETING"] == "hi f"
    assert "GREETING" not in two["env"]
    assert envs.forks is not None


async def test_exit_codes_tracebacks_and_the_interpreters_shutdown(tmp_path: Path) -> None:
    envs = PythonEnvironments("python3", tmp_path / "venvs")
    failing, lines = await script(envs, tmp_path, "x = 1\nraise ValueError('boom')\n")
    assert failing.state == "FAILED"
    assert failing.error == "Command failed with exit code 1"
    text = "\n".join(errors(lines))
    assert text.startswith("Traceback (most recent call last):")
    assert ", line 2, in <module>" in text
    assert "ValueError: boom" in text
    assert "_zygote" not in text
    assert "runpy" not in text
    bye, lines = await script(envs, tmp_path, "import sys\nsys.exit('bye')")
    assert (bye.error, errors(lines)) == ("Command failed with exit code 1", ["bye", bye.error])
    code, _ = await script(envs, tmp_path, "raise SystemExit(7)")
    assert code.error == "Command failed with exit code 7"
    syntax, lines = await script(envs, tmp_path, "def broken(:\n")
    assert syntax.error == "Command failed with exit code 1"
    assert any("SyntaxError" in message for message in errors(lines))
    # What shutdown does that a script sees: threads joined, atexit, unclosed files flushed.
    ended, lines = await script(
        envs,
        tmp_path,
        "import atexit, threading, time\n"
        "atexit.register(lambda: print('atexit ran'))\n"
        "def late():\n    time.sleep(0.2)\n    print('thread done', flush=True)\n"
        "threading.Thread(target=late).start()\n"
        "f = open('unclosed.txt', 'w')\nf.write('kept')\n"
        "print('main done')\n",
    )
    assert ended.state == "SUCCESS", ended.error
    assert [line.message for line in lines] == ["main done", "thread done", "atexit ran"]
    assert (tmp_path / "unclosed.txt").read_text() == "kept"


async def test_a_kill_reaches_the_forked_scripts_group(tmp_path: Path) -> None:
    envs = PythonEnvironments("python3", tmp_path / "venvs")
    pids = tmp_path / "pids"
    ctx, _ = context(tmp_path)
    task = {
        "id": "t",
        "script": "import os, subprocess, time\n"
        "child = subprocess.Popen(['sleep', '600'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "time.sleep(600)\n",
    }
    running = asyncio.create_task(run_task(PythonScriptTask(envs), task, ctx))
    await eventually(lambda: pids.exists() and len(pids.read_text().split()) == 2, "the pids")
    leader, sleeper = map(int, pids.read_text().split())
    ctx.cancelled.set()
    outcome = await asyncio.wait_for(running, 30)
    assert outcome.state == "KILLED"
    assert await eventually(lambda: not alive(leader) and not alive(sleeper), "both gone")


async def test_start_up_variables_and_a_disabled_server_start_the_script_cold(
    tmp_path: Path,
) -> None:
    envs = PythonEnvironments("python3", tmp_path / "venvs")
    extra = tmp_path / "extra"
    outcome, _ = await script(envs, tmp_path, REPORT, env={"PYTHONPATH": str(extra)})
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs["vars"]["ppid"] == os.getpid()  # started by the worker itself
    cold = PythonEnvironments("python3", tmp_path / "venvs", fork_server=False)
    outcome, _ = await script(cold, tmp_path, REPORT)
    assert outcome.outputs["vars"]["ppid"] == os.getpid()
    assert cold.forks is None


async def test_a_dead_server_kills_its_scripts_and_is_replaced(tmp_path: Path) -> None:
    envs = PythonEnvironments("python3", tmp_path / "venvs")
    pid_file = tmp_path / "pid"
    ctx, _ = context(tmp_path)
    task = {
        "id": "t",
        "script": "import json, os, time\n"
        f"open({str(pid_file)!r}, 'w').write(json.dumps([os.getpid(), os.getppid()]))\n"
        "time.sleep(600)\n",
    }
    running = asyncio.create_task(run_task(PythonScriptTask(envs), task, ctx))
    await eventually(lambda: pid_file.exists() and pid_file.read_text(), "the script")
    pid, server = json.loads(pid_file.read_text())
    os.kill(server, signal.SIGKILL)
    outcome = await asyncio.wait_for(running, 30)
    assert outcome.error == "Command was killed by signal SIGKILL"
    assert await eventually(lambda: not alive(pid), "the orphaned script killed")
    after, _ = await script(envs, tmp_path, REPORT)
    assert after.state == "SUCCESS", after.error
    assert after.outputs["vars"]["ppid"] not in (server, os.getpid())
    assert read_pid(tmp_path / "missing") is None
