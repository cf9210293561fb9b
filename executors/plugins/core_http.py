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
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import unquote, urlsplit

import httpx

from executors.base import TaskContext, TaskError, TaskOutcome
from executors.http_client import (
    HttpOptions,
    build_request,
    client_setup,
    log_request,
    log_response_headers,
    refused,
    request_failed,
    response_headers,
)
from executors.plugin import TaskPlugin, render_bool, render_str
from schemas.flow.common import BoolOrExpr, Str

# Chunks are gathered up to this size before one write (in a thread, off the event loop).
WRITE_BATCH_BYTES = 1024 * 1024


class Download(TaskPlugin):
    """Download a file over HTTP(S) into internal storage, streamed."""

    family: ClassVar[str] = "core"
    aliases: ClassVar[tuple[str, ...]] = ("io.kestra.plugin.fs.http.Download",)
    short: ClassVar[str | None] = "http_download"

    type: Literal["io.kestra.plugin.core.http.Download"]
    uri: Str
    method: Str | None = "GET"
    body: Any = None
    formData: dict[str, Any] | Str | None = None
    params: dict[str, Any] | Str | None = None
    contentType: Str | None = "application/json"
    headers: dict[str, Any] | Str | None = None
    options: HttpOptions | None = None
    failOnEmptyResponse: BoolOrExpr | None = True
    saveAs: Str | None = None

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        if ctx.storage is None:
            raise TaskError("http.Download needs internal storage, and this worker has none")
        setup = client_setup(ctx, self.options)
        request = await build_request(
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


PLUGINS = [Download]
