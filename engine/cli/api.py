"""``headwater api``: serve the REST API with uvicorn (host and port from settings)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=False, add_completion=False)


@app.callback(invoke_without_command=True)
def api(
    host: str | None = typer.Option(None, help="Listen address (default: HEADWATER_API__HOST)."),
    port: int | None = typer.Option(None, help="Port (default: HEADWATER_API__PORT)."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
    insecure: bool = typer.Option(False, "--insecure", help="Serve without authentication."),
) -> None:
    """Serve /api/v1, /health and /metrics until SIGTERM/SIGINT."""
    import uvicorn

    from engine.api import create_app
    from engine.api.auth import require_credentials
    from engine.errors import ConfigError
    from engine.settings import load_settings

    settings = load_settings()
    try:  # authentication is on by default, as in `headwater server`
        require_credentials(settings.api, insecure=insecure)
    except ConfigError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    uvicorn.run(
        create_app(settings),
        host=host or settings.api.host,
        port=port or settings.api.port,
        log_level=log_level.lower(),
    )
