"""Kestra's BigQuery dataset and table types (``io.kestra.plugin.gcp.bigquery.*``): CreateDataset,
UpdateDataset, DeleteDataset, CreateTable, UpdateTable, DeleteTable, TableMetadata, on BigQuery's
REST API (``/bigquery/v2/projects/{p}/datasets[/{d}/tables]``).

What Kestra does, and what this module ports (credentials and ``location`` as every BigQuery
type, :mod:`executors.plugins.gcp_bigquery`):

- ``CreateDataset`` / ``UpdateDataset``: ``name``, ``description``, ``friendlyName``,
  ``location``, ``labels``, ``defaultTableLifetime`` (ms), ``defaultPartitionExpirationMs``,
  ``defaultEncryptionConfiguration.kmsKeyName``, ``acl`` (``entity.type`` USER, GROUP, DOMAIN,
  IAM_MEMBER + ``entity.value``, ``role`` READER, WRITER, OWNER). Create's ``ifExists``
  (ERROR; UPDATE patches the dataset, SKIP reads it). Outputs ``dataset``, ``project``,
  ``friendlyName``, ``description``, ``location``.
- ``DeleteDataset``: ``name``, ``deleteContents``; a missing dataset fails ("Couldn't find
  dataset 'name'"). Output ``dataset``.
- ``CreateTable`` / ``UpdateTable``: ``dataset``, ``table`` (in ``projectId``),
  ``tableDefinition`` (``type`` TABLE, VIEW, MATERIALIZED_VIEW, EXTERNAL; ``schema.fields``;
  ``standardTableDefinition``: ``clustering``, ``timePartitioning`` (``type``, ``expiration``,
  ``field``, ``requirePartitionFilter``), ``rangePartitioning`` (``field``, ``range``);
  ``viewDefinition.query``; ``materializedViewDefinition`` (``query``, ``enableRefresh``,
  ``refreshInterval``); ``externalTableDefinition`` (``sourceUris``, ``formatType``,
  ``autodetect``, ``compression``, ``maxBadRecords``, ``ignoreUnknownValues``)),
  ``friendlyName``, ``description``, ``labels``, ``requirePartitionFilter``,
  ``encryptionConfiguration.kmsKeyName``, ``expirationDuration`` (from now). Update reads the
  table and patches it.
- ``TableMetadata``: the table, or with ``ifNotExists: SKIP`` nothing when it is missing
  (ERROR: "Unable to find table 'project:dataset.table'").
- ``DeleteTable``: a missing table fails. Outputs ``projectId``, ``datasetId``, ``table``.

The table outputs are Kestra's ``AbstractTable.Output``: ``projectId``, ``datasetId``,
``table``, ``etag``, ``generatedId``, ``selfLink``, ``friendlyName``, ``description``,
``creationTime`` / ``expirationTime`` / ``lastModifiedTime`` (instants), ``numBytes``,
``numLongTermBytes``, ``numRows``, ``definition`` (``type``, ``schema.fields`` with standard
type names, and the kind's definition), ``encryptionConfiguration``, ``labels``,
``requirePartitionFilter`` (nulls left out).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from executors.base import TaskContext, TaskError
from executors.plugin import render_bool, render_int, render_map, render_seconds, render_str
from executors.plugins.gcp_bigquery import BigQueryTask, choice, render_strs, schema_fields
from executors.remote import common as c
from executors.remote.google_api import GoogleApi
from schemas.flow.common import BoolOrExpr, Duration, FlowModel, IntOrExpr, Str, format_duration

IF_EXISTS = ("ERROR", "UPDATE", "SKIP")
IF_NOT_EXISTS = ("ERROR", "SKIP")
ENTITY_TYPES = {"USER": "userByEmail", "GROUP": "groupByEmail", "DOMAIN": "domain",
                "IAM_MEMBER": "iamMember"}  # fmt: skip
ROLES = ("READER", "WRITER", "OWNER")
TABLE_TYPES = ("TABLE", "VIEW", "MATERIALIZED_VIEW", "EXTERNAL")
EXTERNAL_FORMATS = ("CSV", "JSON", "BIGTABLE", "DATASTORE_BACKUP", "AVRO", "GOOGLE_SHEETS",
                    "PARQUET", "ORC")  # fmt: skip
# The REST API's legacy type names as Kestra shows them (StandardSQLTypeName).
STANDARD = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "RECORD": "STRUCT"}


class Entity(FlowModel):
    type: Str
    value: Str


class AccessControl(FlowModel):
    entity: Entity
    role: Str


class Encryption(FlowModel):
    kmsKeyName: Str | None = None


class _Dataset(BigQueryTask):
    name: Str
    acl: list[AccessControl] | None = None
    defaultTableLifetime: IntOrExpr | None = None
    description: Str | None = None
    friendlyName: Str | None = None
    defaultEncryptionConfiguration: Encryption | None = None
    defaultPartitionExpirationMs: IntOrExpr | None = None
    labels: dict[str, Str] | Str | None = None

    def dataset_name(self, ctx: TaskContext) -> str:
        return render_str(ctx, self.name, "name", required=True) or ""

    def resource(self, ctx: TaskContext, project: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "datasetReference": {"projectId": project, "datasetId": self.dataset_name(ctx)}
        }
        if self.acl is not None:
            body["access"] = [access(ctx, a) for a in self.acl]
        if self.defaultTableLifetime is not None:
            lifetime = render_int(ctx, self.defaultTableLifetime, "defaultTableLifetime")
            body["defaultTableExpirationMs"] = str(lifetime)
        if self.description is not None:
            body["description"] = render_str(ctx, self.description, "description")
        if self.friendlyName is not None:
            body["friendlyName"] = render_str(ctx, self.friendlyName, "friendlyName")
        location = render_str(ctx, self.location, "location")
        if location:
            body["location"] = location
        if self.defaultEncryptionConfiguration is not None:
            key = self.defaultEncryptionConfiguration.kmsKeyName
            body["defaultEncryptionConfiguration"] = {"kmsKeyName": render_str(ctx, key, "kms")}
        if self.defaultPartitionExpirationMs is not None:
            expiry = render_int(
                ctx, self.defaultPartitionExpirationMs, "defaultPartitionExpirationMs"
            )
            body["defaultPartitionExpirationMs"] = str(expiry)
        if self.labels is not None:
            given = render_map(ctx, self.labels, "labels")
            body["labels"] = {str(k): str(v) for k, v in given.items()}
        return body


def access(ctx: TaskContext, acl: AccessControl) -> dict[str, str]:
    kind = choice(ctx, acl.entity.type, "acl.entity.type", tuple(ENTITY_TYPES)) or "USER"
    role = choice(ctx, acl.role, "acl.role", ROLES)
    return {
        "role": role or "READER",
        ENTITY_TYPES[kind]: render_str(ctx, acl.entity.value, "acl") or "",
    }


def dataset_output(answer: Mapping[str, Any]) -> dict[str, Any]:
    ref = answer.get("datasetReference") or {}
    return c.drop_none(
        {
            "dataset": ref.get("datasetId"),
            "project": ref.get("projectId"),
            "friendlyName": answer.get("friendlyName"),
            "description": answer.get("description"),
            "location": answer.get("location"),
        }
    )


class CreateDataset(_Dataset):
    """Create a dataset (or update or keep an existing one, with ``ifExists``)."""

    type: Literal["io.kestra.plugin.gcp.bigquery.CreateDataset"]
    ifExists: Str = "ERROR"

    async def execute(self, ctx: TaskContext) -> dict[str, Any]:
        if_exists = choice(ctx, self.ifExists, "ifExists", IF_EXISTS) or "ERROR"
        async with self.api(ctx) as api:
            body = self.resource(ctx, api.project)
            name = self.dataset_name(ctx)
            ctx.log("DEBUG", f"Creating dataset '{name}'")
            base = f"/bigquery/v2/projects/{api.project}/datasets"
            status, answer, _ = await api.call("POST", base, json=body, allow=(409,))
            if status == 409:
                if if_exists == "ERROR":
                    raise TaskError(f"BigQuery: dataset '{name}' already exists (409)")
                if if_exists == "UPDATE":
                    answer = await api.json("PATCH", f"{base}/{name}", json=body)
                else:
                    answer = await api.json("GET", f"{base}/{name}")
        return dataset_output(answer or {})


class UpdateDataset(_Dataset):
    """Update a dataset's metadata."""

    type: Literal["io.kestra.plugin.gcp.bigquery.UpdateDataset"]

    async def execute(self, ctx: TaskContext) -> dict[str, Any]:
        async with self.api(ctx) as api:
            body = self.resource(ctx, api.project)
            name = self.dataset_name(ctx)
            ctx.log("DEBUG", f"Updating dataset '{name}'")
            path = f"/bigquery/v2/projects/{api.project}/datasets/{name}"
            answer = await api.json("PATCH", path, json=body)
        return dataset_output(answer or {})


class DeleteDataset(BigQueryTask):
    """Delete a dataset (and its tables, with ``deleteContents``)."""

    type: Literal["io.kestra.plugin.gcp.bigquery.DeleteDataset"]
    name: Str
    deleteContents: BoolOrExpr | None = None

    async def execute(self, ctx: TaskContext) -> dict[str, Any]:
        name = render_str(ctx, self.name, "name", required=True) or ""
        contents = render_bool(ctx, self.deleteContents, "deleteContents")
        async with self.api(ctx) as api:
            ctx.log("DEBUG", f"Deleting dataset '{name}'")
            status, _, _ = await api.call(
                "DELETE",
                f"/bigquery/v2/projects/{api.project}/datasets/{name}",
                params={"deleteContents": "true" if contents else None},
                allow=(404,),
            )
        if status == 404:
            raise TaskError(f"Couldn't find dataset '{name}'")
        return {"dataset": name}


# ------------------------------------------------------------------------------ tables


class TimePartitioning(FlowModel):
    type: Str | None = None
    expiration: Duration | None = None
    field: Str | None = None
    requirePartitionFilter: BoolOrExpr | None = None


class Range(FlowModel):
    start: IntOrExpr
    end: IntOrExpr
    interval: IntOrExpr


class RangePartitioning(FlowModel):
    field: Str | None = None
    range: Range


class StandardTableDefinition(FlowModel):
    clustering: list[Str] | Str | None = None
    timePartitioning: TimePartitioning | None = None
    rangePartitioning: RangePartitioning | None = None
    streamingBuffer: dict[str, Any] | None = None


class ViewDefinition(FlowModel):
    query: Str
    viewUserDefinedFunctions: list[dict[str, Any]] | None = None


class MaterializedViewDefinition(FlowModel):
    query: Str
    enableRefresh: BoolOrExpr | None = None
    refreshInterval: Duration | None = None
    lastRefreshDate: Str | None = None


class ExternalTableDefinition(FlowModel):
    sourceUris: list[Str] | Str
    formatType: Str
    autodetect: BoolOrExpr | None = None
    compression: Str | None = None
    maxBadRecords: IntOrExpr | None = None
    ignoreUnknownValues: BoolOrExpr | None = None


class TableSchema(FlowModel):
    fields: list[dict[str, Any]]


class TableDefinition(FlowModel):
    type: Str
    schema_: TableSchema | None = Field(default=None, alias="schema")
    standardTableDefinition: StandardTableDefinition | None = None
    materializedViewDefinition: MaterializedViewDefinition | None = None
    viewDefinition: ViewDefinition | None = None
    externalTableDefinition: ExternalTableDefinition | None = None


def render_fields(ctx: TaskContext, schema: TableSchema | None) -> dict[str, Any] | None:
    if schema is None:
        return None
    fields = ctx.render(schema.fields)
    for field in fields:
        if isinstance(field, dict) and "subFields" in field:
            field["fields"] = field.pop("subFields")
    return {"fields": schema_fields(fields, "tableDefinition.schema")}


def definition(ctx: TaskContext, d: TableDefinition) -> dict[str, Any]:
    """``TableDefinition.to``: the table resource's definition fields."""
    kind = choice(ctx, d.type, "tableDefinition.type", TABLE_TYPES)
    out: dict[str, Any] = {}
    schema = render_fields(ctx, d.schema_)
    if kind == "VIEW":
        if d.viewDefinition is None:
            raise TaskError("tableDefinition.viewDefinition is required for a VIEW")
        out["view"] = {"query": render_str(ctx, d.viewDefinition.query, "query")}
        udfs = d.viewDefinition.viewUserDefinedFunctions
        if udfs:
            out["view"]["userDefinedFunctionResources"] = ctx.render(udfs)
    elif kind == "MATERIALIZED_VIEW":
        mv = d.materializedViewDefinition
        if mv is None:
            raise TaskError("tableDefinition.materializedViewDefinition is required")
        out["materializedView"] = {"query": render_str(ctx, mv.query, "query")}
        if mv.enableRefresh is not None:
            out["materializedView"]["enableRefresh"] = render_bool(ctx, mv.enableRefresh, "refresh")
        if mv.refreshInterval is not None:
            seconds = render_seconds(ctx, mv.refreshInterval, "refreshInterval") or 0
            out["materializedView"]["refreshIntervalMs"] = str(int(seconds * 1000))
    elif kind == "EXTERNAL":
        ext = d.externalTableDefinition
        if ext is None:
            raise TaskError("tableDefinition.externalTableDefinition is required for EXTERNAL")
        config: dict[str, Any] = {
            "sourceUris": render_strs(ctx, ext.sourceUris, "sourceUris"),
            "sourceFormat": choice(ctx, ext.formatType, "formatType", EXTERNAL_FORMATS),
        }
        if schema is not None:
            config["schema"] = schema
        for key in ("autodetect", "ignoreUnknownValues"):
            if getattr(ext, key) is not None:
                config[key] = render_bool(ctx, getattr(ext, key), key)
        if ext.compression is not None:
            config["compression"] = render_str(ctx, ext.compression, "compression")
        if ext.maxBadRecords is not None:
            config["maxBadRecords"] = render_int(ctx, ext.maxBadRecords, "maxBadRecords")
        out["externalDataConfiguration"] = config
    else:
        std = d.standardTableDefinition or StandardTableDefinition()
        if schema is not None:
            out["schema"] = schema
        if std.clustering is not None:
            out["clustering"] = {"fields": render_strs(ctx, std.clustering, "clustering")}
        if std.timePartitioning is not None:
            tp = std.timePartitioning
            part: dict[str, Any] = {"type": render_str(ctx, tp.type, "type") or "DAY"}
            if tp.expiration is not None:
                seconds = render_seconds(ctx, tp.expiration, "expiration") or 0
                part["expirationMs"] = str(int(seconds * 1000))
            if tp.field is not None:
                part["field"] = render_str(ctx, tp.field, "field")
            if tp.requirePartitionFilter is not None:
                part["requirePartitionFilter"] = render_bool(ctx, tp.requirePartitionFilter, "r")
            out["timePartitioning"] = part
        if std.rangePartitioning is not None:
            rp = std.rangePartitioning
            out["rangePartitioning"] = {
                "field": render_str(ctx, rp.field, "field"),
                "range": {
                    key: str(render_int(ctx, getattr(rp.range, key), key))
                    for key in ("start", "end", "interval")
                },
            }
    return out


def _instant(ms: Any) -> str | None:
    if ms is None:
        return None
    return c.iso(datetime.fromtimestamp(int(ms) / 1000, UTC))


def _num(value: Any) -> int | None:
    return int(value) if value is not None else None


def field_output(field: Mapping[str, Any]) -> dict[str, Any]:
    kind = str(field.get("type", ""))
    out = {
        "name": field.get("name"),
        "type": STANDARD.get(kind, kind),
        "subFields": [field_output(f) for f in field["fields"]] if field.get("fields") else None,
        "mode": field.get("mode"),
        "description": field.get("description"),
        "policyTags": {"names": field["policyTags"].get("names")}
        if field.get("policyTags")
        else None,
    }
    return c.drop_none(out)


def definition_output(table: Mapping[str, Any]) -> dict[str, Any]:
    kind = str(table.get("type") or "TABLE")
    out: dict[str, Any] = {"type": kind}
    if table.get("schema"):
        out["schema"] = {"fields": [field_output(f) for f in table["schema"].get("fields") or []]}
    if kind == "VIEW":
        view = table.get("view") or {}
        udfs = view.get("userDefinedFunctionResources")
        out["viewDefinition"] = c.drop_none(
            {"query": view.get("query"), "viewUserDefinedFunctions": udfs}
        )
    elif kind == "MATERIALIZED_VIEW":
        mv = table.get("materializedView") or {}
        refresh = mv.get("refreshIntervalMs")
        out["materializedViewDefinition"] = c.drop_none(
            {
                "query": mv.get("query"),
                "enableRefresh": mv.get("enableRefresh"),
                "refreshInterval": format_duration(int(refresh) / 1000) if refresh else None,
                "lastRefreshDate": _instant(mv.get("lastRefreshTime")),
            }
        )
    elif kind == "EXTERNAL":
        ext = table.get("externalDataConfiguration") or {}
        out["externalTableDefinition"] = c.drop_none(
            {
                "sourceUris": ext.get("sourceUris"),
                "formatType": ext.get("sourceFormat"),
                "autodetect": ext.get("autodetect"),
                "compression": ext.get("compression"),
                "maxBadRecords": ext.get("maxBadRecords"),
                "ignoreUnknownValues": ext.get("ignoreUnknownValues"),
            }
        )
    else:
        tp = table.get("timePartitioning")
        rp = table.get("rangePartitioning")
        expiry = (tp or {}).get("expirationMs")
        out["standardTableDefinition"] = c.drop_none(
            {
                "streamingBuffer": table.get("streamingBuffer"),
                "clustering": (table.get("clustering") or {}).get("fields"),
                "timePartitioning": c.drop_none(
                    {
                        "type": tp.get("type"),
                        "expiration": format_duration(int(expiry) / 1000) if expiry else None,
                        "field": tp.get("field"),
                        "requirePartitionFilter": tp.get("requirePartitionFilter"),
                    }
                )
                if tp
                else None,
                "rangePartitioning": {
                    "field": rp.get("field"),
                    "range": {k: _num(v) for k, v in (rp.get("range") or {}).items()},
                }
                if rp
                else None,
            }
        )
    return out


def table_output(table: Mapping[str, Any]) -> dict[str, Any]:
    """Kestra's ``AbstractTable.Output.of``."""
    ref = table.get("tableReference") or {}
    encryption = table.get("encryptionConfiguration")
    out = {
        "projectId": ref.get("projectId"),
        "datasetId": ref.get("datasetId"),
        "table": ref.get("tableId"),
        "etag": table.get("etag"),
        "generatedId": table.get("id"),
        "selfLink": table.get("selfLink"),
        "friendlyName": table.get("friendlyName"),
        "description": table.get("description"),
        "creationTime": _instant(table.get("creationTime")),
        "expirationTime": _instant(table.get("expirationTime")),
        "lastModifiedTime": _instant(table.get("lastModifiedTime")),
        "numBytes": _num(table.get("numBytes")),
        "numLongTermBytes": _num(table.get("numLongTermBytes")),
        "numRows": _num(table.get("numRows")),
        "definition": definition_output(table),
        "encryptionConfiguration": {"kmsKeyName": encryption.get("kmsKeyName")}
        if encryption
        else None,
        "labels": table.get("labels"),
        "requirePartitionFilter": table.get("requirePartitionFilter"),
    }
    return c.drop_none(out)


class _Table(BigQueryTask):
    dataset: Str
    table: Str

    def names(self, ctx: TaskContext, api: GoogleApi) -> tuple[str, str, str]:
        dataset = render_str(ctx, self.dataset, "dataset", required=True) or ""
        table = render_str(ctx, self.table, "table", required=True) or ""
        return api.project, dataset, table

    def path(self, names: tuple[str, str, str]) -> str:
        project, dataset, table = names
        return f"/bigquery/v2/projects/{project}/datasets/{dataset}/tables/{table}"


class _TableWrite(_Table):
    tableDefinition: TableDefinition | None = None
    friendlyName: Str | None = None
    description: Str | None = None
    labels: dict[str, Str] | Str | None = None
    requirePartitionFilter: BoolOrExpr | None = None
    encryptionConfiguration: Encryption | None = None
    expirationDuration: Duration | None = None

    def resource(self, ctx: TaskContext, names: tuple[str, str, str]) -> dict[str, Any]:
        project, dataset, table = names
        body: dict[str, Any] = {
            "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table}
        }
        if self.tableDefinition is not None:
            body.update(definition(ctx, self.tableDefinition))
        for key in ("friendlyName", "description"):
            if getattr(self, key) is not None:
                body[key] = render_str(ctx, getattr(self, key), key)
        if self.labels is not None:
            given = render_map(ctx, self.labels, "labels")
            body["labels"] = {str(k): str(v) for k, v in given.items()}
        if self.requirePartitionFilter is not None:
            body["requirePartitionFilter"] = render_bool(
                ctx, self.requirePartitionFilter, "requirePartitionFilter"
            )
        if self.encryptionConfiguration is not None:
            kms = self.encryptionConfiguration.kmsKeyName
            body["encryptionConfiguration"] = {"kmsKeyName": render_str(ctx, kms, "kmsKeyName")}
        if self.expirationDuration is not None:
            seconds = render_seconds(ctx, self.expirationDuration, "expirationDuration") or 0
            expires = ctx.clock() + timedelta(seconds=seconds)
            body["expirationTime"] = str(int(expires.timestamp() * 1000))
        return body


class CreateTable(_TableWrite):
    """Create a table, view, materialized view or external table."""

    type: Literal["io.kestra.plugin.gcp.bigquery.CreateTable"]

    async def execute(self, ctx: TaskContext) -> dict[str, Any]:
        if self.tableDefinition is None:
            raise TaskError("property 'tableDefinition' is required")
        async with self.api(ctx) as api:
            names = self.names(ctx, api)
            body = self.resource(ctx, names)
            ctx.log("DEBUG", f"Creating table '{'.'.join(names)}'")
            project, dataset, _ = names
            path = f"/bigquery/v2/projects/{project}/datasets/{dataset}/tables"
            answer = await api.json("POST", path, json=body)
        return table_output(answer or {})


class UpdateTable(_TableWrite):
    """Update a table's metadata (its definition, labels, expiration...)."""

    type: Literal["io.kestra.plugin.gcp.bigquery.UpdateTable"]

    async def execute(self, ctx: TaskContext) -> dict[str, Any]:
        async with self.api(ctx) as api:
            names = self.names(ctx, api)
            await api.json("GET", self.path(names))
            body = self.resource(ctx, names)
            ctx.log("DEBUG", f"Updating table metadata '{'.'.join(names)}'")
            answer = await api.json("PATCH", self.path(names), json=body)
        return table_output(answer or {})


class TableMetadata(_Table):
    """Read a table's metadata."""

    type: Literal["io.kestra.plugin.gcp.bigquery.TableMetadata"]
    ifNotExists: Str = "ERROR"

    async def execute(self, ctx: TaskContext) -> dict[str, Any]:
        mode = choice(ctx, self.ifNotExists, "ifNotExists", IF_NOT_EXISTS) or "ERROR"
        async with self.api(ctx) as api:
            names = self.names(ctx, api)
            ctx.log("DEBUG", f"Getting table metadata '{'.'.join(names)}'")
            status, answer, _ = await api.call("GET", self.path(names), allow=(404,))
        if status == 404:
            if mode == "SKIP":
                return {}
            project, dataset, table = names
            raise TaskError(f"Unable to find table '{project}:{dataset}.{table}'")
        return table_output(answer or {})


class DeleteTable(_Table):
    """Delete a table (or one partition, ``table$20240101``)."""

    type: Literal["io.kestra.plugin.gcp.bigquery.DeleteTable"]

    async def execute(self, ctx: TaskContext) -> dict[str, Any]:
        async with self.api(ctx) as api:
            names = self.names(ctx, api)
            ctx.log("DEBUG", f"Deleting table '{'.'.join(names)}'")
            status, _, _ = await api.call("DELETE", self.path(names), allow=(404,))
        project, dataset, table = names
        if status == 404:
            raise TaskError(f"Couldn't find table '{project}.{dataset}.{table}'")
        return {"projectId": project, "datasetId": dataset, "table": table}


PLUGINS: list[type[BigQueryTask]] = [
    CreateDataset,
    UpdateDataset,
    DeleteDataset,
    CreateTable,
    UpdateTable,
    TableMetadata,
    DeleteTable,
]
