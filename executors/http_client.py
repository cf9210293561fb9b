"""Kestra's HTTP client configuration (``options``) and request building, over httpx.

Shared by the HTTP plugin types (:mod:`executors.plugins.core_http`). It follows Kestra's
``HttpConfiguration`` and ``AbstractHttp.request`` (Kestra 1.x):

- ``options``: ``timeout.connectTimeout`` (Apache's default, 3 minutes), ``timeout.readIdleTimeout``
  (PT5M), ``proxy`` (``type`` DIRECT/HTTP/SOCKS, ``address``, ``port``, ``username``,
  ``password``), ``auth`` (``type`` BASIC with ``username``/``password``, BEARER with ``token``,
  DIGEST with ``username``/``password``), ``ssl.insecureTrustAllCertificates``,
  ``followRedirects`` (true), ``allowFailed`` (false), ``allowedResponseCodes``,
  ``defaultCharset`` (UTF-8, the body's encoding), ``logs`` (REQUEST_HEADERS / RESPONSE_HEADERS
  logged at DEBUG, REQUEST_BODY / RESPONSE_BODY at TRACE). The deprecated spellings still load:
  ``connectTimeout``, ``readTimeout``, ``readIdleTimeout``, ``proxyType``/``proxyAddress``/
  ``proxyPort``/``proxyUsername``/``proxyPassword``, ``basicAuthUser``/``basicAuthPassword``;
  ``logLevel``, ``connectionPoolIdleTimeout`` and ``maxContentLength`` are ignored, as in Kestra.
- A status is accepted when it is in ``allowedResponseCodes`` (when given, nothing else is),
  else when ``allowFailed``, else when below 400; a refused one fails with Kestra's message
  ``Failed http request with response code 'N' and body:`` and the start of the body.
- The request: ``uri`` (spaces become ``%20``), ``params`` added to the query (a list value
  repeats the parameter), ``method`` (GET), ``headers`` (rendered), and one of ``formData``
  (url-encoded; multipart when ``contentType`` is ``multipart/form-data``, where a
  ``kestra://`` value is sent as that file and a ``{name, content}`` map as the file
  ``content`` named ``name``, anything else as JSON), ``body`` (a string, sent with
  ``contentType``, default ``application/json``), or nothing, with the ``Content-Type`` header
  still set as Kestra does. ``User-Agent: Kestra``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx
import orjson

from executors.base import TaskContext, TaskError, to_text
from executors.plugin import render_bool, render_int, render_map, render_seconds, render_str
from schemas.flow.common import BoolOrExpr, Duration, FlowModel, IntOrExpr, Str

# Apache HttpClient's default connect timeout, which Kestra keeps when none is set.
DEFAULT_CONNECT_S = 180.0
# Kestra's default readIdleTimeout (PT5M): a silent server fails the task after this long.
DEFAULT_READ_IDLE_S = 300.0
# How much of a refused response's body goes into the error (Kestra puts all of it).
ERROR_BODY_LIMIT = 10_000
# How much of a body the REQUEST_BODY / RESPONSE_BODY logs show.
LOGGED_BODY_LIMIT = 10_000
_LOG_KINDS = Literal["REQUEST_HEADERS", "REQUEST_BODY", "RESPONSE_HEADERS", "RESPONSE_BODY"]


class TimeoutOptions(FlowModel):
    connectTimeout: Duration | None = None
    readIdleTimeout: Duration | None = "PT5M"


class ProxyOptions(FlowModel):
    type: Str | None = "DIRECT"
    address: Str | None = None
    port: IntOrExpr | None = None
    username: Str | None = None
    password: Str | None = None


class AuthOptions(FlowModel):
    type: Str
    username: Str | None = None
    password: Str | None = None
    token: Str | None = None


class SslOptions(FlowModel):
    insecureTrustAllCertificates: BoolOrExpr | None = None


class HttpOptions(FlowModel):
    """Kestra's ``HttpConfiguration`` (the ``options`` property)."""

    timeout: TimeoutOptions | None = None
    proxy: ProxyOptions | None = None
    auth: AuthOptions | None = None
    ssl: SslOptions | None = None
    followRedirects: BoolOrExpr | None = True
    allowFailed: BoolOrExpr | None = False
    allowedResponseCodes: list[IntOrExpr] | Str | None = None
    defaultCharset: Str | None = "UTF-8"
    logs: list[_LOG_KINDS] | None = None
    # Deprecated spellings (Kestra still loads them).
    connectTimeout: Duration | None = None
    readTimeout: Duration | None = None
    readIdleTimeout: Duration | None = None
    connectionPoolIdleTimeout: Duration | None = None
    maxContentLength: IntOrExpr | None = None
    proxyType: Str | None = None
    proxyAddress: Str | None = None
    proxyPort: IntOrExpr | None = None
    proxyUsername: Str | None = None
    proxyPassword: Str | None = None
    basicAuthUser: Str | None = None
    basicAuthPassword: Str | None = None
    logLevel: Str | None = None


@dataclass(slots=True)
class ClientSetup:
    """The rendered options: what to give httpx and how to judge the answer."""

    client: dict[str, Any]
    headers: dict[str, str]
    allow_failed: bool
    allowed_codes: list[int] | None
    charset: str
    logs: frozenset[str] = field(default_factory=frozenset)

    def accepts(self, code: int) -> bool:
        if self.allowed_codes:
            return code in self.allowed_codes
        return self.allow_failed or code < 400


def client_setup(ctx: TaskContext, options: HttpOptions | None) -> ClientSetup:
    opts = options or HttpOptions()
    timeout = opts.timeout or TimeoutOptions()
    read = render_seconds(ctx, opts.readTimeout, "options.readTimeout")
    if read is None:
        read = render_seconds(
            ctx, timeout.readIdleTimeout, "options.timeout.readIdleTimeout", DEFAULT_READ_IDLE_S
        )
    connect = render_seconds(ctx, timeout.connectTimeout, "options.timeout.connectTimeout")
    if connect is None:
        connect = render_seconds(
            ctx, opts.connectTimeout, "options.connectTimeout", DEFAULT_CONNECT_S
        )
    client: dict[str, Any] = {
        "timeout": httpx.Timeout(read, connect=connect),
        "follow_redirects": render_bool(ctx, opts.followRedirects, "options.followRedirects", True),
    }
    ssl = opts.ssl
    if ssl is not None and ssl.insecureTrustAllCertificates is not None:
        # Kestra trusts every certificate as soon as the property is set, whatever its value.
        client["verify"] = False
    proxy = _proxy(ctx, opts)
    if proxy is not None:
        client["proxy"] = proxy
    headers = {"User-Agent": "Kestra"}
    auth = _auth(ctx, opts, headers)
    if auth is not None:
        client["auth"] = auth
    charset = render_str(ctx, opts.defaultCharset, "options.defaultCharset") or "UTF-8"
    try:
        "".encode(charset)
    except LookupError as exc:
        raise TaskError(f"options.defaultCharset: unknown charset {charset!r}") from exc
    return ClientSetup(
        client=client,
        headers=headers,
        allow_failed=render_bool(ctx, opts.allowFailed, "options.allowFailed"),
        allowed_codes=_codes(ctx, opts.allowedResponseCodes),
        charset=charset,
        logs=frozenset(opts.logs or ()),
    )


def _codes(ctx: TaskContext, value: Any) -> list[int] | None:
    if value is None:
        return None
    rendered = ctx.render(value)
    if isinstance(rendered, str):
        try:
            rendered = orjson.loads(rendered)
        except orjson.JSONDecodeError:
            pass
    items = rendered if isinstance(rendered, list) else [rendered]
    try:
        return [int(to_text(item).strip()) for item in items]
    except ValueError as exc:
        raise TaskError(
            f"options.allowedResponseCodes: expected a list of status codes, got {rendered!r}"
        ) from exc


def _proxy(ctx: TaskContext, opts: HttpOptions) -> str | None:
    proxy = opts.proxy or ProxyOptions(
        type=opts.proxyType,
        address=opts.proxyAddress,
        port=opts.proxyPort,
        username=opts.proxyUsername,
        password=opts.proxyPassword,
    )
    address = render_str(ctx, proxy.address, "options.proxy.address")
    if not address:
        return None
    kind = (render_str(ctx, proxy.type, "options.proxy.type") or "HTTP").upper()
    if kind == "DIRECT":
        kind = "HTTP"  # Kestra builds an HTTP proxy from any address
    if kind not in ("HTTP", "SOCKS"):
        raise TaskError(f"options.proxy.type {kind!r} is not supported: use HTTP or SOCKS")
    if kind == "SOCKS":
        raise TaskError("options.proxy.type SOCKS is not supported by Headwater: use HTTP")
    port = render_int(ctx, proxy.port, "options.proxy.port")
    user = render_str(ctx, proxy.username, "options.proxy.username")
    password = render_str(ctx, proxy.password, "options.proxy.password") or ""
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user else ""
    return f"http://{credentials}{address}" + (f":{port}" if port else "")


def _auth(ctx: TaskContext, opts: HttpOptions, headers: dict[str, str]) -> httpx.Auth | None:
    auth = opts.auth
    if auth is None:
        if opts.basicAuthUser is None:
            return None
        user = render_str(ctx, opts.basicAuthUser, "options.basicAuthUser") or ""
        password = render_str(ctx, opts.basicAuthPassword, "options.basicAuthPassword") or ""
        return httpx.BasicAuth(user, password)
    kind = (render_str(ctx, auth.type, "options.auth.type") or "").upper()
    if kind == "BEARER":
        token = render_str(ctx, auth.token, "options.auth.token", required=True)
        headers["Authorization"] = f"Bearer {token}"
        return None
    if kind in ("BASIC", "DIGEST"):
        user = render_str(ctx, auth.username, "options.auth.username") or ""
        password = render_str(ctx, auth.password, "options.auth.password") or ""
        return (
            httpx.BasicAuth(user, password) if kind == "BASIC" else httpx.DigestAuth(user, password)
        )
    raise TaskError(f"options.auth.type {kind!r} is not supported: use BASIC, BEARER or DIGEST")


@dataclass(slots=True)
class RequestParts:
    method: str
    url: str
    kwargs: dict[str, Any]
    # Files opened for a multipart body, closed by :meth:`close`.
    opened: list[Any] = field(default_factory=list)
    shown_body: str | None = None

    def close(self) -> None:
        for handle in self.opened:
            with contextlib.suppress(OSError):
                handle.close()
        self.opened.clear()


async def build_request(
    ctx: TaskContext,
    setup: ClientSetup,
    *,
    uri: Any,
    method: Any,
    headers: Any,
    params: Any = None,
    body: Any = None,
    form_data: Any = None,
    content_type: Any = "application/json",
) -> RequestParts:
    """The request as Kestra's ``AbstractHttp.request`` builds it; close() it after use."""
    url = (render_str(ctx, uri, "uri", required=True) or "").replace(" ", "%20")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TaskError(f"property 'uri': {url!r} is not an http:// or https:// URL")
    verb = (render_str(ctx, method, "method") or "GET").upper()
    query = render_map(ctx, params, "params")
    if query:
        pairs: list[tuple[str, str | int | float | bool | None]] = []
        for name, value in query.items():
            if isinstance(value, list):
                pairs.extend((str(name), to_text(v)) for v in value)
            elif isinstance(value, str):
                pairs.append((str(name), value))
            else:
                raise TaskError(f"property 'params': unsupported value type for {name!r}")
        url = str(httpx.URL(url).copy_merge_params(pairs))
    ctype = render_str(ctx, content_type, "contentType")
    out_headers = dict(setup.headers)
    request = RequestParts(method=verb, url=url, kwargs={})
    form = render_map(ctx, form_data, "formData") if form_data is not None else {}
    if form:
        if ctype == "multipart/form-data":
            request.kwargs["files"] = await _multipart(ctx, form, request)
        else:
            request.kwargs["data"] = {str(k): to_text(v) for k, v in form.items()}
    elif body is not None:
        text = render_str(ctx, body, "body") or ""
        request.kwargs["content"] = text.encode(setup.charset)
        request.shown_body = text
        if ctype:
            out_headers["Content-Type"] = ctype
    elif ctype:
        out_headers["Content-Type"] = ctype
    for name, value in render_map(ctx, headers, "headers").items():
        out_headers[str(name)] = to_text(value)
    request.kwargs["headers"] = out_headers
    return request


async def _multipart(
    ctx: TaskContext, form: Mapping[str, Any], request: RequestParts
) -> list[tuple[str, Any]]:
    fields: list[tuple[str, Any]] = []
    for key, value in form.items():
        if isinstance(value, str) and value.startswith("kestra://"):
            path = await _stored(ctx, value)
            handle = path.open("rb")
            request.opened.append(handle)
            fields.append((str(key), (path.name, handle)))
        elif isinstance(value, Mapping) and "name" in value and "content" in value:
            path = await _stored(ctx, to_text(value["content"]))
            handle = path.open("rb")
            request.opened.append(handle)
            fields.append((str(key), (to_text(value["name"]), handle)))
        elif isinstance(value, str):
            fields.append((str(key), (None, value)))
        else:
            fields.append((str(key), (None, orjson.dumps(value).decode())))
    return fields


async def _stored(ctx: TaskContext, uri: str) -> Path:
    if ctx.storage is None:
        raise TaskError(f"formData file {uri}: this worker has no internal storage")
    return await ctx.storage.local_path(uri)


def response_headers(response: httpx.Response) -> dict[str, list[str]]:
    """Header name (as the server wrote it) -> its values, as Kestra's ``headers`` output."""
    out: dict[str, list[str]] = {}
    for raw_name, raw_value in response.headers.raw:
        out.setdefault(raw_name.decode("latin-1"), []).append(raw_value.decode("latin-1"))
    return out


def log_request(ctx: TaskContext, setup: ClientSetup, request: RequestParts) -> None:
    if "REQUEST_HEADERS" in setup.logs:
        lines = "\n    ".join(f"{k}: {v}" for k, v in request.kwargs["headers"].items())
        ctx.log("DEBUG", f"request:\n    method: {request.method}\n    uri: {request.url}")
        ctx.log("DEBUG", f"request headers:\n    {lines}")
    if "REQUEST_BODY" in setup.logs:
        shown = request.shown_body
        ctx.log("TRACE", f"request payload:\n    {shown[:LOGGED_BODY_LIMIT] if shown else 'null'}")


def log_response_headers(ctx: TaskContext, setup: ClientSetup, response: httpx.Response) -> None:
    if "RESPONSE_HEADERS" in setup.logs:
        lines = "\n    ".join(f"{k}: {', '.join(v)}" for k, v in response_headers(response).items())
        ctx.log("DEBUG", f"response:\n    reason: {response.reason_phrase}")
        ctx.log("DEBUG", f"response headers:\n    {lines}")


async def refused(response: httpx.Response, charset: str) -> TaskError:
    """Kestra's error for a status the options do not accept (with the body's start)."""
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= ERROR_BODY_LIMIT:
            break
    text = bytes(data[:ERROR_BODY_LIMIT]).decode(response.encoding or charset, "replace")
    message = f"Failed http request with response code '{response.status_code}'"
    return TaskError(f"{message} and body:\n{text}" if text else message)


def request_failed(request: RequestParts, exc: httpx.HTTPError) -> TaskError:
    """A transport failure (refused connection, timeout, TLS...) as a task error."""
    reason = str(exc) or type(exc).__name__
    return TaskError(f"HTTP {request.method} {request.url} failed: {type(exc).__name__}: {reason}")
