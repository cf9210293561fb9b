"""One S3 connection (s3fs on aiobotocore): Kestra's connection properties, streamed transfers.

Connection (Kestra's ``AbstractConnection``): ``accessKeyId`` + ``secretKeyId`` (+
``sessionToken``) when both are set, else botocore's default chain (environment, profile,
instance role); ``stsRoleArn`` (+ ``stsRoleExternalId``, ``stsRoleSessionName``,
``stsRoleSessionDuration`` (PT15M), ``stsEndpointOverride``) assumes that role with those
credentials first; ``region``; ``endpointOverride`` (an S3-compatible server; a link-local
address (169.254.0.0/16, the cloud metadata service) is refused, as Kestra does);
``forcePathStyle`` (path-style addressing). ``compatibilityMode`` only chose Kestra's HTTP
client and is accepted and ignored.

Every S3 error becomes a TaskError that names the operation and the object and carries the
server's answer (``SignatureDoesNotMatch``, ``NoSuchBucket``...). Credentials never appear in
it: they are the task's secrets, masked in every log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from executors.base import TaskContext, TaskError, error_message
from executors.plugin import render_bool, render_seconds, render_str

# Upload parts: 8 MiB (S3's minimum is 5 MiB), at most 4 in flight: a task holds at most
# ~32 MiB of a file in memory whatever its size (s3fs's defaults are 50 MiB x 10).
PART_BYTES = 8 * 1024 * 1024
PART_CONCURRENCY = 4
# A download is read from the response in chunks of this size.
READ_CHUNK = 1024 * 1024
# Kestra's AWS_MIN_STS_ROLE_SESSION_DURATION.
STS_DEFAULT_DURATION_S = 900.0
# Connecting to the endpoint; Kestra's Apache client waits 10 s.
CONNECT_TIMEOUT_S = 10.0


@dataclass(slots=True)
class S3Settings:
    """The rendered connection properties."""

    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    region: str | None = None
    endpoint: str | None = None
    path_style: bool = False
    role_arn: str | None = None
    role_external_id: str | None = None
    role_session_name: str | None = None
    role_duration_s: float = STS_DEFAULT_DURATION_S
    sts_endpoint: str | None = None


def render_settings(ctx: TaskContext, task: Any) -> S3Settings:
    """The connection properties of a task or trigger (Kestra's names)."""

    def text(name: str) -> str | None:
        return render_str(ctx, getattr(task, name, None), name) or None

    settings = S3Settings(
        access_key=text("accessKeyId"),
        secret_key=text("secretKeyId"),
        session_token=text("sessionToken"),
        region=text("region"),
        endpoint=text("endpointOverride"),
        path_style=render_bool(ctx, getattr(task, "forcePathStyle", None), "forcePathStyle"),
        role_arn=text("stsRoleArn"),
        role_external_id=text("stsRoleExternalId"),
        role_session_name=text("stsRoleSessionName"),
        sts_endpoint=text("stsEndpointOverride"),
    )
    duration = render_seconds(ctx, getattr(task, "stsRoleSessionDuration", None), "stsRole")
    if duration:
        settings.role_duration_s = duration
    for secret in (settings.secret_key, settings.session_token, settings.access_key):
        if secret:
            ctx.secrets = ctx.secrets | {secret}
    for name, url in (
        ("endpointOverride", settings.endpoint),
        ("stsEndpointOverride", settings.sts_endpoint),
    ):
        if url:
            _check_endpoint(name, url)
    return settings


def _check_endpoint(name: str, url: str) -> None:
    parsed = urlparse(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise TaskError(f"property '{name}': {url!r} is not an http(s) URL")
    try:
        infos = socket.getaddrinfo(parsed.hostname, None)
    except OSError:
        return  # an unknown host fails at the first request, with its own message
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address.version == 4 and address in ipaddress.ip_network("169.254.0.0/16"):
            raise TaskError(
                f"Endpoint override '{url}' resolves to a link-local address (169.254.0.0/16), "
                "which is used by cloud instance-metadata services and is not allowed for "
                "security reasons."
            )


class S3:
    """An open connection; use :func:`connect`."""

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    async def call(self, operation: str, what: str, **params: Any) -> dict[str, Any]:
        """One S3 API call; a failure is a TaskError with the server's answer."""
        clean = {k: v for k, v in params.items() if v is not None}
        try:
            result: dict[str, Any] = await self.fs._call_s3(operation, **clean)
        except Exception as exc:
            raise s3_error(operation, what, exc) from exc
        return result

    async def download(self, bucket: str, key: str, target: Path, **params: Any) -> dict[str, Any]:
        """Stream one object into ``target``; the GetObject response (without its body)."""
        response = await self.call(
            "get_object", f"s3://{bucket}/{key}", Bucket=bucket, Key=key, **params
        )
        body = response.pop("Body")
        try:
            with target.open("wb") as handle:
                while True:
                    chunk = await body.read(READ_CHUNK)
                    if not chunk:
                        break
                    await asyncio.to_thread(handle.write, chunk)
        except OSError as exc:
            raise TaskError(f"S3 GetObject s3://{bucket}/{key}: {error_message(exc)}") from exc
        finally:
            body.close()
        return response

    async def upload(self, source: Path, bucket: str, key: str, **params: Any) -> dict[str, Any]:
        """Stream a local file to an object (multipart past 16 MiB); its HeadObject answer."""
        clean = {k: v for k, v in params.items() if v is not None}
        what = f"s3://{bucket}/{key}"
        try:
            await self.fs._put_file(
                str(source),
                f"{bucket}/{key}",
                chunksize=PART_BYTES,
                max_concurrency=PART_CONCURRENCY,
                **clean,
            )
        except Exception as exc:
            raise s3_error("put_object", what, exc) from exc
        head = {k: clean[k] for k in ("RequestPayer", "ExpectedBucketOwner") if k in clean}
        return await self.call("head_object", what, Bucket=bucket, Key=key, **head)

    async def list(self, bucket: str, max_keys: int, **params: Any) -> list[dict[str, Any]]:
        """ListObjectsV2 pages until ``max_keys`` objects (Kestra's total cap) or the end."""
        out: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = await self.call(
                "list_objects_v2",
                f"s3://{bucket}",
                Bucket=bucket,
                MaxKeys=min(max_keys, 1000) or 1,
                ContinuationToken=token,
                **params,
            )
            out.extend(page.get("Contents") or [])
            if len(out) >= max_keys or not page.get("IsTruncated"):
                break
            token = page.get("NextContinuationToken")
            if not token:
                break
        return out[:max_keys]


def s3_error(operation: str, what: str, exc: BaseException) -> TaskError:
    name = "".join(part.capitalize() for part in operation.split("_"))
    text = error_message(exc)
    return TaskError(f"S3 {name} {what} failed: {text}")


async def _assume_role(settings: S3Settings) -> tuple[str, str, str]:
    from aiobotocore.session import get_session

    session = get_session()
    kwargs: dict[str, Any] = {"region_name": settings.region}
    if settings.access_key and settings.secret_key:
        kwargs.update(
            aws_access_key_id=settings.access_key,
            aws_secret_access_key=settings.secret_key,
            aws_session_token=settings.session_token,
        )
    if settings.sts_endpoint:
        kwargs["endpoint_url"] = settings.sts_endpoint.strip()
    name = (
        settings.role_session_name or f"kestra-plugin-s3-{int(asyncio.get_running_loop().time())}"
    )
    try:
        async with session.create_client("sts", **kwargs) as sts:
            params: dict[str, Any] = {
                "RoleArn": settings.role_arn,
                "RoleSessionName": name,
                "DurationSeconds": int(settings.role_duration_s),
            }
            if settings.role_external_id:
                params["ExternalId"] = settings.role_external_id
            answer = await sts.assume_role(**params)
    except Exception as exc:
        raise TaskError(f"STS AssumeRole {settings.role_arn} failed: {error_message(exc)}") from exc
    creds = answer["Credentials"]
    return creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]


@contextlib.asynccontextmanager
async def connect(ctx: TaskContext, settings: S3Settings) -> AsyncIterator[S3]:
    """An S3 connection for the duration of the block (its HTTP session closed after)."""
    import s3fs

    key, secret, token = settings.access_key, settings.secret_key, settings.session_token
    if settings.role_arn:
        key, secret, token = await _assume_role(settings)
        ctx.secrets = ctx.secrets | {secret, token}
    config: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S}
    if settings.path_style:
        config["s3"] = {"addressing_style": "path"}
    client: dict[str, Any] = {}
    if settings.region:
        client["region_name"] = settings.region
    have_keys = bool(key and secret)
    fs = s3fs.S3FileSystem(
        key=key if have_keys else None,
        secret=secret if have_keys else None,
        token=token if have_keys else None,
        endpoint_url=settings.endpoint.strip() if settings.endpoint else None,
        client_kwargs=client,
        config_kwargs=config,
        asynchronous=True,
        skip_instance_cache=True,
        cache_regions=False,
    )
    s3client = await fs.set_session()
    try:
        yield S3(fs)
    finally:
        await s3client.close()
