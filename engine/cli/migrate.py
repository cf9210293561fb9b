"""``headwater migrate [--check] [-o DIR] PATHS...``: rewrite Kestra 1.x flows as 2.0.

PATHS are flow files or directories (their ``*.yaml``/``*.yml``, recursively). Each flow is
reported on one line, then what changed or what could not:

- ``✔ file`` — nothing to change (already 2.0, or valid in both);
- ``✎ file`` — rewritten (``--check``: would be), each change below it;
- ``⚠ file`` — left unchanged: what could not be migrated is listed below it (``✗``), with
  where it is; the flow must be migrated by hand;
- ``✗ file`` — not readable as YAML.

Files are rewritten in place, or written under ``-o DIR`` (relative paths kept; unchanged
flows are copied so the directory holds the whole set). ``--check`` writes nothing and exits
1 when any flow would change or needs a hand; otherwise the exit code is 1 when some flow
could not be migrated or read, 0 when all were.
"""

from __future__ import annotations

import pathlib
from typing import Annotated

import typer

from engine.flows.migrate import Migration, migrate_text

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    context_settings={"allow_interspersed_args": True},
)

_MARK = {"ok": "✔", "migrated": "✎", "manual": "⚠", "error": "✗"}


def flow_files(paths: list[pathlib.Path]) -> list[tuple[pathlib.Path, pathlib.Path]]:
    """(file, path relative to the argument it came from), in a stable order."""
    out: list[tuple[pathlib.Path, pathlib.Path]] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
            )
            out.extend((p, p.relative_to(path)) for p in found)
        else:
            out.append((path, pathlib.Path(path.name)))
    return out


@app.callback(invoke_without_command=True)
def migrate(
    paths: Annotated[
        list[pathlib.Path], typer.Argument(help="Flow files or directories of flows.")
    ],
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 if any flow would change."),
    ] = False,
    output: Annotated[
        pathlib.Path | None,
        typer.Option("--output", "-o", help="Write the flows here instead of in place."),
    ] = None,
) -> None:
    """Rewrite Kestra 1.x flows in Kestra 2.0's language, keeping comments and layout."""
    files = flow_files(paths)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        typer.echo(f"no such file or directory: {', '.join(missing)}", err=True)
        raise typer.Exit(code=2)
    counts = {"ok": 0, "migrated": 0, "manual": 0, "error": 0}
    for path, relative in files:
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            result = Migration("", "", error=f"cannot read: {exc}")
        else:
            result = migrate_text(source, str(path))
        counts[result.status] += 1
        _report(path, result, check)
        if not check and result.error is None:
            _write(path, relative, result, output)
    total = len(files)
    todo = counts["migrated"] + counts["manual"] + counts["error"]
    if check:
        summary = f"{todo}/{total} flows need migration" if todo else f"all {total} flows are 2.0"
    else:
        summary = (
            f"{counts['migrated']} migrated, {counts['ok']} unchanged, "
            f"{counts['manual']} to migrate by hand, {counts['error']} unreadable"
        )
    typer.echo(summary, err=True)
    failed = counts["manual"] + counts["error"]
    if failed or (check and counts["migrated"]):
        raise typer.Exit(code=1)


def _report(path: pathlib.Path, result: Migration, check: bool) -> None:
    typer.echo(f"{_MARK[result.status]} {path}")
    if result.error is not None:
        typer.echo(f"  ✗ {result.error}")
        return
    if result.status == "migrated":
        for change in result.changes:
            typer.echo(f"  ~ {change}")
    for item in result.manual:
        typer.echo(f"  ✗ {item}")
    if result.status == "manual" and result.changes:
        typer.echo(f"  ({len(result.changes)} other change(s) held back: the flow is unchanged)")


def _write(
    path: pathlib.Path, relative: pathlib.Path, result: Migration, output: pathlib.Path | None
) -> None:
    if output is None:
        if result.changed:
            path.write_text(result.text, encoding="utf-8")
        return
    target = output / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(result.text, encoding="utf-8")
