"""One JSON-over-HTTP client for the plugin types that call a service's API ("SaaS" types).

Kestra's service plugins (OpenAI, Hightouch, Airbyte, Fivetran, dbt Cloud, Jira, GitHub, ...)
each build requests with their SDK or Kestra's ``HttpClient`` and share the same contract, which
:class:`ApiClient` implements once:

- a request carries the service's auth headers; its body is JSON (or a form);
- a status of 400 or more fails the task with the service's name, the method and path, the
  status and the service's answer (the first :data:`ERROR_BODY_LIMIT` characters): what the
  service said is what a user needs to fix the call;
- a transport failure (refused connection, timeout, TLS) fails the task naming the host;
- an answer that is not the JSON the type expects fails the task naming the service;
- the credentials (every value given in ``secrets``) never reach a log line, an error or an
  output: they are masked wherever a service echoes them back.

Where the service's address is fixed in Kestra (not a property), its base URL is one entry of
:data:`BASE_URLS`, the only place it is written; tests point that entry at a local receiver.

A :class:`Retry` repeats a call that met a transient failure (the statuses it names, and a
refused connection or a timeout), waiting ``interval`` then doubling up to ``max_interval``
(Kestra's ``RetryUtils`` ``Exponential``), until ``max_attempts`` calls or ``max_duration``;
then the last failure is the task's. Each retry is logged at WARN.

Long-running jobs (a sync, a dbt Cloud run) are waited for with :func:`poll`, Kestra's
``Await.until``: the check runs, then the task sleeps ``interval`` through the context (so a
kill stops it at once) until the check returns a value or ``max_duration`` has passed since
the first check (then the task fails with Kestra's "Await failed to terminate within ...").
Elapsed time comes from the context's clock, so tests drive it without waiting. A kill during
a wait raises :class:`Killed`, which :class:`ApiTask` turns into a KILLED outcome.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import orjson

from executors.base import SECRET_MASK, TaskContext, TaskError, TaskOutcome
from executors.http_client import HttpOptions, client_setup
from executors.plugin import TaskPlugin
from schemas.flow.common import format_duration

# The services' API roots where Kestra hard-codes them (a type whose URL is a property does not
# appear here). Tests replace an entry with a local receiver's address.
BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
    "perplexity": "https://api.perplexity.ai",
    "hightouch": "https://api.hightouch.com",
    "airbyte_cloud": "https://api.airbyte.com/v1",
    "github": "https://api.github.com",
    "linear": "https://api.linear.app",
    "hubspot": "https://api.hubapi.com",
    "slack": "https://slack.com/api",
    "notion": "https://api.notion.com",
    # A template: the instance's name fills {domain}.
    "servicenow": "https://{domain}.service-now.com",
}

# How much of a refused answer goes into the error.
ERROR_BODY_LIMIT = 2000
# Kestra's HttpClient defaults: Apache's 3-minute connect timeout and a 5-minute read idle one.
DEFAULT_CONNECT_S = 180.0
DEFAULT_READ_S = 300.0

T = TypeVar("T")


class ApiError(TaskError):
    """A service refused a call: its status and (masked) answer, for callers that inspect it."""

    def __init__(self, message: str, status: int, body: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class TransportError(TaskError):
    """A call that got no answer; ``transient`` for a timeout or a refused connection."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class Killed(Exception):
    """The task was killed while it waited (between polls or retries)."""


class ApiTask(TaskPlugin):
    """A type that waits on a service: ``execute`` does the work; a kill ends it KILLED."""

    async def execute(self, ctx: TaskContext) -> TaskOutcome | Mapping[str, Any] | None:
        raise NotImplementedError

    async def run(self, ctx: TaskContext) -> TaskOutcome | Mapping[str, Any] | None:
        try:
            return await self.execute(ctx)
        except Killed:
            return TaskOutcome(state="KILLED")


def transient_status(code: int) -> bool:
    """Airbyte's retryable statuses: 408, 425, 429 and 5xx but 501."""
    return code in (408, 425, 429) or (code >= 500 and code != 501)


@dataclass(frozen=True, slots=True)
class Retry:
    """Kestra's exponential retry of one call; see the module docstring."""

    interval: float
    max_interval: float
    statuses: Callable[[int], bool] = transient_status
    max_attempts: int | None = None
    max_duration: float | None = None
    # Only these methods are retried (Fivetran never repeats a POST); None: every method.
    methods: frozenset[str] | None = None

    def delay(self, attempt: int) -> float:
        return float(min(self.interval * 2 ** (attempt - 1), self.max_interval))


def base_url(service: str) -> str:
    return BASE_URLS[service].rstrip("/")


@dataclass(slots=True)
class Answer:
    """A service's answer: status, headers and body text (already checked: below 400)."""

    status: int
    headers: httpx.Headers
    text: str
    service: str
    what: str

    def json(self) -> Any:
        """The body as JSON; a body that is not JSON fails the task naming the service."""
        if not self.text.strip():
            return None
        try:
            return orjson.loads(self.text)
        except orjson.JSONDecodeError:
            raise TaskError(
                f"{self.service}: {self.what} answered with a body that is not JSON: "
                f"{self.text[:200]!r}"
            ) from None

    def object(self) -> dict[str, Any]:
        """The body as a JSON object."""
        value = self.json()
        if not isinstance(value, dict):
            raise TaskError(f"{self.service}: {self.what} answered {value!r}, expected an object")
        return value


class ApiClient:
    """Calls to one service with its auth headers; use as ``async with``."""

    def __init__(
        self,
        ctx: TaskContext,
        service: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        secrets: Iterable[str | None] = (),
        options: HttpOptions | None = None,
        auth: httpx.Auth | None = None,
        timeout: float | None = None,
        retry: Retry | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TaskError(f"{service}: invalid URL {url!r} (expected http:// or https://)")
        self.ctx = ctx
        self.service = service
        self.url = url.rstrip("/")
        self.secrets = tuple(s for s in secrets if s)
        self.retry = retry
        kwargs: dict[str, Any] = {
            "timeout": httpx.Timeout(timeout or DEFAULT_READ_S, connect=DEFAULT_CONNECT_S)
        }
        base_headers: dict[str, str] = {}
        if options is not None:
            setup = client_setup(ctx, options)
            kwargs = setup.client
            base_headers.update(setup.headers)
        if auth is not None:
            kwargs["auth"] = auth
        base_headers.update(headers or {})
        self._client = httpx.AsyncClient(headers=base_headers, **kwargs)

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, SECRET_MASK)
        return text

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        allow: Callable[[int], bool] | None = None,
    ) -> Answer:
        """One request; ``path`` is relative to the client's URL (or a full URL).

        ``json`` is sent as JSON, ``content`` as written (with ``Content-Type: application/json``
        too), ``data`` as a form. ``allow`` accepts a status of 400 or more that the caller
        handles itself.
        """
        url = path if path.startswith(("http://", "https://")) else f"{self.url}{path}"
        what = self.mask(f"{method} {urlsplit(url).path}")
        kwargs: dict[str, Any] = {}
        if json is not None or content is not None:
            kwargs["content"] = orjson.dumps(json) if content is None else content
            kwargs["headers"] = {"Content-Type": "application/json", **(headers or {})}
        elif headers:
            kwargs["headers"] = dict(headers)
        if data is not None:
            kwargs["data"] = dict(data)
        if params:
            kwargs["params"] = {k: v for k, v in params.items() if v is not None}
        self.ctx.log("DEBUG", f"{self.service}: {what}")
        retry = self.retry
        if retry is not None and retry.methods is not None and method not in retry.methods:
            retry = None
        start = self.ctx.clock()
        attempt = 0
        while True:
            attempt += 1
            failure: TaskError
            try:
                response = await self._client.request(method, url, **kwargs)
            except (httpx.TimeoutException, httpx.ConnectError) as exc:
                failure = self._transport_error(what, url, exc)
            except httpx.HTTPError as exc:
                raise self._transport_error(what, url, exc) from None
            else:
                code = response.status_code
                if code < 400 or (allow and allow(code)):
                    break
                body = self.mask(response.text[:ERROR_BODY_LIMIT])
                failure = ApiError(
                    f"{self.service}: {what} failed with HTTP {code}: {body}", code, body
                )
                if retry is None or not retry.statuses(code):
                    raise failure
            if retry is None:
                raise failure
            elapsed = (self.ctx.clock() - start).total_seconds()
            out_of_time = retry.max_duration is not None and elapsed >= retry.max_duration
            if (retry.max_attempts is not None and attempt >= retry.max_attempts) or out_of_time:
                raise failure
            delay = retry.delay(attempt)
            self.ctx.log("WARN", f"{failure}; retrying in {format_duration(delay)}")
            if not await self.ctx.sleep(delay):
                raise Killed
        text = response.text
        return Answer(response.status_code, response.headers, text, self.service, what)

    def _transport_error(self, what: str, url: str, exc: httpx.HTTPError) -> TransportError:
        parts = urlsplit(url)
        host = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        reason = self.mask(str(exc).replace(url, host)) or type(exc).__name__
        return TransportError(
            f"{self.service}: {what} to {host} failed: {type(exc).__name__}: {reason}",
            isinstance(exc, httpx.TimeoutException | httpx.ConnectError),
        )

    async def download(self, path: str, target: Path, *, allow: Callable[[int], bool]) -> int:
        """GET ``path`` streamed into the file ``target``; the status (an allowed one leaves
        ``target`` unwritten). Other statuses of 400 or more fail as :meth:`call` does."""
        url = path if path.startswith(("http://", "https://")) else f"{self.url}{path}"
        what = self.mask(f"GET {urlsplit(url).path}")
        self.ctx.log("DEBUG", f"{self.service}: {what}")
        try:
            async with self._client.stream("GET", url) as response:
                code = response.status_code
                if code >= 400:
                    if allow(code):
                        return code
                    body = self.mask(
                        (await response.aread())[:ERROR_BODY_LIMIT].decode("utf-8", "replace")
                    )
                    raise ApiError(
                        f"{self.service}: {what} failed with HTTP {code}: {body}", code, body
                    )
                with target.open("wb") as out:
                    async for chunk in response.aiter_bytes():
                        out.write(chunk)
        except httpx.HTTPError as exc:
            raise self._transport_error(what, url, exc) from None
        return code

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return (await self.call(method, path, **kwargs)).json()

    async def object(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return (await self.call(method, path, **kwargs)).object()


async def poll(
    ctx: TaskContext,
    check: Callable[[], Awaitable[T | None]],
    *,
    interval: float,
    max_duration: float,
    what: str,
) -> T:
    """Kestra's ``Await.until``: ``check`` until it returns a value (:class:`Killed` if killed)."""
    start = ctx.clock()
    while True:
        result = await check()
        if result is not None:
            return result
        if (ctx.clock() - start).total_seconds() > max_duration:
            raise TaskError(
                f"{what}: Await failed to terminate within {format_duration(max_duration)}"
            )
        if not await ctx.sleep(interval):
            raise Killed


def dig(value: Any, *keys: str | int) -> Any:
    """``value[k1][k2]...``, or None when a step is missing (JSON answers are loose)."""
    for key in keys:
        if isinstance(key, int):
            if not isinstance(value, list) or len(value) <= key:
                return None
        elif not isinstance(value, dict):
            return None
        value = value[key] if isinstance(key, int) else value.get(key)
    return value
