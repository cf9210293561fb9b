"""``headwater plugins list``: every task, trigger and condition type this installation runs.

Core types are Headwater's own; plugin types come from :mod:`executors.plugins` (provider
``headwater``) or from installed packages' ``headwater.plugins`` entry points (provider: the
distribution's name). A plugin that could not be loaded is reported on stderr, and the others
are still listed.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import orjson
import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command("list")
def list_types(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    kind: Annotated[
        str | None,
        typer.Option(help="Only this kind: flowable, runnable, trigger or condition."),
    ] = None,
) -> None:
    """List every type, with its kind, provider and older names."""
    rows = [row for row in _rows() if kind is None or row["kind"] == kind]
    if as_json:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        width = max((len(row["type"]) for row in rows), default=4)
        typer.echo(f"{'TYPE':<{width}}  {'KIND':<9}  {'PROVIDER':<10}  DESCRIPTION")
        for row in rows:
            typer.echo(
                f"{row['type']:<{width}}  {row['kind']:<9}  {row['provider']:<10}  "
                f"{row['description']}"
            )
        typer.echo(f"\n{len(rows)} types", err=True)
    from schemas.plugins import plugin_errors

    for error in plugin_errors():
        typer.echo(f"warning: plugin not loaded: {error}", err=True)


def _rows() -> list[dict[str, Any]]:
    from schemas.flow import TASK_MODELS, TRIGGER_MODELS
    from schemas.flow.conditions import CONDITION_MODELS
    from schemas.plugins import plugins
    from schemas.types import aliases_of, canonical_names, type_kind

    provided = {info.type: info.provider for info in plugins()}
    models: dict[str, Any] = {**TASK_MODELS, **TRIGGER_MODELS, **CONDITION_MODELS}
    rows = []
    for name in canonical_names():
        doc = (models[name].__doc__ or "").strip() if name in models else ""
        rows.append(
            {
                "type": name,
                "kind": type_kind(name),
                "provider": provided.get(name, "core"),
                "aliases": list(aliases_of(name)),
                "description": doc.splitlines()[0] if doc else "",
            }
        )
    return rows
