"""Shell and Python script tasks with real subprocesses (no server needed)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from executors.base import LogLine, TaskContext, TaskOutcome, run_task
from executors.process import MAX_LINE_BYTES
from executors.python import PythonCommandsTask, PythonEnvironments, PythonScriptTask
from executors.shell import ShellCommandsTask, ShellScriptTask

# A test waits this long for a subprocess milestone (a pid file) on a loaded shared machine.
WAIT_S = 30.0


def context(tmp: Path | None = None, **variables: Any) -> tuple[TaskContext, list[LogLine]]:
    lines: list[LogLine] = []
    ctx = TaskContext.for_job(
        execution_id="e1",
        task_run_id="r1",
        attempt=1,
        task={"id": "t"},
        variables={"flow": {"id": "f", "namespace": "ns"}, **variables},
        on_log=lines.append,
        working_dir=str(tmp) if tmp else None,
    )
    return ctx, lines


async def shell(commands: list[str], tmp: Path | None = None, **task: Any) -> Any:
    ctx, lines = context(tmp)
    outcome = await run_task(ShellCommandsTask(), {"id": "t", "commands": commands, **task}, ctx)
    return outcome, lines


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def eventually(check: Callable[[], Any], what: str) -> Any:
    """Poll ``check`` (off the loop: it reads files) until it returns something truthy."""
    try:
        async with asyncio.timeout(WAIT_S):
            while True:
                value = await asyncio.to_thread(check)
                if value:
                    return value
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


def read_pid(path: Path) -> int | None:
    text = path.read_text().strip() if path.exists() else ""
    return int(text) if text else None


async def test_outputs_env_input_files_and_working_dir() -> None:
    outcome, lines = await shell(
        [
            'echo "greeting=$GREETING"',
            "cat data.txt",
            "echo 'warn' >&2",
            'echo \'::{"outputs": {"n": 1, "s": "x"}, "metrics": '
            '[{"name": "rows", "type": "counter", "value": 3}]}::\'',
            'echo \'::{"outputs": {"n": 2}}::\'',
            "test \"$(pwd)\" = '{{ workingDir }}' && echo same-dir",
        ],
        env={"GREETING": "hi {{ flow.id }}"},
        inputFiles={"data.txt": "from {{ flow.namespace }}\n"},
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {"exitCode": 0, "vars": {"n": 2, "s": "x"}}
    assert outcome.metrics == {"rows": 3}
    # stdout and stderr are two pipes read side by side: the order within each holds, the
    # order between them depends on the scheduler.
    seen = [(line.level, line.message) for line in lines]
    assert [m for m in seen if m[0] == "INFO"] == [
        ("INFO", "greeting=hi f"),
        ("INFO", "from ns"),
        ("INFO", "same-dir"),
    ]
    assert [m for m in seen if m[0] != "INFO"] == [("ERROR", "warn")]


async def test_worker_secrets_are_not_in_the_task_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "c2VjcmV0")
    monkeypatch.setenv("HEADWATER_KAFKA__TOPIC_PREFIX", "x.")
    outcome, lines = await shell(['echo "[$SECRET_TOKEN][$HEADWATER_KAFKA__TOPIC_PREFIX]"'])
    assert outcome.state == "SUCCESS"
    assert lines[0].message == "[][]"


async def test_non_zero_exit_fails_with_the_code_and_fail_fast() -> None:
    outcome, lines = await shell(["echo before", "exit 3", "echo never"])
    assert outcome.state == "FAILED"
    assert outcome.error == "Command failed with exit code 3"
    assert outcome.outputs["exitCode"] == 3
    assert [line.message for line in lines] == ["before", "Command failed with exit code 3"]
    assert lines[-1].level == "ERROR"
    lenient, _ = await shell(["false", "echo after"], failFast=False)
    assert lenient.state == "SUCCESS"


async def test_death_by_signal_names_the_signal() -> None:
    outcome, _ = await shell(["kill -9 $$"])
    assert outcome.state == "FAILED"
    assert outcome.error == "Command was killed by signal SIGKILL"


async def test_invalid_outputs_line_fails_with_a_clear_reason() -> None:
    outcome, lines = await shell(["echo '::{\"outputs\": {broken}::'", "echo after"])
    assert outcome.state == "FAILED"
    assert outcome.error is not None
    assert outcome.error.startswith("invalid ::{...}:: output line")
    assert '::{"outputs": {broken}::' in outcome.error
    assert "after" in [line.message for line in lines]  # the script still ran to its end


async def test_cancel_kills_the_whole_process_group(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path)
    task = {
        "id": "t",
        "commands": ["sleep 300 & echo $! > child.pid", "sleep 300"],
    }
    running = asyncio.create_task(run_task(ShellCommandsTask(), task, ctx))
    child = await eventually(lambda: read_pid(tmp_path / "child.pid"), "the child's pid")
    assert alive(child)
    ctx.cancelled.set()
    async with asyncio.timeout(WAIT_S):
        outcome: TaskOutcome = await running
    assert outcome.state == "KILLED"
    await eventually(lambda: not alive(child), "the background child to be killed")


async def test_background_leftovers_do_not_hold_the_task(tmp_path: Path) -> None:
    outcome, _ = await shell(["sleep 300 & echo $! > bg.pid", "echo done"], tmp_path)
    assert outcome.state == "SUCCESS"
    pid = await eventually(lambda: read_pid(tmp_path / "bg.pid"), "the pid file")
    await eventually(lambda: not alive(pid), "the leftover to be killed")


async def test_a_flood_of_output_neither_stalls_nor_loses_a_line() -> None:
    count = 100_000
    outcome, lines = await shell([f"seq 1 {count}", f"seq 1 {count} >&2"])
    assert outcome.state == "SUCCESS"
    out = [line.message for line in lines if line.level == "INFO"]
    err = [line.message for line in lines if line.level == "ERROR"]
    assert out == [str(n) for n in range(1, count + 1)]
    assert err == out


async def test_an_endless_line_is_cut() -> None:
    size = MAX_LINE_BYTES * 3
    outcome, lines = await shell([f"head -c {size} /dev/zero | tr '\\0' x", "echo", "echo next"])
    assert outcome.state == "SUCCESS"
    assert len(lines[0].message) == MAX_LINE_BYTES + len(" [line truncated]")
    assert [line.message for line in lines[1:]] == ["next"]


async def test_shell_script_and_custom_interpreter() -> None:
    ctx, lines = context()
    task = {
        "id": "t",
        "script": 'for i in 1 2; do echo "line $i"; done',
        "beforeCommands": ["echo pre"],
    }
    outcome = await run_task(ShellScriptTask(), task, ctx)
    assert outcome.state == "SUCCESS"
    assert [line.message for line in lines] == ["pre", "line 1", "line 2"]
    outcome, lines = await shell(["echo $0"], interpreter=["/bin/bash", "-c"])
    assert lines[0].message == "/bin/bash"


async def test_python_script_and_commands_without_dependencies(tmp_path: Path) -> None:
    envs = PythonEnvironments("python3", tmp_path / "venvs")
    ctx, lines = context()
    script = {
        "id": "t",
        "script": "import json, sys\n"
        "print('::' + json.dumps({'outputs': {'v': sys.version_info[0]}}) + '::')\n"
        "print('to stderr', file=sys.stderr)",
    }
    outcome = await run_task(PythonScriptTask(envs), script, ctx)
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs["vars"] == {"v": 3}
    assert [(line.level, line.message) for line in lines] == [("ERROR", "to stderr")]
    ctx, lines = context()
    commands = {"id": "t", "commands": ["python -c 'print(6 * 7)'"]}
    outcome = await run_task(PythonCommandsTask(envs), commands, ctx)
    assert outcome.state == "SUCCESS", outcome.error
    assert lines[0].message == "42"
    ctx, _ = context()
    failing = {"id": "t", "script": "raise SystemExit(4)"}
    outcome = await run_task(PythonScriptTask(envs), failing, ctx)
    assert outcome.error == "Command failed with exit code 4"


async def test_python_dependencies_install_into_a_cached_venv(tmp_path: Path) -> None:
    envs = PythonEnvironments("python3", tmp_path / "venvs")
    task = {
        "id": "t",
        "dependencies": ["six"],
        "script": "import six, sys\nprint(six.__name__, sys.prefix)",
    }
    ctx, lines = context()
    outcome = await run_task(PythonScriptTask(envs), task, ctx)
    assert outcome.state == "SUCCESS", [line.message for line in lines]
    name, prefix = lines[-1].message.split()
    assert name == "six"
    assert Path(prefix).parent == tmp_path / "venvs"
    venvs = sorted(p.name for p in (tmp_path / "venvs").iterdir() if p.is_dir())
    ctx, lines = context()
    outcome = await run_task(PythonScriptTask(envs), task, ctx)
    assert outcome.state == "SUCCESS"
    assert [line.message for line in lines] == [f"six {prefix}"]  # no second install
    assert sorted(p.name for p in (tmp_path / "venvs").iterdir() if p.is_dir()) == venvs
    assert os.access(Path(prefix) / ".headwater-ready", os.F_OK)
