"""Kestra's ServiceNow types (kestra-io/plugin-servicenow): Table API Get, Post, Update, Delete.

Common properties: ``domain`` (the instance: ``https://{domain}.service-now.com/``, written once
in :data:`executors.api_client.BASE_URLS`), ``username`` + ``password`` (Basic auth), or with
``clientId`` + ``clientSecret`` the OAuth password grant (POST ``oauth_token.do``, a form of
``grant_type=password``, client id/secret, username/password; its ``access_token`` is the
Bearer token, fetched once per task run), ``headers`` (rendered, sent with every call),
``options``. A status of 400 or more fails: "Request failed 'N' and body '...'".

- ``Get``: ``table``, ``query`` (``sysparm_query``), ``limit``, ``offset``, ``fields``
  (``sysparm_fields``, comma-joined), ``fetchType`` (FETCH (default) / FETCH_ONE / STORE): GET
  ``api/now/table/{table}``. Outputs ``results`` (the records; FETCH_ONE: the first only),
  ``size``, ``offset``, and with STORE ``uri`` (an ION file of the records) instead of ``results``.
- ``Post``: ``table``, ``data`` -> POST ``api/now/table/{table}``; output ``result``.
- ``Update``: ``table``, ``sysId``, ``data`` -> PUT ``api/now/table/{table}/{sysId}``; output
  ``result``.
- ``Delete``: ``table``, ``sysId`` -> DELETE; output ``deleted`` (the answer was 204).
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar, Literal
from urllib.parse import urlencode

from executors import ion
from executors.api_client import Answer, ApiClient, base_url
from executors.base import TaskContext, TaskError, to_text
from executors.http_client import HttpOptions
from executors.plugin import TaskPlugin, render_int, render_json, render_map, render_str
from schemas.flow.common import IntOrExpr, Str


class _ServiceNow(TaskPlugin):
    family: ClassVar[str] = "servicenow"

    domain: Str
    username: Str
    password: Str
    clientId: Str | None = None
    clientSecret: Str | None = None
    headers: dict[str, Any] | Str | None = None
    options: HttpOptions | None = None
    table: Str

    async def call(self, ctx: TaskContext, method: str, path: str, body: Any = None) -> Answer:
        domain = render_str(ctx, self.domain, "domain", required=True) or ""
        url = base_url("servicenow").format(domain=domain)
        user = render_str(ctx, self.username, "username", required=True) or ""
        password = render_str(ctx, self.password, "password", required=True) or ""
        extra = {str(k): to_text(v) for k, v in render_map(ctx, self.headers, "headers").items()}
        secrets: list[str | None] = [password]
        async with ApiClient(
            ctx, "ServiceNow", url, headers=extra, secrets=secrets, options=self.options
        ) as api:
            if self.clientId is not None:
                form = {
                    "grant_type": "password",
                    "client_id": render_str(ctx, self.clientId, "clientId", required=True),
                    "client_secret": render_str(ctx, self.clientSecret, "clientSecret"),
                    "username": user,
                    "password": password,
                }
                api.secrets = (*api.secrets, to_text(form["client_secret"]))
                token = await self._checked(
                    api,
                    "POST",
                    "/oauth_token.do",
                    content=urlencode(form).encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
                access = dig_token(token)
                api.secrets = (*api.secrets, access)
                auth = f"Bearer {access}"
            else:
                pair = base64.b64encode(f"{user}:{password}".encode()).decode()
                api.secrets = (*api.secrets, pair)
                auth = f"Basic {pair}"
            headers = {"Authorization": auth, "Content-Type": "application/json"}
            return await self._checked(api, method, path, json=body, headers=headers)

    @staticmethod
    async def _checked(api: ApiClient, method: str, path: str, **kwargs: Any) -> Answer:
        answer = await api.call(method, path, allow=lambda code: True, **kwargs)
        if answer.status >= 400:
            raise TaskError(
                f"Request failed '{answer.status}' and body '{api.mask(answer.text[:2000])}'"
            )
        return answer

    def table_path(self, ctx: TaskContext, sys_id: Any = None) -> str:
        table = render_str(ctx, self.table, "table", required=True)
        if sys_id is None:
            return f"/api/now/table/{table}"
        return f"/api/now/table/{table}/{render_str(ctx, sys_id, 'sysId', required=True)}"


def dig_token(answer: Answer) -> str:
    parsed = answer.json()
    if not isinstance(parsed, dict) or not parsed.get("access_token"):
        raise TaskError("ServiceNow: invalid token request (the answer has no access_token)")
    return to_text(parsed["access_token"])


def _result(answer: Answer) -> Any:
    parsed = answer.json()
    if not isinstance(parsed, dict):
        raise TaskError(f"ServiceNow: empty or unexpected answer from {answer.what}")
    return parsed.get("result")


class ServiceNowGet(_ServiceNow):
    """Read records of a ServiceNow table."""

    short: ClassVar[str | None] = "servicenow_get"
    type: Literal["io.kestra.plugin.servicenow.Get"]
    fetchType: Literal["STORE", "FETCH", "FETCH_ONE", "NONE"] | Str | None = "FETCH"
    query: Str | None = None
    limit: IntOrExpr | None = None
    offset: IntOrExpr | None = None
    fields: list[Str] | Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        params: list[tuple[str, Any]] = []
        query = ctx.render_str(self.query)
        if query is not None:
            params.append(("sysparm_query", query))
        limit, offset = render_int(ctx, self.limit, "limit"), render_int(ctx, self.offset, "offset")
        if limit is not None:
            params.append(("sysparm_limit", limit))
        if offset is not None:
            params.append(("sysparm_offset", offset))
        fields = render_json(ctx, self.fields, "fields")
        if fields:
            names = fields if isinstance(fields, list) else [fields]
            params.append(("sysparm_fields", ",".join(to_text(f) for f in names)))
        path = self.table_path(ctx)
        if params:
            path += "?" + urlencode(params)
        results = _result(await self.call(ctx, "GET", path))
        if not isinstance(results, list):
            raise TaskError(f"ServiceNow: the answer's result is not a list: {results!r}")
        ctx.log("INFO", f"Get done with {len(results)} record(s)")
        kind = (ctx.render_str(self.fetchType) or "FETCH").upper()
        if kind == "FETCH_ONE":
            first = results[:1]
            return {"results": first, "size": len(first), "offset": offset}
        if kind == "STORE":
            if ctx.storage is None:
                raise TaskError("ServiceNow: this worker has no internal storage for STORE")
            data = "".join(ion.dumps(r) + "\n" for r in results).encode()
            uri = await ctx.storage.put(ctx.execution_id, "records.ion", data)
            return {"size": len(results), "offset": offset, "uri": uri}
        return {"results": results, "size": len(results), "offset": offset}


class ServiceNowPost(_ServiceNow):
    """Create a record in a ServiceNow table."""

    short: ClassVar[str | None] = "servicenow_post"
    type: Literal["io.kestra.plugin.servicenow.Post"]
    data: dict[str, Any] | Str

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        body = render_map(ctx, self.data, "data")
        answer = await self.call(ctx, "POST", self.table_path(ctx), body)
        ctx.log("INFO", "Post done")
        return {"result": _result(answer)}


class ServiceNowUpdate(_ServiceNow):
    """Update a record of a ServiceNow table."""

    short: ClassVar[str | None] = "servicenow_update"
    type: Literal["io.kestra.plugin.servicenow.Update"]
    sysId: Str
    data: dict[str, Any] | Str

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        body = render_map(ctx, self.data, "data")
        answer = await self.call(ctx, "PUT", self.table_path(ctx, self.sysId), body)
        return {"result": _result(answer)}


class ServiceNowDelete(_ServiceNow):
    """Delete a record of a ServiceNow table."""

    short: ClassVar[str | None] = "servicenow_delete"
    type: Literal["io.kestra.plugin.servicenow.Delete"]
    sysId: Str

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        answer = await self.call(ctx, "DELETE", self.table_path(ctx, self.sysId))
        return {"deleted": answer.status == 204}


PLUGINS: list[type[TaskPlugin]] = [
    ServiceNowGet,
    ServiceNowPost,
    ServiceNowUpdate,
    ServiceNowDelete,
]
