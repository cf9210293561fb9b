"""The ``headwater`` command: a thin typer root that mounts one sub-app per command group.

Each group lives in its own module (``engine/cli/<group>.py``) exposing ``app``; add it to
:data:`GROUPS` to make it appear here.
"""

from __future__ import annotations

import importlib
import sys

import typer

from engine.errors import ConfigError

# (command name, module exposing `app`, help line)
GROUPS: list[tuple[str, str, str]] = [
    ("flow", "engine.cli.flow", "Check and inspect flow definitions."),
    ("executor", "engine.cli.executor", "Run the executor stream processor."),
    ("triggers", "engine.cli.triggers", "Run the trigger sources; enable or disable triggers."),
    ("worker", "engine.cli.worker", "Run a worker: execute task jobs."),
    ("projector", "engine.cli.projector", "Project the topics into the PostgreSQL read model."),
    ("api", "engine.cli.api", "Serve the REST API."),
    ("dev", "engine.cli.dev", "Run everything on this machine: embedded Kafka + PostgreSQL."),
    ("server", "engine.cli.server", "Run every component against external Kafka + PostgreSQL."),
    ("run", "engine.cli.run", "Deploy and run a flow; watch it; exit with its outcome."),
    ("execution", "engine.cli.execution", "List, show, follow, kill, resume, restart executions."),
    ("plugins", "engine.cli.plugins", "List the task, trigger and condition types available."),
]

app = typer.Typer(
    name="headwater",
    help="Headwater: an event-driven workflow orchestrator on Kafka that runs Kestra flows.",
    no_args_is_help=True,
    add_completion=False,
)

for _name, _module, _help in GROUPS:
    app.add_typer(importlib.import_module(_module).app, name=_name, help=_help)


def main() -> None:
    """Console-script entry point; a wrong setting is one line on stderr, exit code 2."""
    try:
        app()
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        sys.exit(2)
