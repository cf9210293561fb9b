"""One Azure Blob Storage connection: Kestra's connection properties on the Azure SDK's async
client (``azure-storage-blob``, the SDK adlfs is built on).

Connection (Kestra's ``BlobService.client``, in this order): ``endpoint`` (the service URL,
``https://<account>.blob.core.windows.net``; Azurite's is ``http://host:port/<account>``),
then ``connectionString`` when set (it carries its own endpoint, which wins), else
``sharedKeyAccountName`` + ``sharedKeyAccountAccessKey`` (Shared Key signing), else
``sasToken`` (appended to every request), else Azure's default credential chain
(``DefaultAzureCredential``: environment, workload or managed identity, Azure CLI).

Why the SDK and not adlfs's file-system calls: every operation Kestra names is an SDK call
(tags, tiers, legal hold, immutability, SAS, copy from URL), and adlfs's own calls hide the
server's answer (listing a missing container returns nothing, a missing blob is a bare
``FileNotFoundError``) and reach only ``https://`` endpoints with a key.

Every service error becomes a TaskError naming the operation and the blob, with the server's
message and error code (``AuthorizationFailure``, ``ContainerNotFound``, ``BlobNotFound``).
The credentials are the task's secrets (masked in every log line and error), and so is the
signature of a SAS token.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from executors.base import TaskContext, TaskError, error_message
from executors.plugin import render_str
from executors.remote.objects import Obj

# The SDK's default retries 10 times from 15 s apart: a wrong endpoint would hang a task for
# minutes. Three tries 2 s, 4 s apart still ride out a throttled or restarting server.
RETRY_TOTAL = 3
RETRY_BACKOFF_S = 2
# Kestra lists with a 30 s timeout per page.
LIST_TIMEOUT_S = 30
# Kestra's Copy signs its source URL for 15 minutes.
COPY_SAS_TTL = timedelta(minutes=15)
# A copy within one account completes at once; another account's copy is polled this often,
# this long.
COPY_POLL_S = 0.5
COPY_TIMEOUT_S = 3600.0
# Downloads and uploads move 4 MiB blocks, at most this many in flight.
TRANSFER_CONCURRENCY = 4


@dataclass(slots=True)
class AzureSettings:
    endpoint: str | None = None
    connection_string: str | None = None
    account_name: str | None = None
    account_key: str | None = None
    sas_token: str | None = None


def render_settings(ctx: TaskContext, task: Any) -> AzureSettings:
    """The rendered connection properties of a task or trigger (Kestra's names)."""

    def text(name: str) -> str | None:
        value = render_str(ctx, getattr(task, name, None), name)
        return value.strip() if value and value.strip() else None

    settings = AzureSettings(
        endpoint=text("endpoint"),
        connection_string=text("connectionString"),
        account_name=text("sharedKeyAccountName"),
        account_key=text("sharedKeyAccountAccessKey"),
        sas_token=text("sasToken"),
    )
    secrets = {settings.connection_string, settings.account_key, settings.sas_token}
    for part in (settings.connection_string or "").split(";"):
        key, _, value = part.partition("=")
        if key.strip() in ("AccountKey", "SharedAccessSignature") and value:
            secrets.add(value.strip())
            secrets |= _signatures(value)
    secrets |= _signatures(settings.sas_token)
    ctx.secrets = ctx.secrets | {s for s in secrets if s}
    return settings


def _signatures(sas: str | None) -> set[str]:
    """A SAS token's signature, as written and URL-encoded (it may appear either way)."""
    if not sas:
        return set()
    out: set[str] = set()
    for value in parse_qs(sas.lstrip("?")).get("sig", []):
        out |= {value, quote(value, safe=""), quote(value)}
    return out


def azure_error(operation: str, what: str, exc: BaseException) -> TaskError:
    from azure.core.exceptions import HttpResponseError

    if isinstance(exc, HttpResponseError):
        first = (exc.message or str(exc) or "").strip().splitlines()
        text = first[0] if first else type(exc).__name__
        code = getattr(exc, "error_code", None)
        code = getattr(code, "value", code)
        status = exc.status_code
        suffix = f" ({status} {code})" if code else f" ({status})" if status else ""
        return TaskError(f"Azure Blob Storage {operation} {what} failed: {text}{suffix}")
    return TaskError(f"Azure Blob Storage {operation} {what} failed: {error_message(exc)}")


def _obj(container: str, item: Any) -> Obj:
    """An Obj of the SDK's ``BlobProperties`` (or of a ``BlobPrefix``: a directory)."""
    if type(item).__name__ == "BlobPrefix":  # the sync and async SDKs each have their class
        return Obj(container, item.name, is_dir=True)
    settings = getattr(item, "content_settings", None)
    md5 = getattr(settings, "content_md5", None) if settings is not None else None
    return Obj(
        container,
        item.name,
        size=item.size,
        etag=item.etag,
        modified=item.last_modified,
        md5=bytes(md5) if md5 else None,
        props={"contentType": getattr(settings, "content_type", None)},
    )


class AzureBlobs:
    """An open connection; use :func:`connect`."""

    scheme = "az"

    def __init__(self, client: Any, settings: AzureSettings) -> None:
        self.client = client
        self.settings = settings

    def blob(self, container: str, name: str) -> Any:
        return self.client.get_blob_client(container, name)

    async def call(self, operation: str, what: str, coro: Any) -> Any:
        try:
            return await coro
        except TaskError:
            raise
        except Exception as exc:
            raise azure_error(operation, what, exc) from exc

    async def list(
        self, container: str, prefix: str | None, delimiter: str | None, **options: Any
    ) -> list[Obj]:
        """Kestra's ``BlobService.list``: every blob (and, with a delimiter, every prefix)."""
        client = self.client.get_container_client(container)
        what = f"az://{container}/{prefix or ''}"

        async def collect() -> list[Obj]:
            if delimiter:
                pages = client.walk_blobs(
                    name_starts_with=prefix or None, delimiter=delimiter, timeout=LIST_TIMEOUT_S
                )
            else:
                pages = client.list_blobs(name_starts_with=prefix or None, timeout=LIST_TIMEOUT_S)
            return [_obj(container, item) async for item in pages]

        result: list[Obj] = await self.call("ListBlobs", what, collect())
        return result

    async def properties(self, container: str, name: str) -> Obj:
        props = await self.call(
            "GetBlobProperties",
            f"az://{container}/{name}",
            self.blob(container, name).get_blob_properties(),
        )
        obj = _obj(container, props)
        obj.name = name
        return obj

    async def download(self, container: str, name: str, target: Path) -> Obj:
        """Stream one blob into ``target`` (4 MiB ranges); the blob's properties."""
        what = f"az://{container}/{name}"

        async def run() -> Any:
            stream = await self.blob(container, name).download_blob(
                max_concurrency=TRANSFER_CONCURRENCY
            )
            with target.open("wb") as handle:
                async for chunk in stream.chunks():
                    await asyncio.to_thread(handle.write, chunk)
            return stream.properties

        props = await self.call("GetBlob", what, run())
        obj = _obj(container, props)
        obj.name = name
        return obj

    async def upload(self, source: Path, container: str, name: str, **options: Any) -> Obj:
        """Stream a local file to a block blob (overwriting); the blob's properties."""
        what = f"az://{container}/{name}"

        async def run() -> None:
            with source.open("rb") as handle:
                await self.blob(container, name).upload_blob(
                    handle, overwrite=True, max_concurrency=TRANSFER_CONCURRENCY, **options
                )

        await self.call("PutBlob", what, run())
        return await self.properties(container, name)

    async def delete(self, container: str, name: str) -> bool:
        await self.call(
            "DeleteBlob", f"az://{container}/{name}", self.blob(container, name).delete_blob()
        )
        return True

    def sas(
        self,
        container: str,
        name: str,
        permission: Any,
        expiry: datetime,
        start: datetime | None = None,
    ) -> str:
        """A service SAS for one blob, signed with the account key (Kestra's
        ``generateSas``); without a key there is nothing to sign with."""
        from azure.storage.blob import generate_blob_sas

        credential = self.client.credential
        key = getattr(credential, "account_key", None)
        account = getattr(credential, "account_name", None) or self.client.account_name
        if not key or not account:
            raise TaskError(
                "a shared access signature is signed with the account key: use a "
                "connectionString with an AccountKey, or sharedKeyAccountName and "
                "sharedKeyAccountAccessKey"
            )
        token: str = generate_blob_sas(
            account,
            container,
            name,
            account_key=key,
            permission=permission,
            expiry=expiry,
            start=start,
        )
        return token

    async def copy(self, source: Obj, container: str, name: str) -> Obj:
        """Kestra's Copy: the destination copies from the source's URL, signed for 15
        minutes with a read SAS when the connection has the account key."""
        from azure.storage.blob import BlobSasPermissions

        src = self.blob(source.container, source.name)
        url = src.url
        if getattr(self.client.credential, "account_key", None):
            now = datetime.now(UTC)
            token = self.sas(
                source.container,
                source.name,
                BlobSasPermissions(read=True),
                now + COPY_SAS_TTL,
                now - timedelta(minutes=1),
            )
            url = f"{src.url.split('?', 1)[0]}?{token}"
        what = f"az://{source.container}/{source.name} to az://{container}/{name}"
        target = self.blob(container, name)
        answer = await self.call("CopyBlob", what, target.start_copy_from_url(url))
        status = answer.get("copy_status")
        deadline = asyncio.get_running_loop().time() + COPY_TIMEOUT_S
        while status == "pending":
            if asyncio.get_running_loop().time() > deadline:
                raise TaskError(f"Azure Blob Storage CopyBlob {what}: still pending after 1 h")
            await asyncio.sleep(COPY_POLL_S)
            props = await self.call("GetBlobProperties", what, target.get_blob_properties())
            status = props.copy.status
        if status not in (None, "success"):
            raise TaskError(f"Azure Blob Storage CopyBlob {what} failed: copy status {status}")
        return await self.properties(container, name)


def _retry() -> Any:
    from azure.storage.blob.aio import ExponentialRetry

    return ExponentialRetry(
        initial_backoff=RETRY_BACKOFF_S, increment_base=2, retry_total=RETRY_TOTAL
    )


@contextlib.asynccontextmanager
async def connect(ctx: TaskContext, settings: AzureSettings) -> AsyncIterator[AzureBlobs]:
    """A connection for the block (its HTTP session and credential closed after)."""
    from azure.storage.blob.aio import BlobServiceClient

    credential_to_close: Any = None
    try:
        if settings.connection_string:
            client = BlobServiceClient.from_connection_string(
                settings.connection_string, retry_policy=_retry()
            )
        else:
            if not settings.endpoint:
                raise TaskError("property 'endpoint' is required (or give a connectionString)")
            credential: Any
            if settings.account_name and settings.account_key:
                credential = {
                    "account_name": settings.account_name,
                    "account_key": settings.account_key,
                }
            elif settings.sas_token:
                credential = settings.sas_token.lstrip("?")
            else:
                from azure.identity.aio import DefaultAzureCredential

                credential = credential_to_close = DefaultAzureCredential()
            client = BlobServiceClient(
                settings.endpoint, credential=credential, retry_policy=_retry()
            )
    except Exception as exc:
        if credential_to_close is not None:
            await credential_to_close.close()
        if isinstance(exc, TaskError):
            raise
        # A malformed connection string or endpoint, a token credential over plain HTTP.
        raise TaskError(f"Azure Blob Storage connection: {error_message(exc)}") from exc
    try:
        async with client:
            yield AzureBlobs(client, settings)
    finally:
        if credential_to_close is not None:
            await credential_to_close.close()
