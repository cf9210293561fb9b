"""Kestra's core HTTP tasks that store or stream: ``http.Download`` (and ``http.SseRequest``).

``io.kestra.plugin.core.http.Download`` (alias ``io.kestra.plugin.fs.http.Download``), from
Kestra 1.x's ``Download`` / ``AbstractHttp``:

- Properties: ``uri`` (required), ``method`` (GET), ``body``, ``formData``, ``params``,
  ``contentType`` (``application/json``), ``headers``, ``options`` (Kestra's
  ``HttpConfiguration``, see :mod:`executors.http_client`), ``failOnEmptyResponse`` (true),
  ``saveAs`` (the stored file's name).
- The response body is streamed into a file of the task's working directory, then moved into
  internal storage: a download of any size never sits in memory. When the server sent a
  ``Content-Length`` (and no ``Content-Encoding``), a body of another size fails the task
  (``Invalid size, got N, expected M``).
- An empty body fails the task ("No response from server") unless ``failOnEmptyResponse`` is
  false (then a WARN ``File '<uri>' is empty``) or ``options.allowFailed`` is true.
- A status the options do not accept (400 and above by default) fails with Kestra's message
  and the start of the body.
- The file's name: ``saveAs``, else the ``Content-Disposition`` header's ``filename`` (only its
  last path part), else the last segment of the URI's path (``orders.csv``), else
  ``download``. Kestra names the last case ``<random><extension of the segment>``; we keep the
  whole segment. Characters outside ``A-Za-z0-9_.-`` become ``_`` (Kestra URL-escapes some).
  ``filename*`` (RFC 5987) is decoded (Kestra's parser drops its first and last characters).
- Outputs: ``uri`` (internal storage), ``code``, ``length`` (bytes stored), ``headers`` (name as
  the server wrote it -> list of values). Metric ``response.length``.

``io.kestra.plugin.core.http.SseRequest``, from Kestra 1.x's ``SseRequest``: the same request
properties, then the response is read as a Server-Sent Events stream (Kestra's parser: ``data``
lines joined with ``\\n``, ``id`` (without NUL), ``event``, ``retry`` (digits only, in ms), a
``:`` comment line; a blank line dispatches an event that had data; what is pending when the
stream ends is dropped). Each event's ``data`` is read as JSON when it is JSON. Outputs:
``uri`` (the request's URL), ``size`` (events), and either ``events`` (each ``{data, id,
name, comment, retry}`` with unset fields left out, ``retry`` as an ISO duration) or, with
``concatJqExpression``, ``result``: the jq expression's text/number/boolean value on each
event, concatenated (an event without one fails the task unless ``failedOnMissingJq`` is
false, then it is skipped). Metric ``size``. The task ends when the server closes the stream
(or ``options.timeout.readIdleTimeout`` passes without a byte); a status the options do not
accept fails it as for ``Download``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import unquote, urlsplit

import httpx
import orjson

from executors.base import TaskContext, TaskError, TaskOutcome, to_text
from executors.http_client import (
    ClientSetup,
    HttpOptions,
    RequestParts,
    build_request,
    client_setup,
    log_request,
    log_response_headers,
    refused,
    request_failed,
    response_headers,
)
from executors.plugin import TaskPlugin, render_bool, render_str
from schemas.flow.common import BoolOrExpr, Str, format_duration

# Chunks are gathered up to this size before one write (in a thread, off the event loop).
WRITE_BATCH_BYTES = 1024 * 1024


class _Http(TaskPlugin):
    """Kestra's ``AbstractHttp`` properties, and the request they describe."""

    family: ClassVar[str] = "core"

    # Each type narrows it to its literal; declared here, it keeps its place before the shared
    # properties (the JSON Schema's order).
    type: str
    uri: Str
    method: Str | None = "GET"
    body: Any = None
    formData: dict[str, Any] | Str | None = None
    params: dict[str, Any] | Str | None = None
    contentType: Str | None = "application/json"
    headers: dict[str, Any] | Str | None = None
    options: HttpOptions | None = None

    async def request(self, ctx: TaskContext, setup: ClientSetup) -> RequestParts:
        return await build_request(
            ctx,
            setup,
            uri=self.uri,
            method=self.method,
            headers=self.headers,
            params=self.params,
            body=self.body,
            form_data=self.formData,
            content_type=self.contentType,
        )


class Download(_Http):
    """Download a file over HTTP(S) into internal storage, streamed."""

    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.fs.http.Download",)
    short: ClassVar[str | None] = "http_download"

    type: Literal["io.kestra.plugin.core.http.Download"]
    failOnEmptyResponse: BoolOrExpr | None = True
    saveAs: Str | None = None

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        if ctx.storage is None:
            raise TaskError("http.Download needs internal storage, and this worker has none")
        setup = client_setup(ctx, self.options)
        request = await self.request(ctx, setup)
        fail_empty = render_bool(ctx, self.failOnEmptyResponse, "failOnEmptyResponse", True)
        save_as = render_str(ctx, self.saveAs, "saveAs")
        temp = await asyncio.to_thread(_temp_file, ctx.working_dir)
        fd = os.open(temp, os.O_WRONLY)
        try:
            with open(fd, "wb") as out:  # noqa: ASYNC230 - opening is instant; writes are threaded
                log_request(ctx, setup, request)
                try:
                    async with (
                        httpx.AsyncClient(**setup.client) as client,
                        client.stream(request.method, request.url, **request.kwargs) as response,
                    ):
                        ctx.log(
                            "DEBUG",
                            f"Request '{request.url}' with the response code "
                            f"'{response.status_code}'",
                        )
                        log_response_headers(ctx, setup, response)
                        if not setup.accepts(response.status_code):
                            raise await refused(response, setup.charset)
                        size = await _save(response, out, ctx)
                except httpx.HTTPError as exc:
                    raise request_failed(request, exc) from None
            headers = response_headers(response)
            _check_length(response, size)
            if size == 0:
                if fail_empty and not setup.allow_failed:
                    raise TaskError(
                        f"No response from server: {request.method} {request.url} answered "
                        f"{response.status_code} with an empty body (set failOnEmptyResponse: "
                        "false to accept it)"
                    )
                if not fail_empty:
                    ctx.log("WARN", f"File '{request.url}' is empty")
            file_name = save_as or _disposition_name(response) or _uri_name(request.url)
            ctx.log("DEBUG", f"File '{request.url}' downloaded with size '{size}'")
            uri = await ctx.storage.put_file(file_name, temp, move=True)
        finally:
            request.close()
            await asyncio.to_thread(temp.unlink, True)
        outputs = {
            "uri": uri,
            "code": response.status_code,
            "length": size,
            "headers": headers,
        }
        return TaskOutcome(state="SUCCESS", outputs=outputs, metrics={"response.length": size})


def _temp_file(working_dir: str | None) -> Path:
    directory = Path(working_dir or tempfile.gettempdir())
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".download-", dir=directory)
    os.close(fd)
    return Path(name)


async def _save(response: httpx.Response, out: Any, ctx: TaskContext) -> int:
    size = 0
    buffer = bytearray()
    async for chunk in response.aiter_bytes():
        if ctx.cancelled.is_set():
            raise TaskError("download stopped: the task was killed")
        buffer += chunk
        size += len(chunk)
        if len(buffer) >= WRITE_BATCH_BYTES:
            data, buffer = buffer, bytearray()
            await asyncio.to_thread(out.write, data)
    if buffer:
        await asyncio.to_thread(out.write, buffer)
    await asyncio.to_thread(out.flush)
    return size


def _check_length(response: httpx.Response, size: int) -> None:
    declared = response.headers.get("Content-Length")
    encoding = response.headers.get("Content-Encoding", "identity").lower()
    if declared is None or encoding != "identity":
        return  # a decoded body has another length than the one sent
    try:
        expected = int(declared)
    except ValueError:
        return
    if expected != size:
        raise TaskError(f"Invalid size, got {size}, expected {expected}")


def _disposition_name(response: httpx.Response) -> str | None:
    """The file name of a ``Content-Disposition`` header (Kestra's simple parser, plus RFC
    5987's ``filename*``); only its last path part."""
    header = response.headers.get("Content-Disposition")
    if not header:
        return None
    name: str | None = None
    for part in header.split(";"):
        stripped = part.strip()
        if stripped.lower().startswith("filename*"):
            value = stripped.split("=", 1)[-1].strip().strip('"')
            _charset, _, rest = value.partition("'")
            _lang, _, encoded = rest.partition("'")
            name = unquote(encoded or value, encoding=_charset or "utf-8", errors="replace")
            break
        if stripped.lower().startswith("filename"):
            name = stripped.split("=", 1)[-1].strip()
            if len(name) >= 2 and name[0] == name[-1] == '"':
                name = name[1:-1]
    if not name:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    return name or None


def _uri_name(url: str) -> str:
    segment = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return segment or "download"


class SseRequest(_Http):
    """Read a Server-Sent Events stream and expose its events (or a jq concatenation)."""

    short: ClassVar[str | None] = "http_sse"

    type: Literal["io.kestra.plugin.core.http.SseRequest"]
    concatJqExpression: Str | None = None
    failedOnMissingJq: BoolOrExpr | None = True

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        from engine.errors import ExpressionError
        from engine.expressions.jq import run_jq
        from engine.expressions.runtime import EvalError

        jq = render_str(ctx, self.concatJqExpression, "concatJqExpression")
        if jq:
            try:
                run_jq(jq, None)  # compile it (and check it) before connecting
            except (EvalError, ExpressionError) as exc:
                raise TaskError(f"property 'concatJqExpression': {exc}") from None
        fail_missing = render_bool(ctx, self.failedOnMissingJq, "failedOnMissingJq", True)
        setup = client_setup(ctx, self.options)
        request = await self.request(ctx, setup)
        events: list[dict[str, Any]] = []
        try:
            log_request(ctx, setup, request)
            async with (
                httpx.AsyncClient(**setup.client) as client,
                client.stream(request.method, request.url, **request.kwargs) as response,
            ):
                log_response_headers(ctx, setup, response)
                if not setup.accepts(response.status_code):
                    raise await refused(response, setup.charset)
                parser = SseParser()
                async for line in response.aiter_lines():
                    if ctx.cancelled.is_set():
                        raise TaskError("the SSE request stopped: the task was killed")
                    event = parser.feed(line)
                    if event is not None:
                        events.append(event)
        except httpx.HTTPError as exc:
            raise request_failed(request, exc) from None
        finally:
            request.close()
        outputs: dict[str, Any] = {"uri": request.url, "size": len(events)}
        if jq:
            parts = [_jq_text(jq, event, fail_missing, ctx) for event in events]
            outputs["result"] = "".join(p for p in parts if p is not None) or None
        if outputs.get("result") is None:
            outputs["events"] = events
            outputs.pop("result", None)
        return TaskOutcome(state="SUCCESS", outputs=outputs, metrics={"size": len(events)})


class SseParser:
    """Kestra's Server-Sent Events parser, one line at a time."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.data: list[str] = []
        self.has_data = False
        self.id: str | None = None
        self.name: str | None = None
        self.comment: str | None = None
        self.retry: float | None = None

    def feed(self, line: str) -> dict[str, Any] | None:
        """The event a blank line dispatches, else None."""
        if line == "":
            event = self._event() if self.has_data else None
            self._reset()
            return event
        if line.startswith(":"):
            self.comment = _strip_space(line[1:])
            return None
        name, colon, value = line.partition(":")
        value = _strip_space(value) if colon else ""
        if name == "data":
            self.has_data = True
            self.data.append(value)
        elif name == "id" and "\0" not in value:
            self.id = value
        elif name == "event":
            self.name = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value) / 1000
        return None

    def _event(self) -> dict[str, Any]:
        text = "\n".join(self.data)
        try:
            data: Any = orjson.loads(text)
        except orjson.JSONDecodeError:
            data = text
        fields = (("id", self.id), ("name", self.name), ("comment", self.comment))
        event: dict[str, Any] = {"data": data, **{k: v for k, v in fields if v is not None}}
        if self.retry is not None:
            event["retry"] = format_duration(self.retry)
        return event


def _strip_space(value: str) -> str:
    return value[1:] if value.startswith(" ") else value


def _jq_text(program: str, event: dict[str, Any], fail: bool, ctx: TaskContext) -> str | None:
    from engine.errors import ExpressionError
    from engine.expressions.jq import run_jq
    from engine.expressions.runtime import EvalError

    try:
        results = run_jq(program, event)
    except (EvalError, ExpressionError) as exc:
        results, reason = [], str(exc)
    else:
        reason = "no text, number or boolean value"
    value = results[-1] if results else None
    if isinstance(value, (str, bool, int, float)):
        return to_text(value)
    error = (
        f"Failed to resolve JQ expression '{program}' and value '{orjson.dumps(event).decode()}'"
    )
    if fail:
        raise TaskError(f"{error}: {reason}")
    ctx.log("DEBUG", f"{error}. Skipping this event.")
    return None


PLUGINS: list[type[TaskPlugin]] = [Download, SseRequest]
