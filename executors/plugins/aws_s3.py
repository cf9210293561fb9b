"""Kestra's S3 tasks (``io.kestra.plugin.aws.s3.*``) on :mod:`executors.remote.s3`.

What Kestra does (kestra-io/plugin-aws, AWS SDK v2), and what this module ports; every type
has the connection properties of :mod:`executors.remote.s3` and, but Copy and CreateBucket,
``bucket`` (required) and ``requestPayer``:

- ``Upload``: ``from`` (a ``kestra://`` URI, a list of them, a map of relative key -> URI, or
  the JSON text of a list or map; an empty one is an error), ``key`` (required: the object key
  for one file, the base prefix for several, each then at ``<key>/<name>``: the map's key or
  the URI's file name), ``metadata``, ``cacheControl``, ``contentType`` (default: guessed from
  the name), ``contentEncoding``, ``contentDisposition``, ``contentLanguage``,
  ``contentLength``, ``expires``, ``acl``, ``storageClass``, ``serverSideEncryption``,
  ``bucketKeyEnabled``, ``checksumAlgorithm`` + ``checksum``, ``expectedBucketOwner``,
  ``objectLockMode``, ``objectLockLegalHoldStatus``, ``objectLockRetainUntilDate``,
  ``tagging``, ``concurrentUploads`` (50). Outputs ``bucket``, ``key``, ``eTag``,
  ``versionId`` (one file) or ``files`` (key -> ``{eTag, versionId, contentLength}``).
  Metrics ``file.count``, ``file.size``.
- ``Download``: ``key`` for one object (``versionId``, ``expectedBucketOwner``,
  ``validateChecksum``): outputs ``uri``, ``eTag``, ``contentLength``, ``contentType``,
  ``metadata``, ``versionId``, ``checksumAlgorithm``, ``checksumValue``; or, with ``prefix``,
  ``delimiter`` or ``regexp``, every listed file (``maxKeys`` 1000, ``maxFiles`` 25, ``marker``)
  into ``files`` (key -> the same fields). Neither: "Invalid configuration" error.
- ``Downloads``: lists (``prefix``, ``delimiter``, ``marker``, ``encodingType``, ``maxKeys``
  1000, ``expectedBucketOwner``, ``regexp``, ``filter`` BOTH, ``maxFiles`` 25), downloads
  each, then ``action`` MOVE (to ``moveTo.bucket`` (default: the same) ``/ moveTo.key /
  <file name>``, then the source is deleted) / DELETE / NONE. Outputs ``objects`` (the listed
  objects with ``uri``; keys ending in ``/`` left out) and ``outputFiles`` (key -> URI).
- ``List``: the listing above (``maxFiles`` 25, with a warning when it truncates). Output
  ``objects``: ``key``, ``etag``, ``size``, ``lastModified``, ``owner``. Metric
  ``s3.objects.count``.
- ``Delete``: ``key`` (required), ``bypassGovernanceRetention``, ``mfa``. Outputs
  ``versionId``, ``deleteMarker``, ``requestCharged``.
- ``DeleteList``: the listing, every object deleted (``concurrent`` >= 2 deletes in
  parallel), ``errorOnEmpty`` (false). Outputs ``count``, ``size``.
- ``Copy``: ``from`` {``bucket``, ``key``, ``versionId``}, ``to`` {``bucket``, ``key`` (default:
  the source's), ``serverSideEncryption``, ``kmsKeyId``}, ``delete`` (false: delete the
  source after). Outputs ``bucket``, ``key``, ``eTag``.
- ``CreateBucket``: ``bucket``, ``acl``, ``grant*``, ``objectLockEnabledForBucket``. Outputs
  ``bucket``, ``region``.

What differs: Copy is one CopyObject call (S3 copies at most 5 GB that way; Kestra's transfer
manager splits bigger ones). CreateBucket sends the region as the location constraint when it
is not us-east-1 (the SDK call without it fails outside us-east-1). Upload's ``checksum`` is
sent with ``checksumAlgorithm`` for a single-part upload; multipart uploads (past 16 MiB) are
checksummed per part by botocore. ``validateChecksum`` asks S3 for the stored checksum and
botocore verifies the bytes, as the SDK does.

The polling ``Trigger`` is in :mod:`executors.plugins.aws_s3_trigger`.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Literal

from pydantic import Field

from executors.base import TaskContext, TaskError, TaskOutcome
from executors.plugin import TaskPlugin, render_bool, render_int, render_map, render_str
from executors.remote import common as c
from executors.remote.s3 import S3, connect, render_settings
from schemas.flow.common import BoolOrExpr, Duration, FlowModel, IntOrExpr, Str

FILTERS = ("FILES", "DIRECTORY", "BOTH")
ACTIONS = ("MOVE", "DELETE", "NONE")


class S3Connection(FlowModel):
    """Kestra's ``AbstractConnection`` properties (shared by the tasks and the trigger)."""

    region: Str | None = None
    endpointOverride: Str | None = None
    compatibilityMode: BoolOrExpr | None = None
    forcePathStyle: BoolOrExpr | None = None
    accessKeyId: Str | None = None
    secretKeyId: Str | None = None
    sessionToken: Str | None = None
    stsRoleArn: Str | None = None
    stsRoleExternalId: Str | None = None
    stsRoleSessionName: Str | None = None
    stsEndpointOverride: Str | None = None
    stsRoleSessionDuration: Duration | None = None


class ListProperties(FlowModel):
    """Kestra's ``ListInterface`` (List, Downloads, DeleteList, Trigger)."""

    prefix: Str | None = None
    delimiter: Str | None = None
    marker: Str | None = None
    encodingType: Str | None = None
    maxKeys: IntOrExpr = 1000
    expectedBucketOwner: Str | None = None
    regexp: Str | None = None
    filter: Str | None = "BOTH"


class CopyObject(FlowModel):
    bucket: Str | None = None
    key: Str | None = None
    serverSideEncryption: Str | None = None
    kmsKeyId: Str | None = None


class CopyObjectFrom(CopyObject):
    versionId: Str | None = None


class _S3Task(TaskPlugin, S3Connection):
    family: ClassVar[str] = "aws"


class _S3Object(_S3Task):
    bucket: Str
    requestPayer: Str | None = None

    def bucket_name(self, ctx: TaskContext) -> str:
        name = render_str(ctx, self.bucket, "bucket", required=True)
        assert name is not None
        return name


def s3_object(item: dict[str, Any]) -> dict[str, Any]:
    """Kestra's ``S3Object`` of one ListObjectsV2 entry."""
    owner = item.get("Owner")
    return c.drop_none(
        {
            "key": item.get("Key"),
            "etag": item.get("ETag"),
            "size": item.get("Size"),
            "lastModified": c.iso(item.get("LastModified")),
            "owner": c.drop_none({"id": owner.get("ID"), "displayName": owner.get("DisplayName")})
            if isinstance(owner, dict)
            else None,
        }
    )


def checksum_of(response: dict[str, Any]) -> tuple[str | None, str | None]:
    for algorithm, field in (
        ("SHA256", "ChecksumSHA256"),
        ("SHA1", "ChecksumSHA1"),
        ("CRC32", "ChecksumCRC32"),
        ("CRC32C", "ChecksumCRC32C"),
    ):
        if response.get(field):
            return algorithm, str(response[field])
    return None, None


async def list_objects(
    s3: S3, ctx: TaskContext, bucket: str, props: ListProperties, payer: str | None
) -> list[dict[str, Any]]:
    """Kestra's ``S3Service.list``: the listing, filtered by ``regexp`` and ``filter``."""
    max_keys = c.render_max(ctx, props.maxKeys, "maxKeys", 1000)
    pattern = c.compile_regex(render_str(ctx, props.regexp, "regexp"), "regexp")
    kind = c.render_choice(ctx, props.filter, "filter", FILTERS) or "BOTH"
    items = await s3.list(
        bucket,
        max_keys,
        Prefix=render_str(ctx, props.prefix, "prefix"),
        Delimiter=render_str(ctx, props.delimiter, "delimiter"),
        StartAfter=render_str(ctx, props.marker, "marker"),
        EncodingType=render_str(ctx, props.encodingType, "encodingType"),
        ExpectedBucketOwner=render_str(ctx, props.expectedBucketOwner, "expectedBucketOwner"),
        RequestPayer=payer,
    )
    out = []
    for item in items:
        key = str(item.get("Key", ""))
        directory = key.endswith("/")
        if not c.matches(pattern, key):
            continue
        if (kind == "FILES" and directory) or (kind == "DIRECTORY" and not directory):
            continue
        out.append(s3_object(item))
    return out


def truncate(ctx: TaskContext, items: list[Any], max_files: int, what: str) -> list[Any]:
    if len(items) > max_files:
        ctx.log(
            "WARN",
            f"Listing returned {len(items)} {what} but maxFiles limit is {max_files}. Only the "
            f"first {max_files} {what} will be returned. Increase the maxFiles property if you "
            f"need more {what}.",
        )
        return items[:max_files]
    return items


async def download_object(
    s3: S3, ctx: TaskContext, bucket: str, key: str, **params: Any
) -> dict[str, Any]:
    """One object into internal storage: Kestra's ``FileInfo`` fields with its ``uri``."""
    async with c.staged(ctx, key) as path:
        response = await s3.download(bucket, key, path, **params)
        uri = await c.store(ctx, path, key)
    if params.get("ChecksumMode") == "ENABLED" and checksum_of(response)[0] is None:
        ctx.log(
            "WARN",
            f"Checksum validation requested for key '{key}' but the object has no stored "
            "checksum; transfer was not verified.",
        )
    algorithm, value = checksum_of(response)
    return c.drop_none(
        {
            "uri": uri,
            "eTag": response.get("ETag"),
            "contentLength": response.get("ContentLength"),
            "contentType": response.get("ContentType"),
            "metadata": response.get("Metadata"),
            "versionId": response.get("VersionId"),
            "checksumAlgorithm": algorithm,
            "checksumValue": value,
        }
    )


async def perform_action(
    s3: S3,
    ctx: TaskContext,
    bucket: str,
    keys: list[str],
    action: str | None,
    move_to: CopyObject | None,
) -> None:
    """Kestra's ``S3Service.performAction``: MOVE (copy to ``moveTo`` then delete) or DELETE."""
    if action == "DELETE":
        for key in keys:
            await s3.call("delete_object", f"s3://{bucket}/{key}", Bucket=bucket, Key=key)
    elif action == "MOVE":
        if move_to is None or move_to.key is None:
            raise TaskError("property 'moveTo': the MOVE action needs moveTo.key")
        prefix = (render_str(ctx, move_to.key, "moveTo.key") or "").rstrip("/")
        target_bucket = render_str(ctx, move_to.bucket, "moveTo.bucket") or bucket
        for key in keys:
            target = f"{prefix}/{c.file_name(key)}"
            await s3.call(
                "copy_object",
                f"s3://{bucket}/{key} to s3://{target_bucket}/{target}",
                CopySource={"Bucket": bucket, "Key": key},
                Bucket=target_bucket,
                Key=target,
            )
            await s3.call("delete_object", f"s3://{bucket}/{key}", Bucket=bucket, Key=key)


class Upload(_S3Object):
    """Upload files from internal storage to an S3 bucket."""

    type: Literal["io.kestra.plugin.aws.s3.Upload"]
    from_: Any = Field(alias="from")
    key: Str
    metadata: dict[str, Any] | Str | None = None
    cacheControl: Str | None = None
    contentType: Str | None = None
    contentEncoding: Str | None = None
    contentDisposition: Str | None = None
    contentLanguage: Str | None = None
    contentLength: IntOrExpr | None = None
    expires: Str | None = None
    acl: Str | None = None
    storageClass: Str | None = None
    serverSideEncryption: Str | None = None
    bucketKeyEnabled: BoolOrExpr | None = None
    checksumAlgorithm: Str | None = None
    checksum: Str | None = None
    expectedBucketOwner: Str | None = None
    objectLockMode: Str | None = None
    objectLockLegalHoldStatus: Str | None = None
    objectLockRetainUntilDate: Str | None = None
    tagging: dict[str, Any] | Str | None = None
    concurrentUploads: IntOrExpr = 50

    def _params(self, ctx: TaskContext) -> dict[str, Any]:
        def text(name: str) -> str | None:
            return render_str(ctx, getattr(self, name), name) or None

        params: dict[str, Any] = {
            "RequestPayer": text("requestPayer"),
            "CacheControl": text("cacheControl"),
            "ContentType": text("contentType"),
            "ContentEncoding": text("contentEncoding"),
            "ContentDisposition": text("contentDisposition"),
            "ContentLanguage": text("contentLanguage"),
            "ACL": text("acl"),
            "StorageClass": text("storageClass"),
            "ServerSideEncryption": text("serverSideEncryption"),
            "ExpectedBucketOwner": text("expectedBucketOwner"),
            "ObjectLockMode": text("objectLockMode"),
            "ObjectLockLegalHoldStatus": text("objectLockLegalHoldStatus"),
        }
        if self.metadata is not None:
            params["Metadata"] = {
                str(k): str(v) for k, v in render_map(ctx, self.metadata, "metadata").items()
            }
        if self.tagging is not None:
            from urllib.parse import urlencode

            tags = render_map(ctx, self.tagging, "tagging")
            params["Tagging"] = urlencode({str(k): str(v) for k, v in tags.items()})
        if self.bucketKeyEnabled is not None:
            params["BucketKeyEnabled"] = render_bool(ctx, self.bucketKeyEnabled, "bucketKeyEnabled")
        for name, field in (
            ("expires", "Expires"),
            ("objectLockRetainUntilDate", "ObjectLockRetainUntilDate"),
        ):
            value = text(name)
            if value:
                from datetime import datetime

                try:
                    params[field] = datetime.fromisoformat(value.replace("Z", "+00:00"))
                except ValueError as exc:
                    raise TaskError(f"property '{name}': {value!r} is not an instant") from exc
        algorithm = text("checksumAlgorithm")
        if algorithm:
            algorithm = algorithm.upper().replace("CRC32_C", "CRC32C")
            params["ChecksumAlgorithm"] = algorithm
            checksum = text("checksum")
            if checksum:
                params[f"Checksum{algorithm}"] = checksum
        return params

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        bucket = self.bucket_name(ctx)
        key = render_str(ctx, self.key, "key", required=True)
        assert key is not None
        files = c.parse_from(ctx, self.from_)
        if not files:
            raise TaskError(
                "No files to upload: the 'from' property contains an empty collection or array"
            )
        params = self._params(ctx)
        window = max(1, render_int(ctx, self.concurrentUploads, "concurrentUploads", 50) or 50)
        metrics = {"file.count": 0, "file.size": 0}
        async with connect(ctx, render_settings(ctx, self)) as s3:

            async def one(target: str, uri: str) -> dict[str, Any]:
                source = await c.source_path(ctx, uri)
                ctx.log("DEBUG", f"Uploading to '{target}'")
                head = await s3.upload(source, bucket, target, **params)
                metrics["file.count"] += 1
                metrics["file.size"] += source.stat().st_size
                return head

            if len(files) == 1:
                head = await one(key, files[0][1])
                outputs = c.drop_none(
                    {
                        "bucket": bucket,
                        "key": key,
                        "eTag": head.get("ETag"),
                        "versionId": head.get("VersionId"),
                    }
                )
                return TaskOutcome("SUCCESS", outputs, metrics=metrics)
            named = [(name or c.file_name(uri), uri) for name, uri in files]
            infos: dict[str, Any] = {}
            for start in range(0, len(named), window):
                batch = named[start : start + window]
                heads = await asyncio.gather(
                    *(one(f"{key.rstrip('/')}/{name}", uri) for name, uri in batch)
                )
                for (name, _), head in zip(batch, heads, strict=True):
                    infos[name] = c.drop_none(
                        {
                            "eTag": head.get("ETag"),
                            "versionId": head.get("VersionId"),
                            "contentLength": head.get("ContentLength"),
                        }
                    )
        outputs = {"bucket": bucket, "key": key, "files": infos}
        return TaskOutcome("SUCCESS", outputs, metrics=metrics)


class Download(_S3Object):
    """Download one object, or every object of a listing, to internal storage."""

    type: Literal["io.kestra.plugin.aws.s3.Download"]
    key: Str | None = None
    versionId: Str | None = None
    prefix: Str | None = None
    delimiter: Str | None = None
    marker: Str | None = None
    maxKeys: IntOrExpr = 1000
    regexp: Str | None = None
    maxFiles: IntOrExpr = 25
    expectedBucketOwner: Str | None = None
    validateChecksum: BoolOrExpr = False

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        bucket = self.bucket_name(ctx)
        many = self.prefix is not None or self.delimiter is not None or self.regexp is not None
        if not many and self.key is None:
            raise TaskError(
                "Invalid configuration: either specify 'key' for single file download or at "
                "least one filtering parameter (prefix, delimiter, regexp) for multiple files "
                "download"
            )
        params = {
            "RequestPayer": render_str(ctx, self.requestPayer, "requestPayer") or None,
            "ExpectedBucketOwner": render_str(ctx, self.expectedBucketOwner, "expectedBucketOwner")
            or None,
            "ChecksumMode": "ENABLED"
            if render_bool(ctx, self.validateChecksum, "validateChecksum")
            else None,
        }
        async with connect(ctx, render_settings(ctx, self)) as s3:
            if not many:
                key = render_str(ctx, self.key, "key", required=True)
                assert key is not None
                version = render_str(ctx, self.versionId, "versionId") or None
                return await download_object(s3, ctx, bucket, key, VersionId=version, **params)
            props = ListProperties(
                prefix=self.prefix,
                delimiter=self.delimiter,
                marker=self.marker,
                maxKeys=self.maxKeys,
                regexp=self.regexp,
                filter="FILES",
                expectedBucketOwner=self.expectedBucketOwner,
            )
            listed = await list_objects(s3, ctx, bucket, props, params["RequestPayer"])
            max_files = c.render_max(ctx, self.maxFiles, "maxFiles", 25)
            listed = truncate(ctx, listed, max_files, "files")
            if not listed:
                ctx.log("WARN", "No objects found matching the filter criteria")
            files = {
                item["key"]: await download_object(s3, ctx, bucket, item["key"], **params)
                for item in listed
            }
        return {"files": files}


class List(_S3Object, ListProperties):
    """List the objects of a bucket."""

    type: Literal["io.kestra.plugin.aws.s3.List"]
    maxFiles: IntOrExpr = 25

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        bucket = self.bucket_name(ctx)
        payer = render_str(ctx, self.requestPayer, "requestPayer") or None
        async with connect(ctx, render_settings(ctx, self)) as s3:
            listed = await list_objects(s3, ctx, bucket, self, payer)
        ctx.log("DEBUG", f"Found '{len(listed)}' keys on {bucket}")
        max_files = c.render_max(ctx, self.maxFiles, "maxFiles", 25)
        listed = truncate(ctx, listed, max_files, "files")
        return TaskOutcome(
            "SUCCESS", {"objects": listed}, metrics={"s3.objects.count": len(listed)}
        )


class Downloads(_S3Object, ListProperties):
    """Download every object of a listing, then move or delete them."""

    type: Literal["io.kestra.plugin.aws.s3.Downloads"]
    maxFiles: IntOrExpr = 25
    action: Str | None = None
    moveTo: CopyObject | None = None
    compatibilityMode: BoolOrExpr | None = None
    validateChecksum: BoolOrExpr = False

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        bucket = self.bucket_name(ctx)
        payer = render_str(ctx, self.requestPayer, "requestPayer") or None
        action = c.render_choice(ctx, self.action, "action", ACTIONS)
        checksum = (
            "ENABLED" if render_bool(ctx, self.validateChecksum, "validateChecksum") else None
        )
        async with connect(ctx, render_settings(ctx, self)) as s3:
            listed = await list_objects(s3, ctx, bucket, self, payer)
            max_files = c.render_max(ctx, self.maxFiles, "maxFiles", 25)
            listed = truncate(ctx, listed, max_files, "files")
            objects = []
            for item in listed:
                got = await download_object(
                    s3, ctx, bucket, item["key"], RequestPayer=payer, ChecksumMode=checksum
                )
                if not item["key"].endswith("/"):
                    objects.append(
                        c.drop_none(
                            {
                                **item,
                                "uri": got["uri"],
                                "checksumAlgorithm": got.get("checksumAlgorithm"),
                                "checksumValue": got.get("checksumValue"),
                            }
                        )
                    )
            await perform_action(s3, ctx, bucket, [i["key"] for i in listed], action, self.moveTo)
        size = sum(int(o.get("size") or 0) for o in objects)
        outputs = {"objects": objects, "outputFiles": {o["key"]: o["uri"] for o in objects}}
        return TaskOutcome(
            "SUCCESS", outputs, metrics={"files.count": len(objects), "files.size.total": size}
        )


class Delete(_S3Object):
    """Delete one object."""

    type: Literal["io.kestra.plugin.aws.s3.Delete"]
    key: Str
    bypassGovernanceRetention: BoolOrExpr | None = None
    mfa: Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        bucket = self.bucket_name(ctx)
        key = render_str(ctx, self.key, "key", required=True)
        bypass = (
            render_bool(ctx, self.bypassGovernanceRetention, "bypassGovernanceRetention")
            if self.bypassGovernanceRetention is not None
            else None
        )
        async with connect(ctx, render_settings(ctx, self)) as s3:
            answer = await s3.call(
                "delete_object",
                f"s3://{bucket}/{key}",
                Bucket=bucket,
                Key=key,
                BypassGovernanceRetention=bypass,
                MFA=render_str(ctx, self.mfa, "mfa") or None,
                RequestPayer=render_str(ctx, self.requestPayer, "requestPayer") or None,
            )
        return c.drop_none(
            {
                "versionId": answer.get("VersionId"),
                "deleteMarker": answer.get("DeleteMarker"),
                "requestCharged": answer.get("RequestCharged"),
            }
        )


class DeleteList(_S3Object, ListProperties):
    """Delete every object of a listing."""

    type: Literal["io.kestra.plugin.aws.s3.DeleteList"]
    concurrent: int | None = Field(default=None, ge=2)
    errorOnEmpty: BoolOrExpr = False

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        bucket = self.bucket_name(ctx)
        payer = render_str(ctx, self.requestPayer, "requestPayer") or None
        async with connect(ctx, render_settings(ctx, self)) as s3:
            listed = await list_objects(s3, ctx, bucket, self, payer)
            limit = asyncio.Semaphore(self.concurrent or 1)

            async def delete(item: dict[str, Any]) -> int:
                async with limit:
                    ctx.log("DEBUG", f"Deleting '{item['key']}'")
                    await s3.call(
                        "delete_object",
                        f"s3://{bucket}/{item['key']}",
                        Bucket=bucket,
                        Key=item["key"],
                    )
                    return int(item.get("size") or 0)

            sizes = await asyncio.gather(*(delete(item) for item in listed))
        count, size = len(sizes), sum(sizes)
        if count == 0 and render_bool(ctx, self.errorOnEmpty, "errorOnEmpty"):
            raise TaskError(
                f"Unable to find any files to delete on {bucket} with "
                f"regexp='{render_str(ctx, self.regexp, 'regexp')}', "
                f"prefix='{render_str(ctx, self.prefix, 'prefix')}'"
            )
        ctx.log("INFO", f"Deleted {count} keys for {size} bytes")
        return TaskOutcome(
            "SUCCESS",
            {"count": count, "size": size},
            metrics={"s3.objects.deleted.count": count, "s3.objects.deleted.size": size},
        )


class Copy(_S3Task):
    """Copy an object (and delete the source, with ``delete: true``)."""

    type: Literal["io.kestra.plugin.aws.s3.Copy"]
    from_: CopyObjectFrom = Field(alias="from")
    to: CopyObject | None = None
    delete: BoolOrExpr = False

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        src_bucket = render_str(ctx, self.from_.bucket, "from.bucket", required=True)
        src_key = render_str(ctx, self.from_.key, "from.key", required=True)
        to = self.to or CopyObject()
        bucket = render_str(ctx, to.bucket, "to.bucket") or src_bucket
        key = render_str(ctx, to.key, "to.key") or src_key
        source: dict[str, Any] = {"Bucket": src_bucket, "Key": src_key}
        version = render_str(ctx, self.from_.versionId, "from.versionId")
        if version:
            source["VersionId"] = version
        sse = c.render_choice(
            ctx,
            to.serverSideEncryption,
            "to.serverSideEncryption",
            ("NONE", "AES256", "AWS_KMS", "AWS_KMS_DSSE"),
        )
        sse_name = {"AES256": "AES256", "AWS_KMS": "aws:kms", "AWS_KMS_DSSE": "aws:kms:dsse"}.get(
            sse or ""
        )
        kms = render_str(ctx, to.kmsKeyId, "to.kmsKeyId") if sse == "AWS_KMS" else None
        async with connect(ctx, render_settings(ctx, self)) as s3:
            answer = await s3.call(
                "copy_object",
                f"s3://{src_bucket}/{src_key} to s3://{bucket}/{key}",
                CopySource=source,
                Bucket=bucket,
                Key=key,
                ServerSideEncryption=sse_name,
                SSEKMSKeyId=kms or None,
            )
            if render_bool(ctx, self.delete, "delete"):
                await s3.call(
                    "delete_object", f"s3://{src_bucket}/{src_key}", Bucket=src_bucket, Key=src_key
                )
        etag = (answer.get("CopyObjectResult") or {}).get("ETag")
        return c.drop_none(
            {"bucket": bucket, "key": key, "eTag": etag, "versionId": answer.get("VersionId")}
        )


class CreateBucket(_S3Task):
    """Create an S3 bucket."""

    type: Literal["io.kestra.plugin.aws.s3.CreateBucket"]
    bucket: Str
    grantFullControl: Str | None = None
    grantRead: Str | None = None
    grantReadACP: Str | None = None
    grantWrite: Str | None = None
    grantWriteACP: Str | None = None
    acl: Str | None = None
    objectLockEnabledForBucket: BoolOrExpr | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        bucket = render_str(ctx, self.bucket, "bucket", required=True)
        settings = render_settings(ctx, self)

        def text(name: str) -> str | None:
            return render_str(ctx, getattr(self, name), name) or None

        params: dict[str, Any] = {
            "ACL": text("acl"),
            "GrantFullControl": text("grantFullControl"),
            "GrantRead": text("grantRead"),
            "GrantReadACP": text("grantReadACP"),
            "GrantWrite": text("grantWrite"),
            "GrantWriteACP": text("grantWriteACP"),
        }
        if self.objectLockEnabledForBucket is not None:
            params["ObjectLockEnabledForBucket"] = render_bool(
                ctx, self.objectLockEnabledForBucket, "objectLockEnabledForBucket"
            )
        if settings.region and settings.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": settings.region}
        async with connect(ctx, settings) as s3:
            answer = await s3.call("create_bucket", f"s3://{bucket}", Bucket=bucket, **params)
        return c.drop_none({"bucket": bucket, "region": answer.get("Location")})


PLUGINS: list[type[TaskPlugin]] = [
    Upload,
    Download,
    Downloads,
    List,
    Delete,
    DeleteList,
    Copy,
    CreateBucket,
]
