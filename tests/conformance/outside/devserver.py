"""``headwater dev`` as a separate process: its own embedded broker and database.

The server is whatever ``headwater`` is installed next to this Python; the client learns its
URL from the line ``Headwater is ready in N s: URL`` and stops it with SIGTERM (the command's
documented Ctrl-C), then SIGKILL if it does not stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import re
import shutil
import signal
import sys
from collections.abc import AsyncIterator

# `headwater dev` is ready in a few seconds on a warm machine; the first run creates the
# PostgreSQL cluster, which takes longer on a loaded 2-core machine.
READY_S = 120.0
STOP_S = 20.0
_READY = re.compile(rb"Headwater is ready in [\d.]+ s: (\S+)")


def headwater_command() -> list[str]:
    script = pathlib.Path(sys.executable).parent / "headwater"
    if script.exists():
        return [str(script)]
    found = shutil.which("headwater")
    if found is None:
        raise RuntimeError("the `headwater` command is not installed (pip install -e .)")
    return [found]


@contextlib.asynccontextmanager
async def dev_server(
    work: pathlib.Path, *, env: dict[str, str] | None = None
) -> AsyncIterator[str]:
    """Run ``headwater dev`` in ``work`` (flows and data there); yields the API's URL."""
    flows = work / "flows"
    flows.mkdir(parents=True, exist_ok=True)
    log_path = work / "headwater-dev.log"
    command = [
        *headwater_command(),
        "dev",
        "--port", "0",
        "--flows", str(flows),
        "--data-dir", str(work / "data"),
        # Not the defaults: a developer's own `headwater dev` may hold those.
        "--kafka-port", "29392",
        "--postgres-port", "25732",
    ]  # fmt: skip
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=work,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        assert process.stdout is not None
        try:
            url = await asyncio.wait_for(_ready_url(process.stdout), READY_S)
        except (TimeoutError, RuntimeError) as exc:
            await _stop(process)
            raise RuntimeError(
                f"headwater dev did not become ready ({exc or 'timed out'}); see {log_path}"
            ) from exc
        drain = asyncio.ensure_future(_drain(process.stdout))
        try:
            yield url
        finally:
            await _stop(process)
            drain.cancel()


async def _ready_url(stdout: asyncio.StreamReader) -> str:
    while True:
        line = await stdout.readline()
        if not line:
            raise RuntimeError("it exited")
        match = _READY.search(line)
        if match:
            return match.group(1).decode()


async def _drain(stdout: asyncio.StreamReader) -> None:
    while await stdout.readline():
        pass


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), STOP_S)
    except TimeoutError:
        process.kill()
        await process.wait()
