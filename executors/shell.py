"""Script tasks' shared run, and the shell types ``io.kestra.plugin.scripts.shell.Commands`` /
``...shell.Script``.

:func:`run_script` is what every script-like task (shell, Python, the languages of
:mod:`executors.plugins.scripts`, CLI tools) runs through. Properties follow Kestra's
``AbstractExecScript``: ``interpreter`` (default ``["/bin/sh", "-c"]``), ``beforeCommands``,
``commands`` / ``script``, ``env``, ``inputFiles`` (a map, or a JSON text of one, of name ->
content or ``kestra://`` URI), ``outputFiles`` (globs), ``failFast`` (``set -e`` first,
default true), ``warningOnStdErr`` (default false, as Kestra since 0.23: an ERROR line makes
the run WARNING only when true), ``taskRunner`` / ``containerImage`` / ``runner`` / ``docker``
(where it runs: :mod:`executors.runners`), ``targetOS`` (LINUX or AUTO; WINDOWS is refused:
workers are Linux), ``outputDirectory`` (deprecated; ``{{ outputDir }}`` is always there) and
``namespaceFiles`` (namespace files copied in before the input files:
:mod:`executors.namespace_files`).

The run: a working directory (the worker's, or a temporary one), ``{{ workingDir }}`` and
``{{ outputDir }}`` (a fresh sub-directory of it; ``WORKING_DIR`` / ``OUTPUT_DIR`` in the
environment too), the namespace files and the input files, then the process on the host
(:mod:`executors.process`) or in a container (:mod:`executors.docker`). On the host, the
executables the task needs are checked first: a missing one fails the run with "node is not
installed on this worker".
Outputs are Kestra's ``ScriptOutput``: ``exitCode``, ``vars`` (from ``::{"outputs": ...}::``
lines; ``::{"metrics": [...]}::`` become the task's metrics) and ``outputFiles`` (name ->
``kestra://`` URI: the ``outputFiles`` globs, and every file written under ``{{ outputDir }}``,
named by its path inside it).

A non-zero exit code fails the run naming the code; death by a signal names the signal; a
malformed ``::{...}::`` line fails it with the reason; a kill (or timeout) stops the whole
process group (or the container) and ends the run KILLED.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from executors import docker, namespace_files
from executors.base import TaskContext, TaskError, TaskOutcome, as_bool, to_text
from executors.forkserver import Launcher
from executors.process import (
    ProcessResult,
    collect_output_files,
    describe_failure,
    run_process,
    task_environment,
    workspace,
    write_input_files,
)
from executors.runners import Container, Host, Pinger, Runner, choose_runner

DEFAULT_INTERPRETER = ["/bin/sh", "-c"]
EXIT_ON_ERROR = "set -e"
# Argv of the process, built once the working directory exists (scripts are written there).
ArgvBuilder = Callable[[Path, Callable[[Any], Any]], "list[str]"]


def string_list(value: Any, what: str) -> list[str]:
    """A rendered property that is a list of strings (a single string is a list of one)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [to_text(item) for item in value]
    raise TaskError(f"property '{what}' must be a list of strings, got {value!r}")


async def resolve_runner(
    task: Mapping[str, Any],
    ctx: TaskContext,
    *,
    default_image: str | None = None,
    ping: Pinger = docker.ping,
) -> Runner:
    """Where ``task`` runs on this worker (host or container); raises TaskError when nowhere.

    For a task that must know before :func:`run_script` (Python builds a venv only on the
    host); pass the result to ``run_script(runner=...)``."""
    return await choose_runner(
        task, ctx, lambda v: ctx.render(v), default_image=default_image, ping=ping
    )


async def run_script(
    task: Mapping[str, Any],
    ctx: TaskContext,
    build_argv: ArgvBuilder,
    *,
    path_prefix: str | None = None,
    default_image: str | None = None,
    requires: Sequence[str] = (),
    runner: Runner | None = None,
    ping: Pinger = docker.ping,
    launcher: Launcher | None = None,
) -> TaskOutcome:
    """Run one script task: runner, workspace, input files, the process, outputs, the verdict.

    ``build_argv(root, render)`` returns the argv (``render`` renders with ``workingDir`` and
    ``outputDir``); ``path_prefix`` goes first on the host's ``PATH``; ``default_image`` is the
    type's image when the task asks for a container without one; ``requires`` names the
    executables the run needs on the host besides ``argv[0]`` (checked before it starts);
    ``launcher`` may start the host process another way (:mod:`executors.forkserver`).
    """
    _check_target_os(task, ctx)
    load_files = namespace_files.enabled(task.get("namespaceFiles"), ctx)
    if runner is None:
        runner = await resolve_runner(task, ctx, default_image=default_image, ping=ping)
    async with workspace(ctx) as root:
        out_dir = root / uuid.uuid4().hex
        await asyncio.to_thread(out_dir.mkdir)
        extra = {"workingDir": str(root), "outputDir": str(out_dir)}

        def render(value: Any) -> Any:
            return ctx.render(value, extra)

        try:
            env_prop = render(task.get("env")) or {}
            if not isinstance(env_prop, Mapping):
                raise TaskError(f"property 'env' must be a map of name -> value, got {env_prop!r}")
            if isinstance(runner, Host):
                env = task_environment(env_prop)
                if path_prefix:
                    env["PATH"] = path_prefix + (":" + env["PATH"] if env.get("PATH") else "")
            else:
                env = {str(k): "" if v is None else to_text(v) for k, v in env_prop.items()}
            env.update({"WORKING_DIR": str(root), "OUTPUT_DIR": str(out_dir)})
            metrics: dict[str, float] = {}
            if load_files:
                metrics = await namespace_files.load(task.get("namespaceFiles"), ctx, root)
            await write_input_files(render(task.get("inputFiles")), root, ctx)
            argv = build_argv(root, render)
            if isinstance(runner, Container):
                result = await docker.run_in_container(runner, argv, env, root, ctx)
            else:
                await asyncio.to_thread(require_executables, [argv[0], *requires], env)
                result = await run_process(argv, ctx, cwd=str(root), env=env, launcher=launcher)
            outcome = await _verdict(task, ctx, root, out_dir, render, result)
            outcome.metrics = {**metrics, **outcome.metrics}
            return outcome
        finally:
            await asyncio.to_thread(_remove_if_empty, out_dir)


def require_executables(names: Sequence[str], env: Mapping[str, str]) -> None:
    """Raise ``TaskError("node is not installed on this worker")`` for the first missing one."""
    for name in names:
        if os.sep in name:
            if not os.access(name, os.X_OK):
                raise TaskError(f"{name} is not installed on this worker (no such executable)")
        elif shutil.which(name, path=env.get("PATH")) is None:
            raise TaskError(f"{name} is not installed on this worker (not found on its PATH)")


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass  # not empty (its files are outputs, kept as Kestra does), or already gone


def _check_target_os(task: Mapping[str, Any], ctx: TaskContext) -> None:
    target = ctx.render(task.get("targetOS"))
    if target is not None and to_text(target).strip().upper() == "WINDOWS":
        raise TaskError("targetOS WINDOWS: Headwater's workers run Linux (use LINUX or AUTO)")


async def _verdict(
    task: Mapping[str, Any],
    ctx: TaskContext,
    root: Path,
    out_dir: Path,
    render: Callable[[Any], Any],
    result: ProcessResult,
) -> TaskOutcome:
    outputs: dict[str, Any] = {"exitCode": result.exit_code, "vars": result.vars}
    if result.killed:
        return TaskOutcome(state="KILLED", outputs=outputs, error="killed")
    error = describe_failure(result)
    if error is not None:
        ctx.log("ERROR", error)
        return TaskOutcome(state="FAILED", outputs=outputs, error=error, metrics=result.metrics)
    files = await collect_output_files(["**/*"], out_dir, ctx) if _has_files(out_dir) else {}
    files.update(await collect_output_files(render(task.get("outputFiles")), root, ctx))
    if files:
        outputs["outputFiles"] = files
    state: Any = "SUCCESS"
    if as_bool(render(task.get("warningOnStdErr", False))) and any(
        line.level == "ERROR" for line in ctx.logs
    ):
        state = "WARNING"
    return TaskOutcome(state=state, outputs=outputs, metrics=result.metrics)


def _has_files(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def command_script(
    task: Mapping[str, Any],
    render: Callable[[Any], Any],
    *,
    fail_fast_default: bool,
    exit_on_error: str = EXIT_ON_ERROR,
) -> str:
    """beforeCommands + commands as one script (``exit_on_error`` first when failFast)."""
    commands = string_list(render(task.get("commands")), "commands")
    if not commands:
        raise TaskError(f"task '{task.get('id')}': property 'commands' is required")
    return with_before_commands(
        task, render, commands, fail_fast_default=fail_fast_default, exit_on_error=exit_on_error
    )


def with_before_commands(
    task: Mapping[str, Any],
    render: Callable[[Any], Any],
    commands: Sequence[str],
    *,
    fail_fast_default: bool = True,
    exit_on_error: str = EXIT_ON_ERROR,
) -> str:
    """Kestra's ``beforeCommandsWithOptions`` + ``commands``, joined by new lines."""
    before = string_list(render(task.get("beforeCommands")), "beforeCommands")
    lines = [*before, *commands]
    if exit_on_error and as_bool(render(task.get("failFast", fail_fast_default))):
        lines.insert(0, exit_on_error)
    return "\n".join(lines)


def interpreter_argv(
    task: Mapping[str, Any], render: Callable[[Any], Any], default: Sequence[str] = ()
) -> list[str]:
    """The ``interpreter`` property, or ``default`` (``/bin/sh -c``)."""
    interpreter = string_list(render(task.get("interpreter")), "interpreter")
    return interpreter or list(default or DEFAULT_INTERPRETER)


class ShellCommandsTask:
    """io.kestra.plugin.scripts.shell.Commands (and the legacy ``core.tasks.scripts.Bash``)."""

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        def argv(root: Path, render: Callable[[Any], Any]) -> list[str]:
            script = command_script(task, render, fail_fast_default=True)
            return [*interpreter_argv(task, render), script]

        return await run_script(task, ctx, argv, default_image="ubuntu")


class ShellScriptTask:
    """io.kestra.plugin.scripts.shell.Script: ``beforeCommands`` then ``script``, one shell run."""

    async def run(self, task: Mapping[str, Any], ctx: TaskContext) -> TaskOutcome:
        def argv(root: Path, render: Callable[[Any], Any]) -> list[str]:
            script = render(task.get("script"))
            if script is None:
                raise TaskError(f"task '{task.get('id')}': property 'script' is required")
            body = with_before_commands(task, render, [to_text(script)])
            return [*interpreter_argv(task, render), body]

        return await run_script(task, ctx, argv, default_image="ubuntu")
