"""The ops dashboard: static pages (no build step) and the read-only JSON they need.

    app.include_router(dashboard.router(services, protect))

serves the single-page app at ``/ui/`` (``/`` redirects there) without credentials — the page
asks for a token when the API needs one — and, behind ``protect``, ``/api/v1/dashboard/...``
(counts, throughput, system, topology; the editor's schema, check, inputs and revisions;
namespaces and their KV pairs) and
``/api/v1/triggers/...`` (list, toggle).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from engine.api.services import ApiServices
from engine.dashboard import editor_api, namespaces_api, pages, routes, triggers_api

API_PREFIX = "/api/v1"


def router(services: ApiServices, protect: Any) -> APIRouter:
    """Every dashboard route; ``protect`` is the API's authentication dependency."""
    out = APIRouter()
    out.include_router(pages.router())
    out.include_router(routes.router(services), prefix=API_PREFIX, dependencies=[protect])
    out.include_router(editor_api.router(services), prefix=API_PREFIX, dependencies=[protect])
    out.include_router(namespaces_api.router(services), prefix=API_PREFIX, dependencies=[protect])
    out.include_router(triggers_api.router(services), prefix=API_PREFIX, dependencies=[protect])
    return out


__all__ = ["router"]
