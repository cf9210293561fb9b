"""``headwater projector``: project the topics into PostgreSQL; ``rebuild`` starts it over.

Settings come from HEADWATER_* variables. SIGTERM/SIGINT stop it cleanly: the batch in hand
is written and committed before the process leaves the consumer group. Known secret values
(engine.stores.secrets) are masked in the rows; ``--health-port`` serves /health/ready and /metrics.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import typer

from engine.health.server import HEALTH_PORT_HELP
from engine.settings import Settings, load_settings

app = typer.Typer(no_args_is_help=False, add_completion=False)


async def run_projector(
    settings: Settings,
    *,
    rebuild: bool = False,
    health_port: int = 0,
    stop: asyncio.Event | None = None,
) -> None:
    """Run one projector until SIGTERM/SIGINT or ``stop`` (a failure is re-raised)."""
    from engine.bus import BusAdmin, ensure_topics
    from engine.health.probes import projector_probe
    from engine.health.server import health_server
    from engine.projector import Projector
    from engine.stores.secrets import secret_masker

    await ensure_topics(BusAdmin(settings.kafka), settings.kafka)
    projector = Projector(
        settings.kafka,
        settings.projector,
        settings.postgres.dsn.get_secret_value(),
        masker=secret_masker(settings),
    )
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    probe = projector_probe(projector)
    async with health_server(probe, settings.health.host, health_port or settings.health.port):
        await projector.start(rebuild=rebuild)
        try:
            probe.task = asyncio.create_task(projector.run(stop), name="projector")
            await probe.task
        finally:
            await projector.close()


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.callback(invoke_without_command=True)
def projector(
    ctx: typer.Context,
    log_level: str = typer.Option("INFO", help="Python log level of the process."),
    health_port: int = typer.Option(0, "--health-port", min=0, max=65535, help=HEALTH_PORT_HELP),
) -> None:
    """Consume hw.events, hw.logs and hw.flows into the read model; stop on SIGTERM/SIGINT."""
    _logging(log_level)
    if ctx.invoked_subcommand is None:
        asyncio.run(run_projector(load_settings(), health_port=health_port))


@app.command()
def rebuild(
    yes: bool = typer.Option(False, "--yes", help="Do not ask before dropping the tables."),
) -> None:
    """Drop the read model, re-create it and project every topic from the beginning."""
    if not yes:
        typer.confirm("Drop every read-model table and rebuild it from Kafka?", abort=True)
    asyncio.run(run_projector(load_settings(), rebuild=True))
