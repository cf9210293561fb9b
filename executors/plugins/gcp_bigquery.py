"""Kestra's BigQuery job types (``io.kestra.plugin.gcp.bigquery.*``): Query, Load, LoadFromGcs,
Copy, ExtractToGcs, on BigQuery's REST API (:mod:`executors.remote.bigquery`).

What Kestra does (kestra-io/plugin-gcp, the Java client), and what this module ports. Every
type has the credential properties (``projectId``, ``serviceAccount``,
``impersonatedServiceAccount``, ``scopes``), ``location``, and ``retryAuto`` / ``retryReasons``
/ ``retryMessages`` (see :mod:`executors.remote.bigquery`). A table is written
``[project.]dataset.table``.

- ``Query``: ``sql``; ``fetchType`` (NONE; FETCH, FETCH_ONE, STORE) or the deprecated
  ``fetch`` / ``fetchOne`` / ``store`` (STORE with FETCH is refused, and so is a fetch with
  ``destinationTable``); ``legacySql`` / ``useLegacySql`` (false), ``destinationTable``,
  ``writeDisposition``, ``createDisposition``, ``clusteringFields``, ``schemaUpdateOptions``,
  ``timePartitioningField`` + ``timePartitioningType`` (DAY), ``rangePartitioningField`` +
  ``rangePartitioningStart`` / ``End`` / ``Interval``, ``defaultDataset``, ``priority``
  (INTERACTIVE), ``allowLargeResults``, ``useQueryCache``, ``flattenResults`` (true),
  ``maximumBillingTier``, ``maximumBytesBilled``, ``maxResults`` (the page size of the
  results), ``jobTimeout``, ``labels``, ``dryRun`` (false). Outputs ``jobId``; with FETCH
  ``rows`` and ``size``, FETCH_ONE ``row`` (``{}`` when none) and ``size``, STORE ``uri`` (an
  Ion file, one row a line) and ``size``; ``destinationTable`` (``project``, ``dataset``,
  ``table``: the one given, or BigQuery's anonymous result table). A row maps each column to
  its converted value (:func:`executors.remote.bigquery.cell`). Metrics ``total.rows``,
  ``fetch.rows``, ``cache.hit``, ``total.bytes.processed``, ``total.bytes.billed``,
  ``estimated.bytes.processed``, ``num.dml.affected.rows``, ``total.slot.ms``,
  ``total.partitions.processed``, ``referenced.tables``, ``num.child.jobs`` (when BigQuery
  reports them).
- ``Load``: ``from`` (a ``kestra://`` file) sent as a load job through a resumable upload;
  ``failedOnEmpty`` (true: an empty file fails with Kestra's "Can't load an empty file and
  this one don't contain any data"; false: outputs ``rows: 0``). ``LoadFromGcs``: ``from``, a
  list of ``gs://`` URIs. Both: ``destinationTable``, ``format`` (CSV, JSON, AVRO, PARQUET,
  ORC), ``csvOptions`` (``allowJaggedRows``, ``allowQuotedNewLines``, ``encoding``,
  ``fieldDelimiter``, ``quote``, ``skipLeadingRows``), ``avroOptions.useAvroLogicalTypes``,
  ``schema`` (``fields``: ``name``, ``type`` (a standard SQL type name), ``mode``,
  ``description``, ``fields``), ``autodetect``, ``writeDisposition``, ``createDisposition``,
  ``ignoreUnknownValues``, ``maxBadRecords``, ``clusteringFields``, ``schemaUpdateOptions``,
  ``timePartitioningField`` / ``Type``. Outputs ``jobId``, ``destinationTable``
  (``project.dataset.table``), ``rows``; metrics ``output.rows``, ``output.bytes``,
  ``bad.records``, ``input.bytes``, ``input.files``.
- ``Copy``: ``sourceTables``, ``destinationTable``, ``operationType`` (COPY, SNAPSHOT,
  RESTORE, CLONE), dispositions, ``jobTimeout``, ``labels``, ``dryRun``. Output ``jobId``.
- ``ExtractToGcs``: ``sourceTable``, ``destinationUris``, ``format``, ``compression``,
  ``fieldDelimiter``, ``printHeader``, ``useAvroLogicalTypes``, ``jobTimeoutMs``, ``labels``.
  Outputs ``jobId``, ``sourceTable`` (the table's name), ``destinationUris``, ``fileCounts``;
  metric ``output.file_counts``.

What differs: ``legacySql: true`` selects legacy SQL (in Kestra ``useLegacySql``'s default
false overrides it). ``format: CSV`` without ``csvOptions`` loads with BigQuery's CSV defaults
(Kestra refuses the flow). A load with no ``format`` leaves BigQuery's default (CSV; Kestra
fails on it). Load's ``destinationTable`` output names the job's project when the table was
given as ``dataset.table`` (Kestra prints ``null.dataset.table``). ExtractToGcs retries
transient job errors as the other job types do (Kestra's waits once). Not tested against Google
itself: tests run against bqemulator (a BigQuery emulator) and a local receiver.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from executors.api_client import ApiTask
from executors.base import TaskContext, TaskError, TaskOutcome
from executors.ion import IonWriter
from executors.plugin import render_bool, render_int, render_map, render_seconds, render_str
from executors.plugins.gcp_gcs import GcpConnection
from executors.remote import common as c
from executors.remote.bigquery import (
    DEFAULT_RETRY,
    RETRY_MESSAGES,
    RETRY_REASONS,
    Jobs,
    RetrySettings,
    kestra_labels,
    row,
    table_of,
    table_ref,
)
from executors.remote.google_api import BIGQUERY, GoogleApi, google_api, render_settings
from executors.sql.values import row_output
from schemas.flow.common import BoolOrExpr, Duration, FlowModel, IntOrExpr, Str
from schemas.flow.retry import Retry

FETCH_TYPES = ("NONE", "FETCH", "FETCH_ONE", "STORE")
WRITE_DISPOSITIONS = ("WRITE_TRUNCATE", "WRITE_APPEND", "WRITE_EMPTY", "WRITE_TRUNCATE_DATA")
CREATE_DISPOSITIONS = ("CREATE_IF_NEEDED", "CREATE_NEVER")
SCHEMA_UPDATES = ("ALLOW_FIELD_ADDITION", "ALLOW_FIELD_RELAXATION")
PARTITION_TYPES = ("DAY", "HOUR", "MONTH", "YEAR")
PRIORITIES = ("INTERACTIVE", "BATCH")
FORMATS = {
    "CSV": "CSV",
    "JSON": "NEWLINE_DELIMITED_JSON",
    "AVRO": "AVRO",
    "PARQUET": "PARQUET",
    "ORC": "ORC",
}
OPERATIONS = ("COPY", "SNAPSHOT", "RESTORE", "CLONE")
# StandardSQLTypeName, as the Java client sends each one (its legacy name).
SQL_TYPES = {
    "BOOL": "BOOLEAN",
    "INT64": "INTEGER",
    "FLOAT64": "FLOAT",
    "NUMERIC": "NUMERIC",
    "BIGNUMERIC": "BIGNUMERIC",
    "STRING": "STRING",
    "BYTES": "BYTES",
    "STRUCT": "RECORD",
    "ARRAY": "ARRAY",
    "TIMESTAMP": "TIMESTAMP",
    "DATE": "DATE",
    "TIME": "TIME",
    "DATETIME": "DATETIME",
    "GEOGRAPHY": "GEOGRAPHY",
    "JSON": "JSON",
    "INTERVAL": "INTERVAL",
    "RANGE": "RANGE",
}
FIELD_MODES = ("NULLABLE", "REQUIRED", "REPEATED")


def render_strs(ctx: TaskContext, value: Any, name: str) -> list[str] | None:
    """A rendered list of strings (an expression may give a list or its JSON text)."""
    if value is None:
        return None
    rendered = ctx.render(value)
    if isinstance(rendered, str):
        text = rendered.strip()
        if text.startswith("["):
            import orjson

            try:
                rendered = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise TaskError(f"property '{name}': not a list: {exc}") from exc
        else:
            rendered = [rendered]
    if not isinstance(rendered, list):
        raise TaskError(f"property '{name}': expected a list, got {rendered!r}")
    return [str(v) for v in rendered]


def schema_fields(fields: Any, name: str) -> list[dict[str, Any]]:
    """Kestra's ``AbstractLoad.fields``: name, type (StandardSQLTypeName), mode, description."""
    if not isinstance(fields, list):
        raise TaskError(f"property '{name}': Unable to deserialize schema, no 'fields'")
    out: list[dict[str, Any]] = []
    for field in fields:
        if not isinstance(field, Mapping) or not field.get("name"):
            raise TaskError(f"property '{name}': a field needs a 'name': {field!r}")
        kind = str(field.get("type", "")).upper()
        if kind not in SQL_TYPES:
            raise TaskError(
                f"property '{name}': field '{field['name']}' has type {field.get('type')!r}, "
                f"not one of {', '.join(SQL_TYPES)}"
            )
        item: dict[str, Any] = {"name": str(field["name"]), "type": SQL_TYPES[kind]}
        if field.get("mode") is not None:
            mode = str(field["mode"]).upper()
            if mode not in FIELD_MODES:
                raise TaskError(f"property '{name}': mode {field['mode']!r} is not a field mode")
            item["mode"] = mode
        if field.get("description") is not None:
            item["description"] = str(field["description"])
        if field.get("fields") is not None:
            item["fields"] = schema_fields(field["fields"], name)
        out.append(item)
    return out


def render_schema(ctx: TaskContext, value: Any, name: str) -> dict[str, Any] | None:
    if value is None:
        return None
    schema = render_map(ctx, value, name)
    if "fields" not in schema:
        raise TaskError(
            f"property '{name}': Unable to deserialize schema, no 'fields' with data '{schema}'"
        )
    return {"fields": schema_fields(schema["fields"], name)}


class BigQueryTask(ApiTask, GcpConnection):
    """Kestra's ``AbstractBigquery`` properties."""

    family: ClassVar[str] = "gcp"

    location: Str | None = None
    retryAuto: Retry | None = None
    retryReasons: list[Str] | Str | None = None
    retryMessages: list[Str] | Str | None = None

    def retry_settings(self, ctx: TaskContext) -> RetrySettings:
        policy = self.retryAuto.model_dump(exclude_none=True) if self.retryAuto else DEFAULT_RETRY
        rendered = ctx.render(policy)
        return RetrySettings(
            policy=rendered,
            reasons=render_strs(ctx, self.retryReasons, "retryReasons") or list(RETRY_REASONS),
            messages=render_strs(ctx, self.retryMessages, "retryMessages") or list(RETRY_MESSAGES),
        )

    def api(self, ctx: TaskContext) -> Any:
        return google_api(ctx, render_settings(ctx, self), BIGQUERY)

    def jobs(self, api: GoogleApi, ctx: TaskContext) -> Jobs:
        return Jobs(api, ctx, render_str(ctx, self.location, "location") or None)

    def job_labels(self, ctx: TaskContext) -> dict[str, str]:
        """Kestra's job labels, then the task's ``labels`` over them."""
        out = kestra_labels(ctx)
        given = render_map(ctx, getattr(self, "labels", None), "labels")
        out.update({str(k): str(v) for k, v in given.items()})
        return out


def choice(ctx: TaskContext, value: Any, name: str, choices: tuple[str, ...]) -> str | None:
    return c.render_choice(ctx, value, name, choices)


def time_partitioning(ctx: TaskContext, kind: Any, field: Any) -> dict[str, Any]:
    return {
        "type": choice(ctx, kind, "timePartitioningType", PARTITION_TYPES),
        "field": render_str(ctx, field, "timePartitioningField"),
    }


def append_rows(path: Path, rows: list[dict[str, Any]]) -> int:
    """Rows appended to an Ion file, one a line (Kestra's ``FileSerde.writeAll``)."""
    with path.open("ab") as stream:
        return IonWriter(stream).write_all(rows)


def stats_metrics(stats: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, metric in names.items():
        value = stats.get(key)
        if value is None:
            continue
        if isinstance(value, list):
            out[metric] = len(value)
        elif isinstance(value, bool):
            out[metric] = 1 if value else 0
        else:
            out[metric] = int(value)
    return out


def duration_metric(stats: Mapping[str, Any]) -> dict[str, float]:
    start, end = stats.get("startTime"), stats.get("endTime")
    if start is None or end is None:
        return {}
    return {"duration": (int(end) - int(start)) / 1000}


QUERY_METRICS = {
    "estimatedBytesProcessed": "estimated.bytes.processed",
    "numDmlAffectedRows": "num.dml.affected.rows",
    "totalBytesBilled": "total.bytes.billed",
    "totalBytesProcessed": "total.bytes.processed",
    "totalPartitionsProcessed": "total.partitions.processed",
    "totalSlotMs": "total.slot.ms",
    "referencedTables": "referenced.tables",
    "cacheHit": "cache.hit",
}


class Query(BigQueryTask):
    """Run a SQL query (a BigQuery job); fetch, store or write its results."""

    type: Literal["io.kestra.plugin.gcp.bigquery.Query"]
    sql: Str | None = None
    legacySql: BoolOrExpr = False
    useLegacySql: BoolOrExpr = False
    fetch: BoolOrExpr = False
    store: BoolOrExpr = False
    fetchOne: BoolOrExpr = False
    fetchType: Str = "NONE"
    destinationTable: Str | None = None
    writeDisposition: Str | None = None
    createDisposition: Str | None = None
    jobTimeout: Duration | None = None
    labels: dict[str, Str] | Str | None = None
    dryRun: BoolOrExpr = False
    clusteringFields: list[Str] | Str | None = None
    schemaUpdateOptions: list[Str] | Str | None = None
    timePartitioningField: Str | None = None
    timePartitioningType: Str = "DAY"
    rangePartitioningField: Str | None = None
    rangePartitioningStart: IntOrExpr | None = None
    rangePartitioningEnd: IntOrExpr | None = None
    rangePartitioningInterval: IntOrExpr | None = None
    defaultDataset: Str | None = None
    priority: Str = "INTERACTIVE"
    allowLargeResults: BoolOrExpr | None = None
    useQueryCache: BoolOrExpr | None = None
    flattenResults: BoolOrExpr = True
    maximumBillingTier: IntOrExpr | None = None
    maximumBytesBilled: IntOrExpr | None = None
    maxResults: IntOrExpr | None = None

    def fetch_type(self, ctx: TaskContext) -> str:
        fetch = render_bool(ctx, self.fetch, "fetch")
        fetch_one = render_bool(ctx, self.fetchOne, "fetchOne")
        store = render_bool(ctx, self.store, "store")
        if (fetch or fetch_one) and store:
            raise TaskError(
                "Invalid store with fetch or fetchOne properties, you can't have both defined."
            )
        if (fetch or fetch_one or store) and self.destinationTable is not None:
            raise TaskError(
                "Invalid store & fetch or fetchOne properties with destinationTable, you can't "
                "fetch data when destinationTable is defined"
            )
        if fetch:
            return "FETCH"
        if store:
            return "STORE"
        if fetch_one:
            return "FETCH_ONE"
        return choice(ctx, self.fetchType, "fetchType", FETCH_TYPES) or "NONE"

    def configuration(self, ctx: TaskContext, project: str) -> dict[str, Any]:
        sql = render_str(ctx, self.sql, "sql", required=True)
        legacy = render_bool(ctx, self.legacySql, "legacySql") or render_bool(
            ctx, self.useLegacySql, "useLegacySql"
        )
        query: dict[str, Any] = {"query": sql, "useLegacySql": legacy}
        if self.clusteringFields is not None:
            query["clustering"] = {
                "fields": render_strs(ctx, self.clusteringFields, "clusteringFields")
            }
        if self.destinationTable is not None:
            dest = render_str(ctx, self.destinationTable, "destinationTable")
            query["destinationTable"] = table_ref(dest, project, "destinationTable").json()
        if self.schemaUpdateOptions is not None:
            options = render_strs(ctx, self.schemaUpdateOptions, "schemaUpdateOptions") or []
            query["schemaUpdateOptions"] = [
                choice(ctx, o, "schemaUpdateOptions", SCHEMA_UPDATES) for o in options
            ]
        if self.timePartitioningField is not None:
            query["timePartitioning"] = time_partitioning(
                ctx, self.timePartitioningType, self.timePartitioningField
            )
        if self.rangePartitioningField is not None:
            query["rangePartitioning"] = {
                "field": render_str(ctx, self.rangePartitioningField, "rangePartitioningField"),
                "range": c.drop_none(
                    {
                        key: render_int(ctx, getattr(self, prop), prop)
                        for key, prop in (
                            ("start", "rangePartitioningStart"),
                            ("end", "rangePartitioningEnd"),
                            ("interval", "rangePartitioningInterval"),
                        )
                    }
                ),
            }
        for key, prop, choices in (
            ("writeDisposition", "writeDisposition", WRITE_DISPOSITIONS),
            ("createDisposition", "createDisposition", CREATE_DISPOSITIONS),
            ("priority", "priority", PRIORITIES),
        ):
            value = choice(ctx, getattr(self, prop), prop, choices)
            if value:
                query[key] = value
        for key in ("allowLargeResults", "useQueryCache", "flattenResults"):
            if getattr(self, key) is not None:
                query[key] = render_bool(ctx, getattr(self, key), key)
        if self.maximumBillingTier is not None:
            query["maximumBillingTier"] = render_int(
                ctx, self.maximumBillingTier, "maximumBillingTier"
            )
        if self.maximumBytesBilled is not None:
            billed = render_int(ctx, self.maximumBytesBilled, "maximumBytesBilled")
            query["maximumBytesBilled"] = str(billed)
        if self.defaultDataset is not None:
            query["defaultDataset"] = {
                "datasetId": render_str(ctx, self.defaultDataset, "defaultDataset"),
                "projectId": project,
            }
        config: dict[str, Any] = {
            "query": query,
            "dryRun": render_bool(ctx, self.dryRun, "dryRun"),
            "labels": self.job_labels(ctx),
        }
        if self.jobTimeout is not None:
            seconds = render_seconds(ctx, self.jobTimeout, "jobTimeout") or 0
            config["jobTimeoutMs"] = str(int(seconds * 1000))
        return config

    async def execute(self, ctx: TaskContext) -> TaskOutcome:
        fetch_type = self.fetch_type(ctx)
        page_size = render_int(ctx, self.maxResults, "maxResults")
        retry = self.retry_settings(ctx)
        async with self.api(ctx) as api:
            jobs = self.jobs(api, ctx)
            config = self.configuration(ctx, api.project)
            ctx.log("DEBUG", f"Starting query: {config['query']['query']}")
            job = await jobs.run(lambda: jobs.insert(config), retry, dry_run=bool(config["dryRun"]))
            stats = (job.get("statistics") or {}).get("query") or {}
            metrics: dict[str, Any] = stats_metrics(stats, QUERY_METRICS)
            metrics.update(duration_metric(job.get("statistics") or {}))
            if (job.get("statistics") or {}).get("numChildJobs") is not None:
                metrics["num.child.jobs"] = int(job["statistics"]["numChildJobs"])
            outputs: dict[str, Any] = {"jobId": (job.get("jobReference") or {}).get("jobId")}
            if fetch_type != "NONE":
                outputs.update(await self.results(ctx, jobs, job, fetch_type, page_size, metrics))
        dest = table_of(
            ((job.get("configuration") or {}).get("query") or {}).get("destinationTable")
        )
        if dest is not None and dest.table:
            ctx.log("DEBUG", f"Query loaded in: {dest.dataset}.{dest.table}")
            outputs["destinationTable"] = {
                "project": dest.project,
                "dataset": dest.dataset,
                "table": dest.table,
            }
        return TaskOutcome("SUCCESS", outputs, metrics=metrics)

    async def results(
        self,
        ctx: TaskContext,
        jobs: Jobs,
        job: dict[str, Any],
        fetch_type: str,
        page_size: int | None,
        metrics: dict[str, Any],
    ) -> dict[str, Any]:
        total = 0
        if fetch_type == "STORE":
            handle, name = tempfile.mkstemp(suffix=".ion", dir=c.scratch_dir(ctx))
            os.close(handle)
            path = Path(name)
            count = 0
            async for fields, rows, page_total in jobs.results(job, page_size):
                total = page_total
                converted = [row(fields, r) for r in rows]
                count += await asyncio.to_thread(append_rows, path, converted)
            uri = await c.storage_of(ctx).put_file(path.name, path, move=True)
            metrics.update({"total.rows": total, "fetch.rows": count})
            return {"uri": uri, "size": count}
        fetched: list[dict[str, Any]] = []
        async for fields, rows, page_total in jobs.results(job, page_size):
            total = page_total
            fetched.extend(row_output(row(fields, r)) for r in rows)
        if total > len(fetched):
            raise TaskError(f"Invalid fetch rows, got {len(fetched)}, expected {total}")
        metrics.update({"total.rows": total, "fetch.rows": len(fetched)})
        if fetch_type == "FETCH":
            return {"rows": fetched, "size": len(fetched)}
        return {"row": fetched[0] if fetched else {}, "size": len(fetched)}


class CsvOptions(FlowModel):
    allowJaggedRows: BoolOrExpr | None = None
    allowQuotedNewLines: BoolOrExpr | None = None
    encoding: Str | None = None
    fieldDelimiter: Str | None = None
    quote: Str | None = None
    skipLeadingRows: IntOrExpr | None = None


class AvroOptions(FlowModel):
    useAvroLogicalTypes: BoolOrExpr | None = None


LOAD_METRICS = {
    "outputRows": "output.rows",
    "outputBytes": "output.bytes",
    "badRecords": "bad.records",
    "inputFileBytes": "input.bytes",
    "inputFiles": "input.files",
}


class _Load(BigQueryTask):
    """Kestra's ``AbstractLoad``."""

    destinationTable: Str | None = None
    clusteringFields: list[Str] | Str | None = None
    schemaUpdateOptions: list[Str] | Str | None = None
    timePartitioningField: Str | None = None
    timePartitioningType: Str = "DAY"
    writeDisposition: Str | None = None
    autodetect: BoolOrExpr | None = None
    createDisposition: Str | None = None
    ignoreUnknownValues: BoolOrExpr | None = None
    maxBadRecords: IntOrExpr | None = None
    schema_: dict[str, Any] | Str | None = Field(default=None, alias="schema")
    format: Literal["CSV", "JSON", "AVRO", "PARQUET", "ORC"] | None = None
    csvOptions: CsvOptions | None = None
    avroOptions: AvroOptions | None = None

    def load_configuration(self, ctx: TaskContext, project: str) -> tuple[dict[str, Any], str]:
        dest_text = render_str(ctx, self.destinationTable, "destinationTable", required=True)
        dest = table_ref(dest_text, project, "destinationTable")
        load: dict[str, Any] = {"destinationTable": dest.json()}
        if self.clusteringFields is not None:
            load["clustering"] = {
                "fields": render_strs(ctx, self.clusteringFields, "clusteringFields")
            }
        if self.schemaUpdateOptions is not None:
            options = render_strs(ctx, self.schemaUpdateOptions, "schemaUpdateOptions") or []
            load["schemaUpdateOptions"] = [
                choice(ctx, o, "schemaUpdateOptions", SCHEMA_UPDATES) for o in options
            ]
        if self.timePartitioningField is not None:
            load["timePartitioning"] = time_partitioning(
                ctx, self.timePartitioningType, self.timePartitioningField
            )
        for key, choices in (
            ("writeDisposition", WRITE_DISPOSITIONS),
            ("createDisposition", CREATE_DISPOSITIONS),
        ):
            value = choice(ctx, getattr(self, key), key, choices)
            if value:
                load[key] = value
        for key in ("autodetect", "ignoreUnknownValues"):
            if getattr(self, key) is not None:
                load[key] = render_bool(ctx, getattr(self, key), key)
        if self.maxBadRecords is not None:
            load["maxBadRecords"] = render_int(ctx, self.maxBadRecords, "maxBadRecords")
        schema = render_schema(ctx, self.schema_, "schema")
        if schema is not None:
            load["schema"] = schema
        if self.format is not None:
            load["sourceFormat"] = FORMATS[self.format]
        if self.format == "CSV" and self.csvOptions is not None:
            o = self.csvOptions
            for key in ("allowJaggedRows", "allowQuotedNewLines"):
                if getattr(o, key) is not None:
                    load[key] = render_bool(ctx, getattr(o, key), f"csvOptions.{key}")
            for key in ("encoding", "fieldDelimiter", "quote"):
                if getattr(o, key) is not None:
                    load[key] = render_str(ctx, getattr(o, key), f"csvOptions.{key}")
            if o.skipLeadingRows is not None:
                skip = render_int(ctx, o.skipLeadingRows, "csvOptions.skipLeadingRows")
                load["skipLeadingRows"] = skip
        if self.format == "AVRO" and self.avroOptions is not None:
            if self.avroOptions.useAvroLogicalTypes is not None:
                load["useAvroLogicalTypes"] = render_bool(
                    ctx, self.avroOptions.useAvroLogicalTypes, "avroOptions.useAvroLogicalTypes"
                )
        return load, dest.dotted()

    def outputs(self, job: Mapping[str, Any], dest: str) -> TaskOutcome:
        stats = job.get("statistics") or {}
        load = stats.get("load") or {}
        metrics = stats_metrics(load, LOAD_METRICS)
        metrics.update(duration_metric(stats))
        rows = load.get("outputRows")
        outputs = {
            "jobId": (job.get("jobReference") or {}).get("jobId"),
            "destinationTable": dest,
            "rows": int(rows) if rows is not None else None,
        }
        return TaskOutcome("SUCCESS", c.drop_none(outputs), metrics=metrics)


class Load(_Load):
    """Load a file from internal storage into a BigQuery table."""

    type: Literal["io.kestra.plugin.gcp.bigquery.Load"]
    from_: Str = Field(alias="from")
    failedOnEmpty: BoolOrExpr = True

    async def execute(self, ctx: TaskContext) -> TaskOutcome:
        uri = (render_str(ctx, self.from_, "from", required=True) or "").strip()
        if not uri.startswith("kestra://"):
            raise TaskError(
                f"property 'from': {uri!r} is not an internal storage URI (kestra:///...)"
            )
        source = await c.source_path(ctx, uri)
        size = (await asyncio.to_thread(source.stat)).st_size
        if size == 0:
            if render_bool(ctx, self.failedOnEmpty, "failedOnEmpty", True):
                raise TaskError("Can't load an empty file and this one don't contain any data")
            return TaskOutcome("SUCCESS", {"rows": 0})
        retry = self.retry_settings(ctx)
        async with self.api(ctx) as api:
            jobs = self.jobs(api, ctx)
            load, dest = self.load_configuration(ctx, api.project)
            ctx.log("DEBUG", f"Starting load of {size} bytes from '{uri}' to '{dest}'")
            config = {"load": load}
            job = await jobs.run(lambda: jobs.upload(config, source), retry)
        return self.outputs(job, dest)


class LoadFromGcs(_Load):
    """Load Cloud Storage objects (``gs://`` URIs) into a BigQuery table."""

    type: Literal["io.kestra.plugin.gcp.bigquery.LoadFromGcs"]
    from_: list[Str] | Str | None = Field(default=None, alias="from")

    async def execute(self, ctx: TaskContext) -> TaskOutcome:
        uris = render_strs(ctx, self.from_, "from") or []
        if not uris:
            raise TaskError("property 'from' is required: the gs:// URIs to load")
        retry = self.retry_settings(ctx)
        async with self.api(ctx) as api:
            jobs = self.jobs(api, ctx)
            load, dest = self.load_configuration(ctx, api.project)
            load["sourceUris"] = uris
            ctx.log("DEBUG", f"Starting load of {uris} to '{dest}'")
            job = await jobs.run(lambda: jobs.insert({"load": load}), retry)
        return self.outputs(job, dest)


class Copy(BigQueryTask):
    """Copy tables (or snapshot, restore, clone them) into a destination table."""

    type: Literal["io.kestra.plugin.gcp.bigquery.Copy"]
    sourceTables: list[Str] | Str
    destinationTable: Str
    operationType: Str | None = None
    writeDisposition: Str | None = None
    createDisposition: Str | None = None
    jobTimeout: Duration | None = None
    labels: dict[str, Str] | Str | None = None
    dryRun: BoolOrExpr = False

    async def execute(self, ctx: TaskContext) -> TaskOutcome:
        retry = self.retry_settings(ctx)
        async with self.api(ctx) as api:
            jobs = self.jobs(api, ctx)
            project = api.project
            dest_text = render_str(ctx, self.destinationTable, "destinationTable", required=True)
            copy: dict[str, Any] = {
                "destinationTable": table_ref(dest_text, project, "destinationTable").json(),
                "sourceTables": [
                    table_ref(t, project, "sourceTables").json()
                    for t in render_strs(ctx, self.sourceTables, "sourceTables") or []
                ],
            }
            for key, choices in (
                ("writeDisposition", WRITE_DISPOSITIONS),
                ("createDisposition", CREATE_DISPOSITIONS),
                ("operationType", OPERATIONS),
            ):
                value = choice(ctx, getattr(self, key), key, choices)
                if value:
                    copy[key] = value
            dry_run = render_bool(ctx, self.dryRun, "dryRun")
            config: dict[str, Any] = {
                "copy": copy,
                "dryRun": dry_run,
                "labels": self.job_labels(ctx),
            }
            if self.jobTimeout is not None:
                seconds = render_seconds(ctx, self.jobTimeout, "jobTimeout") or 0
                config["jobTimeoutMs"] = str(int(seconds * 1000))
            ctx.log("DEBUG", f"Starting copy from {copy['sourceTables']} to {dest_text}")
            job = await jobs.run(lambda: jobs.insert(config), retry, dry_run=dry_run)
        stats = job.get("statistics") or {}
        metrics: dict[str, Any] = duration_metric(stats)
        if stats.get("numChildJobs") is not None:
            metrics["num.child.jobs"] = int(stats["numChildJobs"])
        return TaskOutcome(
            "SUCCESS", {"jobId": (job.get("jobReference") or {}).get("jobId")}, metrics=metrics
        )


class ExtractToGcs(BigQueryTask):
    """Export a table to Cloud Storage files (an extract job)."""

    type: Literal["io.kestra.plugin.gcp.bigquery.ExtractToGcs"]
    sourceTable: Str | None = None
    destinationUris: list[Str] | Str | None = None
    compression: Str | None = None
    fieldDelimiter: Str | None = None
    format: Str | None = None
    useAvroLogicalTypes: BoolOrExpr | None = None
    jobTimeoutMs: IntOrExpr | None = None
    labels: dict[str, Str] | Str | None = None
    printHeader: BoolOrExpr | None = None

    async def execute(self, ctx: TaskContext) -> TaskOutcome:
        retry = self.retry_settings(ctx)
        uris = render_strs(ctx, self.destinationUris, "destinationUris") or []
        if not uris:
            raise TaskError("property 'destinationUris' is required")
        async with self.api(ctx) as api:
            jobs = self.jobs(api, ctx)
            source_text = render_str(ctx, self.sourceTable, "sourceTable", required=True)
            source = table_ref(source_text, api.project, "sourceTable")
            extract: dict[str, Any] = {"sourceTable": source.json(), "destinationUris": uris}
            if self.compression is not None:
                extract["compression"] = render_str(ctx, self.compression, "compression")
            if self.fieldDelimiter is not None:
                extract["fieldDelimiter"] = render_str(ctx, self.fieldDelimiter, "fieldDelimiter")
            if self.format is not None:
                extract["destinationFormat"] = render_str(ctx, self.format, "format")
            for key in ("printHeader", "useAvroLogicalTypes"):
                if getattr(self, key) is not None:
                    extract[key] = render_bool(ctx, getattr(self, key), key)
            config: dict[str, Any] = {"extract": extract, "labels": self.job_labels(ctx)}
            if self.jobTimeoutMs is not None:
                config["jobTimeoutMs"] = str(render_int(ctx, self.jobTimeoutMs, "jobTimeoutMs"))
            ctx.log("DEBUG", f"Starting extract of {source.dotted()} to {uris}")
            job = await jobs.run(lambda: jobs.insert(config), retry)
        stats = job.get("statistics") or {}
        counts = [
            int(n) for n in (stats.get("extract") or {}).get("destinationUriFileCounts") or []
        ]
        metrics: dict[str, Any] = duration_metric(stats)
        metrics["output.file_counts"] = sum(counts)
        outputs = {
            "jobId": (job.get("jobReference") or {}).get("jobId"),
            "sourceTable": source.table,
            "destinationUris": uris,
            "fileCounts": counts,
        }
        return TaskOutcome("SUCCESS", outputs, metrics=metrics)


PLUGINS: list[type[ApiTask]] = [Query, Load, LoadFromGcs, Copy, ExtractToGcs]
