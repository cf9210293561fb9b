"""The fork server's own process: a warm interpreter that forks one child per Python script.

Never imported by Headwater: :mod:`executors.forkserver` reads this file and runs its text as
``python -c <text> FD`` under the task's interpreter (the worker's ``python``, or a venv's), so
it uses the standard library only and stays valid for any Python 3.9+ (older ones fail, and the
worker starts their scripts as fresh processes instead).

Protocol, over the ``AF_UNIX``/``SOCK_SEQPACKET`` socket FD (one JSON object per message):

- to the worker, once: ``{"ready": true, "executable": ..., "version": [3, 11, 7]}``;
- from the worker: ``{"id": N, "script": PATH, "cwd": DIR, "env": {...}}`` with two file
  descriptors attached (``SCM_RIGHTS``): the child's stdout and stderr;
- to the worker: ``{"id": N, "pid": PID}`` once the child is set up (its own session, stdio,
  directory and environment), or ``{"id": N, "error": WHY}``; later ``{"exit": PID, "code": C}``
  (``C`` as ``Popen.returncode``: negative for a signal).

The child is what ``python PATH`` would be, minus the interpreter's start: ``sys.argv`` is
``[PATH]``, ``sys.path[0]`` the script's directory, the script runs as a new ``__main__``
module (``__file__``, ``__loader__``, ``__spec__`` None, as Python sets them), the environment
exactly the task's, stdin ``/dev/null``; an uncaught exception prints its traceback (from the
script's frame) and exits 1, ``SystemExit`` gives the exit code as Python does. At the end the
child does what the interpreter's shutdown does that a script can see (threads joined, atexit
handlers, the script's objects released, stdio flushed) and exits without tearing down the
modules: after a fork, that teardown copies every page of the server's heap.

The server exits when the worker's end of the socket closes (the worker stopped or died); its
running children are not its business then (their groups are killed by the worker's watchdog).
"""

from __future__ import annotations

import os
import sys


def _detach() -> None:
    # The first process exits at once: the worker has no child process to reap, and the server
    # (its child, re-parented) lives exactly as long as the worker's end of the socket.
    if os.fork() != 0:
        os._exit(0)


class _Job:
    def __init__(self, request: dict[str, object], fds: list[int], ready_w: int) -> None:
        self.request = request
        self.fds = fds
        self.ready_w = ready_w


def _serve(fd: int) -> _Job | None:
    """The server loop; returns only in a forked child (its job), or None at EOF."""
    import array
    import json
    import selectors
    import socket

    sock = socket.socket(fileno=fd)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ, None)
    children: dict[int, int] = {}  # pidfd -> pid

    def send(message: dict[str, object]) -> None:
        sock.send(json.dumps(message).encode())

    send({"ready": True, "executable": sys.executable, "version": list(sys.version_info[:3])})
    fd_size = array.array("i").itemsize
    while True:
        for key, _events in selector.select():
            if key.data is not None:  # a child ended
                pidfd, pid = key.fd, key.data
                selector.unregister(pidfd)
                os.close(pidfd)
                del children[pidfd]
                _, status = os.waitpid(pid, 0)
                send({"exit": pid, "code": os.waitstatus_to_exitcode(status)})
                continue
            data, ancillary, flags, _addr = sock.recvmsg(1 << 20, socket.CMSG_SPACE(8 * fd_size))
            fds: list[int] = []
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    usable = len(payload) - len(payload) % fd_size
                    fds += array.array("i", payload[:usable]).tolist()
            if not data:
                return None  # the worker is gone
            request = json.loads(data)
            ident = request.get("id")
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC) or len(fds) != 2:
                for extra in fds:
                    os.close(extra)
                send({"id": ident, "error": "malformed request"})
                continue
            ready_r, ready_w = os.pipe()
            try:
                pid = os.fork()
            except OSError as exc:
                for extra in (*fds, ready_r, ready_w):
                    os.close(extra)
                send({"id": ident, "error": f"fork failed: {exc}"})
                continue
            if pid == 0:
                os.close(ready_r)
                selector.close()
                sock.close()
                for pidfd in children:
                    os.close(pidfd)
                return _Job(request, fds, ready_w)
            os.close(ready_w)
            for extra in fds:
                os.close(extra)
            # The child writes nothing and closes its end once set up (or writes why not).
            problem = b""
            while True:
                chunk = os.read(ready_r, 4096)
                if not chunk:
                    break
                problem += chunk
            os.close(ready_r)
            pidfd = os.pidfd_open(pid)
            children[pidfd] = pid
            selector.register(pidfd, selectors.EVENT_READ, pid)
            if problem:
                send({"id": ident, "error": problem.decode(errors="replace")})
            else:
                send({"id": ident, "pid": pid})


def _become(job: _Job) -> str:
    """Turn this forked child into the task's process; returns the script's path."""
    request = job.request
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(job.fds[0], 1)
        os.dup2(job.fds[1], 2)
        for extra in (null, *job.fds):
            if extra > 2:
                os.close(extra)
        os.chdir(str(request["cwd"]))
        env = request["env"]
        assert isinstance(env, dict)
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in env.items()})
        script = str(request["script"])
        sys.argv = [script]
        if sys.path and sys.path[0] == "":  # `-c` put the current directory first
            sys.path[0] = os.path.dirname(os.path.realpath(script))
    except BaseException as exc:  # reported to the server, which reports it to the worker
        os.write(job.ready_w, repr(exc).encode())
        os._exit(127)
    os.close(job.ready_w)
    return script


def _run(script: str) -> None:
    import builtins
    import gc
    import types
    from importlib.machinery import SourceFileLoader

    # The __main__ module `python script.py` makes, kept so that shutdown can release it.
    main = types.ModuleType("__main__")
    main.__dict__.update(
        __file__=script,
        __cached__=None,
        __builtins__=builtins,
        __loader__=SourceFileLoader("__main__", script),
    )
    sys.modules["__main__"] = main
    code = 0
    try:
        with open(script, "rb") as source:  # bytes: compile() honours a coding cookie
            exec(compile(source.read(), script, "exec"), main.__dict__)  # noqa: S102 - the task
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException as exc:
        # As `python script.py` prints it: the traceback from the script's own frame on.
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != script:
            tb = tb.tb_next
        # (Python prints the exception's own __traceback__, whatever the argument says.)
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        del tb
        if isinstance(exc, KeyboardInterrupt):
            import signal

            _flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        code = 1
    # The interpreter's own shutdown, minus its teardown of every module: that touches every
    # object the server had loaded, and after a fork each touched page is a copy (measured
    # ~60-120 ms per child). What a script can observe of it is done here, in its order:
    # non-daemon threads are joined, atexit handlers run, the script's module is cleared as
    # the interpreter clears it (so an unclosed file is flushed by its finalizer, text layer
    # first), stdout/stderr are flushed.
    threading = sys.modules.get("threading")
    if threading is not None:
        threading._shutdown()
    import atexit

    atexit._run_exitfuncs()
    names = main.__dict__
    for key in [k for k in names if k.startswith("_") and k != "__builtins__"]:
        names[key] = None
    for key in [k for k in names if k != "__builtins__"]:
        names[key] = None
    del names, main
    gc.collect()
    if not _flush() and code == 0:
        code = 120  # as Python: the final flush failed
    os._exit(code & 0xFF)


def _exit_code(exc: SystemExit) -> int:
    """As Python's handling of SystemExit: None is 0, an int is itself, else it is printed."""
    value = exc.code
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    try:
        sys.stderr.write(f"{value}\n")
    except Exception:  # noqa: S110 - as Python, a failed print does not change the code
        pass
    return 1


def _flush() -> bool:
    ok = True
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            ok = False
    return ok


def main() -> None:
    fd = int(sys.argv[1])
    if not hasattr(os, "pidfd_open") or not hasattr(os, "waitstatus_to_exitcode"):
        os._exit(3)  # Python < 3.9: no ready message, the worker runs scripts as processes
    _detach()
    import gc

    # Everything loaded so far is left out of the children's collections: a collection would
    # touch (and so copy) the server's pages in every child.
    gc.freeze()
    job = _serve(fd)
    if job is None:
        return
    _run(_become(job))


if __name__ == "__main__":
    main()
