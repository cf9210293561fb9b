"""``headwater worker``: run one worker process (settings from HEADWATER_* variables).

``--health-port`` (or ``HEADWATER_HEALTH__PORT``) serves /health/live, /health/ready and
/metrics of this worker (see engine.health.server).
"""

from __future__ import annotations

import asyncio
import logging
import signal

import typer

from engine.health.server import HEALTH_PORT_HELP
from engine.settings import Settings

app = typer.Typer(no_args_is_help=False, add_completion=False)


async def serve_worker(
    settings: Settings,
    stop: asyncio.Event,
    *,
    concurrency: int | None = None,
    worker_group: str | None = None,
    health_port: int = 0,
) -> None:
    """One worker until ``stop``, with its health server when a port is given."""
    from engine.health.probes import worker_probe
    from engine.health.server import health_server
    from engine.worker import Worker

    worker = Worker(settings, concurrency=concurrency, worker_group=worker_group)
    probe = worker_probe(worker)
    async with health_server(probe, settings.health.host, health_port or settings.health.port):
        probe.task = asyncio.create_task(worker.run(stop), name="worker")
        await probe.task


async def _serve(concurrency: int | None, worker_group: str | None, health_port: int) -> None:
    from engine.settings import load_settings

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve_worker(
        load_settings(),
        stop,
        concurrency=concurrency,
        worker_group=worker_group,
        health_port=health_port,
    )


@app.callback(invoke_without_command=True)
def worker(
    concurrency: int | None = typer.Option(
        None,
        "--concurrency",
        "-c",
        min=1,
        help="Tasks run at once (default: worker settings).",
    ),
    worker_group: str | None = typer.Option(
        None, "--worker-group", "-g", help="Serve the jobs of this worker group (jobs.GROUP)."
    ),
    log_level: str = typer.Option("INFO", help="Python log level of the process."),
    health_port: int = typer.Option(0, "--health-port", min=0, max=65535, help=HEALTH_PORT_HELP),
) -> None:
    """Run tasks from hw.jobs; on SIGTERM finish running tasks (within the grace) and stop."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_serve(concurrency, worker_group, health_port))
