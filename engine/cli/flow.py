"""``headwater flow ...``: commands about flow definitions.

``validate`` reports every problem of every file as ``file:line:col: message`` (or as JSON
with ``--json``) and exits 1 if any file has a problem, so it fits editors and CI alike.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Annotated, Any

import orjson
import typer

from engine.flows import FlowProblem, FlowValidationError, expression_warnings, load_flow_file

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command()
def validate(
    files: Annotated[list[pathlib.Path], typer.Argument(help="Flow YAML files to check.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print machine-readable results instead.")
    ] = False,
) -> None:
    """Validate flow files; exit 1 if any has a problem. Expressions that will not render
    (a syntax error, an unknown filter or function) are warnings: the flow deploys, as in
    Kestra, and the task using one fails when it runs."""
    results = [_check(path) for path in files]
    failed = sum(1 for r in results if not r["valid"])
    if as_json:
        report = {"valid": failed == 0, "files": results}
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        for result in results:
            if result["valid"]:
                typer.echo(f"{result['file']}: ok ({result['namespace']}.{result['id']})")
            for problem in result["problems"]:
                typer.echo(str(FlowProblem(**problem)))
            for warning in result.get("warnings", []):
                typer.echo(_as_warning(FlowProblem(**warning)))
        summary = f"{len(results) - failed} valid, {failed} invalid"
        typer.echo(summary, err=True)
    if failed:
        raise typer.Exit(code=1)


def _check(path: pathlib.Path) -> dict[str, Any]:
    try:
        flow = load_flow_file(path)
    except FlowValidationError as exc:
        return {
            "file": str(path),
            "valid": False,
            "problems": [p.to_dict() for p in exc.problems],
        }
    return {
        "file": str(path),
        "valid": True,
        "namespace": flow.namespace,
        "id": flow.id,
        "problems": [],
        "warnings": [w.to_dict() for w in expression_warnings(path.read_text(), str(path))],
    }


def _as_warning(problem: FlowProblem) -> str:
    where, _, rest = str(problem).partition(": ")
    return f"{where}: warning: {rest}"


# --------------------------------------------------------- deploy / list / delete (API)


@app.command()
def deploy(
    files: Annotated[list[pathlib.Path], typer.Argument(help="Flow YAML files to deploy.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the deployed flows as JSON.")
    ] = False,
) -> None:
    """Validate, then deploy flow files through the API (exit 2 if any file is invalid)."""
    from engine.cli.support import EXIT_USAGE, fail, print_json, with_api

    sources = {}
    invalid = 0
    for path in files:
        result = _check(path)
        if not result["valid"]:
            invalid += 1
            for problem in result["problems"]:
                typer.echo(str(FlowProblem(**problem)), err=True)
        else:
            sources[path] = path.read_text()
    if invalid:
        raise fail(f"{invalid} file(s) invalid; nothing deployed", EXIT_USAGE)

    async def call(api: Any) -> list[dict[str, Any]]:
        return [await api.deploy_flow(text) for text in sources.values()]

    deployed = with_api(call)
    if as_json:
        print_json(deployed)
        return
    for path, flow in zip(sources, deployed, strict=True):
        typer.echo(f"{path}: deployed {flow['namespace']}.{flow['id']} revision {flow['revision']}")


@app.command("list")
def list_flows(
    namespace: Annotated[str | None, typer.Option(help="Only this namespace (and below).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the deployed flows."""
    from engine.cli.support import print_json, with_api

    flows = with_api(lambda api: api.list_flows(namespace))
    if as_json:
        print_json(flows)
        return
    from rich.table import Table

    from engine.cli.support import table_console

    table = Table("namespace", "id", "revision", "updated", box=None)
    for f in flows:
        table.add_row(f["namespace"], f["id"], str(f["revision"]), str(f.get("updated") or "-"))
    table_console().print(table)


@app.command()
def delete(
    namespace: Annotated[str, typer.Argument(help="The flow's namespace.")],
    flow_id: Annotated[str, typer.Argument(help="The flow's id.")],
) -> None:
    """Delete a deployed flow (its revisions and executions stay readable)."""
    from engine.cli.support import with_api

    with_api(lambda api: api.delete_flow(namespace, flow_id))
    typer.echo(f"deleted {namespace}.{flow_id}")
