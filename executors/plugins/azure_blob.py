"""Kestra's Azure Blob Storage types (``io.kestra.plugin.azure.storage.blob.*``) on
:mod:`executors.remote.azure` and the object stores' shared code (:mod:`executors.remote.objects`).

What Kestra does (kestra-io/plugin-azure and its shared library, Azure SDK for Java), and what
this module ports. Every type has the connection properties ``endpoint``,
``connectionString``, ``sharedKeyAccountName``, ``sharedKeyAccountAccessKey`` and, but
SharedAccess, ``sasToken``. A blob in the outputs is Kestra's ``Blob``: ``container``,
``name``, ``size`` (+ ``uri`` when downloaded; + ``lastModified`` and ``etag`` when listed).

- ``Upload``: ``container``, ``name``, ``from`` (a ``kestra://`` URI, a list, a map, or their
  JSON text), ``metadata``, ``tags``, ``accessTier`` (Hot, Cool, Cold, Archive, P4...),
  ``legalHold``, ``immutabilityPolicy`` (``expiryTime``, ``policyMode``), ``validateChecksum``
  (the file's MD5 is sent as Content-MD5 and every block is verified by the server). Outputs
  ``blob`` (one file) and ``blobs``. Metric ``file.size``.
- ``Download``: ``container``, ``name``; ``validateChecksum`` (MD5 against the server's
  Content-MD5; a blob without one is skipped with a warning, or fails with
  ``failOnMissingChecksum``), ``expectedChecksum`` (hex or base64, wins) with
  ``checksumAlgorithm`` (MD5, SHA_256). Output ``blob`` with its ``uri``.
- ``List``: ``container``, ``prefix``, ``delimiter`` (then the prefixes are the DIRECTORY
  entries), ``regexp`` (on the blob name), ``filter`` (FILES), ``maxFiles`` (25, with a
  warning). Output ``blobs``. Metric ``blobs.count``.
- ``Downloads``: the listing, each blob downloaded (the checksum options of Download but
  ``expectedChecksum``), then ``action`` MOVE (to ``moveTo.name`` / file name) or DELETE.
  Outputs ``blobs`` and ``outputFiles`` (name -> URI).
- ``Delete``: ``container``, ``name``. Output ``blob`` (what was deleted).
- ``DeleteList``: the listing (no ``maxFiles``), every blob deleted (``concurrent`` >= 2 in
  parallel), ``errorOnEmpty`` (false). Outputs ``count``, ``size``; metrics ``blobs.count``,
  ``blobs.size``.
- ``Copy``: ``from`` and ``to`` (``container``, ``name``), ``delete`` (false). Output ``blob``.
- ``SharedAccess``: ``container``, ``name``, ``expirationDate`` (an ISO date-time),
  ``permissions`` (READ, ADD, CREATE, WRITE, DELETE, DELETE_VERSION, TAGS, LIST, MOVE, EXECUTE,
  FILTER, IMMUTABILITY_POLICY). Output ``uri``: the blob URL with its SAS.
- ``Trigger`` (in :mod:`executors.plugins.azure_blob_trigger`).

What differs: one file goes to ``name``; several files (or a map, or a ``name`` ending with
``/``) go to ``<name>/<file name>`` (``<name><file name>`` when ``name`` ends with ``/``; a
map's keys are the file names); Kestra uploads the first file to ``name`` itself and a map's
first value only. MOVE honours ``moveTo.container`` (Kestra
keeps each blob's own container whatever it says). ``action`` defaults to NONE (Kestra
requires it). Without an account key (a SAS token, the default credential) Copy sends the
source URL unsigned, which works within one account (Kestra fails to sign).
Untested here: ``DefaultAzureCredential`` (no Azure identity can run on our machines), and
``legalHold`` / ``immutabilityPolicy`` / ``accessTier`` (Azurite does not implement them).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from executors.base import TaskContext, TaskError, TaskOutcome
from executors.plugin import TaskPlugin, render_bool, render_map, render_str
from executors.remote import common as c
from executors.remote import objects as o
from executors.remote.azure import AzureBlobs, connect, render_settings
from executors.remote.objects import Obj
from schemas.flow.common import BoolOrExpr, FlowModel, IntOrExpr, Str

ALGORITHMS = {"MD5": "md5", "SHA_256": "sha256"}
_DIGEST_BYTES = {"MD5": 16, "SHA_256": 32}
PERMISSIONS = {
    "READ": "r",
    "ADD": "a",
    "CREATE": "c",
    "WRITE": "w",
    "DELETE": "d",
    "DELETE_VERSION": "x",
    "LIST": "l",
    "TAGS": "t",
    "FILTER": "f",
    "MOVE": "m",
    "EXECUTE": "e",
    "IMMUTABILITY_POLICY": "i",
}
# Azure's order of the letters of a service SAS's signed permissions.
_SAS_ORDER = "racwdxltfmei"
MAX_FILES_WARNING = (
    "Listing returned {count} blobs but maxFiles limit is {max}. Only the first {max} blobs "
    "will be returned. Increase the maxFiles property if you need more blobs."
)


class AzureConnection(FlowModel):
    """Kestra's ``AbstractStorage`` properties."""

    endpoint: Str | None = None
    connectionString: Str | None = None
    sharedKeyAccountName: Str | None = None
    sharedKeyAccountAccessKey: Str | None = None


class AzureSasConnection(AzureConnection):
    sasToken: Str | None = None


class BlobRef(FlowModel):
    """Kestra's ``Copy.CopyObject``: a container and a blob name."""

    container: Str | None = None
    name: Str | None = None


class BlobListing(FlowModel):
    """Kestra's blob ``ListInterface`` + the container."""

    container: Str
    prefix: Str | None = None
    regexp: Str | None = None
    delimiter: Str | None = None
    filter: Str | None = "FILES"


class ImmutabilityPolicy(FlowModel):
    expiryTime: Str | None = None
    policyMode: Str | None = None


def blob_out(obj: Obj, uri: str | None = None, *, listed: bool = False) -> dict[str, Any]:
    """Kestra's ``Blob``: listed blobs also carry their last modification and ETag."""
    out: dict[str, Any] = {
        "uri": uri,
        "container": obj.container,
        "name": obj.name,
        "size": obj.size,
    }
    if listed:
        out.update(lastModified=c.iso(obj.modified), etag=obj.etag)
    return c.drop_none(out)


def _text(ctx: TaskContext, value: Any, name: str, required: bool = False) -> str:
    return render_str(ctx, value, name, required=required) or ""


async def list_blobs(
    store: AzureBlobs, ctx: TaskContext, props: BlobListing, max_files: int | None
) -> list[Obj]:
    """Kestra's ``BlobService.list`` (+ the List task's ``maxFiles`` cut when given)."""
    container = _text(ctx, props.container, "container", True)
    kind = c.render_choice(ctx, props.filter, "filter", o.FILTERS) or "FILES"
    pattern = c.compile_regex(render_str(ctx, props.regexp, "regexp"), "regexp")
    listed = await store.list(
        container,
        render_str(ctx, props.prefix, "prefix") or None,
        render_str(ctx, props.delimiter, "delimiter") or None,
    )
    chosen = o.select(listed, pattern, kind, lambda obj: obj.name)
    return chosen if max_files is None else o.cap(ctx, chosen, max_files, MAX_FILES_WARNING)


def checker(
    ctx: TaskContext, validate: bool, fail_missing: bool, expected: str | None, algorithm: str
) -> o.Verify | None:
    """Kestra's ``ChecksumValidator``: an ``expected`` digest wins over the server's MD5."""
    if expected is None and not validate:
        return None
    want: bytes | None = None
    if expected is not None:
        text = expected.strip()
        size = _DIGEST_BYTES[algorithm]
        try:
            want = (
                bytes.fromhex(text)
                if len(text) == size * 2
                else base64.b64decode(text, validate=True)
            )
        except (ValueError, binascii.Error):
            want = None
        if want is None or len(want) != size:
            raise TaskError(
                f"expectedChecksum '{expected}' is not a valid {algorithm} digest "
                f"(expected {size * 2} hex chars or matching base64)."
            )
    elif algorithm != "MD5":
        raise TaskError(
            f"validateChecksum against Azure only supports MD5; got {algorithm}. "
            f"Provide expectedChecksum for {algorithm}."
        )

    async def verify(obj: Obj, path: Path) -> None:
        source, reference = "expectedChecksum", want
        if reference is None:
            source, reference = "server Content-MD5", obj.md5
            if not reference:
                message = (
                    f"No Content-MD5 stored on server for '{obj.name}'. This is common "
                    "for block blobs uploaded as streams."
                )
                if fail_missing:
                    raise TaskError(message)
                ctx.log("WARN", f"{message} Skipping checksum validation.")
                return
        got = (await asyncio.to_thread(o.digests, path, [ALGORITHMS[algorithm]]))[
            ALGORITHMS[algorithm]
        ]
        if got != reference:
            raise TaskError(
                f"Checksum mismatch for '{obj.name}' using {algorithm} (source: "
                f"{source}). Expected={reference.hex()} actual={got.hex()}"
            )

    return verify


class _AzureTask(TaskPlugin):
    family: ClassVar[str] = "azure"


class _BlobObject(_AzureTask, AzureSasConnection):
    container: Str
    name: Str

    def where(self, ctx: TaskContext) -> tuple[str, str]:
        return _text(ctx, self.container, "container", True), _text(ctx, self.name, "name", True)


class Upload(_BlobObject):
    """Upload files from internal storage to Azure Blob Storage."""

    type: Literal["io.kestra.plugin.azure.storage.blob.Upload"]
    from_: Any = Field(alias="from")
    metadata: dict[str, Any] | Str | None = None
    tags: dict[str, Any] | Str | None = None
    accessTier: Str | None = None
    legalHold: BoolOrExpr | None = None
    immutabilityPolicy: ImmutabilityPolicy | None = None
    validateChecksum: BoolOrExpr = False

    def _options(self, ctx: TaskContext) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.metadata is not None:
            options["metadata"] = {
                str(k): str(v) for k, v in render_map(ctx, self.metadata, "metadata").items()
            }
        if self.tags is not None:
            options["tags"] = {
                str(k): str(v) for k, v in render_map(ctx, self.tags, "tags").items()
            }
        tier = render_str(ctx, self.accessTier, "accessTier")
        if tier:
            options["standard_blob_tier"] = tier.strip().capitalize() if tier[0] != "P" else tier
        if self.legalHold is not None:
            options["legal_hold"] = render_bool(ctx, self.legalHold, "legalHold")
        if self.immutabilityPolicy is not None:
            from azure.storage.blob import ImmutabilityPolicy as Policy

            expiry = render_str(
                ctx, self.immutabilityPolicy.expiryTime, "immutabilityPolicy.expiryTime"
            )
            mode = render_str(
                ctx, self.immutabilityPolicy.policyMode, "immutabilityPolicy.policyMode"
            )
            try:
                when = datetime.fromisoformat(expiry.replace("Z", "+00:00")) if expiry else None
            except ValueError as exc:
                raise TaskError(
                    f"property 'immutabilityPolicy.expiryTime': {expiry!r} is not a date-time"
                ) from exc
            options["immutability_policy"] = Policy(
                expiry_time=when, policy_mode=(mode or "").capitalize() or None
            )
        return options

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        container, name = self.where(ctx)
        files = c.parse_from(ctx, self.from_)
        if not files:
            raise TaskError(
                "No files to upload: the 'from' property contains an empty collection or array"
            )
        options = self._options(ctx)
        md5 = render_bool(ctx, self.validateChecksum, "validateChecksum")
        if len(files) == 1 and files[0][0] is None and not name.endswith("/"):
            targets = [(name, files[0][1])]
        else:
            base = name if name.endswith("/") else f"{name}/"
            targets = [(base + (key or c.file_name(uri)), uri) for key, uri in files]
        blobs, size = [], 0
        async with connect(ctx, render_settings(ctx, self)) as store:
            for target, uri in targets:
                source = await c.source_path(ctx, uri)
                ctx.log("DEBUG", f"Upload from '{uri}' to '{target}'")
                extra = dict(options)
                if md5:
                    from azure.storage.blob import ContentSettings

                    digest = (await asyncio.to_thread(o.digests, source, ["md5"]))["md5"]
                    extra.update(
                        content_settings=ContentSettings(content_md5=bytearray(digest)),
                        validate_content=True,
                    )
                obj = await store.upload(source, container, target, **extra)
                size += obj.size or 0
                blobs.append(blob_out(obj))
        outputs = {"blob": blobs[0] if len(blobs) == 1 else None, "blobs": blobs}
        return TaskOutcome("SUCCESS", c.drop_none(outputs), metrics={"file.size": size})


class Download(_BlobObject):
    """Download a blob to internal storage."""

    type: Literal["io.kestra.plugin.azure.storage.blob.Download"]
    validateChecksum: BoolOrExpr | None = None
    failOnMissingChecksum: BoolOrExpr | None = None
    expectedChecksum: Str | None = None
    checksumAlgorithm: Str | None = None

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        container, name = self.where(ctx)
        algorithm = (
            c.render_choice(ctx, self.checksumAlgorithm, "checksumAlgorithm", tuple(ALGORITHMS))
            or "MD5"
        )
        verify = checker(
            ctx,
            render_bool(ctx, self.validateChecksum, "validateChecksum"),
            render_bool(ctx, self.failOnMissingChecksum, "failOnMissingChecksum"),
            render_str(ctx, self.expectedChecksum, "expectedChecksum") or None,
            algorithm,
        )
        async with connect(ctx, render_settings(ctx, self)) as store:
            obj, uri = await o.fetch(store, ctx, container, name, verify)
        return TaskOutcome(
            "SUCCESS", {"blob": blob_out(obj, uri)}, metrics={"file.size": obj.size or 0}
        )


class List(_AzureTask, AzureSasConnection, BlobListing):
    """List the blobs of a container."""

    type: Literal["io.kestra.plugin.azure.storage.blob.List"]
    maxFiles: IntOrExpr = 25

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        async with connect(ctx, render_settings(ctx, self)) as store:
            listed = await list_blobs(store, ctx, self, None)
        ctx.log(
            "DEBUG", f"Found '{len(listed)}' keys on {render_str(ctx, self.container, 'container')}"
        )
        listed = o.cap(
            ctx, listed, c.render_max(ctx, self.maxFiles, "maxFiles", 25), MAX_FILES_WARNING
        )
        return TaskOutcome(
            "SUCCESS",
            {"blobs": [blob_out(b, listed=True) for b in listed]},
            metrics={"blobs.count": len(listed)},
        )


class Downloads(_AzureTask, AzureSasConnection, BlobListing):
    """Download every blob of a listing, then move or delete them."""

    type: Literal["io.kestra.plugin.azure.storage.blob.Downloads"]
    action: Str | None = None
    moveTo: BlobRef | None = None
    maxFiles: IntOrExpr = 25
    validateChecksum: BoolOrExpr | None = None
    failOnMissingChecksum: BoolOrExpr | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        action = c.render_choice(ctx, self.action, "action", o.ACTIONS) or "NONE"
        verify = checker(
            ctx,
            render_bool(ctx, self.validateChecksum, "validateChecksum"),
            render_bool(ctx, self.failOnMissingChecksum, "failOnMissingChecksum"),
            None,
            "MD5",
        )
        target = move_target(ctx, self.moveTo) if action == "MOVE" else None
        async with connect(ctx, render_settings(ctx, self)) as store:
            max_files = c.render_max(ctx, self.maxFiles, "maxFiles", 25)
            listed = await list_blobs(store, ctx, self, max_files)
            blobs = []
            for item in listed:
                obj, uri = await o.fetch(store, ctx, item.container, item.name, verify)
                blobs.append(blob_out(obj, uri))
            await o.move_or_delete(store, ctx, listed, action, target)
        files = {b["name"]: b["uri"] for b in blobs if not b["name"].endswith("/")}
        return {"blobs": blobs, "outputFiles": files}


def move_target(ctx: TaskContext, move_to: BlobRef | None) -> tuple[str, str]:
    if move_to is None or move_to.name is None:
        raise TaskError("property 'moveTo': the MOVE action needs moveTo.name")
    return (
        render_str(ctx, move_to.container, "moveTo.container") or "",
        _text(ctx, move_to.name, "moveTo.name", True),
    )


class Delete(_BlobObject):
    """Delete a blob."""

    type: Literal["io.kestra.plugin.azure.storage.blob.Delete"]

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        container, name = self.where(ctx)
        async with connect(ctx, render_settings(ctx, self)) as store:
            obj = await store.properties(container, name)
            await store.delete(container, name)
        return {"blob": blob_out(obj)}


class DeleteList(_AzureTask, AzureSasConnection, BlobListing):
    """Delete every blob of a listing."""

    type: Literal["io.kestra.plugin.azure.storage.blob.DeleteList"]
    concurrent: int | None = Field(default=None, ge=2)
    errorOnEmpty: BoolOrExpr = False

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        async with connect(ctx, render_settings(ctx, self)) as store:
            listed = await list_blobs(store, ctx, self, None)

            async def delete(obj: Obj) -> int:
                ctx.log("DEBUG", f"Deleting '{obj.name}'")
                size = (await store.properties(obj.container, obj.name)).size or 0
                await store.delete(obj.container, obj.name)
                return size

            sizes = await o.gather_limited(self.concurrent or 1, [delete(b) for b in listed])
        count, size = len(sizes), sum(sizes)
        if count == 0 and render_bool(ctx, self.errorOnEmpty, "errorOnEmpty"):
            where = render_str(ctx, self.container, "container")
            raise TaskError(
                f"Unable to find any files to delete on {where} "
                f"with regexp='{render_str(ctx, self.regexp, 'regexp')}', "
                f"prefix='{render_str(ctx, self.prefix, 'prefix')}'"
            )
        ctx.log("INFO", f"Deleted {count} keys for {size} bytes")
        return TaskOutcome(
            "SUCCESS",
            {"count": count, "size": size},
            metrics={"blobs.count": count, "blobs.size": size},
        )


class Copy(_AzureTask, AzureSasConnection):
    """Copy a blob (and delete the source, with ``delete: true``)."""

    type: Literal["io.kestra.plugin.azure.storage.blob.Copy"]
    from_: BlobRef = Field(alias="from")
    to: BlobRef
    delete: BoolOrExpr = False

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        source = Obj(
            _text(ctx, self.from_.container, "from.container", True),
            _text(ctx, self.from_.name, "from.name", True),
        )
        container = _text(ctx, self.to.container, "to.container", True)
        name = _text(ctx, self.to.name, "to.name", True)
        async with connect(ctx, render_settings(ctx, self)) as store:
            obj = await store.copy(source, container, name)
            if render_bool(ctx, self.delete, "delete"):
                await store.delete(source.container, source.name)
        return {"blob": blob_out(obj)}


class SharedAccess(_AzureTask, AzureConnection):
    """Create a shared access (SAS) link to a blob."""

    type: Literal["io.kestra.plugin.azure.storage.blob.SharedAccess"]
    container: Str
    name: Str
    expirationDate: Str
    permissions: list[Str]

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        container = _text(ctx, self.container, "container", True)
        name = _text(ctx, self.name, "name", True)
        text = _text(ctx, self.expirationDate, "expirationDate", True).strip()
        try:
            expiry = datetime.fromisoformat(text.split("[", 1)[0].replace("Z", "+00:00"))
        except ValueError as exc:
            raise TaskError(f"property 'expirationDate': {text!r} is not a date-time") from exc
        if expiry.tzinfo is None:
            raise TaskError(f"property 'expirationDate': {text!r} has no time zone")
        letters = set()
        for item in self.permissions:
            value = _text(ctx, item, "permissions").strip().upper()
            if value not in PERMISSIONS:
                raise TaskError(
                    f"property 'permissions': {value!r} is not one of {', '.join(PERMISSIONS)}"
                )
            letters.add(PERMISSIONS[value])
        permission = "".join(ch for ch in _SAS_ORDER if ch in letters)
        async with connect(ctx, render_settings(ctx, self)) as store:
            token = store.sas(container, name, permission, expiry)
            url = store.blob(container, name).url
        return {"uri": f"{url}?{token}"}


PLUGINS: list[type[TaskPlugin]] = [
    Upload,
    Download,
    List,
    Downloads,
    Delete,
    DeleteList,
    Copy,
    SharedAccess,
]
