"""Google Cloud's REST APIs (BigQuery, Pub/Sub, Dataproc, Vertex AI) with Kestra's credentials.

Every GCP type has Kestra's ``GcpInterface`` properties (``projectId``, ``serviceAccount``,
``impersonatedServiceAccount``, ``scopes``), rendered and turned into a token exactly as the GCS
family does (:mod:`executors.remote.gcs`: a service-account key is exchanged at its
``token_uri``; else Application Default Credentials; the key and the token are task secrets).

Why the REST APIs over httpx rather than Google's Python clients (google-cloud-bigquery,
google-cloud-pubsub, google-cloud-dataproc): every call here is one documented JSON request
(a job insert, a poll, a page of results, a publish, a pull), so the worker stays async without
a thread per blocking client call; the emulators we test against (BigQuery's bqemulator, the
Google Cloud CLI's Pub/Sub emulator) speak the same REST, and a local receiver can assert the
exact requests; and no client library (with gRPC streams and its own threads for Pub/Sub)
joins the worker's dependencies. google-auth (already there for GCS) gives the tokens.

Where the calls go: Google's endpoint of the service, unless the worker's environment names
another, as Google's own tools read it:

- BigQuery: ``BIGQUERY_EMULATOR_HOST`` (``host:port`` or a URL; google-cloud-bigquery reads it);
- Pub/Sub: ``PUBSUB_EMULATOR_HOST`` (every Pub/Sub client reads it);
- any service: ``CLOUDSDK_API_ENDPOINT_OVERRIDES_<SERVICE>`` (gcloud's
  ``api_endpoint_overrides/<service>`` property, e.g. ``..._DATAPROC``), a base URL.

An emulator host (the ``*_EMULATOR_HOST`` variables) means no credentials unless a
``serviceAccount`` is set (emulators check none); an endpoint override keeps the credentials.

A refused call fails the task with the service, the method and path, the HTTP status and
Google's own message (``error.message`` of its JSON answer, with ``error.status``). A read
(``GET``: a job's or an operation's status) that meets a transient failure (429, 5xx, a
refused connection, a timeout) is tried again (:data:`READ_RETRY`), as Google's clients do;
writes are not, so that nothing is created twice.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from executors.api_client import ApiClient, ApiError, Retry
from executors.base import TaskContext, TaskError
from executors.remote.gcs import GcsSettings, refreshed_credentials, render_settings

__all__ = ["GoogleApi", "GoogleError", "Service", "google_api", "render_settings"]


@dataclass(frozen=True, slots=True)
class Service:
    """One Google API: its name in messages, its endpoint and how an emulator is named."""

    label: str
    # ``{region}`` is filled for regional endpoints (Dataproc, Vertex AI).
    url: str
    override: str
    emulator_env: str | None = None


BIGQUERY = Service(
    "BigQuery", "https://bigquery.googleapis.com", "BIGQUERY", "BIGQUERY_EMULATOR_HOST"
)
PUBSUB = Service("Pub/Sub", "https://pubsub.googleapis.com", "PUBSUB", "PUBSUB_EMULATOR_HOST")
DATAPROC = Service("Dataproc", "https://{region}-dataproc.googleapis.com", "DATAPROC")
VERTEX_AI = Service("Vertex AI", "https://{region}-aiplatform.googleapis.com", "AIPLATFORM")


# Google's clients retry idempotent calls from about 1 s, doubling, for a minute or so.
READ_RETRY = Retry(interval=1.0, max_interval=16.0, max_attempts=5, methods=frozenset({"GET"}))


class GoogleError(ApiError):
    """Google refused a call; ``reason`` is ``error.status`` (``NOT_FOUND``, ``ALREADY_EXISTS``)."""

    def __init__(self, message: str, status: int, body: str, reason: str | None) -> None:
        super().__init__(message, status, body)
        self.reason = reason


def endpoint(service: Service, region: str | None = None) -> tuple[str, bool]:
    """The base URL of ``service`` and whether it is an emulator (see the module docstring)."""
    if service.emulator_env:
        host = os.environ.get(service.emulator_env, "").strip()
        if host:
            return (host if "://" in host else f"http://{host}").rstrip("/"), True
    override = os.environ.get(f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{service.override}", "").strip()
    if override:
        return override.rstrip("/"), False
    if "{region}" in service.url:
        if not region:
            raise TaskError(f"{service.label}: property 'region' is required")
        return service.url.format(region=region), False
    return service.url, False


def google_message(body: str) -> tuple[str, str | None]:
    """Google's ``error.message`` (and ``error.status``) of an error answer, else the body."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.strip(), None
    error = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(error, dict) and error.get("message"):
        status = error.get("status")
        return str(error["message"]), str(status) if status else None
    if isinstance(error, str):  # the OAuth shape: {"error": ..., "error_description": ...}
        return f"{error}: {answer.get('error_description', '')}".strip(": "), None
    return body.strip(), None


class GoogleApi:
    """Calls to one Google API with a bearer token; from :func:`google_api`."""

    def __init__(self, client: ApiClient, service: Service, settings: GcsSettings) -> None:
        self.client = client
        self.service = service
        self.settings = settings

    @property
    def project(self) -> str:
        """``projectId``, else the service account's project."""
        if not self.settings.project:
            raise TaskError(
                f"{self.service.label}: no project: set 'projectId' (or a 'serviceAccount' key)"
            )
        return self.settings.project

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        allow: tuple[int, ...] = (),
    ) -> tuple[int, Any, Any]:
        """One call: (status, JSON answer or None, response headers); Google's refusal (a
        status not in ``allow``) raises :class:`GoogleError`."""
        try:
            answer = await self.client.call(
                method,
                path,
                json=json,
                content=content,
                params=params,
                headers=headers,
                allow=(lambda code: code in allow) if allow else None,
            )
        except ApiError as exc:
            message, reason = google_message(exc.body)
            where = str(exc).split(" failed with HTTP", 1)[0]
            shown = f"{message} ({reason})" if reason else message
            raise GoogleError(
                f"{where} failed with HTTP {exc.status}: {shown}", exc.status, exc.body, reason
            ) from None
        if answer.status >= 400:
            return answer.status, None, answer.headers
        return answer.status, answer.json(), answer.headers

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return (await self.call(method, path, **kwargs))[1]


@contextlib.asynccontextmanager
async def google_api(
    ctx: TaskContext,
    settings: GcsSettings,
    service: Service,
    *,
    region: str | None = None,
    retry: Retry | None = None,
    read_timeout_s: float | None = None,
) -> AsyncIterator[GoogleApi]:
    """A client of ``service`` for the block, authenticated with the task's credentials."""
    url, emulator = endpoint(service, region)
    creds = await refreshed_credentials(ctx, settings, anonymous=emulator)
    headers = {"Authorization": f"Bearer {creds.token}"} if creds is not None else {}
    secrets = [creds.token] if creds is not None else []
    async with ApiClient(
        ctx,
        service.label,
        url,
        headers=headers,
        secrets=secrets,
        retry=retry or READ_RETRY,
        timeout=read_timeout_s,
    ) as client:
        yield GoogleApi(client, service, settings)
