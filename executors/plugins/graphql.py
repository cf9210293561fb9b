"""Kestra's ``io.kestra.plugin.graphql.Request`` (kestra-io/plugin-graphql): one GraphQL call.

It is Kestra's HTTP request (``AbstractHttp``: ``uri``, ``method`` (POST), ``headers`` (each value
rendered), ``options``, Kestra's HTTP client configuration of :mod:`executors.http_client`) whose
JSON body is ``{"query", "variables" (when given), "operationName" (when not empty)}``. A status
the options do not accept fails with Kestra's message and the answer's start. The answer is JSON:
outputs ``uri``, ``code``, ``headers`` (name -> values), ``body`` (its ``data``) and ``error`` (its
``errors``); with ``failOnGraphQLErrors`` (false) an answer carrying errors fails the task
("GraphQL query failed with errors: ..."). An answer holding a code point Unicode does not define
fails ("Illegal unicode code point in response body").

What differs from Kestra: ``encryptBody: true`` fails the task (Headwater has no output
encryption key; Kestra returns the body as an ``EncryptedString``), rather than exposing the
answer in clear. The other ``AbstractHttp`` properties (``body``, ``formData``, ``contentType``,
``params``) are accepted and unused, as in Kestra (the GraphQL payload is the body).
"""

from __future__ import annotations

import unicodedata
from typing import Any, ClassVar, Literal

import httpx
import orjson

from executors.base import TaskContext, TaskError, to_text
from executors.http_client import (
    HttpOptions,
    build_request,
    client_setup,
    log_request,
    refused,
    request_failed,
    response_headers,
)
from executors.plugin import TaskPlugin, render_bool, render_map, render_str
from schemas.flow.common import BoolOrExpr, Str


class GraphQLRequest(TaskPlugin):
    """Send a GraphQL query or mutation over HTTP."""

    family: ClassVar[str] = "http"
    short: ClassVar[str | None] = "graphql_request"

    type: Literal["io.kestra.plugin.graphql.Request"]
    uri: Str
    method: Str | None = "POST"
    headers: dict[str, Any] | Str | None = None
    options: HttpOptions | None = None
    query: Str
    variables: dict[str, Any] | Str | None = None
    operationName: Str | None = None
    failOnGraphQLErrors: BoolOrExpr | None = False
    encryptBody: BoolOrExpr | None = False
    body: Any = None
    formData: dict[str, Any] | Str | None = None
    contentType: Str | None = None
    params: dict[str, Any] | Str | None = None

    def payload(self, ctx: TaskContext) -> dict[str, Any]:
        payload: dict[str, Any] = {"query": render_str(ctx, self.query, "query", required=True)}
        if self.variables is not None:
            payload["variables"] = render_map(ctx, self.variables, "variables")
        operation = ctx.render_str(self.operationName)
        if operation:
            payload["operationName"] = operation
        return payload

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        if render_bool(ctx, self.encryptBody, "encryptBody"):
            raise TaskError(
                "property 'encryptBody': Headwater has no output encryption; remove it (the "
                "answer would otherwise be shown in clear)"
            )
        setup = client_setup(ctx, self.options)
        body = orjson.dumps(self.payload(ctx)).decode()
        request = await build_request(
            ctx,
            setup,
            uri=self.uri,
            method=self.method or "POST",
            headers=self.headers,
            body=body,
            content_type="application/json",
        )
        log_request(ctx, setup, request)
        try:
            async with httpx.AsyncClient(**setup.client) as client:
                async with client.stream(request.method, request.url, **request.kwargs) as answer:
                    if not setup.accepts(answer.status_code):
                        raise await refused(answer, setup.charset)
                    data = await answer.aread()
        except httpx.HTTPError as exc:
            raise request_failed(request, exc) from None
        finally:
            request.close()
        text = data.decode(answer.encoding or setup.charset, "replace")
        ctx.log("DEBUG", f"GraphQL response: {text[:10_000]}")
        for char in text:
            if unicodedata.category(char) == "Cn":
                raise TaskError(
                    f"Illegal unicode code point in response body: {ord(char)}, the Request task "
                    "only supports valid Unicode strings as the response body."
                )
        result: dict[str, Any] = {}
        if text:
            try:
                parsed = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise TaskError(f"GraphQL: the answer is not JSON: {text[:200]!r}") from None
            if not isinstance(parsed, dict):
                raise TaskError(f"GraphQL: the answer is not a JSON object: {text[:200]!r}")
            result = parsed
        errors = result.get("errors")
        if errors is not None and render_bool(ctx, self.failOnGraphQLErrors, "failOnGraphQLErrors"):
            raise TaskError(f"GraphQL query failed with errors: {to_text(errors)}")
        return {
            "uri": request.url,
            "code": answer.status_code,
            "headers": response_headers(answer),
            "body": result.get("data"),
            "error": errors,
        }


PLUGINS: list[type[TaskPlugin]] = [GraphQLRequest]
