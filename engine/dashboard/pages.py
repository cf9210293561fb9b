"""Serve the dashboard's static files: plain HTML, CSS and JS modules, and the flow editor's
bundle in ``static/editor/`` (built by ``make dashboard-assets`` and committed, so users need
no build step and no network).

Only files that ship in ``static/`` are served, looked up by exact name (no path joins with
user input). ``no-cache`` makes a browser revalidate (an ETag answers 304) after an upgrade
instead of running stale modules against a newer API; the CSP keeps a rendered value from ever
running as code: the editor needs no eval, no inline script and no worker.
"""

from __future__ import annotations

import pathlib

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from engine.dashboard.assets import AssetCache, send

STATIC = pathlib.Path(__file__).resolve().parent / "static"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'"
    ),
}


def _files() -> dict[str, pathlib.Path]:
    return {
        p.relative_to(STATIC).as_posix(): p
        for p in STATIC.rglob("*")
        if p.is_file() and p.suffix in _TYPES
    }


def router() -> APIRouter:
    files = _files()
    cache = AssetCache()
    api = APIRouter(include_in_schema=False)

    @api.get("/")
    async def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    @api.get("/ui")
    async def ui_bare() -> RedirectResponse:
        return RedirectResponse("/ui/")

    @api.get("/ui/{name:path}")
    async def ui_file(name: str, request: Request) -> Response:
        path = files.get(name or "index.html")
        if path is None:
            return Response("not found", status_code=404, media_type="text/plain")
        return send(request, cache.get(path), _TYPES[path.suffix], HEADERS)

    return api
