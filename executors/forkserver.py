"""Python scripts forked from a warm interpreter instead of started cold.

A ``python script.py`` costs its interpreter's start before the first line of the script
runs: on our machines 20-70 ms for the bare interpreter, 60-200 ms more for ``site`` and the
``.pth`` files of the installation, and 100-300 ms more when ``python3`` is a pyenv shim (a
shell script that runs ``pyenv`` before the interpreter). Measured on the worker's own path
(``benchmarks/RESULTS.md``, "Python task overhead"): 98 % of a one-line Script task's time.

So a worker keeps, per interpreter (the worker's ``python``, and each cached venv's), one
*fork server*: that interpreter started once with ``executors/_zygote.py`` (its protocol is
documented there). A Script task's process is forked from it: a fresh process of its own,
in its own session and process group, with the task's environment, working directory, stdin
``/dev/null`` and stdout/stderr pipes read by :func:`executors.process.run_process` as for
any process; the worker's watchdog guards its group, a kill or timeout signals the group,
and its exit code comes back from the server. What differs from a cold start, and why it is
acceptable:

- the interpreter's start-up state is the server's: variables read at start-up (``PYTHON*``,
  ``LANG``/``LC_*``, ``PYENV*``) are compared with the task's environment, and a task that
  sets one of them differently runs as a fresh process; a pyenv shim is resolved when the
  server starts, not in each task's directory;
- children of one server share its string-hash seed (``random`` is re-seeded on fork);
- ``ps`` shows the server's command line for the children, not ``python script.py``.

Anything the server cannot do (an interpreter older than 3.9, a failed start, a request
too large for one message, the server dying) falls back to a fresh process, silently except
for a worker log line: the task's outcome never depends on it. The server exits when the
worker's end of its socket closes, i.e. with the worker.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# A server's interpreter start (site, .pth files, a pyenv shim) on a loaded 2-core machine
# took up to ~1 s; a server not ready after this long is given up (scripts start cold).
READY_S = 60.0
# The server forks and answers within milliseconds; one that does not answer in this long is
# stuck, and the task starts cold instead.
REPLY_S = 30.0
# Fork servers kept per worker (the worker's interpreter and the most recently used venvs);
# each idles at the RSS of one interpreter.
MAX_SERVERS = 4
# Interpreter start-up reads these variables; a task that sets them differently runs cold.
_STARTUP_PREFIXES = ("PYTHON", "PYENV", "LC_")
_STARTUP_NAMES = frozenset({"LANG"})
_SOURCE = Path(__file__).with_name("_zygote.py")
# StreamReader's buffer limit of the pipes (run_process reads them in chunks this size).
_PIPE_LIMIT = 256 * 1024


def startup_env(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``env`` that an interpreter reads when it starts."""
    return {k: v for k, v in env.items() if k.startswith(_STARTUP_PREFIXES) or k in _STARTUP_NAMES}


class Spawned:
    """A started script process as :func:`executors.process.run_process` supervises it."""

    def __init__(
        self,
        pid: int,
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader,
        exited: asyncio.Event,
        returncode: Callable[[], int | None],
        close: Callable[[], None] = lambda: None,
    ) -> None:
        self.pid = pid
        self.stdout = stdout
        self.stderr = stderr
        self.exited = exited
        self._returncode = returncode
        self.close = close

    @property
    def returncode(self) -> int | None:
        return self._returncode()


# (argv, cwd, env) -> a started process, or None: start it as a fresh process instead.
Launcher = Callable[[Sequence[str], str, Mapping[str, str]], Awaitable[Spawned | None]]


class _Exit:
    __slots__ = ("code", "event")

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.code: int | None = None


class ForkServer:
    """One interpreter's fork server, bound to the event loop that started it."""

    def __init__(self, python: str, cwd: str, env: Mapping[str, str]) -> None:
        self.python = python
        self._cwd = cwd
        self._env = dict(env)
        self._startup = startup_env(env)
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._starting: asyncio.Future[bool] | None = None
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._exits: dict[int, _Exit] = {}
        self.unsupported: str | None = None  # why this interpreter cannot serve, once known
        self.starts = 0

    def fits(self, argv: Sequence[str], env: Mapping[str, str]) -> bool:
        return (
            self.unsupported is None
            and len(argv) == 2
            and argv[0] == self.python
            and startup_env(env) == self._startup
        )

    async def spawn(self, argv: Sequence[str], cwd: str, env: Mapping[str, str]) -> Spawned | None:
        """``argv`` (``[python, script]``) forked from the server, or None (start it cold)."""
        if not self.fits(argv, env) or not await self._ensure():
            return None
        loop, sock = self._loop, self._sock
        assert loop is not None
        assert sock is not None
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        ident = next(self._ids)
        reply: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._replies[ident] = reply
        request = {"id": ident, "script": argv[1], "cwd": cwd, "env": dict(env)}
        try:
            # json, not orjson: environment values may hold lone surrogates (undecodable bytes).
            payload = json.dumps(request).encode()
            fds = array.array("i", [out_w, err_w])
            sock.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        except OSError as exc:  # too large for one message, or the server is gone
            log.info("fork server %s: request not sent (%s); starting the script cold",
                     self.python, exc)  # fmt: skip
            self._replies.pop(ident, None)
            for fd in (out_r, err_r):
                os.close(fd)
            return None
        finally:
            os.close(out_w)
            os.close(err_w)
        try:
            answer = await asyncio.wait_for(reply, REPLY_S)
        except TimeoutError:
            answer = {"error": f"no answer in {REPLY_S} s"}
            self.close()
        finally:
            self._replies.pop(ident, None)
        if "pid" not in answer:
            log.info("fork server %s: %s; starting the script cold", self.python,
                     answer.get("error"))  # fmt: skip
            for fd in (out_r, err_r):
                os.close(fd)
            return None
        pid = int(answer["pid"])
        ended: _Exit = answer["_exit"]
        stdout, out_transport = await _reader(loop, out_r)
        stderr, err_transport = await _reader(loop, err_r)

        def close() -> None:
            out_transport.close()
            err_transport.close()
            self._exits.pop(pid, None)

        return Spawned(pid, stdout, stderr, ended.event, lambda: ended.code, close)

    @property
    def busy(self) -> bool:
        """Children running or requests waiting: closing it now would kill them."""
        return bool(self._exits or self._replies)

    def close(self) -> None:
        """Stop the server (it exits on EOF) and kill the children it still runs."""
        sock, self._sock = self._sock, None
        loop = self._loop
        if sock is None:
            return
        if loop is not None and not loop.is_closed():
            loop.remove_reader(sock.fileno())
        sock.close()
        self._lost("the fork server was closed")

    # ------------------------------------------------------------------------ internals

    async def _ensure(self) -> bool:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (tests): a new server
            self.close()
            self._loop, self._starting = loop, None
        if self._sock is not None:
            return True
        if self.unsupported is not None:
            return False
        if self._starting is None or self._starting.done():  # never started, or gone since
            self._starting = asyncio.ensure_future(self._start())
        return await asyncio.shield(self._starting)

    async def _start(self) -> bool:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            await asyncio.to_thread(Path(self._cwd).mkdir, parents=True, exist_ok=True)
            with theirs:
                first = await asyncio.create_subprocess_exec(
                    self.python, "-c", _SOURCE.read_text(), str(theirs.fileno()),
                    pass_fds=(theirs.fileno(),), cwd=self._cwd, env=self._env,
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                    start_new_session=True,
                )  # fmt: skip
                code = await first.wait()  # it forks the server and exits
            if code != 0:
                raise OSError(f"{self.python} exited with code {code} (Python 3.9+ needed)")
            ours.setblocking(False)
            first_message = await asyncio.wait_for(loop.sock_recv(ours, 1 << 16), READY_S)
            if not first_message:
                raise OSError("the server exited before it was ready")
            if not json.loads(first_message).get("ready"):
                raise OSError(f"unexpected first message {first_message[:200]!r}")
        except (OSError, TimeoutError, ValueError, KeyError) as exc:
            ours.close()
            self.unsupported = f"{type(exc).__name__}: {exc}"
            log.warning("fork server for %s not available (%s); Python scripts start as fresh "
                        "processes", self.python, self.unsupported)  # fmt: skip
            return False
        self._sock = ours
        self.starts += 1
        # Closed with the worker's objects, never left to a ResourceWarning.
        weakref.finalize(self, ours.close)
        loop.add_reader(ours.fileno(), self._readable)
        return True

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        while True:
            try:
                data = sock.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                log.error("fork server %s exited; its running scripts are killed", self.python)
                self.close()
                return
            message = json.loads(data)
            if "exit" in message:
                ended = self._exits.pop(int(message["exit"]), None)
                if ended is not None:
                    ended.code = int(message["code"])
                    ended.event.set()
                continue
            if "pid" in message:  # its exit may come before spawn() resumes
                message["_exit"] = self._exits[int(message["pid"])] = _Exit()
            future = self._replies.get(int(message.get("id", 0)))
            if future is not None and not future.done():
                future.set_result(message)

    def _lost(self, why: str) -> None:
        """The server is gone: pending requests fail, and its children cannot be waited
        for any more, so their groups are killed and they end as SIGKILLed."""
        for future in self._replies.values():
            if not future.done():
                future.set_result({"error": why})
        self._replies.clear()
        for pid, ended in self._exits.items():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            ended.code = -signal.SIGKILL
            ended.event.set()
        self._exits.clear()


async def _reader(
    loop: asyncio.AbstractEventLoop, fd: int
) -> tuple[asyncio.StreamReader, asyncio.BaseTransport]:
    reader = asyncio.StreamReader(limit=_PIPE_LIMIT, loop=loop)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader, loop=loop), os.fdopen(fd, "rb", buffering=0)
    )
    return reader, transport


class ForkServers:
    """A worker's fork servers, one per interpreter, started on first use (LRU-bounded)."""

    def __init__(self, cwd: str | Path, limit: int = MAX_SERVERS) -> None:
        self._cwd = str(cwd)
        self._limit = limit
        self._servers: dict[str, ForkServer] = {}

    def launcher(self, python: str, env: Mapping[str, str]) -> Launcher:
        """Forks ``[python, script]`` from ``python``'s server (started with ``env``)."""

        async def launch(
            argv: Sequence[str], cwd: str, task_env: Mapping[str, str]
        ) -> Spawned | None:
            server = self._servers.pop(python, None)
            if server is None:
                server = ForkServer(python, self._cwd, env)
            self._servers[python] = server  # most recently used last
            idle = [p for p, s in self._servers.items() if p != python and not s.busy]
            for old in idle[: max(0, len(self._servers) - self._limit)]:
                self._servers.pop(old).close()
            return await server.spawn(argv, cwd, task_env)

        return launch

    def close(self) -> None:
        for server in self._servers.values():
            server.close()
        self._servers.clear()
