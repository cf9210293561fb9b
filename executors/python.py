"""Python tasks: ``io.kestra.plugin.scripts.python.Script`` and ``...python.Commands``.

They share the shell tasks' runner (process group, logs, ``::{...}::`` outputs, files). The
interpreter is the worker's ``python`` setting; ``dependencies`` (Kestra's property, a list of
pip requirements) are installed into an isolated virtualenv cached under the worker's venv
directory, keyed by the interpreter and the sorted requirement set, so the second run of a flow
with the same requirements starts at once. A file lock makes concurrent runs (even in other
worker processes on the machine) build one venv, not race on it.

In ``Commands``, ``python`` and ``python3`` on ``PATH`` are that interpreter (or the venv's).
In a container (:mod:`executors.runners`; default image ``python:3.13-slim``, as Kestra's) the
image's ``python`` runs the script, and ``dependencies`` are installed by pip inside the
container before it.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import shlex
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from executors.base import TaskContext, TaskError, TaskOutcome, to_text
from executors.forkserver import ForkServers, Launcher
from executors.process import run_process, task_environment
from executors.runners import Container, Runner
from executors.shell import (
    EXIT_ON_ERROR,
    command_script,
    interpreter_argv,
    resolve_runner,
    run_script,
    string_list,
    with_before_commands,
)

# Marks a venv whose dependencies finished installing; a directory without it is rebuilt.
_READY = ".headwater-ready"
# pip's own output is progress, not a problem: its stderr is logged at INFO, not ERROR.
# Kestra's default image of the Python types (PythonBasedPlugin.DEFAULT_IMAGE).
DEFAULT_IMAGE = "python:3.13-slim"
_PIP_ARGS = ("-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q")


class PythonEnvironments:
    """Where Python tasks get their interpreter: plain, or a cached venv with dependencies."""

    def __init__(
        self, interpreter: str, cache_dir: str | Path, *, fork_server: bool = True
    ) -> None:
        """``fork_server``: Script tasks are forked from a warm interpreter per venv
        (:mod:`executors.forkserver`) instead of starting one each."""
        self.interpreter = interpreter
        self.cache_dir = Path(cache_dir)
        self._locks: dict[str, asyncio.Lock] = {}
        self.forks = ForkServers(self.cache_dir) if fork_server else None

    def launcher(self, python: str, path_prefix: str | None) -> Launcher | None:
        """What starts ``[python, script]`` on the host: its fork server, or None (cold)."""
        if self.forks is None:
            return None
        env = task_environment(None)
        if path_prefix:
            env["PATH"] = path_prefix + (":" + env["PATH"] if env.get("PATH") else "")
        return self.forks.launcher(python, env)

    def _resolved(self) -> str:
        found = shutil.which(self.interpreter)
        if found is None:
            raise TaskError(
                f"Python interpreter {self.interpreter!r} not found on this worker; "
                "set HEADWATER_WORKER__PYTHON"
            )
        return os.path.realpath(found)

    async def bin_dir(self, requirements: list[str], ctx: TaskContext) -> Path:
        """A directory whose ``python``/``python3`` is the interpreter to use."""
        base = await asyncio.to_thread(self._resolved)
        reqs = sorted({r.strip() for r in requirements if r.strip()})
        if not reqs:
            return await asyncio.to_thread(self._shims, base)
        key = hashlib.sha256("\n".join([base, *reqs]).encode()).hexdigest()[:20]
        venv = self.cache_dir / f"venv-{key}"
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if not await asyncio.to_thread((venv / _READY).exists):
                fd = await asyncio.to_thread(_lock_file, self.cache_dir / f"venv-{key}.lock")
                try:
                    if not await asyncio.to_thread((venv / _READY).exists):
                        await self._build(base, venv, reqs, ctx)
                finally:
                    os.close(fd)  # closing releases the flock
        return venv / "bin"

    def _shims(self, base: str) -> Path:
        shims = self.cache_dir / ("shims-" + hashlib.sha256(base.encode()).hexdigest()[:20])
        shims.mkdir(parents=True, exist_ok=True)
        for name in ("python", "python3"):
            link = shims / name
            if not link.exists():
                tmp = shims / f".{name}.{uuid.uuid4().hex}"
                tmp.symlink_to(base)
                os.replace(tmp, link)
        return shims

    async def _build(self, base: str, venv: Path, reqs: list[str], ctx: TaskContext) -> None:
        await asyncio.to_thread(shutil.rmtree, venv, True)
        ctx.log("INFO", f"creating a virtualenv for dependencies {', '.join(reqs)}")
        cwd = str(self.cache_dir)
        env = task_environment(None)
        made = await run_process([base, "-m", "venv", str(venv)], ctx, cwd=cwd, env=env)
        if made.exit_code != 0 or made.killed:
            raise TaskError(f"could not create a virtualenv with {base} (exit {made.exit_code})")
        python = str(venv / "bin" / "python")
        pip = await run_process(
            [python, *_PIP_ARGS, *reqs], ctx, cwd=cwd, env=env, stderr_level="INFO"
        )
        if pip.killed:
            raise TaskError("installing dependencies was interrupted")
        if pip.exit_code != 0:
            raise TaskError(
                f"installing dependencies {', '.join(reqs)} failed (pip exit {pip.exit_code}); "
                "see the task's logs"
            )
        await asyncio.to_thread((venv / _READY).touch)


def _lock_file(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # blocks this thread only, never the loop
    return fd


def _dependencies(task: Mapping[str, Any], ctx: TaskContext) -> list[str]:
    return string_list(ctx.render(task.get("dependencies")), "dependencies")


async def _python_for(
    task: Mapping[str, Any], ctx: TaskContext, environments: PythonEnvironments
) -> tuple[Runner, str, str | None, list[str]]:
    """(runner, python, PATH prefix, install commands) of a Python task.

    On the host: the worker's interpreter or a cached venv with the dependencies. In a
    container: the image's ``python``, the dependencies installed by pip inside it first."""
    runner = await resolve_runner(task, ctx, default_image=DEFAULT_IMAGE)
    deps = _dependencies(task, ctx)
    if isinstance(runner, Container):
        install = [" ".join(["python -m pip install -q", *map(shlex.quote, deps)])] if deps else []
        return runner, "python", None, install
    bin_dir = await environments.bin_dir(deps, ctx)
    return runner, str(bin_dir / "python"), str(bin_dir), []


def _with_install(script: str, install: list[str]) -> str:
    """The container's pip install lines first in the script, after ``set -e`` if it has it."""
    if not install:
        return script
    lines = script.split("\n")
    at = 1 if lines[0] == EXIT_ON_ERROR else 0
    return "\n".join([*lines[:at], *install, *lines[at:]])


class PythonScriptTask:
    """io.kestra.plugin.scripts.python.Script: ``script`` saved to a file, run by Python."""

    def __init__(self, environments: PythonEnvironments) -> None:
        self.environments = environments

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        runner, python, prefix, install = await _python_for(task, ctx, self.environments)

        def argv(root: Path, render: Callable[[Any], Any]) -> list[str]:
            script = render(task.get("script"))
            if script is None:
                raise TaskError(f"task '{task.get('id')}': property 'script' is required")
            path = root / f".hw_script_{uuid.uuid4().hex}.py"
            path.write_text(to_text(script))
            if not install and task.get("beforeCommands") is None:
                return [python, str(path)]
            run = f"{shlex.quote(python)} {shlex.quote(str(path))}"
            body = with_before_commands({**task, "failFast": True}, render, [run])
            return [*interpreter_argv(task, render), _with_install(body, install)]

        launcher = self.environments.launcher(python, prefix)
        return await run_script(
            task, ctx, argv, path_prefix=prefix, runner=runner, launcher=launcher
        )


class PythonCommandsTask:
    """io.kestra.plugin.scripts.python.Commands: shell commands with that Python on PATH."""

    def __init__(self, environments: PythonEnvironments) -> None:
        self.environments = environments

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        runner, _python, prefix, install = await _python_for(task, ctx, self.environments)

        def argv(root: Path, render: Callable[[Any], Any]) -> list[str]:
            script = command_script(task, render, fail_fast_default=True)
            return [*interpreter_argv(task, render), _with_install(script, install)]

        return await run_script(task, ctx, argv, path_prefix=prefix, runner=runner)
