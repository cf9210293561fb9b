"""Kestra's Google Cloud Storage object types (``io.kestra.plugin.gcp.gcs.*``) on
:mod:`executors.remote.gcs` and the object stores' shared code (:mod:`executors.remote.objects`).

What Kestra does (kestra-io/plugin-gcp, google-cloud-storage for Java), and what this module
ports. Every type has the credential properties ``projectId``, ``serviceAccount``,
``impersonatedServiceAccount``, ``scopes``. Objects are ``gs://bucket/path`` URIs (a ``+`` in
the path is a space, as Kestra writes them). A blob in the outputs is Kestra's ``Blob``:
``uri``, ``bucket``, ``name``, ``generatedId``, ``selfLink``, ``cacheControl``, ``size``,
``etag``, ``md5``, ``crc32c``, ``customTime``, ``mediaLink``, ``metadata``,
``metaGeneration``, ``updateTime``, ``createTime``, ``contentType``, ``contentEncoding``,
``contentDisposition``, ``contentLanguage``, ``timeStorageClassUpdated``, ``componentCount``,
``directory``, ``kmsKeyName``, ``eventBasedHold``, ``temporaryHold``,
``retentionExpirationTime`` (nulls left out).

- ``Upload``: ``from`` (a ``kestra://`` URI), ``to``, ``contentType``, ``contentEncoding``,
  ``contentDisposition``, ``cacheControl``; ``validateChecksum`` (true: the MD5 and CRC32C
  computed locally must equal the server's), ``expectedMd5`` / ``expectedCrc32c`` (base64, the
  source must match). Outputs ``uri``, ``md5``, ``crc32c``. Metric ``file.size``.
- ``Download``: ``from``, ``validateChecksum`` (false; CRC32C, else MD5, against the server's,
  and the size). Outputs ``bucket``, ``path``, ``uri``.
- ``List``: ``from``, ``listingType`` (DIRECTORY: one level, the sub-folders as ``directory``
  blobs; RECURSIVE), ``allVersions``, ``regExp`` (on the blob's ``gs://`` URI), ``filter``
  (BOTH), ``maxFiles`` (25, with a warning). Output ``blobs``. Metric ``size``.
- ``Downloads``: the listing (files only), each downloaded, then ``action`` (NONE) MOVE (into
  ``moveDirectory``, a ``gs://`` folder) or DELETE. Outputs ``blobs`` (their ``uri`` is the
  ``kestra://`` copy), ``outputFiles`` (name -> URI).
- ``Delete``: ``uri``, ``errorOnMissing`` (false). Outputs ``uri``, ``deleted``.
- ``DeleteList``: the listing (``from``, ``listingType``, ``allVersions``, ``regExp``; files
  only), every object deleted (``concurrent`` >= 2 in parallel), ``errorOnEmpty`` (false).
  Outputs ``count``, ``size``; metrics ``count``, ``size``.
- ``Copy``: ``from``, ``to``, ``delete`` (false). Output ``uri``. Metric ``file.size``.
- ``Compose``: ``list`` (``from``, ``listingType``, ``regExp``; at most 32 objects, the API's
  limit), ``to``, ``allowEmpty`` (false). Output ``uri``; metrics ``count``, ``size``.
- ``CreateBucket`` / ``UpdateBucket`` / ``DeleteBucket`` and the ``Trigger``: in
  :mod:`executors.plugins.gcp_gcs_bucket` and :mod:`executors.plugins.gcp_gcs_trigger`.

What differs: Upload checks ``expectedMd5`` / ``expectedCrc32c`` before sending anything
(Kestra uploads, then fails). Not tested here: Application Default Credentials and
``impersonatedServiceAccount`` (they need Google's token services; the service-account key
flow is tested against a local token endpoint named by the key's ``token_uri``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import unquote

from pydantic import Field

from executors.base import TaskContext, TaskError, TaskOutcome
from executors.plugin import TaskPlugin, render_bool, render_str
from executors.remote import common as c
from executors.remote import objects as o
from executors.remote.gcs import Gcs, connect, gs_uri, parse_time, render_settings
from executors.remote.objects import Obj
from schemas.flow.common import BoolOrExpr, FlowModel, IntOrExpr, Str

LISTING_TYPES = ("DIRECTORY", "RECURSIVE")
COMPOSE_MAX_SOURCES = 32


class GcpConnection(FlowModel):
    """Kestra's ``GcpInterface`` properties."""

    projectId: Str | None = None
    serviceAccount: Str | None = None
    impersonatedServiceAccount: Str | None = None
    scopes: list[Str] | Str | None = None


class GcsListing(FlowModel):
    """Kestra's gcs ``ListInterface`` (+ ``allVersions``)."""

    from_: Str = Field(alias="from")
    listingType: Str | None = "DIRECTORY"
    regExp: Str | None = None
    allVersions: BoolOrExpr | None = None


def parse_gs(ctx: TaskContext, value: Any, name: str) -> tuple[str, str]:
    """``gs://bucket/path`` as (bucket, object name), decoded as Kestra's ``URI`` does."""
    text = (render_str(ctx, value, name, required=True) or "").strip()
    if not text.startswith("gs://") or not text[5:].split("/", 1)[0]:
        raise TaskError(f"property '{name}': {text!r} is not a gs://bucket/path URI")
    bucket, _, path = text[5:].partition("/")
    return bucket, unquote(path).replace("+", " ")


def shown_uri(bucket: str, name: str) -> str:
    """Kestra's ``Blob.uri``: spaces written as ``+``."""
    return gs_uri(bucket, name.replace(" ", "+"))


def blob_out(obj: Obj, uri: str | None = None) -> dict[str, Any]:
    """Kestra's ``Blob`` of an object resource (or of a listed folder)."""
    p = obj.props

    def number(key: str) -> int | None:
        return int(p[key]) if p.get(key) is not None else None

    def when(key: str) -> str | None:
        return c.iso(parse_time(p.get(key)))

    out = {
        "uri": uri or shown_uri(obj.container, obj.name),
        "bucket": obj.container,
        "name": obj.name,
        "generatedId": p.get("id"),
        "selfLink": p.get("selfLink"),
        "cacheControl": p.get("cacheControl"),
        "size": obj.size,
        "etag": p.get("etag"),
        "md5": p.get("md5Hash"),
        "crc32c": p.get("crc32c"),
        "customTime": when("customTime"),
        "mediaLink": p.get("mediaLink"),
        "metadata": p.get("metadata"),
        "metaGeneration": number("metageneration"),
        "updateTime": when("updated"),
        "createTime": when("timeCreated"),
        "contentType": p.get("contentType"),
        "contentEncoding": p.get("contentEncoding"),
        "contentDisposition": p.get("contentDisposition"),
        "contentLanguage": p.get("contentLanguage"),
        "timeStorageClassUpdated": when("timeStorageClassUpdated"),
        "componentCount": number("componentCount"),
        "directory": obj.is_dir,
        "kmsKeyName": p.get("kmsKeyName"),
        "eventBasedHold": p.get("eventBasedHold"),
        "temporaryHold": p.get("temporaryHold"),
        "retentionExpirationTime": p.get("retentionExpirationTime"),
    }
    return c.drop_none(out)


async def list_blobs(
    store: Gcs, ctx: TaskContext, props: GcsListing, kind: str, max_files: int | None
) -> list[Obj]:
    """Kestra's ``AbstractList`` + List's filter and ``maxFiles`` (when given)."""
    bucket, path = parse_gs(ctx, props.from_, "from")
    listing = c.render_choice(ctx, props.listingType, "listingType", LISTING_TYPES) or "DIRECTORY"
    pattern = c.compile_regex(render_str(ctx, props.regExp, "regExp"), "regExp")
    versions = render_bool(ctx, props.allVersions, "allVersions")
    listed = await store.list(
        bucket, path or None, "/" if listing == "DIRECTORY" else None, versions=versions
    )
    for obj in listed:
        obj.is_dir = obj.is_dir or obj.name.endswith("/")
    chosen = o.select(listed, pattern, kind, lambda obj: shown_uri(obj.container, obj.name))
    if max_files is None:
        return chosen
    where = render_str(ctx, props.from_, "from")
    warning = (
        f"Results for '{where}' exceeded the maxFiles limit ({{max}}); remaining items were "
        "skipped."
    )
    return o.cap(ctx, chosen, max_files, warning)


def checker(ctx: TaskContext, validate: bool) -> o.Verify | None:
    """Kestra's ``Download.downloadAndValidate``: CRC32C (else MD5) and the size."""
    if not validate:
        return None

    async def verify(obj: Obj, path: Path) -> None:
        where = gs_uri(obj.container, obj.name)
        if obj.crc32c is None and obj.md5 is None:
            raise TaskError(
                f"Checksum validation requested but blob '{where}' has neither "
                "CRC32C nor MD5 metadata."
            )
        name = "crc32c" if obj.crc32c is not None else "md5"
        expected = obj.crc32c if obj.crc32c is not None else obj.md5
        got = (await asyncio.to_thread(o.digests, path, [name]))[name]
        if got != expected:
            raise TaskError(
                f"Checksum mismatch for {where} ({name.upper()}): "
                f"expected={o.b64(expected)} actual={o.b64(got)}"
            )
        size = (await asyncio.to_thread(path.stat)).st_size
        if obj.size is not None and size != obj.size:
            raise TaskError(
                f"Downloaded size mismatch for {where}: expected={obj.size} actual={size}"
            )

    return verify


def move_target(ctx: TaskContext, directory: Any) -> tuple[str, str]:
    if directory is None:
        raise TaskError("property 'moveDirectory' is required with the MOVE action")
    return parse_gs(ctx, directory, "moveDirectory")


class _GcsTask(TaskPlugin, GcpConnection):
    family: ClassVar[str] = "gcp"


class Upload(_GcsTask):
    """Upload a file from internal storage to Google Cloud Storage."""

    type: Literal["io.kestra.plugin.gcp.gcs.Upload"]
    from_: Str = Field(alias="from")
    to: Str
    contentType: Str | None = None
    contentEncoding: Str | None = None
    contentDisposition: Str | None = None
    cacheControl: Str | None = None
    validateChecksum: BoolOrExpr = True
    expectedMd5: Str | None = None
    expectedCrc32c: Str | None = None

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        uri = (render_str(ctx, self.from_, "from", required=True) or "").strip()
        if not uri.startswith("kestra://"):
            raise TaskError(
                f"property 'from': {uri!r} is not an internal storage URI (kestra:///...)"
            )
        bucket, name = parse_gs(ctx, self.to, "to")
        validate = render_bool(ctx, self.validateChecksum, "validateChecksum", True)
        expected_md5 = render_str(ctx, self.expectedMd5, "expectedMd5") or None
        expected_crc = render_str(ctx, self.expectedCrc32c, "expectedCrc32c") or None
        source = await c.source_path(ctx, uri)
        md5 = crc = None
        if validate or expected_md5 or expected_crc:
            sums = await asyncio.to_thread(o.digests, source, ["md5", "crc32c"])
            md5, crc = o.b64(sums["md5"]), o.b64(sums["crc32c"])
            if expected_md5 and expected_md5 != md5:
                raise TaskError(f"Source MD5 mismatch: expected={expected_md5}, computed={md5}")
            if expected_crc and expected_crc != crc:
                raise TaskError(f"Source CRC32C mismatch: expected={expected_crc}, computed={crc}")
        fixed = {
            key: render_str(ctx, getattr(self, prop), prop)
            for key, prop in (
                ("content_encoding", "contentEncoding"),
                ("content_disposition", "contentDisposition"),
                ("cache_control", "cacheControl"),
            )
        }
        content_type = (
            render_str(ctx, self.contentType, "contentType") or "application/octet-stream"
        )
        ctx.log("DEBUG", f"Upload from '{uri}' to '{gs_uri(bucket, name)}'")
        async with connect(ctx, render_settings(ctx, self)) as store:
            obj = await store.upload(
                source,
                bucket,
                name,
                content_type=content_type,
                fixed_key_metadata={k: v for k, v in fixed.items() if v},
            )
        if validate:
            if o.b64(obj.md5) != md5:
                raise TaskError(
                    f"MD5 mismatch between client and GCS: client={md5}, gcs={o.b64(obj.md5)}"
                )
            if o.b64(obj.crc32c) != crc:
                raise TaskError(
                    f"CRC32C mismatch between client and GCS: client={crc}, gcs={o.b64(obj.crc32c)}"
                )
        outputs = c.drop_none(
            {"uri": gs_uri(bucket, name.replace(" ", "%20")), "md5": md5, "crc32c": crc}
        )
        return TaskOutcome("SUCCESS", outputs, metrics={"file.size": source.stat().st_size})


class Download(_GcsTask):
    """Download an object to internal storage."""

    type: Literal["io.kestra.plugin.gcp.gcs.Download"]
    from_: Str = Field(alias="from")
    validateChecksum: BoolOrExpr = False

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        bucket, name = parse_gs(ctx, self.from_, "from")
        verify = checker(ctx, render_bool(ctx, self.validateChecksum, "validateChecksum"))
        async with connect(ctx, render_settings(ctx, self)) as store:
            try:
                _, uri = await o.fetch(store, ctx, bucket, name, verify)
            except TaskError as exc:
                if "not found (404)" in str(exc):
                    raise TaskError(
                        f"Unable to find blob on bucket '{bucket}' with path '{name}'"
                    ) from exc
                raise
        ctx.log("DEBUG", f"Download from '{gs_uri(bucket, name)}'")
        return {"bucket": bucket, "path": name, "uri": uri}


class List(_GcsTask, GcsListing):
    """List the objects under a ``gs://`` prefix."""

    type: Literal["io.kestra.plugin.gcp.gcs.List"]
    filter: Str | None = "BOTH"
    maxFiles: IntOrExpr = 25

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        kind = c.render_choice(ctx, self.filter, "filter", o.FILTERS) or "BOTH"
        max_files = c.render_max(ctx, self.maxFiles, "maxFiles", 25)
        async with connect(ctx, render_settings(ctx, self)) as store:
            listed = await list_blobs(store, ctx, self, kind, max_files)
        return TaskOutcome(
            "SUCCESS", {"blobs": [blob_out(b) for b in listed]}, metrics={"size": len(listed)}
        )


class Downloads(_GcsTask, GcsListing):
    """Download every object under a ``gs://`` prefix, then move or delete them."""

    type: Literal["io.kestra.plugin.gcp.gcs.Downloads"]
    action: Str | None = "NONE"
    moveDirectory: Str | None = None
    maxFiles: IntOrExpr = 25
    validateChecksum: BoolOrExpr = False

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        action = c.render_choice(ctx, self.action, "action", o.ACTIONS) or "NONE"
        target = move_target(ctx, self.moveDirectory) if action == "MOVE" else None
        verify = checker(ctx, render_bool(ctx, self.validateChecksum, "validateChecksum"))
        max_files = c.render_max(ctx, self.maxFiles, "maxFiles", 25)
        async with connect(ctx, render_settings(ctx, self)) as store:
            listed = await list_blobs(store, ctx, self, "FILES", max_files)
            blobs = []
            for item in listed:
                _, uri = await o.fetch(store, ctx, item.container, item.name, verify)
                blobs.append(blob_out(item, uri))
            await o.move_or_delete(store, ctx, listed, action, target)
        files = {b["name"]: b["uri"] for b in blobs if not b["directory"]}
        return {"blobs": blobs, "outputFiles": files}


class Delete(_GcsTask):
    """Delete an object."""

    type: Literal["io.kestra.plugin.gcp.gcs.Delete"]
    uri: Str
    errorOnMissing: BoolOrExpr = False

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        bucket, name = parse_gs(ctx, self.uri, "uri")
        shown = gs_uri(bucket, name.replace(" ", "%20"))
        ctx.log("DEBUG", f"Delete '{shown}'")
        async with connect(ctx, render_settings(ctx, self)) as store:
            deleted = await store.delete(bucket, name)
        if not deleted and render_bool(ctx, self.errorOnMissing, "errorOnMissing"):
            raise TaskError(f"Unable to find file '{shown}'")
        return {"uri": shown, "deleted": deleted}


class DeleteList(_GcsTask, GcsListing):
    """Delete every object under a ``gs://`` prefix."""

    type: Literal["io.kestra.plugin.gcp.gcs.DeleteList"]
    errorOnEmpty: BoolOrExpr = False
    concurrent: int | None = Field(default=None, ge=2)

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        async with connect(ctx, render_settings(ctx, self)) as store:
            listed = await list_blobs(store, ctx, self, "FILES", None)

            async def delete(obj: Obj) -> int:
                ctx.log("DEBUG", f"Deleting '{shown_uri(obj.container, obj.name)}'")
                return (obj.size or 0) if await store.delete(obj.container, obj.name) else 0

            sizes = await o.gather_limited(self.concurrent or 1, [delete(b) for b in listed])
        count, size = len(sizes), sum(sizes)
        if count == 0 and render_bool(ctx, self.errorOnEmpty, "errorOnEmpty"):
            raise TaskError(
                f"Unable to find any files to delete on '{render_str(ctx, self.from_, 'from')}'"
            )
        ctx.log("INFO", f"Deleted {count} files for {size} bytes")
        return TaskOutcome(
            "SUCCESS", {"count": count, "size": size}, metrics={"count": count, "size": size}
        )


class Copy(_GcsTask):
    """Copy an object (and delete the source, with ``delete: true``)."""

    type: Literal["io.kestra.plugin.gcp.gcs.Copy"]
    from_: Str = Field(alias="from")
    to: Str
    delete: BoolOrExpr = False

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        src_bucket, src_name = parse_gs(ctx, self.from_, "from")
        bucket, name = parse_gs(ctx, self.to, "to")
        if (src_bucket, src_name) == (bucket, name):
            raise TaskError(f"Invalid copy to same path '{render_str(ctx, self.to, 'to')}'")
        ctx.log(
            "DEBUG", f"Moving from '{gs_uri(src_bucket, src_name)}' to '{gs_uri(bucket, name)}'"
        )
        async with connect(ctx, render_settings(ctx, self)) as store:
            obj = await store.copy(Obj(src_bucket, src_name), bucket, name)
            if render_bool(ctx, self.delete, "delete"):
                await store.delete(src_bucket, src_name)
        return TaskOutcome(
            "SUCCESS",
            {"uri": gs_uri(obj.container, obj.name)},
            metrics={"file.size": obj.size or 0},
        )


class ComposeList(FlowModel):
    from_: Str = Field(alias="from")
    filter: Str | None = "BOTH"
    listingType: Str | None = "DIRECTORY"
    regExp: Str | None = None


class Compose(_GcsTask):
    """Concatenate the objects of a listing (at most 32) into one object."""

    type: Literal["io.kestra.plugin.gcp.gcs.Compose"]
    list_: ComposeList = Field(alias="list")
    to: Str
    allowEmpty: BoolOrExpr = False

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        bucket, name = parse_gs(ctx, self.to, "to")
        listing = GcsListing.model_validate(
            {
                "from": self.list_.from_,
                "listingType": self.list_.listingType,
                "regExp": self.list_.regExp,
            }
        )
        async with connect(ctx, render_settings(ctx, self)) as store:
            listed = await list_blobs(store, ctx, listing, "FILES", COMPOSE_MAX_SOURCES)
            if not listed and not render_bool(ctx, self.allowEmpty, "allowEmpty"):
                raise TaskError("No files founds")
            body = {"sourceObjects": [{"name": b.name} for b in listed], "destination": {}}
            what = gs_uri(bucket, name)
            ctx.log("DEBUG", f"Compose from '{[b.name for b in listed]}' to '{what}'")
            answer = await store.call(
                "Compose", what, "POST", "b/{}/o/{}/compose", bucket, name, json=body
            )
        size = int((answer or {}).get("size") or 0)
        return TaskOutcome(
            "SUCCESS",
            {"uri": gs_uri(bucket, name.replace(" ", "%20"))},
            metrics={"count": len(listed), "size": size},
        )


PLUGINS: list[type[TaskPlugin]] = [
    Upload,
    Download,
    List,
    Downloads,
    Delete,
    DeleteList,
    Copy,
    Compose,
]
