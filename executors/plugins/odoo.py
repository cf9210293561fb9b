"""Kestra's ``io.kestra.plugin.odoo.Query`` (kestra-io/plugin-odoo): one Odoo call over XML-RPC.

Properties: ``url``, ``db``, ``username``, ``password``, ``model``, ``operation`` (SEARCH_READ,
READ, CREATE, WRITE, UNLINK, SEARCH, SEARCH_COUNT), ``filters`` (the search domain), ``fields``,
``values``, ``ids``, ``limit``, ``offset``, ``fetchType`` (NONE (default), FETCH, FETCH_ONE,
STORE).

The task authenticates (``{url}/xmlrpc/2/common`` ``authenticate(db, username, password, {})``:
anything but a user id fails "Failed to authenticate with Odoo: ..."), then calls
``{url}/xmlrpc/2/object`` ``execute_kw(db, uid, password, model, method, args[, kwargs])``:

- SEARCH_READ: ``[domain]``, kwargs ``fields``/``limit``/``offset`` when set; READ: ``[ids]``
  (required), kwargs ``fields``; SEARCH: ``[domain]``, kwargs ``limit``/``offset``;
  SEARCH_COUNT: ``[domain]``; CREATE: ``[values]`` (required); WRITE: ``[ids, values]`` (both
  required); UNLINK: ``[ids]`` (required).
- Outputs: ``size`` (records returned with the fetch type, the count for SEARCH_COUNT, 1 for
  CREATE, the ids' count for WRITE/UNLINK); for SEARCH_READ/READ ``rows`` (FETCH), ``row``
  (FETCH_ONE) or ``uri`` (STORE); for SEARCH the same with ``{"id": n}`` maps; ``ids`` for
  CREATE (the new id), WRITE and UNLINK (the ids given).

An Odoo fault fails the task: "Failed to execute model.method: <Odoo's fault text>". The
password never appears in a log or an error. XML-RPC calls are blocking: they run in a worker
thread, each bounded by :data:`CALL_TIMEOUT_S`.

What differs from Kestra: STORE writes the rows to an ION file in internal storage and outputs
its ``uri`` (Kestra's STORE is unfinished and outputs no URI).
"""

from __future__ import annotations

import asyncio
import http.client
import xmlrpc.client
from typing import Any, ClassVar, Literal

from executors import ion
from executors.base import SECRET_MASK, TaskContext, TaskError, to_text
from executors.plugin import TaskPlugin, render_int, render_json, render_str
from schemas.flow.common import IntOrExpr, Str

# An Odoo call that has not answered after this long fails (Kestra's client waits forever).
CALL_TIMEOUT_S = 300.0
OPERATIONS = {
    "SEARCH_READ": "search_read",
    "READ": "read",
    "CREATE": "create",
    "WRITE": "write",
    "UNLINK": "unlink",
    "SEARCH": "search",
    "SEARCH_COUNT": "search_count",
}


class _Transport(xmlrpc.client.Transport):
    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        connection = super().make_connection(host)
        connection.timeout = CALL_TIMEOUT_S
        return connection


class _SafeTransport(xmlrpc.client.SafeTransport):
    def make_connection(self, host: Any) -> http.client.HTTPSConnection:
        connection = super().make_connection(host)
        connection.timeout = CALL_TIMEOUT_S
        return connection


def _proxy(url: str) -> xmlrpc.client.ServerProxy:
    transport = _SafeTransport() if url.startswith("https://") else _Transport()
    return xmlrpc.client.ServerProxy(url, transport=transport, allow_none=True)


class OdooQuery(TaskPlugin):
    """Query or change Odoo records through the XML-RPC API."""

    family: ClassVar[str] = "odoo"
    short: ClassVar[str | None] = "odoo_query"

    type: Literal["io.kestra.plugin.odoo.Query"]
    url: Str
    db: Str
    username: Str
    password: Str
    model: Str
    operation: (
        Literal["SEARCH_READ", "READ", "CREATE", "WRITE", "UNLINK", "SEARCH", "SEARCH_COUNT"] | Str
    )
    filters: list[Any] | Str | None = None
    fields: list[Str] | Str | None = None
    values: dict[str, Any] | Str | None = None
    ids: list[IntOrExpr] | Str | None = None
    limit: IntOrExpr | None = None
    offset: IntOrExpr | None = None
    fetchType: Literal["STORE", "FETCH", "FETCH_ONE", "NONE"] | Str | None = "NONE"

    def _ids(self, ctx: TaskContext, operation: str) -> list[int]:
        given = render_json(ctx, self.ids, "ids") or []
        try:
            ids = [int(to_text(i)) for i in (given if isinstance(given, list) else [given])]
        except ValueError:
            raise TaskError(f"property 'ids': expected integers, got {given!r}") from None
        if not ids:
            raise TaskError(f"IDs are required for {operation} operation")
        return ids

    def _values(self, ctx: TaskContext, operation: str) -> dict[str, Any]:
        values = render_json(ctx, self.values, "values")
        if not isinstance(values, dict) or not values:
            raise TaskError(f"Values are required for {operation} operation")
        return values

    def call(self, ctx: TaskContext, operation: str) -> tuple[list[Any], dict[str, Any]]:
        """The ``execute_kw`` args and kwargs of ``operation``."""
        domain = render_json(ctx, self.filters, "filters") or []
        fields = render_json(ctx, self.fields, "fields")
        limit, offset = render_int(ctx, self.limit, "limit"), render_int(ctx, self.offset, "offset")
        kwargs: dict[str, Any] = {}
        if operation in ("search_read", "read") and fields:
            kwargs["fields"] = fields
        if operation in ("search_read", "search"):
            if limit is not None:
                kwargs["limit"] = limit
            if offset is not None:
                kwargs["offset"] = offset
        if operation in ("search_read", "search", "search_count"):
            return [domain], kwargs
        if operation == "read":
            return [self._ids(ctx, operation)], kwargs
        if operation == "create":
            return [self._values(ctx, operation)], kwargs
        if operation == "write":
            return [self._ids(ctx, operation), self._values(ctx, operation)], kwargs
        return [self._ids(ctx, operation)], kwargs

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        url = (render_str(ctx, self.url, "url", required=True) or "").rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise TaskError(f"property 'url': {url!r} is not an http:// or https:// URL")
        db = render_str(ctx, self.db, "db", required=True) or ""
        user = render_str(ctx, self.username, "username", required=True) or ""
        password = render_str(ctx, self.password, "password", required=True) or ""
        model = render_str(ctx, self.model, "model", required=True) or ""
        name = (render_str(ctx, self.operation, "operation", required=True) or "").upper()
        if name not in OPERATIONS:
            raise TaskError(f"property 'operation': expected one of {', '.join(OPERATIONS)}")
        operation = OPERATIONS[name]
        kind = (ctx.render_str(self.fetchType) or "NONE").upper()
        args, kwargs = self.call(ctx, operation)

        def mask(text: str) -> str:
            return text.replace(password, SECRET_MASK) if password else text

        def work() -> Any:
            try:
                uid = _proxy(f"{url}/xmlrpc/2/common").authenticate(db, user, password, {})
            except (xmlrpc.client.Error, OSError) as exc:
                raise TaskError(mask(f"Failed to authenticate with Odoo: {exc}")) from None
            if isinstance(uid, bool) or not isinstance(uid, int):
                raise TaskError(
                    "Failed to authenticate with Odoo: Unexpected authentication response from "
                    f"Odoo: {to_text(uid)}"
                )
            params: list[Any] = [db, uid, password, model, operation, args]
            if kwargs:
                params.append(kwargs)
            try:
                return _proxy(f"{url}/xmlrpc/2/object").execute_kw(*params)
            except xmlrpc.client.Fault as exc:
                raise TaskError(
                    mask(f"Failed to execute {model}.{operation}: {exc.faultString}")
                ) from None
            except (xmlrpc.client.Error, OSError) as exc:
                raise TaskError(mask(f"Failed to execute {model}.{operation}: {exc}")) from None

        ctx.log("INFO", f"Connecting to Odoo server: {url} with database: {db}")
        result = await asyncio.to_thread(work)
        return await self.outputs(ctx, name, kind, result)

    async def outputs(self, ctx: TaskContext, name: str, kind: str, result: Any) -> dict[str, Any]:
        if name == "CREATE":
            return {"size": 1, "ids": [result] if isinstance(result, int) else None}
        if name in ("WRITE", "UNLINK"):
            ids = self._ids(ctx, OPERATIONS[name])
            return {"size": len(ids), "ids": ids}
        if name == "SEARCH_COUNT":
            return {"size": result if isinstance(result, int) else 0}
        rows = list(result or [])
        if name == "SEARCH":
            rows = [{"id": i} for i in rows]
        if kind == "NONE":
            return {"size": 0}
        if kind == "FETCH_ONE":
            return {"size": 1 if rows else 0, "row": rows[0] if rows else None}
        if kind == "STORE":
            if ctx.storage is None:
                raise TaskError("Odoo: this worker has no internal storage for STORE")
            data = "".join(ion.dumps(row) + "\n" for row in rows).encode()
            uri = await ctx.storage.put(ctx.execution_id, "records.ion", data)
            return {"size": len(rows), "uri": uri}
        return {"size": len(rows), "rows": rows}


PLUGINS: list[type[TaskPlugin]] = [OdooQuery]
