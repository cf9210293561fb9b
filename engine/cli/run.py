"""``headwater run FLOW.yaml -i key=value ...``: validate, deploy, execute and watch a flow.

Against the API named by settings (``HEADWATER_CLIENT__API_URL``, default the one
``headwater dev`` serves), or with ``--embedded`` against a dev stack brought up for the run
and stopped after it. Exit codes: 0 SUCCESS/WARNING, 1 another final state, 2 an invalid
flow (``file:line:col: message``) or inputs, 3 no API to talk to.
"""

from __future__ import annotations

import asyncio
import pathlib
import signal
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from engine.cli.apiclient import ApiClient
from engine.cli.execution import outcome, watch
from engine.cli.support import (
    EXIT_FAILED,
    EXIT_USAGE,
    GOOD_STATES,
    fail,
    parse_pairs,
    print_json,
    table_console,
)
from engine.cli.support import run_async as run_command
from engine.flows import FlowValidationError, load_flow_file
from engine.settings import ClientSettings, Settings

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    # One command with a positional argument: options may come after it (`run f.yaml -i a=1`).
    context_settings={"allow_interspersed_args": True},
)

JSON = dict[str, Any]


async def run_flow(
    client: ClientSettings,
    source: str,
    namespace: str,
    flow_id: str,
    inputs: dict[str, str],
    labels: dict[str, str],
    console: Console,
    *,
    live: bool,
) -> JSON:
    async with ApiClient(client) as api:
        flow = await api.deploy_flow(source)
        console.print(f"deployed {namespace}.{flow_id} revision {flow['revision']}")
        created = await api.start_execution(namespace, flow_id, dict(inputs), labels)
        console.print(f"started execution {created['id']}")
        return await watch(api, created["id"], console, live=live)


async def run_embedded(base: Settings, data_dir: pathlib.Path, console: Console, **kw: Any) -> JSON:
    from engine.devstack.session import DevOptions, dev_session

    def say(line: str) -> None:
        console.print(line, markup=False, highlight=False, style="dim")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    current = asyncio.current_task()
    assert current is not None
    # Ctrl-C cancels the run; leaving dev_session then stops the servers it started.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, current.cancel)
    options = DevOptions(flows=None, data_dir=data_dir, api_port=0, api_port_strict=True)
    async with dev_session(options, stop, base=base, say=say) as session:
        say(f"embedded Headwater ready in {session.ready_s:.1f} s at {session.url}")
        client = base.client.model_copy(update={"api_url": session.url, "api_token": None})
        return await run_flow(client, console=console, **kw)


@app.callback(invoke_without_command=True)
def run(
    flow_file: Annotated[pathlib.Path, typer.Argument(help="The flow's YAML file.")],
    inputs: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="Input value: key=value.")
    ] = None,
    labels: Annotated[
        list[str] | None, typer.Option("--label", "-l", help="Execution label: key=value.")
    ] = None,
    embedded: Annotated[
        bool, typer.Option("--embedded", help="Bring up a dev stack for this run only.")
    ] = False,
    data_dir: Annotated[
        pathlib.Path, typer.Option("--data-dir", help="With --embedded: its data directory.")
    ] = pathlib.Path(".headwater"),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the final execution as JSON (no live view).")
    ] = False,
) -> None:
    """Deploy and run a flow, show its task runs live, exit with its outcome."""
    from engine.settings import load_settings

    try:
        flow = load_flow_file(flow_file)
    except FlowValidationError as exc:
        for problem in exc.problems:
            sys.stderr.write(f"{problem}\n")
        raise fail(f"{flow_file} is not a valid flow; nothing was run", EXIT_USAGE) from None
    except OSError as exc:
        raise fail(f"cannot read {flow_file}: {exc}", EXIT_USAGE) from None
    kw: dict[str, Any] = {
        "source": flow_file.read_text(),
        "namespace": flow.namespace,
        "flow_id": flow.id,
        "inputs": parse_pairs(inputs, "input"),
        "labels": parse_pairs(labels, "label"),
        "live": not as_json,
    }
    console = table_console(stderr=as_json)
    settings = load_settings()
    if embedded:
        final = run_command(run_embedded(settings, data_dir, console, **kw))
    else:
        final = run_command(run_flow(settings.client, console=console, **kw))
    if as_json:
        print_json(final)
        if final["state"]["current"] not in GOOD_STATES:
            raise typer.Exit(EXIT_FAILED)
        return
    outcome(final, console)
