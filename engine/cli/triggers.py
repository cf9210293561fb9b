"""``headwater triggers``: run the trigger runtime (settings from HEADWATER_* variables).

Runs every trigger source of the deployed flows (schedule, Flow, Kafka, MQTT, RabbitMQ, file
arrival) until SIGTERM or SIGINT; ``headwater triggers toggle NS FLOW TRIGGER --disable``
enables or disables one trigger through hw.trigger-state; ``headwater triggers list`` shows
every trigger's state through the API. ``--health-port`` serves
/health/ready (503 once a source follower or the runtime failed) and /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Annotated

import typer
from rich.text import Text

from engine.health.server import HEALTH_PORT_HELP
from engine.settings import Settings

app = typer.Typer(no_args_is_help=False, add_completion=False)

# How often the runtime's failure flag is checked (as triggers.runtime.run_triggers does): a
# crashed source loop stops the process within this long.
FAILURE_CHECK_S = 1.0


async def serve_triggers(settings: Settings, stop: asyncio.Event, health_port: int = 0) -> None:
    """The trigger runtime until ``stop`` (run_triggers, plus the health server, which needs
    the runtime object); a runtime failure is re-raised."""
    from engine.health.probes import triggers_probe
    from engine.health.server import health_server
    from triggers.runtime import TriggerRuntime

    runtime = TriggerRuntime(settings)
    probe = triggers_probe(runtime)

    async def watch() -> None:
        while not stop.is_set():
            if runtime.failure is not None:
                raise runtime.failure
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), FAILURE_CHECK_S)

    async with health_server(probe, settings.health.host, health_port or settings.health.port):
        await runtime.start()
        try:
            probe.task = asyncio.create_task(watch(), name="triggers")
            await probe.task
        finally:
            await runtime.close()


@app.callback(invoke_without_command=True)
def triggers(
    ctx: typer.Context,
    log_level: str = typer.Option("INFO", help="Python log level of the process."),
    health_port: int = typer.Option(0, "--health-port", min=0, max=65535, help=HEALTH_PORT_HELP),
) -> None:
    """Run the trigger sources; each event becomes a StartExecution on hw.commands."""
    if ctx.invoked_subcommand is not None:
        return
    from engine.settings import load_settings

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve_triggers(load_settings(), stop, health_port)

    asyncio.run(main())


@app.command()
def toggle(
    namespace: str,
    flow_id: str,
    trigger_id: str,
    enable: bool = typer.Option(True, "--enable/--disable", help="Enable or disable it."),
) -> None:
    """Enable or disable one trigger (what the API and the Toggle task do)."""
    from engine.bus.producer import AsyncProducer
    from engine.bus.topics import topics_for
    from engine.settings import load_settings
    from triggers.state import set_enabled

    settings = load_settings()

    async def main() -> None:
        async with AsyncProducer(settings.kafka) as producer:
            topic = topics_for(settings.kafka).trigger_state.name
            await set_enabled(producer, topic, namespace, flow_id, trigger_id, enable)

    asyncio.run(main())
    typer.echo(f"{namespace}/{flow_id}/{trigger_id} {'enabled' if enable else 'disabled'}")


@app.command("list")
def list_triggers(
    namespace: Annotated[str | None, typer.Option(help="Only this namespace (and below).")] = None,
    flow: Annotated[str | None, typer.Option("--flow", help="Only this flow id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the triggers of deployed flows: enabled, last fired, next date, last error."""
    from rich.table import Table

    from engine.cli.support import print_json, table_console, with_api

    rows = with_api(lambda api: api.list_triggers(namespace, flow))
    if as_json:
        print_json(rows)
        return
    table = Table("flow", "trigger", "type", "enabled", "last fired", "next", "last error",
                  box=None)  # fmt: skip
    for t in rows:
        table.add_row(
            Text(f"{t['namespace']}.{t['flowId']}"),
            Text(t["triggerId"]),
            Text(str(t.get("type") or "").rsplit(".", 1)[-1]),
            Text("yes" if t.get("enabled") else "no", style="" if t.get("enabled") else "red"),
            Text(_when(t.get("lastFired"))),
            Text(_when(t.get("nextDate"))),
            Text(t.get("lastError") or "", style="red"),
        )
    table_console().print(table)


def _when(value: str | None) -> str:
    return str(value)[:19].replace("T", " ") if value else "-"
