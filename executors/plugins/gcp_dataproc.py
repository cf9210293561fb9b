"""Kestra's Dataproc Serverless batch types (``io.kestra.plugin.gcp.dataproc.batches.*``):
PySparkSubmit, SparkSubmit, RSparkSubmit, SparkSqlSubmit, on Dataproc's REST API (v1).

What Kestra does (kestra-io/plugin-gcp, ``AbstractBatch``), and what this module ports. Every
type has the credential properties, ``region`` and ``name``; the batch id is
``Slugify.of(name + "-" + execution.id)``, at most 63 characters. ``execution``
(``networkUri``, ``subnetworkUri``, ``networkTags``, ``serviceAccountEmail``, ``kmsKey``),
``peripherals`` (``metastoreService``, ``sparkHistoryServer.dataprocCluster``) and ``runtime``
(``containerImage``, ``version``, ``properties``) configure the batch. The batch is created
(``POST /v1/projects/{p}/locations/{region}/batches?batchId=...`` on
``https://{region}-dataproc.googleapis.com``) and its long-running operation is waited for
(``GET /v1/{operation}``, every :data:`POLL_S`) until done; output ``state`` (the batch's,
``SUCCEEDED``). An operation that ends with an error fails the task with Google's message.

- ``PySparkSubmit``: ``mainPythonFileUri``, ``jarFileUris``, ``fileUris``, ``archiveUris``,
  ``args``.
- ``SparkSubmit``: ``mainClass``, ``jarFileUris``, ``fileUris``, ``archiveUris``, ``args``.
- ``RSparkSubmit``: ``mainRFileUri``, ``fileUris``, ``archiveUris``, ``args``.
- ``SparkSqlSubmit``: ``queryFileUri``, ``jarFileUris``.

A kill while the batch runs cancels its operation (``POST /v1/{operation}:cancel``; Kestra's
client gives up waiting). Not tested against Google itself (no emulator exists): tests run
against a local receiver answering as Dataproc does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from executors.api_client import ApiTask, Killed
from executors.base import TaskContext, TaskError
from executors.plugin import render_map, render_str
from executors.plugins.gcp_bigquery import render_strs
from executors.plugins.gcp_gcs import GcpConnection
from executors.plugins.legacy_state import slugify
from executors.remote.google_api import DATAPROC, GoogleApi, google_api, render_settings
from schemas.flow.common import FlowModel, Str

# Between two looks at a running batch: batches take minutes, the Java client polls about this.
POLL_S = 10.0
BATCH_ID_MAX = 63


class ExecutionConfiguration(FlowModel):
    networkUri: Str | None = None
    subnetworkUri: Str | None = None
    networkTags: list[Str] | Str | None = None
    serviceAccountEmail: Str | None = None
    kmsKey: Str | None = None


class SparkHistoryServer(FlowModel):
    dataprocCluster: Str | None = None


class PeripheralsConfiguration(FlowModel):
    metastoreService: Str | None = None
    sparkHistoryServer: SparkHistoryServer | None = None


class RuntimeConfiguration(FlowModel):
    containerImage: Str | None = None
    version: Str | None = None
    properties: dict[str, Str] | Str | None = None


def batch_id(ctx: TaskContext, name: Any) -> str:
    text = render_str(ctx, name, "name", required=True) or ""
    execution = ctx.variables.get("execution")
    exec_id = execution.get("id") if isinstance(execution, Mapping) else None
    return slugify(f"{text}-{exec_id or ctx.execution_id}")[:BATCH_ID_MAX]


class AbstractBatch(ApiTask, GcpConnection):
    family: ClassVar[str] = "gcp"
    # The key of the batch's kind in the Batch resource, and its main property.
    kind: ClassVar[str] = ""

    region: Str
    name: Str
    execution: ExecutionConfiguration | None = None
    peripherals: PeripheralsConfiguration | None = None
    runtime: RuntimeConfiguration | None = None

    def job(self, ctx: TaskContext) -> dict[str, Any]:
        raise NotImplementedError

    def uris(self, ctx: TaskContext, *names: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name in names:
            values = render_strs(ctx, getattr(self, name, None), name)
            if values:
                out[name] = values
        return out

    def environment(self, ctx: TaskContext) -> dict[str, Any]:
        execution: dict[str, Any] = {}
        e = self.execution
        if e is not None:
            for key, prop in (
                ("networkUri", "networkUri"),
                ("subnetworkUri", "subnetworkUri"),
                ("serviceAccount", "serviceAccountEmail"),
                ("kmsKey", "kmsKey"),
            ):
                if getattr(e, prop) is not None:
                    execution[key] = render_str(ctx, getattr(e, prop), f"execution.{prop}")
            tags = render_strs(ctx, e.networkTags, "execution.networkTags")
            if tags:
                execution["networkTags"] = tags
        out: dict[str, Any] = {"executionConfig": execution}
        p = self.peripherals
        if p is not None:
            peripherals: dict[str, Any] = {}
            if p.metastoreService is not None:
                peripherals["metastoreService"] = render_str(ctx, p.metastoreService, "metastore")
            if p.sparkHistoryServer is not None:
                cluster = render_str(ctx, p.sparkHistoryServer.dataprocCluster, "dataprocCluster")
                peripherals["sparkHistoryServerConfig"] = {"dataprocCluster": cluster}
            out["peripheralsConfig"] = peripherals
        return out

    def batch(self, ctx: TaskContext) -> dict[str, Any]:
        body: dict[str, Any] = {
            self.kind: self.job(ctx),
            "environmentConfig": self.environment(ctx),
        }
        r = self.runtime
        if r is not None:
            runtime: dict[str, Any] = {}
            if r.containerImage is not None:
                runtime["containerImage"] = render_str(ctx, r.containerImage, "containerImage")
            if r.version is not None:
                runtime["version"] = render_str(ctx, r.version, "runtime.version")
            properties = render_map(ctx, r.properties, "runtime.properties")
            if properties:
                runtime["properties"] = {str(k): str(v) for k, v in properties.items()}
            body["runtimeConfig"] = runtime
        return body

    async def execute(self, ctx: TaskContext) -> dict[str, Any]:
        region = render_str(ctx, self.region, "region", required=True) or ""
        identifier = batch_id(ctx, self.name)
        body = self.batch(ctx)
        settings = render_settings(ctx, self)
        async with google_api(ctx, settings, DATAPROC, region=region) as api:
            parent = f"projects/{api.project}/locations/{region}"
            ctx.log("INFO", f"Starting with batch id '{identifier}'")
            operation = await api.json(
                "POST", f"/v1/{parent}/batches", json=body, params={"batchId": identifier}
            )
            done = await wait(api, ctx, operation or {})
        if done.get("error"):
            error = done["error"]
            raise TaskError(
                f"Dataproc batch '{identifier}' failed: {error.get('message')} "
                f"(code {error.get('code')})"
            )
        response = done.get("response") or {}
        return {"state": response.get("state")}


async def wait(api: GoogleApi, ctx: TaskContext, operation: dict[str, Any]) -> dict[str, Any]:
    """Poll a long-running operation until done; a kill cancels it."""
    name = operation.get("name")
    while not operation.get("done"):
        if not name:
            raise TaskError("Dataproc: the batch's operation has no name")
        if not await ctx.sleep(POLL_S):
            try:
                await api.call("POST", f"/v1/{name}:cancel")
            except TaskError as exc:
                ctx.log("WARN", f"Failed to cancel '{name}': {exc}")
            raise Killed
        operation = await api.json("GET", f"/v1/{name}") or {}
    return operation


class PySparkSubmit(AbstractBatch):
    """Run a PySpark batch on Dataproc Serverless."""

    kind: ClassVar[str] = "pysparkBatch"
    type: Literal["io.kestra.plugin.gcp.dataproc.batches.PySparkSubmit"]
    mainPythonFileUri: Str
    jarFileUris: list[Str] | Str | None = None
    fileUris: list[Str] | Str | None = None
    archiveUris: list[Str] | Str | None = None
    # Kestra reads each as a String: `- 1000` is "1000".
    args: list[Any] | Str | None = None

    def job(self, ctx: TaskContext) -> dict[str, Any]:
        main = render_str(ctx, self.mainPythonFileUri, "mainPythonFileUri", required=True)
        return {
            "mainPythonFileUri": main,
            **self.uris(ctx, "jarFileUris", "fileUris", "archiveUris", "args"),
        }


class SparkSubmit(AbstractBatch):
    """Run a Spark (JVM) batch on Dataproc Serverless."""

    kind: ClassVar[str] = "sparkBatch"
    type: Literal["io.kestra.plugin.gcp.dataproc.batches.SparkSubmit"]
    mainClass: Str
    jarFileUris: list[Str] | Str | None = None
    fileUris: list[Str] | Str | None = None
    archiveUris: list[Str] | Str | None = None
    # Kestra reads each as a String: `- 1000` is "1000".
    args: list[Any] | Str | None = None

    def job(self, ctx: TaskContext) -> dict[str, Any]:
        return {
            "mainClass": render_str(ctx, self.mainClass, "mainClass", required=True),
            **self.uris(ctx, "jarFileUris", "fileUris", "archiveUris", "args"),
        }


class RSparkSubmit(AbstractBatch):
    """Run a SparkR batch on Dataproc Serverless."""

    kind: ClassVar[str] = "sparkRBatch"
    type: Literal["io.kestra.plugin.gcp.dataproc.batches.RSparkSubmit"]
    mainRFileUri: Str
    fileUris: list[Str] | Str | None = None
    archiveUris: list[Str] | Str | None = None
    # Kestra reads each as a String: `- 1000` is "1000".
    args: list[Any] | Str | None = None

    def job(self, ctx: TaskContext) -> dict[str, Any]:
        return {
            "mainRFileUri": render_str(ctx, self.mainRFileUri, "mainRFileUri", required=True),
            **self.uris(ctx, "fileUris", "archiveUris", "args"),
        }


class SparkSqlSubmit(AbstractBatch):
    """Run a Spark SQL batch on Dataproc Serverless."""

    kind: ClassVar[str] = "sparkSqlBatch"
    type: Literal["io.kestra.plugin.gcp.dataproc.batches.SparkSqlSubmit"]
    queryFileUri: Str
    jarFileUris: list[Str] | Str | None = None

    def job(self, ctx: TaskContext) -> dict[str, Any]:
        return {
            "queryFileUri": render_str(ctx, self.queryFileUri, "queryFileUri", required=True),
            **self.uris(ctx, "jarFileUris"),
        }


PLUGINS: list[type[AbstractBatch]] = [PySparkSubmit, SparkSubmit, RSparkSubmit, SparkSqlSubmit]
