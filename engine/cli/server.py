"""``headwater server``: every component in one process, against the Kafka and PostgreSQL
named by the settings (``HEADWATER_KAFKA__BOOTSTRAP_SERVERS``, ``HEADWATER_POSTGRES__DSN``).

To scale the parts separately, run ``headwater executor``, ``worker``, ``projector``,
``triggers`` and ``api`` as separate processes instead (or ``--only`` a subset here).

API authentication is on by default: with the API among the components, the server refuses to
start until API keys or basic-auth users are configured, or ``--insecure`` says to serve it
open on purpose. ``--health-port`` serves /health/ready (every component running) and
/metrics of the process beside the API.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Annotated

import typer

from engine import gcfreeze
from engine.errors import ConfigError, HeadwaterError
from engine.health.server import HEALTH_PORT_HELP

app = typer.Typer(no_args_is_help=False, add_completion=False)


async def serve(
    components: list[str] | None, *, insecure: bool = False, health_port: int = 0
) -> None:
    from engine.api.auth import require_credentials
    from engine.app import COMPONENTS, App
    from engine.bus.admin import BusAdmin
    from engine.bus.topics import ensure_topics
    from engine.health.probes import app_probe
    from engine.health.server import health_server
    from engine.settings import load_settings

    settings = load_settings()
    if "api" in (components or COMPONENTS):
        require_credentials(settings.api, insecure=insecure)
    try:
        await ensure_topics(BusAdmin(settings.kafka), settings.kafka)
    except HeadwaterError as exc:
        raise HeadwaterError(
            f"Kafka at {settings.kafka.bootstrap_servers} does not answer ({exc.message}); "
            "start it (`make services-up`) or set HEADWATER_KAFKA__BOOTSTRAP_SERVERS"
        ) from exc
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = App(settings, components=components or COMPONENTS)
    probe = app_probe(server)
    async with health_server(probe, settings.health.host, health_port or settings.health.port):
        ready = asyncio.create_task(server.ready.wait())
        running = asyncio.create_task(server.run(stop))
        probe.task = running
        await asyncio.wait([ready, running], return_when=asyncio.FIRST_COMPLETED)
        if ready.done() and "api" in server.components:
            sys.stdout.write(
                f"Headwater server: {', '.join(server.components)}; {server.api_url}\n"
            )
            sys.stdout.flush()
        ready.cancel()
        await running


@app.callback(invoke_without_command=True)
def server(
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only", help="Run just these components (executor, worker, projector, triggers, api)."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Python log level of the process.")] = "INFO",
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure", help="Serve the API without authentication (no keys or users set)."
        ),
    ] = False,
    health_port: Annotated[
        int, typer.Option("--health-port", min=0, max=65535, help=HEALTH_PORT_HELP)
    ] = 0,
) -> None:
    """Run every component against the Kafka and PostgreSQL named by settings."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    gcfreeze.install()  # the executor's states: see engine/gcfreeze.py
    try:
        asyncio.run(serve(only, insecure=insecure, health_port=health_port))
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        raise typer.Exit(2) from None
    except HeadwaterError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        raise typer.Exit(1) from None
