"""The FastAPI application: ``create_app(settings)`` wires every route from one Settings.

Routes live under ``/api/v1`` (flows, executions, webhooks) beside ``/health``,
``/metrics`` and the OpenAPI pages ``/docs`` and ``/redoc`` (served offline, see docs.py).
The app starts even when Kafka or Postgres is down (see services.py); every error leaves as
an ``application/problem+json`` body (see problems.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from engine import dashboard
from engine.api import (
    routes_executions,
    routes_flows,
    routes_namespace_files,
    routes_ops,
    routes_outputs,
    routes_webhooks,
)
from engine.api.auth import Authenticator
from engine.api.docs import install_docs
from engine.api.problems import BodyLimit, install, problem_response
from engine.api.services import ApiServices
from engine.settings import Settings

API_PREFIX = "/api/v1"


class RejectNul:
    """ASGI middleware: a NUL byte in the path or query (``%00``) is a 400 problem; text
    columns cannot hold it, and no id or filter of ours contains one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("query_string", b"") + scope.get("raw_path", b"")
            if b"%00" in raw or "\x00" in scope.get("path", ""):
                response = problem_response(400, "Invalid request", "NUL bytes are not allowed")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(settings: Settings, services: ApiServices | None = None) -> FastAPI:
    """The API for these settings; pass ``services`` to share or stub them (tests)."""
    services = services or ApiServices(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await services.start()
        try:
            yield
        finally:
            await services.close()

    app = FastAPI(
        title="Headwater API",
        version="1",
        description="Flows, executions and webhooks of Headwater (Kestra-compatible shapes).",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app)
    app.state.services = services
    install(app)
    protect = Depends(Authenticator(settings.api))
    app.include_router(routes_webhooks.router(services), prefix=API_PREFIX)
    app.include_router(routes_flows.router(services), prefix=API_PREFIX, dependencies=[protect])
    app.include_router(
        routes_executions.router(services), prefix=API_PREFIX, dependencies=[protect]
    )
    app.include_router(
        routes_namespace_files.router(services), prefix=API_PREFIX, dependencies=[protect]
    )
    app.include_router(routes_outputs.router(services), prefix=API_PREFIX, dependencies=[protect])
    app.include_router(routes_ops.router(services, protect))
    app.include_router(dashboard.router(services, protect))
    app.add_middleware(BodyLimit, max_bytes=settings.api.max_body_bytes)
    app.add_middleware(RejectNul)
    return app
