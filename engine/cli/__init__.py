"""The ``headwater`` command: a thin typer root that mounts one sub-app per command group.

Each group lives in its own module (``engine/cli/<group>.py``) exposing ``app``; add it to
:data:`GROUPS` to make it appear here. A group's module is imported only when that group runs
(``headwater --help`` lists them from :data:`GROUPS` without importing the engine), so the
root answers at once.
"""

from __future__ import annotations

import importlib
import sys
from importlib import metadata
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

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
    ("migrate", "engine.cli.migrate", "Rewrite Kestra 1.x flows in Kestra 2.0's flow language."),
]
_GROUP = {name: (module, help_line) for name, module, help_line in GROUPS}


class _LazyGroup(TyperGroup):
    """The root group: a command group's module is imported when it is invoked, not listed."""

    _listing = False

    # (typer vendors its own click: contexts and commands are typed loosely here)
    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *_GROUP]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in _GROUP:
            return command
        module, help_line = _GROUP[cmd_name]
        if self._listing:  # the root's --help only needs the help line
            return TyperCommand(cmd_name, help=help_line)
        # Mounted exactly as `add_typer` mounts it (a one-command app stays a group).
        holder = typer.Typer()
        holder.add_typer(importlib.import_module(module).app, name=cmd_name, help=help_line)
        command = typer.main.get_command(holder).commands[cmd_name]  # type: ignore[attr-defined]
        self.add_command(command, cmd_name)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def _version(value: bool) -> None:
    if value:
        typer.echo(f"headwater {metadata.version('headwater')}")
        raise typer.Exit()


app = typer.Typer(
    name="headwater",
    help="Headwater: an event-driven workflow orchestrator on Kafka that runs Kestra flows.",
    no_args_is_help=True,
    add_completion=False,
    cls=_LazyGroup,
)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Headwater: an event-driven workflow orchestrator on Kafka that runs Kestra flows."""


def main(argv: Any = None) -> None:
    """Console-script entry point; a wrong setting is one line on stderr, exit code 2."""
    try:
        app(argv)
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        sys.stderr.flush()
        sys.exit(2)
