"""What Kestra's ``*CLI`` tasks share: a command-line tool run by shell commands on the worker.

Kestra's ``DbtCLI``, ``AnsibleCLI``, ``AwsCLI``, ``TerraformCLI``, ``GCloudCLI``,
``CloudQueryCLI``... each build a ``CommandsWrapper``: ``beforeCommands`` and ``commands`` joined
into one ``/bin/sh -c`` script (``set -e`` first when it fails fast), ``env``, ``inputFiles``
written into the working directory, ``outputFiles`` globs uploaded afterwards, a
``{{ outputDir }}`` whose files are uploaded too, ``::{"outputs": ...}::`` lines parsed into
``vars``, and the task's own environment (credentials, ``PYTHONUNBUFFERED``...). Kestra runs it
in the type's container image by default (``containerImage``, ``taskRunner``); a Headwater
worker runs every task as a local process (Kestra's ``Process`` task runner), so:

- the script runs through :func:`executors.process.run_process` (own process group, logs,
  kill and timeout, the ``::{...}::`` protocol) in the task's working directory;
- the tool comes from the worker's ``PATH`` when it is there; a tool with a PyPI distribution
  (dbt with the duckdb and postgres adapters, ansible-core, awscli) is otherwise installed once
  into a virtualenv cached in the worker's venv directory (``ctx.venv_dir``, the same cache and
  lock as Python tasks' ``dependencies``: :class:`executors.python.PythonEnvironments`), and only
  the tool's own commands are put on ``PATH`` (``pip`` and ``python`` stay the worker's, so a
  flow's ``pip install`` never changes the shared environment);
- a tool that is neither fails the run with "terraform not found on this worker", naming the
  image Kestra would have used, when the script exits 127 after the shell said so;
- ``containerImage``, ``taskRunner`` and ``docker`` are accepted and not used;
  ``namespaceFiles`` too, with a warning: Headwater has no namespace files store.

A type is a :class:`CLITask` subclass: its Kestra properties, its :class:`Tool`, and hooks
(:meth:`CLITask.environment`, :meth:`CLITask.prepare`, :meth:`CLITask.script`,
:meth:`CLITask.on_line`, :meth:`CLITask.finish`, :meth:`CLITask.final_state`) that see the run
as a :class:`CLIRun`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from executors.base import TaskContext, TaskError, TaskOutcome, as_bool, to_text
from executors.plugin import TaskPlugin
from executors.process import (
    ProcessResult,
    collect_output_files,
    describe_failure,
    run_process,
    task_environment,
    workspace,
    write_input_files,
)
from executors.python import PythonEnvironments
from executors.shell import string_list
from schemas.flow.common import BoolOrExpr, FlowModel, Str

# The interpreter of the tools' virtualenvs: the worker's ``python3``, as Python tasks use.
TOOL_PYTHON = "python3"
# sh says "NAME: not found" (dash) or "NAME: command not found" (bash) and exits 127.
COMMAND_NOT_FOUND_EXIT = 127
DEFAULT_INTERPRETER = ("/bin/sh", "-c")


@dataclass(frozen=True, slots=True)
class Tool:
    """The command-line tool a CLI type runs."""

    binary: str
    # Kestra's default container image of the type (named when the tool is missing).
    image: str
    # PyPI requirements that provide the tool when the worker's PATH lacks it (pinned: the
    # cached virtualenv is keyed by them).
    requirements: tuple[str, ...] = ()
    # More commands of the virtualenv put on PATH beside the binary (those it has).
    commands: tuple[str, ...] = ()


class NamespaceFilesOption(FlowModel):
    """Kestra's ``namespaceFiles`` block (``NamespaceFiles``)."""

    enabled: BoolOrExpr = True
    include: list[Str] | None = None
    exclude: list[Str] | None = None
    ifExists: Str | None = None
    folderPerNamespace: BoolOrExpr | None = None
    namespaces: list[Str] | Str | None = None


def _venv_root(ctx: TaskContext) -> Path:
    if ctx.venv_dir:
        return Path(ctx.venv_dir)
    return Path(tempfile.gettempdir()) / "headwater-venvs"


async def tool_path(tool: Tool, ctx: TaskContext, path: str) -> str | None:
    """A directory to put first on ``PATH`` so that ``tool`` is found, or None when ``path``
    already finds it (or nothing can provide it)."""
    found = await asyncio.to_thread(shutil.which, tool.binary, path=path)
    if found is not None:
        ctx.log("DEBUG", f"using {tool.binary} from the worker's PATH: {found}")
        return None
    if not tool.requirements:
        return None
    environments = PythonEnvironments(TOOL_PYTHON, _venv_root(ctx))
    bin_dir = await environments.bin_dir(list(tool.requirements), ctx)
    shims = bin_dir.parent / "headwater-tools"
    names = (tool.binary, *tool.commands)
    await asyncio.to_thread(_link_commands, bin_dir, shims, tool.binary, names)
    ctx.log("DEBUG", f"using {tool.binary} from {', '.join(tool.requirements)} ({bin_dir})")
    return str(shims)


def _link_commands(bin_dir: Path, shims: Path, binary: str, names: tuple[str, ...]) -> None:
    shims.mkdir(parents=True, exist_ok=True)
    if not (bin_dir / binary).exists():
        raise TaskError(f"the {binary} command is missing from the tool environment {bin_dir}")
    for name in names:
        link = shims / name
        target = bin_dir / name
        if link.is_symlink() or link.exists() or not target.exists():
            continue
        tmp = shims / f".{name}.{uuid.uuid4().hex}"
        tmp.symlink_to(target)
        os.replace(tmp, link)


@dataclass(slots=True)
class _LineContext(TaskContext):
    """The task's context as the process runner sees it: every output line (stdout at INFO,
    stderr at ERROR) goes through the task type's line hook first, then to the task's own
    context (``parent``: its logs, and the secrets it knows by then, masked)."""

    parent: TaskContext | None = None
    hook: Callable[[str, str], bool] | None = None
    stderr_lines: int = 0
    not_found: set[str] = field(default_factory=set)
    watch_names: tuple[str, ...] = ()

    def log(self, level: str, message: str) -> None:
        if level == "ERROR":
            self.stderr_lines += 1
            for name in self.watch_names:
                if re.search(rf"(^|[\s:]){re.escape(name)}: (command )?not found", message):
                    self.not_found.add(name)
        if self.hook is not None and self.hook(level, message):
            return
        if self.parent is not None:
            self.parent.log(level, message)
        else:
            TaskContext.log(self, level, message)


def line_context(ctx: TaskContext, **extra: Any) -> _LineContext:
    """A :class:`_LineContext` over ``ctx`` (its cancellation, process watch and logs)."""
    values = {f.name: getattr(ctx, f.name) for f in dataclasses.fields(ctx)}
    return _LineContext(**values, parent=ctx, **extra)


@dataclass(slots=True)
class CLIRun:
    """One run of a CLI task, as its hooks see it."""

    ctx: TaskContext
    root: Path
    output_dir: Path
    render: Callable[[Any], Any]
    env: dict[str, str]
    outputs: dict[str, Any] = field(default_factory=dict)
    output_files: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    # Set by a hook to end the run WARNING (dbt's warn-level log lines).
    warning: bool = False
    # The context the processes log through (the type's line hook, stderr count).
    lines: _LineContext | None = None

    def add_metric(self, name: str, value: float) -> None:
        """A counter: values of the same name add up, as Kestra's counters do."""
        self.metrics[name] = self.metrics.get(name, 0) + value

    async def store(self, name: str, path: Path) -> str:
        """Put a file of the run into internal storage; its URI."""
        if self.ctx.storage is None:
            raise TaskError(f"{name}: this worker has no internal storage to keep it")
        data = await asyncio.to_thread(path.read_bytes)
        return await self.ctx.storage.put(self.ctx.execution_id, name, data)


class CLITask(TaskPlugin):
    """Base of the ``*CLI`` types: the properties every one has, and the run."""

    tool: ClassVar[Tool]
    # Kestra's CommandsWrapper.withWarningOnStdErr(...) of the type: a stderr line -> WARNING.
    warning_on_stderr: ClassVar[bool] = True
    # Whether ``set -e`` starts the script (overridden by types with a ``failFast`` property).
    fail_fast_default: ClassVar[bool] = True

    env: dict[str, Any] | Str | None = None
    inputFiles: dict[str, Any] | Str | None = None
    outputFiles: list[Str] | Str | None = None
    namespaceFiles: NamespaceFilesOption | None = None
    containerImage: Str | None = None
    taskRunner: dict[str, Any] | None = None
    docker: dict[str, Any] | None = None

    # ------------------------------------------------------------------ hooks for the types

    def environment(self, run: CLIRun, user_env: dict[str, str]) -> dict[str, str]:
        """The variables the type adds to the process (default: the task's ``env``)."""
        return user_env

    async def prepare(self, run: CLIRun) -> None:
        """After the input files are written, before the process starts."""

    def script(self, run: CLIRun) -> str:
        """The shell script: ``beforeCommands`` (when the type has them) and ``commands``."""
        before = string_list(run.render(getattr(self, "beforeCommands", None)), "beforeCommands")
        commands = self.command_lines(run)
        lines = [*before, *commands]
        if self.fail_fast(run):
            lines.insert(0, "set -e")
        return "\n".join(lines)

    def command_lines(self, run: CLIRun) -> list[str]:
        commands = string_list(run.render(getattr(self, "commands", None)), "commands")
        if not commands:
            raise TaskError("property 'commands' is required")
        return commands

    def fail_fast(self, run: CLIRun) -> bool:
        value = getattr(self, "failFast", None)
        if value is None:
            return self.fail_fast_default
        try:
            return as_bool(run.render(value))
        except TaskError as exc:
            raise TaskError(f"property 'failFast': {exc}") from exc

    def interpreter_argv(self, run: CLIRun) -> list[str]:
        """The program the script is given to (``/bin/sh -c``; the ``interpreter`` property)."""
        rendered = string_list(run.render(getattr(self, "interpreter", None)), "interpreter")
        return rendered or list(DEFAULT_INTERPRETER)

    def on_line(self, run: CLIRun, level: str, message: str) -> bool:
        """See each output line first; True when the line was handled (not logged as is)."""
        return False

    async def finish(self, run: CLIRun, result: ProcessResult) -> None:
        """After the process ended (also when it failed): parse what it left."""

    def final_state(self, run: CLIRun, stderr_lines: int) -> str:
        if run.warning or (self.warning_on_stderr and stderr_lines > 0):
            return "WARNING"
        return "SUCCESS"

    # ------------------------------------------------------------------------------- run

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        async with workspace(ctx) as root:
            output_dir = root / uuid.uuid4().hex
            await asyncio.to_thread(output_dir.mkdir)
            try:
                return await self._run_in(ctx, root, output_dir)
            finally:
                await asyncio.to_thread(shutil.rmtree, output_dir, True)

    async def execute(self, run: CLIRun) -> ProcessResult:
        """Run the commands (default: one script); the result gives the outputs."""
        return await self.process(run, self.script(run))

    async def process(
        self, run: CLIRun, script: str, env: Mapping[str, str] | None = None
    ) -> ProcessResult:
        """One process of the run: the interpreter given ``script``."""
        assert run.lines is not None
        argv = [*self.interpreter_argv(run), script]
        return await run_process(argv, run.lines, cwd=str(run.root), env=env or run.env)

    def output_patterns(self, run: CLIRun) -> list[str]:
        """The ``outputFiles`` globs."""
        return string_list(run.render(self.outputFiles), "outputFiles")

    async def _run_in(self, ctx: TaskContext, root: Path, output_dir: Path) -> TaskOutcome:
        extra = {"workingDir": str(root), "outputDir": str(output_dir)}

        def render(value: Any) -> Any:
            return ctx.render(value, extra)

        run = CLIRun(ctx=ctx, root=root, output_dir=output_dir, render=render, env={})
        run.env = task_environment(self.environment(run, self._user_env(run)))
        self._warn_namespace_files(run)
        await write_input_files(render(self.inputFiles), root, ctx)
        await self.prepare(run)
        prefix = await tool_path(self.tool, ctx, run.env.get("PATH", os.defpath))
        if prefix:
            run.env["PATH"] = prefix + os.pathsep + run.env.get("PATH", os.defpath)
        run.lines = line_context(
            ctx,
            hook=lambda level, message: self.on_line(run, level, message),
            watch_names=(self.tool.binary,),
        )
        result = await self.execute(run)
        run.outputs.setdefault("exitCode", result.exit_code)
        run.outputs.setdefault("vars", result.vars)
        for name, value in result.metrics.items():
            run.add_metric(name, value)
        if result.killed:
            return TaskOutcome(state="KILLED", outputs=run.outputs, error="killed")
        await self.finish(run, result)
        error = self._failure(run, result)
        # As Kestra's CommandsWrapper: the files are kept whether the commands failed or not.
        run.output_files.update(await collect_output_files(self.output_patterns(run), root, ctx))
        run.output_files.update(await self._output_dir_files(run))
        run.outputs["outputFiles"] = run.output_files
        if error is not None:
            ctx.log("ERROR", error)
            return TaskOutcome(
                state="FAILED", outputs=run.outputs, error=error, metrics=run.metrics
            )
        state: Any = self.final_state(run, run.lines.stderr_lines)
        return TaskOutcome(state=state, outputs=run.outputs, metrics=run.metrics)

    def _user_env(self, run: CLIRun) -> dict[str, str]:
        rendered = run.render(self.env)
        if isinstance(rendered, str):
            import orjson

            try:
                rendered = orjson.loads(rendered) if rendered.strip() else {}
            except orjson.JSONDecodeError:
                pass  # a text that is not JSON: the error below names it
        if rendered is None:
            return {}
        if not isinstance(rendered, Mapping):
            raise TaskError(f"property 'env' must be a map of name -> value, got {rendered!r}")
        return {str(k): to_text(v) for k, v in rendered.items()}

    def _warn_namespace_files(self, run: CLIRun) -> None:
        option = self.namespaceFiles
        if option is None:
            return
        if as_bool(run.render(option.enabled)):
            run.ctx.log(
                "WARN",
                "namespaceFiles: Headwater has no namespace files store, so no file was loaded "
                "into the working directory; bring them with inputFiles or a git Clone in a "
                "WorkingDirectory",
            )

    def _failure(self, run: CLIRun, result: ProcessResult) -> str | None:
        error = describe_failure(result)
        if error is None:
            return None
        binary = self.tool.binary
        found = run.lines.not_found if run.lines is not None else set()
        if result.exit_code == COMMAND_NOT_FOUND_EXIT and binary in found:
            return (
                f"{binary} not found on this worker: Headwater runs {self.type_name()} as a "
                f"local process (Kestra's Process task runner) and does not use the container "
                f"image {self.tool.image!r}; install {binary} on the worker's PATH"
            )
        return error

    async def _output_dir_files(self, run: CLIRun) -> dict[str, str]:
        found = await asyncio.to_thread(_files_under, run.output_dir)
        out: dict[str, str] = {}
        for path in found:
            name = path.relative_to(run.output_dir).as_posix()
            out[name] = await run.store(name.replace("/", "_"), path)
        return out


def _files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())
