"""The REST calls an outside client makes: plain httpx, Kestra's paths and shapes.

Every method answers the decoded JSON (or the response itself where the status matters);
an unexpected status raises :class:`ApiError` with the problem body, which the scenario
runner reports as the scenario's failure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

JSON = dict[str, Any]

TERMINAL = frozenset({"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED", "RETRIED"})
# How often a waiting client polls; the read model trails the executor by one projection hop.
POLL_S = 0.1
# How long a scenario may wait for an execution to reach a state (the corpus's longest
# run is a few seconds of Pause/Sleep/retry plus a few broker hops per task).
WAIT_S = 90.0
# Log lines are projected beside the executions: once an execution ended, its lines are
# all in when two reads this far apart agree.
LOGS_QUIET_S = 0.6
LOGS_MAX_S = 10.0


class ApiError(AssertionError):
    """The server answered something a Kestra client would not expect."""


class Client:
    def __init__(self, base_url: str, *, timeout_s: float = 30.0) -> None:
        self.base = base_url.rstrip("/")
        self.http = httpx.AsyncClient(base_url=self.base + "/api/v1", timeout=timeout_s)

    async def close(self) -> None:
        await self.http.aclose()

    async def _json(self, response: httpx.Response, *ok: int) -> Any:
        if response.status_code not in (ok or (200,)):
            raise ApiError(
                f"{response.request.method} {response.request.url.path} answered "
                f"{response.status_code}: {response.text[:500]}"
            )
        return response.json() if response.content else None

    # --- flows ------------------------------------------------------------------------

    async def deploy(self, source: str) -> JSON:
        response = await self.http.post(
            "/flows", content=source.encode(), headers={"Content-Type": "application/x-yaml"}
        )
        result: JSON = await self._json(response)
        return result

    # --- executions -------------------------------------------------------------------

    async def create(
        self,
        namespace: str,
        flow_id: str,
        inputs: JSON | None = None,
        labels: dict[str, str] | None = None,
        *,
        multipart: bool = False,
        files: dict[str, tuple[str, bytes]] | None = None,
        params: dict[str, str] | None = None,
    ) -> JSON:
        """Create an execution. With ``multipart`` (Kestra's own form, ``-F name=value``),
        inputs are form fields and files, labels are ``labels=key:value`` query values."""
        path = f"/executions/{namespace}/{flow_id}"
        query: list[tuple[str, str]] = list((params or {}).items())
        if multipart:
            query += [("labels", f"{k}:{v}") for k, v in (labels or {}).items()]
            fields = {k: _form_value(v) for k, v in (inputs or {}).items()}
            # httpx sends multipart only with files: an empty file list forces the form.
            response = await self.http.post(
                path, params=query, data=fields, files=files or {"": ("", b"")}
            )
        elif inputs is None:
            query += [("labels", f"{k}:{v}") for k, v in (labels or {}).items()]
            response = await self.http.post(path, params=query)
        else:
            body: JSON = {"inputs": inputs or {}}
            if labels:
                body["labels"] = [{"key": k, "value": v} for k, v in labels.items()]
            response = await self.http.post(path, params=query, json=body)
        result: JSON = await self._json(response)
        return result

    async def get(self, execution_id: str) -> JSON:
        result: JSON = await self._json(await self.http.get(f"/executions/{execution_id}"))
        return result

    async def wait(
        self,
        execution_id: str,
        predicate: Callable[[JSON], bool],
        what: str,
        timeout_s: float = WAIT_S,
    ) -> JSON:
        deadline = time.monotonic() + timeout_s
        last: JSON | None = None
        while time.monotonic() < deadline:
            response = await self.http.get(f"/executions/{execution_id}")
            if response.status_code == 200:
                last = response.json()
                if predicate(last):
                    return last
            elif response.status_code != 404:  # 404: not projected yet
                await self._json(response)
            await asyncio.sleep(POLL_S)
        state = last["state"]["current"] if last else "not created"
        raise ApiError(f"execution {execution_id} never {what} within {timeout_s}s (it is {state})")

    async def wait_terminal(self, execution_id: str, timeout_s: float = WAIT_S) -> JSON:
        return await self.wait(
            execution_id, lambda e: e["state"]["current"] in TERMINAL, "ended", timeout_s
        )

    async def logs(self, execution_id: str) -> list[JSON]:
        result: list[JSON] = await self._json(
            await self.http.get(f"/executions/{execution_id}/logs")
        )
        return result

    async def settled_logs(self, execution_id: str) -> list[JSON]:
        """The execution's log lines once no new line arrives (it has ended)."""
        deadline = time.monotonic() + LOGS_MAX_S
        previous = await self.logs(execution_id)
        while time.monotonic() < deadline:
            await asyncio.sleep(LOGS_QUIET_S)
            current = await self.logs(execution_id)
            if len(current) == len(previous):
                return current
            previous = current
        return previous

    async def search(self, flow_id: str, namespace: str | None = None) -> list[JSON]:
        """Every execution of a flow (all pages), oldest first."""
        out: list[JSON] = []
        params: dict[str, Any] = {"flowId": flow_id, "size": 200}
        if namespace:
            params["namespace"] = namespace
        while True:
            page: JSON = await self._json(await self.http.get("/executions/search", params=params))
            out.extend(page["results"])
            if not page.get("nextCursor"):
                break
            params["cursor"] = page["nextCursor"]
        return out[::-1]

    async def resume(
        self,
        execution_id: str,
        inputs: JSON | None = None,
        files: dict[str, tuple[str, bytes]] | None = None,
    ) -> httpx.Response:
        path = f"/executions/{execution_id}/resume"
        if files:
            fields = {k: _form_value(v) for k, v in (inputs or {}).items()}
            return await self.http.post(path, data=fields, files=files)
        return await self.http.post(path, json={"inputs": inputs or {}})

    async def restart(self, execution_id: str) -> JSON:
        result: JSON = await self._json(await self.http.post(f"/executions/{execution_id}/restart"))
        return result

    async def kill(self, execution_id: str) -> httpx.Response:
        return await self.http.delete(f"/executions/{execution_id}/kill")

    async def webhook(
        self, method: str, namespace: str, flow_id: str, key: str, body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:  # fmt: skip
        return await self.http.request(
            method,
            f"/executions/webhook/{namespace}/{flow_id}/{key}",
            content=body,
            headers=headers,
        )

    # --- triggers ---------------------------------------------------------------------

    async def triggers(self, flow_id: str) -> list[JSON]:
        page: JSON = await self._json(
            await self.http.get("/triggers/search", params={"flowId": flow_id})
        )
        return list(page["results"])

    async def set_trigger(
        self, namespace: str, flow_id: str, trigger_id: str, *, enabled: bool
    ) -> None:
        await self._json(
            await self.http.put(
                f"/triggers/{namespace}/{flow_id}/{trigger_id}/enabled",
                json={"enabled": enabled},
            )
        )


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        import json

        return json.dumps(value)
    return str(value)
