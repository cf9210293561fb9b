"""One Google Cloud Storage connection: Kestra's GCP credentials on gcsfs (the JSON API).

Credentials (Kestra's ``CredentialService``): ``serviceAccount`` (the service account's JSON
key, as text) when set, else Google's Application Default Credentials; ``scopes`` (default
``https://www.googleapis.com/auth/cloud-platform``) scope them; ``impersonatedServiceAccount``
then impersonates that account (a one-hour token from the IAM Credentials API). ``projectId``
(default: the service account's project) is the project buckets are created in.

The endpoint is Google's, or an emulator's when ``STORAGE_EMULATOR_HOST`` is set in the
worker's environment (``http://host:port``), as Google's client libraries (Kestra's too) read
it. With the emulator and no ``serviceAccount``, requests go unauthenticated (emulators check
nothing); a ``serviceAccount`` is still exchanged for a token at its ``token_uri``.

The token is fetched before the first request, in a thread (google-auth is blocking), so a
refused key fails the task at once with the token server's answer (``invalid_grant: Invalid
JWT Signature.``). Every API error becomes a TaskError naming the operation and the
``gs://`` object, with the server's message. The key is the task's secret (masked).

gcsfs's ``GCSFileSystem`` from ``gcsfs.core`` is used, not the package's default class, which
first asks the Storage Control API over gRPC what kind of bucket each one is (a minute's
timeout per bucket against an emulator).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from executors.base import TaskContext, TaskError, error_message
from executors.plugin import render_str
from executors.remote.objects import Obj

DEFAULT_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
# gcsfs retries 5xx, 429 and 401 six times, up to 32 s apart; three tries ride out a blip.
RETRIES = 3
# Resumable uploads send 8 MiB chunks (a multiple of 256 KiB): what a task holds in memory.
UPLOAD_CHUNK = 8 * 1024 * 1024
# A token request that hangs (a wrong token_uri behind a firewall) fails the task after this.
TOKEN_TIMEOUT_S = 60.0
# Kestra's impersonated tokens last one hour.
IMPERSONATION_LIFETIME_S = 3600
LIST_PAGE = 1000


@dataclass(slots=True)
class GcsSettings:
    project: str | None = None
    service_account: dict[str, Any] | None = None
    impersonate: str | None = None
    scopes: list[str] = field(default_factory=lambda: list(DEFAULT_SCOPES))


def render_settings(ctx: TaskContext, task: Any) -> GcsSettings:
    """The rendered credential properties of a task or trigger (Kestra's names)."""
    key = render_str(ctx, getattr(task, "serviceAccount", None), "serviceAccount")
    settings = GcsSettings(
        project=render_str(ctx, getattr(task, "projectId", None), "projectId") or None,
        impersonate=render_str(
            ctx, getattr(task, "impersonatedServiceAccount", None), "impersonatedServiceAccount"
        )
        or None,
    )
    scopes = getattr(task, "scopes", None)
    if scopes is not None:
        rendered = ctx.render(scopes)
        if isinstance(rendered, str):
            rendered = orjson.loads(rendered) if rendered.strip().startswith("[") else [rendered]
        settings.scopes = [str(s) for s in rendered]
    if key and key.strip():
        ctx.secrets = ctx.secrets | {key}
        try:
            info = orjson.loads(key)
        except orjson.JSONDecodeError as exc:
            raise TaskError(f"property 'serviceAccount': not a JSON key: {exc}") from exc
        if not isinstance(info, dict) or "private_key" not in info:
            raise TaskError("property 'serviceAccount': not a service account key (no private_key)")
        secret = str(info["private_key"])
        ctx.secrets = (
            ctx.secrets | {secret} | {line for line in secret.splitlines() if len(line) > 20}
        )
        settings.service_account = info
        settings.project = settings.project or info.get("project_id")
    return settings


def gcs_error(operation: str, what: str, exc: BaseException) -> TaskError:
    if isinstance(exc, FileNotFoundError):
        return TaskError(f"GCS {operation} {what} failed: not found (404)")
    text = error_message(exc).strip()
    return TaskError(f"GCS {operation} {what} failed: {text}")


def parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _b64(text: Any) -> bytes | None:
    import base64

    return base64.b64decode(text) if isinstance(text, str) and text else None


def obj_of(item: dict[str, Any]) -> Obj:
    """An Obj of a JSON API object resource."""
    size = item.get("size")
    return Obj(
        str(item.get("bucket", "")),
        str(item.get("name", "")),
        size=int(size) if size is not None else None,
        etag=item.get("etag"),
        modified=parse_time(item.get("updated")),
        is_dir=False,
        md5=_b64(item.get("md5Hash")),
        crc32c=_b64(item.get("crc32c")),
        props=item,
    )


def gs_uri(bucket: str, name: str) -> str:
    return f"gs://{bucket}/{name}"


class Gcs:
    """An open connection; use :func:`connect`."""

    scheme = "gs"

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    async def call(
        self, operation: str, what: str, method: str, path: str, *args: Any, **params: Any
    ) -> Any:
        """One JSON API call; its JSON answer (None for an empty body)."""
        clean = {k: v for k, v in params.items() if v is not None}
        try:
            _, _, _, contents = await self.fs._request(method, path, *args, **clean)
        except Exception as exc:
            raise gcs_error(operation, what, exc) from exc
        text = contents.strip() if contents else b""
        return orjson.loads(text) if text and text != b"null" else None

    async def list(
        self, container: str, prefix: str | None, delimiter: str | None, **options: Any
    ) -> list[Obj]:
        """Every object (and, with a delimiter, every prefix as a directory) under ``prefix``."""
        out: list[Obj] = []
        token: str | None = None
        while True:
            page = await self.call(
                "List",
                gs_uri(container, prefix or ""),
                "GET",
                "b/{}/o",
                container,
                prefix=prefix or None,
                delimiter=delimiter or None,
                pageToken=token,
                versions="true" if options.get("versions") else None,
                maxResults=LIST_PAGE,
            )
            page = page or {}
            out.extend(
                Obj(container, name, size=0, is_dir=True, props={"bucket": container, "name": name})
                for name in page.get("prefixes") or []
            )
            out.extend(obj_of(item) for item in page.get("items") or [])
            token = page.get("nextPageToken")
            if not token:
                break
        out.sort(key=lambda o: o.name)
        return out

    async def get(self, bucket: str, name: str) -> Obj:
        item = await self.call("Get", gs_uri(bucket, name), "GET", "b/{}/o/{}", bucket, name)
        return obj_of(item)

    async def download(self, container: str, name: str, target: Path) -> Obj:
        """Stream one object into ``target``; its resource."""
        obj = await self.get(container, name)
        try:
            await self.fs._get_file(f"{container}/{name}", str(target))
        except Exception as exc:
            raise gcs_error("Download", gs_uri(container, name), exc) from exc
        return obj

    async def upload(self, source: Path, container: str, name: str, **options: Any) -> Obj:
        """Stream a local file to an object (resumable past one chunk); its resource."""
        try:
            await self.fs._put_file(
                str(source), f"{container}/{name}", chunksize=UPLOAD_CHUNK, **options
            )
        except Exception as exc:
            raise gcs_error("Upload", gs_uri(container, name), exc) from exc
        return await self.get(container, name)

    async def delete(self, container: str, name: str) -> bool:
        """Whether the object existed (Kestra's ``Storage.delete``)."""
        try:
            await self.fs._request("DELETE", "b/{}/o/{}", container, name)
        except FileNotFoundError:
            return False
        except Exception as exc:
            raise gcs_error("Delete", gs_uri(container, name), exc) from exc
        return True

    async def copy(self, source: Obj, container: str, name: str) -> Obj:
        """A server-side rewrite (in several calls for large objects)."""
        what = f"{gs_uri(source.container, source.name)} to {gs_uri(container, name)}"
        token: str | None = None
        while True:
            answer = await self.call(
                "Copy",
                what,
                "POST",
                "b/{}/o/{}/rewriteTo/b/{}/o/{}",
                source.container,
                source.name,
                container,
                name,
                rewriteToken=token,
            )
            if answer.get("done"):
                return obj_of(answer["resource"])
            token = answer.get("rewriteToken")


def _credentials(settings: GcsSettings, emulator: str | None) -> Any:
    """google-auth credentials, or None (anonymous, for an emulator)."""
    import google.auth
    from google.auth import impersonated_credentials
    from google.oauth2 import service_account

    creds: Any
    if settings.service_account is not None:
        try:
            creds = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                settings.service_account, scopes=settings.scopes or None
            )
        except (ValueError, KeyError) as exc:
            raise TaskError(f"property 'serviceAccount': {error_message(exc)}") from exc
    elif emulator:
        return None
    else:
        try:
            creds, _ = google.auth.default(scopes=settings.scopes or None)
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise TaskError(f"no Google credentials: set 'serviceAccount' ({exc})") from exc
    if settings.impersonate:
        creds = impersonated_credentials.Credentials(  # type: ignore[no-untyped-call]
            source_credentials=creds,
            target_principal=settings.impersonate,
            target_scopes=settings.scopes,
            lifetime=IMPERSONATION_LIFETIME_S,
        )
    return creds


def _refresh(creds: Any) -> None:
    import google.auth.transport.requests

    creds.refresh(google.auth.transport.requests.Request())


async def refreshed_credentials(
    ctx: TaskContext, settings: GcsSettings, anonymous: bool
) -> Any | None:
    """google-auth credentials holding a fresh token (a task secret from now on), or None when
    ``anonymous`` (an emulator) and no ``serviceAccount`` is set. Shared by every GCP family."""
    creds = await asyncio.to_thread(_credentials, settings, "anonymous" if anonymous else None)
    if creds is None:
        return None
    try:
        await asyncio.wait_for(asyncio.to_thread(_refresh, creds), TOKEN_TIMEOUT_S)
    except TimeoutError as exc:
        raise TaskError(
            f"Google OAuth token request: no answer in {TOKEN_TIMEOUT_S:.0f} s"
        ) from exc
    except Exception as exc:  # google.auth.exceptions.RefreshError, a refused connection
        raise TaskError(f"Google OAuth token request failed: {error_message(exc)}") from exc
    ctx.secrets = ctx.secrets | {creds.token}
    return creds


@contextlib.asynccontextmanager
async def connect(ctx: TaskContext, settings: GcsSettings) -> AsyncIterator[Gcs]:
    """A connection for the block (its HTTP session closed after)."""
    import gcsfs.core

    emulator = os.environ.get(EMULATOR_ENV, "").strip() or None
    if emulator and not emulator.startswith(("http://", "https://")):
        emulator = f"http://{emulator}"
    creds = await refreshed_credentials(ctx, settings, anonymous=emulator is not None)
    fs = gcsfs.core.GCSFileSystem(
        project=settings.project or "",
        token=creds if creds is not None else "anon",
        asynchronous=True,
        skip_instance_cache=True,
        endpoint_url=emulator,
    )
    fs.retries = RETRIES
    try:
        yield Gcs(fs)
    finally:
        session = fs._session
        if session is not None and not session.closed:
            await session.close()
