"""ApiClient: what the CLI uses to talk to a running Headwater (the REST API, over httpx).

The CLI never reads Kafka or PostgreSQL itself: the API is the one door, so the CLI works the
same against ``headwater dev``, a server, or a cluster behind a load balancer. Base URL and
token come from ``settings.client`` (``HEADWATER_CLIENT__API_URL``, ``..._API_TOKEN``).

Errors are converted here (httpx's habit of mapping transport errors at the boundary):
an unreachable API is a ServiceError that names the address and what to try; an error answer
is an :class:`ApiError` carrying the problem body's status, title and detail.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import httpx

from engine.errors import HeadwaterError, NotFoundError, ServiceError
from engine.settings import ClientSettings

JSON = dict[str, Any]
API = "/api/v1"
# A request to a local or nearby API answers in milliseconds; a stuck one must not hang the
# CLI. Streams (follow) have no read timeout: an execution may run for hours.
REQUEST_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5.0


class ApiError(HeadwaterError):
    """The API answered with an error (a problem+json body)."""

    def __init__(self, status: int, title: str, detail: str, body: JSON | None = None) -> None:
        # A detail that already starts with the title is said once ("Invalid inputs: ...").
        said = detail if detail.lower().startswith(title.lower()) else f"{title}: {detail}"
        super().__init__(said if detail else title, status=status)
        self.status = status
        self.title = title
        self.detail = detail
        self.body = body or {}


def unreachable(base_url: str, exc: Exception) -> ServiceError:
    return ServiceError(
        f"cannot reach the Headwater API at {base_url} ({type(exc).__name__}: {exc}); "
        "start it with `headwater dev` (or `headwater server`), or point the CLI elsewhere "
        "with HEADWATER_CLIENT__API_URL",
        address=base_url,
    )


class ApiClient:
    """``async with ApiClient(settings.client) as api: await api.list_flows()``."""

    def __init__(self, settings: ClientSettings, *, transport: Any = None) -> None:
        self.base_url = settings.api_url.rstrip("/")
        headers = {"Accept": "application/json"}
        if settings.api_token is not None:
            headers["Authorization"] = f"Bearer {settings.api_token.get_secret_value()}"
        self._http = httpx.AsyncClient(
            base_url=self.base_url + API,
            headers=headers,
            timeout=httpx.Timeout(REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            transport=transport,
        )

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise unreachable(self.base_url, exc) from exc
        _raise_for_problem(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # ------------------------------------------------------------------------------ flows

    async def deploy_flow(self, source: str) -> JSON:
        headers = {"Content-Type": "application/x-yaml"}
        out: JSON = await self.request("POST", "/flows", content=source.encode(), headers=headers)
        return out

    async def list_flows(self, namespace: str | None = None, q: str | None = None) -> list[JSON]:
        return await self._pages("/flows/search", {"namespace": namespace, "q": q, "size": 1000})

    async def list_triggers(
        self, namespace: str | None = None, flow_id: str | None = None
    ) -> list[JSON]:
        params = {"namespace": namespace, "flowId": flow_id, "size": 1000}
        return await self._pages("/triggers/search", params)

    async def delete_flow(self, namespace: str, flow_id: str) -> None:
        await self.request("DELETE", f"/flows/{namespace}/{flow_id}")

    # ------------------------------------------------------------------------- executions

    async def start_execution(
        self, namespace: str, flow_id: str, inputs: JSON, labels: dict[str, str] | None = None
    ) -> JSON:
        body = {
            "inputs": inputs,
            "labels": [{"key": k, "value": v} for k, v in (labels or {}).items()],
        }
        out: JSON = await self.request("POST", f"/executions/{namespace}/{flow_id}", json=body)
        return out

    async def list_executions(
        self,
        *,
        namespace: str | None = None,
        flow_id: str | None = None,
        states: list[str] | None = None,
        size: int = 50,
    ) -> list[JSON]:
        params = {"namespace": namespace, "flowId": flow_id, "state": states, "size": size}
        page = await self.request("GET", "/executions/search", params=_clean(params))
        results: list[JSON] = page["results"]
        return results

    async def get_execution(self, execution_id: str) -> JSON:
        out: JSON = await self.request("GET", f"/executions/{execution_id}")
        return out

    async def logs(
        self, execution_id: str, *, min_level: str | None = None, tail: int | None = None
    ) -> list[JSON]:
        params = _clean({"minLevel": min_level, "tail": tail})
        out: list[JSON] = await self.request(
            "GET", f"/executions/{execution_id}/logs", params=params
        )
        return out

    async def kill(self, execution_id: str) -> JSON:
        out: JSON = await self.request("DELETE", f"/executions/{execution_id}/kill")
        return out

    async def resume(self, execution_id: str, inputs: JSON | None = None) -> JSON:
        body = {"inputs": inputs or {}}
        out: JSON = await self.request("POST", f"/executions/{execution_id}/resume", json=body)
        return out

    async def restart(self, execution_id: str) -> JSON:
        out: JSON = await self.request("POST", f"/executions/{execution_id}/restart")
        return out

    async def follow(self, execution_id: str) -> AsyncIterator[tuple[str, JSON]]:
        """Server-sent events of one execution: ("execution", ...), ("log", ...), ("end", ...)."""
        path = f"/executions/{execution_id}/follow"
        timeout = httpx.Timeout(REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S, read=None)
        try:
            async with self._http.stream("GET", path, timeout=timeout) as response:
                if response.status_code >= 400:
                    await response.aread()
                    _raise_for_problem(response)
                event = "message"
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        yield event, json.loads(line[5:])
                        event = "message"
        except httpx.TransportError as exc:
            raise unreachable(self.base_url, exc) from exc

    async def _pages(self, path: str, params: JSON) -> list[JSON]:
        results: list[JSON] = []
        cursor = None
        while True:
            page = await self.request("GET", path, params=_clean({**params, "cursor": cursor}))
            results.extend(page["results"])
            cursor = page.get("nextCursor")
            if not cursor:
                return results


def _clean(params: JSON) -> JSON:
    return {k: v for k, v in params.items() if v is not None}


def _raise_for_problem(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    title = str(body.get("title") or response.reason_phrase or "error")
    detail = str(body.get("detail") or "")
    if response.status_code == 401:
        detail = (detail + "; " if detail else "") + "set HEADWATER_CLIENT__API_TOKEN"
    if response.status_code == 404:
        raise NotFoundError(f"{title}: {detail}" if detail else title, status=404)
    raise ApiError(response.status_code, title, detail, body)
