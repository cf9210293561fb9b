"""Kestra's Athena task, ``io.kestra.plugin.aws.athena.Query``, on :mod:`executors.aws_client`.

What Kestra does (kestra-io/plugin-aws ``athena.Query``):

- Properties: the AWS connection; ``database`` (required), ``catalog``, ``outputLocation``
  (required: the S3 URI Athena writes its result files to), ``query`` (required),
  ``fetchType`` (STORE | FETCH | FETCH_ONE | NONE, default STORE), ``skipHeader`` (true: drop
  the first returned row, the column names Athena repeats as a row for a SELECT).
- ``StartQueryExecution`` with ``QueryExecutionContext`` {database, catalog} and
  ``ResultConfiguration`` {outputLocation}; logs "Query created with Athena execution
  identifier <id>". With NONE it returns at once: output ``queryExecutionId`` only.
- Otherwise ``GetQueryExecution`` every 500 ms until SUCCEEDED; FAILED fails the task with
  "Amazon Athena query failed to run with error message: <stateChangeReason>", CANCELLED with
  "Amazon Athena query was cancelled.". The statistics become metrics (``data.scanned.bytes``,
  ``engine.execution.duration``, ``query.planning.duration``, ``query.queue.duration``,
  ``service.processing.duration``, ``total.execution.duration``).
- ``GetQueryResults`` pages (``NextToken``). Each row becomes a map column name -> value, the
  text converted by the column's type: boolean, tinyint/smallint/int/integer/bigint (integers),
  double/float, decimal (exact), date (``yyyy-MM-dd``), timestamp (``yyyy-MM-dd
  HH:mm:ss.SSSSSS``, a local date-time); any other type stays text. A row without data is
  skipped.
- Outputs: STORE -> ``uri`` (an ION file, one row per line; no file and no ``uri`` when there
  are no rows) and ``size``; FETCH -> ``rows`` and ``size``; FETCH_ONE -> ``row`` (first page
  only) and ``size`` (0 or 1). Metrics ``total.rows`` and ``fetch.rows``.

What differs: an empty cell (Athena's NULL, no ``VarCharValue``) is null, where Kestra's
converters would fail on it for typed columns. A timestamp with fewer fraction digits (Athena
prints milliseconds for ``timestamp(3)``) is read too. Polling waits with the task's sleeper
(a killed task stops at once).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Literal

from executors.aws_client import AwsClient, connect
from executors.base import TaskContext, TaskError, TaskOutcome
from executors.data import IonSink
from executors.plugin import TaskPlugin, render_bool, render_str
from executors.plugins.aws_s3 import S3Connection
from executors.remote import common as c
from executors.sql.values import row_output
from schemas.flow.common import BoolOrExpr, Str

FETCH_TYPES = ("STORE", "FETCH", "FETCH_ONE", "NONE")
# Kestra's poll period of GetQueryExecution.
POLL_INTERVAL_S = 0.5
_STATISTICS = (
    ("DataScannedInBytes", "data.scanned.bytes"),
    ("EngineExecutionTimeInMillis", "engine.execution.duration"),
    ("QueryPlanningTimeInMillis", "query.planning.duration"),
    ("QueryQueueTimeInMillis", "query.queue.duration"),
    ("ServiceProcessingTimeInMillis", "service.processing.duration"),
    ("TotalExecutionTimeInMillis", "total.execution.duration"),
)
_INTEGERS = frozenset({"tinyint", "smallint", "int", "integer", "bigint"})


def cell(column: dict[str, Any], datum: dict[str, Any]) -> Any:
    """One Athena cell (always text on the wire) as Kestra converts it by column type."""
    text = datum.get("VarCharValue")
    if text is None:
        return None
    kind = str(column.get("Type", "")).lower()
    try:
        if kind == "boolean":
            return text.strip().lower() == "true"
        if kind in _INTEGERS:
            return int(text)
        if kind in ("double", "float", "real"):
            return float(text)
        if kind == "decimal":
            return Decimal(text)
        if kind == "date":
            return date.fromisoformat(text)
        if kind == "timestamp":
            return datetime.fromisoformat(text)
    except (ValueError, InvalidOperation) as exc:
        name = column.get("Name")
        raise TaskError(f"Athena column '{name}': {text!r} is not a valid {kind}") from exc
    return text


def map_row(columns: list[dict[str, Any]], row: dict[str, Any]) -> dict[str, Any] | None:
    data = row.get("Data")
    if not data:
        return None
    return {
        str(column.get("Name")): cell(column, data[i] if i < len(data) else {})
        for i, column in enumerate(columns)
    }


class Query(TaskPlugin, S3Connection):
    """Run a SQL query on Amazon Athena and fetch or store its result."""

    family: ClassVar[str] = "aws"

    type: Literal["io.kestra.plugin.aws.athena.Query"]
    catalog: Str | None = None
    database: Str
    outputLocation: Str
    query: Str
    fetchType: Literal["STORE", "FETCH", "FETCH_ONE", "NONE"] | Str = "STORE"
    skipHeader: BoolOrExpr = True

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        fetch = c.render_choice(ctx, self.fetchType, "fetchType", FETCH_TYPES) or "STORE"
        skip = render_bool(ctx, self.skipHeader, "skipHeader", True)
        context = c.drop_none(
            {
                "Database": render_str(ctx, self.database, "database", required=True),
                "Catalog": render_str(ctx, self.catalog, "catalog") or None,
            }
        )
        location = render_str(ctx, self.outputLocation, "outputLocation", required=True)
        sql = render_str(ctx, self.query, "query", required=True)
        metrics: dict[str, Any] = {}
        async with connect(ctx, self, "athena", "Athena") as athena:
            started = await athena.call(
                "start_query_execution",
                QueryString=sql,
                QueryExecutionContext=context,
                ResultConfiguration={"OutputLocation": location},
            )
            query_id = str(started["QueryExecutionId"])
            ctx.log("INFO", f"Query created with Athena execution identifier {query_id}")
            if fetch == "NONE":
                return TaskOutcome("SUCCESS", {"queryExecutionId": query_id})
            statistics = await _wait(ctx, athena, query_id)
            for field, metric in _STATISTICS:
                if statistics.get(field) is not None:
                    metrics[metric] = statistics[field]
            outputs = await _results(ctx, athena, query_id, fetch, skip, metrics)
        metrics["fetch.rows"] = outputs["size"]
        return TaskOutcome("SUCCESS", c.drop_none(outputs), metrics=metrics)


async def _wait(ctx: TaskContext, athena: AwsClient, query_id: str) -> dict[str, Any]:
    """Poll until SUCCEEDED; the execution's statistics."""
    while True:
        answer = await athena.call("get_query_execution", query_id, QueryExecutionId=query_id)
        execution = answer.get("QueryExecution") or {}
        status = execution.get("Status") or {}
        state = status.get("State")
        if state == "SUCCEEDED":
            statistics: dict[str, Any] = execution.get("Statistics") or {}
            return statistics
        if state == "FAILED":
            raise TaskError(
                "Amazon Athena query failed to run with error message: "
                f"{status.get('StateChangeReason')}"
            )
        if state == "CANCELLED":
            raise TaskError("Amazon Athena query was cancelled.")
        if state not in ("QUEUED", "RUNNING"):
            raise TaskError("Amazon Athena failed for an unknown reason.")
        if not await ctx.sleep(POLL_INTERVAL_S):
            raise TaskError(f"killed while Athena query {query_id} was {state}")


async def _results(
    ctx: TaskContext,
    athena: AwsClient,
    query_id: str,
    fetch: str,
    skip: bool,
    metrics: dict[str, Any],
) -> dict[str, Any]:
    page = await athena.call("get_query_results", query_id, QueryExecutionId=query_id)
    result_set = page.get("ResultSet") or {}
    columns = (result_set.get("ResultSetMetadata") or {}).get("ColumnInfo") or []
    first = list(result_set.get("Rows") or [])
    if skip and first:
        first = first[1:]  # Athena's header row is only on the first page
    if fetch == "FETCH_ONE":
        metrics["total.rows"] = len(first)
        row = next((m for r in first if (m := map_row(columns, r)) is not None), None)
        return {"row": row_output(row) if row is not None else None, "size": 1 if row else 0}
    if fetch == "STORE":
        c.scratch_dir(ctx)
    sink = await IonSink.create(ctx) if fetch == "STORE" else None
    rows: list[dict[str, Any]] = []
    seen = 0
    try:
        while True:
            for raw in first:
                seen += 1
                mapped = map_row(columns, raw)
                if mapped is None:
                    continue
                if sink is not None:
                    sink.write(mapped)
                else:
                    rows.append(row_output(mapped))
            token = page.get("NextToken")
            if not token:
                break
            page = await athena.call(
                "get_query_results", query_id, QueryExecutionId=query_id, NextToken=token
            )
            first = list((page.get("ResultSet") or {}).get("Rows") or [])
        if sink is None:
            metrics["total.rows"] = seen
            return {"rows": rows, "size": len(rows)}
        count = sink.count
        metrics["total.rows"] = count
        if count == 0:
            await sink.discard()
            return {"size": 0}
        return {"uri": await sink.store(ctx, f"{query_id}.ion"), "size": count}
    except BaseException:
        if sink is not None:
            await sink.discard()
        raise


PLUGINS: list[type[TaskPlugin]] = [Query]
