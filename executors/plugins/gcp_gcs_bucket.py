"""Kestra's Google Cloud Storage bucket types: ``io.kestra.plugin.gcp.gcs.CreateBucket``,
``UpdateBucket`` and ``DeleteBucket``.

What Kestra does (kestra-io/plugin-gcp ``AbstractBucket``): a bucket described by ``name``
(required), ``requesterPays``, ``versioningEnabled``, ``indexPage``, ``notFoundPage``,
``storageClass`` (REGIONAL, MULTI_REGIONAL, NEARLINE, COLDLINE, STANDARD, ARCHIVE,
DURABLE_REDUCED_AVAILABILITY), ``location``, ``labels``, ``defaultKmsKeyName``,
``defaultEventBasedHold``, ``retentionPeriod`` (seconds), and ``lifecycleRules``, ``cors``,
``acl``, ``defaultAcl``, ``iamConfiguration``, ``logging``. Outputs ``bucket`` (``name``,
``uri``, ``location``, ``indexPage``, ``notFoundPage``), ``created``, ``updated``.

- ``CreateBucket``: creates it in ``projectId``; when it exists, ``ifExists`` ERROR (the
  default: fails), UPDATE (updates it: ``updated``) or SKIP (Kestra updates it all the same,
  and reports neither created nor updated; so does this port).
- ``UpdateBucket``: updates (patches) the bucket with the properties given.
- ``DeleteBucket``: ``name``, ``force`` (false: first delete every object). Outputs
  ``bucket``, ``bucketUri``. A missing bucket fails.

What differs: ``lifecycleRules``, ``cors``, ``acl``, ``defaultAcl``, ``iamConfiguration`` and
``logging`` are refused with a message (not ported); ``force`` deletes the objects of every
folder (Kestra's listing stops at the first level, and the bucket deletion then fails).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from executors.base import TaskContext, TaskError
from executors.plugin import TaskPlugin, render_bool, render_int, render_map, render_str
from executors.plugins.gcp_gcs import GcpConnection
from executors.remote import common as c
from executors.remote import objects as o
from executors.remote.gcs import Gcs, connect, render_settings
from schemas.flow.common import BoolOrExpr, IntOrExpr, Str

STORAGE_CLASSES = (
    "REGIONAL",
    "MULTI_REGIONAL",
    "NEARLINE",
    "COLDLINE",
    "STANDARD",
    "ARCHIVE",
    "DURABLE_REDUCED_AVAILABILITY",
)
IF_EXISTS = ("ERROR", "UPDATE", "SKIP")
NOT_PORTED = ("lifecycleRules", "cors", "acl", "defaultAcl", "iamConfiguration", "logging")
# Kestra's DeleteBucket deletes a forced bucket's objects 8 at a time.
FORCE_CONCURRENCY = 8


class _Bucket(TaskPlugin, GcpConnection):
    family: ClassVar[str] = "gcp"

    name: Str
    requesterPays: BoolOrExpr | None = None
    versioningEnabled: BoolOrExpr | None = None
    indexPage: Str | None = None
    notFoundPage: Str | None = None
    storageClass: Str | None = None
    location: Str | None = None
    labels: dict[str, Any] | Str | None = None
    defaultKmsKeyName: Str | None = None
    defaultEventBasedHold: BoolOrExpr | None = None
    retentionPeriod: IntOrExpr | None = None
    lifecycleRules: Any = None
    cors: Any = None
    acl: Any = None
    defaultAcl: Any = None
    iamConfiguration: Any = None
    logging: Any = None

    def resource(self, ctx: TaskContext) -> dict[str, Any]:
        """The JSON API bucket resource of the properties given (Kestra's ``bucketInfo``)."""
        for prop in NOT_PORTED:
            if getattr(self, prop) is not None:
                raise TaskError(
                    f"property '{prop}' is not supported by Headwater's {self.type_name()}"
                )
        body: dict[str, Any] = {"name": render_str(ctx, self.name, "name", required=True)}
        if self.requesterPays is not None:
            body["billing"] = {
                "requesterPays": render_bool(ctx, self.requesterPays, "requesterPays")
            }
        if self.versioningEnabled is not None:
            body["versioning"] = {
                "enabled": render_bool(ctx, self.versioningEnabled, "versioningEnabled")
            }
        website = {
            "mainPageSuffix": render_str(ctx, self.indexPage, "indexPage"),
            "notFoundPage": render_str(ctx, self.notFoundPage, "notFoundPage"),
        }
        if any(website.values()):
            body["website"] = c.drop_none(website)
        storage_class = c.render_choice(ctx, self.storageClass, "storageClass", STORAGE_CLASSES)
        if storage_class:
            body["storageClass"] = storage_class
        if self.location is not None:
            body["location"] = render_str(ctx, self.location, "location")
        if self.labels is not None:
            body["labels"] = {
                str(k): str(v) for k, v in render_map(ctx, self.labels, "labels").items()
            }
        if self.defaultKmsKeyName is not None:
            body["encryption"] = {
                "defaultKmsKeyName": render_str(ctx, self.defaultKmsKeyName, "defaultKmsKeyName")
            }
        if self.defaultEventBasedHold is not None:
            body["defaultEventBasedHold"] = render_bool(
                ctx, self.defaultEventBasedHold, "defaultEventBasedHold"
            )
        if self.retentionPeriod is not None:
            seconds = render_int(ctx, self.retentionPeriod, "retentionPeriod")
            body["retentionPolicy"] = {"retentionPeriod": str(seconds)}
        return body


def bucket_out(resource: dict[str, Any]) -> dict[str, Any]:
    website = resource.get("website") or {}
    return c.drop_none(
        {
            "name": resource.get("name"),
            "uri": f"gs://{resource.get('name')}",
            "location": resource.get("location"),
            "indexPage": website.get("mainPageSuffix"),
            "notFoundPage": website.get("notFoundPage"),
        }
    )


async def patch(store: Gcs, body: dict[str, Any]) -> dict[str, Any]:
    name = body["name"]
    changes = {k: v for k, v in body.items() if k != "name"}
    answer: dict[str, Any] = await store.call(
        "UpdateBucket", f"gs://{name}", "PATCH", "b/{}", name, json=changes
    )
    return answer


class CreateBucket(_Bucket):
    """Create a Google Cloud Storage bucket."""

    type: Literal["io.kestra.plugin.gcp.gcs.CreateBucket"]
    ifExists: Str | None = "ERROR"

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        body = self.resource(ctx)
        policy = c.render_choice(ctx, self.ifExists, "ifExists", IF_EXISTS) or "ERROR"
        settings = render_settings(ctx, self)
        name = body["name"]
        async with connect(ctx, settings) as store:
            try:
                await store.call("GetBucket", f"gs://{name}", "GET", "b/{}", name)
                exists = True
            except TaskError as exc:
                if "not found (404)" not in str(exc):
                    raise
                exists = False
            if not exists:
                ctx.log("DEBUG", f"Creating bucket '{name}'")
                created = await store.call(
                    "CreateBucket",
                    f"gs://{name}",
                    "POST",
                    "b",
                    project=settings.project or None,
                    json=body,
                )
                return {"bucket": bucket_out(created), "created": True, "updated": False}
            if policy == "ERROR":
                raise TaskError(
                    f"Bucket {name} already exists and ifExists policy is set to ERROR !"
                )
            updated = await patch(store, body)
        return {"bucket": bucket_out(updated), "created": False, "updated": policy == "UPDATE"}


class UpdateBucket(_Bucket):
    """Update a Google Cloud Storage bucket."""

    type: Literal["io.kestra.plugin.gcp.gcs.UpdateBucket"]

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        body = self.resource(ctx)
        async with connect(ctx, render_settings(ctx, self)) as store:
            updated = await patch(store, body)
        return {"bucket": bucket_out(updated), "created": False, "updated": True}


class DeleteBucket(TaskPlugin, GcpConnection):
    """Delete a Google Cloud Storage bucket (and, with ``force``, its objects)."""

    family: ClassVar[str] = "gcp"

    type: Literal["io.kestra.plugin.gcp.gcs.DeleteBucket"]
    name: Str
    force: BoolOrExpr = False

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        name = render_str(ctx, self.name, "name", required=True) or ""
        async with connect(ctx, render_settings(ctx, self)) as store:
            if render_bool(ctx, self.force, "force"):
                listed = [b for b in await store.list(name, None, None) if not b.is_dir]
                await o.gather_limited(
                    FORCE_CONCURRENCY, [store.delete(b.container, b.name) for b in listed]
                )
            ctx.log("DEBUG", f"Deleting bucket '{name}'")
            try:
                await store.call("DeleteBucket", f"gs://{name}", "DELETE", "b/{}", name)
            except TaskError as exc:
                if "not found (404)" in str(exc):
                    raise TaskError(f"Couldn't find bucket '{name}'") from exc
                raise
        return {"bucket": name, "bucketUri": f"gs://{name}"}


PLUGINS: list[type[TaskPlugin]] = [CreateBucket, UpdateBucket, DeleteBucket]
