"""``headwater execution list|show|logs|follow|kill|resume|restart``: executions, via the API.

``follow`` (and ``headwater run``) show the task runs as a live table and stream the log
lines above it, then exit with the execution's outcome: 0 for SUCCESS or WARNING, 1 for any
other final state (see :mod:`engine.cli.support` for the other codes).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from engine.cli.apiclient import ApiClient
from engine.cli.support import (
    EXIT_FAILED,
    GOOD_STATES,
    duration,
    log_line,
    parse_pairs,
    print_json,
    short_time,
    table_console,
    with_api,
)
from engine.errors import NotFoundError

app = typer.Typer(no_args_is_help=True, add_completion=False)

JSON = dict[str, Any]
# Right after a start the projector may not have written the execution yet (one or two Kafka
# hops); the follower asks again for this long before believing a 404.
APPEAR_WITHIN_S = 30.0
_APPEAR_POLL_S = 0.2
STATE_STYLE = {
    "SUCCESS": "green",
    "WARNING": "yellow",
    "FAILED": "red",
    "KILLED": "red",
    "KILLING": "red",
    "RUNNING": "cyan",
    "PAUSED": "magenta",
    "RETRYING": "yellow",
}


def _state(name: str) -> Text:
    # Styled Text, never markup: a Live display re-renders the table inside the log lines'
    # print calls, whose markup=False would otherwise show "[green]SUCCESS[/green]".
    return Text(name, style=STATE_STYLE.get(name, ""))


def task_table(execution: JSON) -> Table:
    """The execution's task runs: one row each, in Kestra's taskRunList order (creation
    order, as the API lists them), children indented under their parent."""
    title = Text.assemble(
        f"{execution['namespace']}.{execution['flowId']} ",
        _state(execution["state"]["current"]),
        f" {duration(execution['state'].get('durationMs'))}",
    )
    table = Table("task", "state", "attempts", "started", "duration", title=title, box=None)
    for depth, run in _tree(execution.get("taskRunList") or []):
        value = f" [{run['value']}]" if run.get("value") else ""
        task = Text("  " * depth + run["taskId"] + value)
        table.add_row(
            task,
            _state(run["state"]["current"]),
            str(len(run.get("attempts") or []) or 1),
            short_time(run["state"].get("startDate")),
            duration(run["state"].get("durationMs")),
        )
    return table


def _tree(runs: list[JSON]) -> list[tuple[int, JSON]]:
    """Each task run after its parent, indented one level deeper (Parallel children under
    the Parallel); siblings keep the API's order. Orphans (a parent not listed) are roots."""
    ids = {run["id"] for run in runs}
    children: dict[str | None, list[JSON]] = {}
    for run in runs:
        parent = run.get("parentTaskRunId")
        children.setdefault(parent if parent in ids else None, []).append(run)
    out: list[tuple[int, JSON]] = []
    stack = [(0, run) for run in reversed(children.get(None, []))]
    while stack:
        depth, run = stack.pop()
        out.append((depth, run))
        stack.extend((depth + 1, child) for child in reversed(children.get(run["id"], [])))
    return out


async def watch(api: ApiClient, execution_id: str, console: Console, *, live: bool) -> JSON:
    """Follow an execution to its end: task runs live (when ``live``), logs as they come.
    Returns the final execution (with its task runs)."""
    seen_logs: set[str] = set()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + APPEAR_WITHIN_S
    execution: JSON | None = None
    display = Live(console=console, auto_refresh=False, transient=False) if live else None
    try:
        if display is not None:
            display.start()
        while True:
            try:
                async for event, data in api.follow(execution_id):
                    if event == "log" and data.get("logId") not in seen_logs:
                        seen_logs.add(data.get("logId", ""))
                        console.print(Text(log_line(data)), highlight=False)
                    elif event in ("execution", "end"):
                        execution = await api.get_execution(execution_id)
                        if display is not None:
                            display.update(task_table(execution), refresh=True)
                    if event == "end":
                        assert execution is not None
                        return execution
            except NotFoundError:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(_APPEAR_POLL_S)
            # A stream may end without an `end` (the server's follow limit): follow again.
    finally:
        if display is not None:
            display.stop()
            console.print()  # the final table's last line has no newline on a non-terminal


def outcome(execution: JSON, console: Console) -> None:
    """Print the final line and exit with the execution's outcome."""
    state = execution["state"]["current"]
    took = duration(execution["state"].get("durationMs"))
    console.print(Text.assemble(f"execution {execution['id']} ", _state(state), f" in {took}"))
    if execution.get("outputs"):
        console.print_json(data=execution["outputs"])
    if state not in GOOD_STATES:
        raise typer.Exit(EXIT_FAILED)


@app.command("list")
def list_executions(
    namespace: Annotated[str | None, typer.Option(help="Namespace (and below).")] = None,
    flow: Annotated[str | None, typer.Option("--flow", help="Flow id.")] = None,
    state: Annotated[list[str] | None, typer.Option(help="Only these states.")] = None,
    size: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List executions, newest first."""
    rows = with_api(
        lambda api: api.list_executions(
            namespace=namespace, flow_id=flow, states=state or None, size=size
        )
    )
    if as_json:
        print_json(rows)
        return
    table = Table(box=None)
    table.add_column("id", no_wrap=True, min_width=36)
    for name in ("flow", "state", "started", "duration"):
        table.add_column(name)
    for e in rows:
        table.add_row(
            e["id"],
            f"{e['namespace']}.{e['flowId']}",
            _state(e["state"]["current"]),
            str(e["state"].get("startDate") or "-")[:19].replace("T", " "),
            duration(e["state"].get("durationMs")),
        )
    table_console().print(table)


@app.command()
def show(
    execution_id: Annotated[str, typer.Argument(help="Execution id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One execution with its task runs."""
    execution = with_api(lambda api: api.get_execution(execution_id))
    if as_json:
        print_json(execution)
        return
    console = table_console()
    console.print(task_table(execution))
    if execution.get("outputs"):
        console.print_json(data=execution["outputs"])


@app.command()
def logs(
    execution_id: Annotated[str, typer.Argument(help="Execution id.")],
    level: Annotated[
        str | None, typer.Option(help="Minimum level: TRACE, DEBUG, INFO, WARN, ERROR.")
    ] = None,
    tail: Annotated[int | None, typer.Option(min=1, help="Only the last N lines.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print an execution's log lines, oldest first."""
    lines = with_api(lambda api: api.logs(execution_id, min_level=level, tail=tail))
    if as_json:
        print_json(lines)
        return
    for entry in lines:
        typer.echo(log_line(entry))


@app.command()
def follow(
    execution_id: Annotated[str, typer.Argument(help="Execution id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the final execution.")] = False,
) -> None:
    """Watch an execution to its end; exit 0 on SUCCESS/WARNING, 1 otherwise."""
    console = table_console(stderr=as_json)
    final = with_api(lambda api: watch(api, execution_id, console, live=not as_json))
    if as_json:
        print_json(final)
        if final["state"]["current"] not in GOOD_STATES:
            raise typer.Exit(EXIT_FAILED)
        return
    outcome(final, console)


def _accepted(result: JSON, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    extra = f" (new execution {result['newExecutionId']})" if result.get("newExecutionId") else ""
    typer.echo(f"{result['command']} sent to execution {result['executionId']}{extra}")


@app.command()
def kill(
    execution_id: Annotated[str, typer.Argument(help="Execution id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Kill an execution that has not ended."""
    _accepted(with_api(lambda api: api.kill(execution_id)), as_json)


@app.command()
def resume(
    execution_id: Annotated[str, typer.Argument(help="Execution id.")],
    inputs: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="onResume input key=value.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Resume a PAUSED execution."""
    values = parse_pairs(inputs, "input")
    _accepted(with_api(lambda api: api.resume(execution_id, dict(values))), as_json)


@app.command()
def restart(
    execution_id: Annotated[str, typer.Argument(help="Execution id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Restart a FAILED or KILLED execution from its failed task runs."""
    _accepted(with_api(lambda api: api.restart(execution_id)), as_json)
