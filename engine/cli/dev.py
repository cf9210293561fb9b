"""``headwater dev``: the embedded broker and database plus every component, in one process.

Ready in a few seconds on a warm machine: Tansu and PostgreSQL start from their wheels,
the components join, the flow folder (default ``./flows``, created with an example flow) is
deployed and then followed as files change. Ctrl-C (or SIGTERM) stops everything it started.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
import signal
import sys
from typing import Annotated

import typer

from engine import gcfreeze
from engine.devstack.session import DEFAULT_API_PORT, DevOptions, dev_session
from engine.errors import HeadwaterError

app = typer.Typer(no_args_is_help=False, add_completion=False)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def say(line: str) -> None:
    # Flushed at once: people (and tests) watch this output live.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 1) -> typer.Exit:
    sys.stderr.write(f"error: {message}\n")
    return typer.Exit(code)


async def serve_dev(options: DevOptions) -> None:
    from engine.settings import load_settings

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with dev_session(options, stop, base=load_settings(), say=say) as session:
        stack = session.stack.describe()
        say(
            f"Kafka {stack['kafka']} ({'durable S3' if stack['durable'] else 'memory'} "
            f"storage), PostgreSQL {stack['postgres']}, data in {stack['data_dir']}"
        )
        say(f"Headwater is ready in {session.ready_s:.1f} s: {session.url}")
        say(f"  dashboard {session.url}/ui   API {session.url}/api/v1   docs {session.url}/docs")
        say("  Ctrl-C stops everything")
        await session.wait()
    say("stopped")


@app.callback(invoke_without_command=True)
def dev(
    flows: Annotated[
        pathlib.Path, typer.Option("--flows", help="Folder of flow files to deploy and follow.")
    ] = pathlib.Path("flows"),
    durable: Annotated[
        bool,
        typer.Option("--durable", help="Keep Kafka's data between runs (S3 storage, SeaweedFS)."),
    ] = False,
    port: Annotated[
        int | None,
        typer.Option("--port", help=f"API port (default {DEFAULT_API_PORT}; 0: any free port)."),
    ] = None,
    data_dir: Annotated[
        pathlib.Path,
        typer.Option("--data-dir", help="Database, broker data and logs (kept between runs)."),
    ] = pathlib.Path(".headwater"),
    kafka_port: Annotated[int, typer.Option(help="Preferred Kafka port.")] = 19092,
    postgres_port: Annotated[int, typer.Option(help="Preferred PostgreSQL port.")] = 15432,
    log_level: Annotated[str, typer.Option(help="Log level of the components.")] = "WARNING",
) -> None:
    """Run Headwater on this machine: embedded Kafka and PostgreSQL, every component."""
    logging.basicConfig(level=log_level.upper(), format=LOG_FORMAT)
    options = DevOptions(
        flows=flows,
        data_dir=data_dir,
        durable=durable,
        api_port=DEFAULT_API_PORT if port is None else port,
        api_port_strict=port is not None,
        kafka_port=kafka_port,
        postgres_port=postgres_port,
    )
    gcfreeze.install()  # the executor's states: see engine/gcfreeze.py
    try:
        asyncio.run(serve_dev(options))
    except HeadwaterError as exc:
        raise fail(exc.message) from None
