"""``headwater executor``: run one executor process (settings from HEADWATER_* variables).

``--health-port`` (or ``HEADWATER_HEALTH__PORT``) serves /health/live, /health/ready and
/metrics of this executor (see engine.health.server).
"""

from __future__ import annotations

import asyncio
import logging
import signal

import typer

from engine import gcfreeze
from engine.health.server import HEALTH_PORT_HELP
from engine.settings import Settings

app = typer.Typer(no_args_is_help=False, add_completion=False)
log = logging.getLogger(__name__)


async def serve_executor(settings: Settings, health_port: int, stop: asyncio.Event) -> None:
    """The executor until ``stop`` (what engine.executor.service.run_executor does, plus the
    health server, which needs the Executor object to read its health)."""
    from engine.executor import Executor
    from engine.health.probes import executor_probe
    from engine.health.server import health_server

    executor = Executor(settings)
    probe = executor_probe(executor)
    async with health_server(probe, settings.health.host, health_port or settings.health.port):
        try:
            await executor.start()
            log.info("executor started (group %s)", settings.executor.group_id)
            probe.task = asyncio.create_task(executor.run(stop), name="executor")
            await probe.task
        finally:
            await executor.close()
            log.info("executor stopped: %s", executor.health())


@app.callback(invoke_without_command=True)
def executor(
    log_level: str = typer.Option("INFO", help="Python log level of the process."),
    health_port: int = typer.Option(0, "--health-port", min=0, max=65535, help=HEALTH_PORT_HELP),
) -> None:
    """Consume hw.commands, decide, produce events/jobs/snapshots; stop on SIGTERM/SIGINT."""
    from engine.settings import load_settings

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve_executor(load_settings(), health_port, stop)

    gcfreeze.install()  # its states: see engine/gcfreeze.py
    asyncio.run(main())
