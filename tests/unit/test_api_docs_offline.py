"""``/docs`` and ``/redoc`` need nothing from the internet: every asset they reference is
served by the API itself (issue: Swagger UI was blank offline, loaded from a CDN)."""

from __future__ import annotations

import re

import httpx
import pytest

from engine.api import create_app
from engine.settings import load_settings

_SRC = re.compile(r"""(?:src|href)=["']([^"']+)["']""")
_URL_IN_SCRIPT = re.compile(r"""(?:url|spec-url)\s*[:=]\s*["']([^"']+)["']""")


@pytest.fixture
async def client() -> httpx.AsyncClient:
    # The lifespan (Kafka, Postgres) is not run: these pages need neither.
    app = create_app(load_settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_reference_only_local_assets(client: httpx.AsyncClient, page: str) -> None:
    r = await client.get(page)
    assert r.status_code == 200
    html = r.text
    referenced = _SRC.findall(html) + _URL_IN_SCRIPT.findall(html)
    assert referenced, html
    assert not [u for u in referenced if "://" in u or u.startswith("//")], referenced
    assert "fonts.googleapis" not in html
    scripts = [u for u in _SRC.findall(html) if u.endswith(".js")]
    assert scripts, "the page loads its viewer from a script"
    for url in referenced:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000 or url.endswith(".json"), url
    for url in scripts:
        body = (await client.get(url)).text
        assert "SwaggerUIBundle" in body or "Redoc" in body, url


async def test_openapi_document_is_served(client: httpx.AsyncClient) -> None:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    assert r.json()["info"]["title"] == "Headwater API"
