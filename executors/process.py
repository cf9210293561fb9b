"""The subprocess runner shared by the shell and Python script tasks.

A script runs in its own process group (``start_new_session``), so a kill, a timeout or the end
of the task reaches every process it started, not only the shell. The group is registered with
``ctx.process_watch`` (the worker's watchdog, engine.worker.guard) so that it also dies when
the worker is SIGKILLed. Its stdout and stderr are
read continuously in chunks (a flood of output never blocks the child on a full pipe, and an
endless line is cut at :data:`MAX_LINE_BYTES`); each line becomes a log line: stdout at INFO,
stderr at ERROR, as Kestra does since 0.21 (kestra-io/kestra#6383).

Lines of the form ``::{"outputs": {...}}::`` (Kestra's script protocol) are not logged but
parsed: ``outputs`` merge into the task's ``vars``, ``metrics`` (``[{name, type, value}]``)
into its metrics, ``logs`` (``[{level, message}]``) become log lines. A malformed one is
remembered and fails the task with a clear reason once the process ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from executors.base import LEVELS, LogLevel, TaskContext, TaskError, to_text
from executors.forkserver import Launcher, Spawned

# One log line is at most this long; the rest of it is dropped (a binary blob or a minified
# JSON dump on stdout must not become a multi-megabyte log record).
MAX_LINE_BYTES = 64 * 1024
# Chunk size of pipe reads: large enough that 100k short lines cost few loop iterations.
_READ_CHUNK = 256 * 1024
# After SIGTERM a process group gets this long to exit before SIGKILL: enough for a trap
# handler to clean up, short enough that a kill feels immediate.
KILL_GRACE_S = 2.0
# After the main process exited, its output pipes are read to the end for at most this long;
# a straggler that inherited them was killed with the group, so this is only the pipe drain.
_DRAIN_S = 5.0
_TRUNCATED = " [line truncated]"
# Variables of the worker's own environment never passed to a task's process.
_HIDDEN_ENV_PREFIXES = ("SECRET_", "HEADWATER_")


@dataclass(slots=True)
class ProcessResult:
    """How a script process ended and what it reported through ``::{...}::`` lines."""

    exit_code: int | None = None
    signal_name: str | None = None
    killed: bool = False  # stopped because the task was cancelled (kill, timeout, shutdown)
    vars: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    protocol_error: str | None = None
    lines: int = 0


def task_environment(extra: Mapping[str, Any] | None) -> dict[str, str]:
    """The worker's environment minus its secrets and settings, plus the task's ``env``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_HIDDEN_ENV_PREFIXES)}
    for key, value in (extra or {}).items():
        env[str(key)] = "" if value is None else str(value)
    return env


def signal_group(pid: int, sig: int) -> None:
    """Send ``sig`` to the process group led by ``pid`` (gone already is fine)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class LineSink:
    """Turns output lines into log lines and protocol messages."""

    def __init__(self, ctx: TaskContext, result: ProcessResult) -> None:
        self.ctx = ctx
        self.result = result

    def line(self, raw: bytes, level: LogLevel) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        self.result.lines += 1
        stripped = text.strip()
        if stripped.startswith("::{") and stripped.endswith("}::"):
            self._protocol(stripped[2:-2])
            return
        self.ctx.log(level, text)

    def _protocol(self, body: str) -> None:
        try:
            message = orjson.loads(body)
            if not isinstance(message, dict):
                raise ValueError("not a JSON object")
            outputs = message.get("outputs")
            if outputs is not None:
                if not isinstance(outputs, dict):
                    raise ValueError("'outputs' must be a JSON object")
                self.result.vars.update(outputs)
            for metric in message.get("metrics") or []:
                self._metric(metric)
            for entry in message.get("logs") or []:
                level = str(entry.get("level", "INFO")).upper()
                level = "WARN" if level == "WARNING" else level
                self.ctx.log(level if level in LEVELS else "INFO", str(entry.get("message", "")))
        except (ValueError, TypeError, AttributeError) as exc:  # orjson errors are ValueError
            if self.result.protocol_error is None:
                preview = body if len(body) <= 200 else body[:200] + "..."
                self.result.protocol_error = (
                    f"invalid ::{{...}}:: output line ({exc}): ::{preview}:: — it must be one "
                    'JSON object such as ::{"outputs": {"key": "value"}}::'
                )

    def _metric(self, metric: Any) -> None:
        if not isinstance(metric, dict) or "name" not in metric:
            raise ValueError("each metric must be an object with 'name' and 'value'")
        name, value = str(metric["name"]), metric.get("value")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError(f"metric {name!r} needs a numeric 'value'")
        if str(metric.get("type", "counter")).lower() == "counter":
            self.result.metrics[name] = self.result.metrics.get(name, 0) + value
        else:
            self.result.metrics[name] = value


class LineSplitter:
    """Cuts a byte stream (pipe reads, Docker log frames) into lines for a :class:`LineSink`;
    a line longer than :data:`MAX_LINE_BYTES` is cut there and the rest of it dropped."""

    def __init__(self, sink: LineSink, level: LogLevel) -> None:
        self.sink = sink
        self.level = level
        self.buf = bytearray()
        self.skipping = False  # inside the cut-off rest of an over-long line

    def feed(self, chunk: bytes) -> None:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                if not self.skipping:
                    self.buf += chunk[start:]
                    if len(self.buf) > MAX_LINE_BYTES:
                        self._cut()
                        self.skipping = True
                return
            if self.skipping:
                self.skipping = False
            else:
                self.buf += chunk[start:end]
                if len(self.buf) > MAX_LINE_BYTES:
                    self._cut()
                else:
                    self.sink.line(bytes(self.buf), self.level)
                self.buf.clear()
            start = end + 1

    def close(self) -> None:
        if self.buf and not self.skipping:
            self.sink.line(bytes(self.buf), self.level)
        self.buf.clear()

    def _cut(self) -> None:
        self.sink.line(bytes(self.buf[:MAX_LINE_BYTES]) + _TRUNCATED.encode(), self.level)
        self.buf.clear()


async def _pump(stream: asyncio.StreamReader, level: LogLevel, sink: LineSink) -> None:
    splitter = LineSplitter(sink, level)
    while True:
        chunk = await stream.read(_READ_CHUNK)
        if not chunk:
            break
        splitter.feed(chunk)
    splitter.close()


async def run_process(
    argv: Sequence[str],
    ctx: TaskContext,
    *,
    cwd: str,
    env: Mapping[str, str],
    stdout_level: LogLevel = "INFO",
    stderr_level: LogLevel = "ERROR",
    launcher: Launcher | None = None,
) -> ProcessResult:
    """Run ``argv`` to its end, or until ``ctx.cancelled`` is set (then the group is killed).

    ``launcher`` may start the process another way (a Python fork server,
    :mod:`executors.forkserver`); when it declines, ``argv`` is executed as a new process.
    The caller's own cancellation (worker shutdown) kills the group too, then propagates.
    """
    result = ProcessResult()
    sink = LineSink(ctx, result)
    watch = ctx.process_watch
    register = watch.register if watch is not None else None
    proc = await launcher(argv, cwd, env) if launcher is not None else None
    if proc is None:
        # Registered right after the fork, before the loop turns: the group dies with the
        # worker from then on.
        proc = await _execute(argv, cwd, env, register)
    elif register is not None:
        register(proc.pid)
    pumps = [
        asyncio.create_task(_pump(proc.stdout, stdout_level, sink)),
        asyncio.create_task(_pump(proc.stderr, stderr_level, sink)),
    ]
    waiter = asyncio.create_task(proc.exited.wait())
    cancel_wait = asyncio.create_task(ctx.cancelled.wait())
    try:
        await asyncio.wait({waiter, cancel_wait}, return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            result.killed = True
            await _terminate(proc.pid, waiter)
        # Whatever the script left running would hold the pipes open and outlive the task.
        signal_group(proc.pid, signal.SIGKILL)
        _done, pending = await asyncio.wait(pumps, timeout=_DRAIN_S)
        for pending_task in pending:
            pending_task.cancel()
        for task in pumps:
            failure = task.exception() if task.done() and not task.cancelled() else None
            if failure is not None:
                raise failure
    except asyncio.CancelledError:
        signal_group(proc.pid, signal.SIGKILL)
        raise
    finally:
        cancel_wait.cancel()
        waiter.cancel()
        for task in pumps:
            task.cancel()
        if watch is not None:  # the group was SIGKILLed above: nothing left to guard
            watch.unregister(proc.pid)
        proc.close()
    code = proc.returncode
    if code is not None and code < 0:
        try:
            result.signal_name = signal.Signals(-code).name
        except ValueError:
            result.signal_name = f"signal {-code}"
    else:
        result.exit_code = code
    return result


async def _execute(
    argv: Sequence[str],
    cwd: str,
    env: Mapping[str, str],
    register: Callable[[int], None] | None = None,
) -> Spawned:
    """``argv`` as a new process in its own session (group), its stdout/stderr piped.

    ``register(pid)`` runs right after the fork, before anything awaits. (asyncio's
    ``subprocess_exec`` hands the process over only after connecting its pipes, several loop
    steps later, while the child already runs: a worker SIGKILLed then leaked the group, and
    the redelivered job ran twice, seen once in CI under load.)"""
    loop = asyncio.get_running_loop()
    # Fork+exec within this loop step, as asyncio's own subprocess_exec does.
    popen = subprocess.Popen(  # noqa: ASYNC220
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    if register is not None:
        register(popen.pid)
    assert popen.stdout is not None
    assert popen.stderr is not None
    pipes: list[asyncio.BaseTransport] = []

    def close() -> None:
        for pipe in pipes:
            pipe.close()

    try:
        readers = [await _reader(loop, pipe, pipes) for pipe in (popen.stdout, popen.stderr)]
        exited = _exit_event(loop, popen)
    except BaseException:
        signal_group(popen.pid, signal.SIGKILL)
        close()
        raise
    return Spawned(popen.pid, readers[0], readers[1], exited, lambda: popen.returncode, close)


async def _reader(
    loop: asyncio.AbstractEventLoop, pipe: IO[bytes], transports: list[asyncio.BaseTransport]
) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=_READ_CHUNK, loop=loop)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), pipe
    )
    transports.append(transport)
    return reader


def _exit_event(loop: asyncio.AbstractEventLoop, popen: subprocess.Popen[bytes]) -> asyncio.Event:
    """Set as the main process exits (reaped then); its pipes may stay open longer (a
    background grandchild), which is why this does not wait for them."""
    exited = asyncio.Event()
    try:
        pidfd = os.pidfd_open(popen.pid)
    except OSError:  # a kernel before 5.3: a thread waits instead
        waiting = loop.run_in_executor(None, popen.wait)
        waiting.add_done_callback(lambda _: exited.set())
        return exited

    def on_exit() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        popen.poll()
        exited.set()

    loop.add_reader(pidfd, on_exit)
    return exited


async def _terminate(pid: int, waiter: asyncio.Task[Any]) -> None:
    signal_group(pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(waiter), timeout=KILL_GRACE_S)
    except TimeoutError:
        signal_group(pid, signal.SIGKILL)
        await waiter


def describe_failure(result: ProcessResult) -> str | None:
    """The error of a finished process, or None when it succeeded."""
    if result.signal_name is not None:
        return f"Command was killed by signal {result.signal_name}"
    if result.exit_code:
        return f"Command failed with exit code {result.exit_code}"
    return result.protocol_error


# ------------------------------------------------------------------------ the workspace


@contextlib.asynccontextmanager
async def workspace(ctx: TaskContext) -> AsyncIterator[Path]:
    """The directory a script runs in: the worker's (shared by a WorkingDirectory, kept) or a
    temporary one removed afterwards."""
    if ctx.working_dir is not None:
        path = Path(ctx.working_dir)
        await asyncio.to_thread(path.mkdir, parents=True, exist_ok=True)
        yield path
        return
    path = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="hw-task-"))
    try:
        yield path
    finally:
        await asyncio.to_thread(shutil.rmtree, path, True)


def inside(root: Path, name: str) -> Path:
    """``root/name``, refusing names that escape ``root`` (``../x``, absolute paths)."""
    target = (root / name).resolve()
    if not target.is_relative_to(root.resolve()) or target == root.resolve():
        raise TaskError(f"file name {name!r} must be a relative path inside the working directory")
    return target


async def write_input_files(files: Any, root: Path, ctx: TaskContext) -> None:
    """Kestra's ``inputFiles``: a map (or a JSON string of a map) name -> content or URI."""
    if files is None:
        return
    if isinstance(files, str):
        try:
            files = orjson.loads(files)
        except orjson.JSONDecodeError as exc:
            raise TaskError("inputFiles must be a map of file name -> content") from exc
    if not isinstance(files, Mapping):
        raise TaskError("inputFiles must be a map of file name -> content")
    for name, content in files.items():
        target = inside(root, str(name))
        if isinstance(content, str) and content.startswith("kestra://"):
            reader = getattr(ctx.storage, "read", None)
            if reader is None:
                raise TaskError(f"inputFiles.{name}: no internal storage to read {content}")
            data: bytes = await reader(content)
        else:
            data = to_text(content).encode()
        await asyncio.to_thread(_write, target, data)


def _write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


async def collect_output_files(patterns: Any, root: Path, ctx: TaskContext) -> dict[str, str]:
    """Kestra's ``outputFiles``: files matching the globs, stored; name -> URI."""
    if not patterns:
        return {}
    if isinstance(patterns, str):
        patterns = [patterns]
    if ctx.storage is None:
        raise TaskError("outputFiles needs internal storage, and this worker has none")
    found: dict[str, str] = {}
    for path in await asyncio.to_thread(_matching_files, root, [str(p) for p in patterns]):
        name = path.relative_to(root).as_posix()
        data = await asyncio.to_thread(path.read_bytes)
        found[name] = await ctx.storage.put(ctx.execution_id, name.replace("/", "_"), data)
    return found


def _matching_files(root: Path, patterns: list[str]) -> list[Path]:
    base = root.resolve()
    out: list[Path] = []
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            # Kestra's glob `dir/**` matches the files below dir; pathlib's only the folders.
            found = sorted(path.rglob("*")) if path.is_dir() and pattern.endswith("**") else [path]
            for file in found:
                if file.is_file() and file.resolve().is_relative_to(base) and file not in out:
                    out.append(file)
    return out
