"""What the API-talking CLI commands share: exit codes, error printing, output helpers.

Exit codes: 0 success; 1 the execution ended badly (FAILED, KILLED, ...) or the API refused
the request; 2 the command line or the flow is invalid; 3 the API cannot be reached.
A user's mistake or an unreachable server prints one ``error: ...`` line, never a traceback.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any, TypeVar

import orjson
import typer
from rich.console import Console

from engine.cli.apiclient import ApiClient, ApiError
from engine.errors import HeadwaterError, ServiceError

T = TypeVar("T")

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
GOOD_STATES = frozenset({"SUCCESS", "WARNING"})


# Piped output has no terminal width: tables then take the width their cells need (a script
# or grep gets whole ids and names, never "company.…"). Wide enough for any row.
PIPED_WIDTH = 10_000


def table_console(*, stderr: bool = False) -> Console:
    """A console for tables and live views: the terminal's width, or unlimited when piped."""
    console = Console(stderr=stderr)
    return console if console.is_terminal else Console(stderr=stderr, width=PIPED_WIDTH)


def fail(message: str, code: int) -> typer.Exit:
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    return typer.Exit(code)


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run one command's coroutine; turn Headwater errors into one line and an exit code."""
    try:
        return asyncio.run(main)
    except ApiError as exc:
        code = EXIT_USAGE if exc.status in (400, 422) else EXIT_FAILED
        raise fail(exc.message, code) from None
    except ServiceError as exc:
        raise fail(exc.message, EXIT_UNREACHABLE) from None
    except HeadwaterError as exc:
        raise fail(exc.message, EXIT_FAILED) from None


def with_api(call: Callable[[ApiClient], Awaitable[T]]) -> T:
    """Open a client from the settings, run ``call`` with it, close it."""
    from engine.settings import load_settings

    async def main() -> T:
        async with ApiClient(load_settings().client) as api:
            return await call(api)

    return run_async(main())


def print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def parse_pairs(pairs: list[str] | None, what: str) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; the server coerces input types."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise fail(f"{what} {pair!r} is not key=value", EXIT_USAGE)
        out[key] = value
    return out


def short_time(value: str | None) -> str:
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(value).strftime("%H:%M:%S")
    except ValueError:
        return value


def duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    return f"{ms / 1000:.2f}s" if ms < 60_000 else f"{ms // 60_000}m{ms % 60_000 / 1000:02.0f}s"


def log_line(entry: dict[str, Any]) -> str:
    task = entry.get("taskId") or "-"
    when = short_time(entry.get("timestamp"))
    return f"{when} {entry.get('level', ''):5} {task}: {entry.get('message', '')}"
