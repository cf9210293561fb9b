"""Kestra's DynamoDB tasks (``io.kestra.plugin.aws.dynamodb.*``) on :mod:`executors.aws_client`.

What Kestra does (kestra-io/plugin-aws ``AbstractDynamoDb`` and its tasks), every type with
the AWS connection properties and ``tableName`` (required):

- ``PutItem``: ``item`` (a map, or JSON text of one). No output.
- ``GetItem``: ``key`` (a map). Output ``row`` (the item as a map; empty when there is none).
- ``DeleteItem``: ``key``. No output.
- ``Query``: ``keyConditionExpression`` (required), ``expressionAttributeValues`` (required),
  ``filterExpression``, ``limit``, ``fetchType`` (STORE | FETCH | FETCH_ONE, default STORE).
- ``Scan``: ``filterExpression`` (which then needs ``expressionAttributeValues``: "must be
  provided when 'filterExpression' is used"), ``limit``, ``fetchType``.
- Query and Scan read one page (one call) and output ``rows`` + ``size`` (FETCH), ``row`` +
  ``size`` (FETCH_ONE) or ``uri`` (an ION file) + ``size`` (STORE); metric ``records``.
- Values written: text -> ``S``, boolean -> ``BOOL``, null -> ``NULL``, a list -> a string set
  ``SS``, a map -> ``M`` (recursively), anything else (numbers) -> ``S`` of its text.

What differs, on reading: Kestra reads back only ``S``, ``SS``, ``M`` and a true ``BOOL``
(``N``, ``L``, ``B``, a false ``BOOL`` read as null); here every type reads as its value:
``N`` a number, ``BOOL`` true or false, ``L`` a list, ``NS`` numbers, ``B``/``BS`` base64 text,
``NULL`` null. What is written is Kestra's (numbers as text), so items round-trip as there.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar, Literal

from executors.aws_client import connect
from executors.base import TaskContext, TaskError, TaskOutcome, to_text
from executors.data import IonSink
from executors.plugin import TaskPlugin, render_int, render_map, render_str
from executors.plugins.aws_s3 import S3Connection
from executors.remote import common as c
from schemas.flow.common import IntOrExpr, Str

FETCH_TYPES = ("STORE", "FETCH", "FETCH_ONE")


def to_attribute(value: Any) -> dict[str, Any]:
    """Kestra's ``objectFrom(Object)``: a value as a DynamoDB attribute."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, list | tuple):
        return {"SS": [to_text(v) for v in value]}
    if isinstance(value, Mapping):
        return {"M": to_item(value)}
    return {"S": to_text(value)}


def to_item(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): to_attribute(v) for k, v in fields.items()}


def _number(text: str) -> int | float:
    number = Decimal(text)
    return int(number) if number == number.to_integral_value() else float(number)


def from_attribute(value: Mapping[str, Any]) -> Any:
    """A DynamoDB attribute as a plain value (see the module docstring)."""
    pairs: list[tuple[str, Any]] = list(value.items()) or [("NULL", True)]
    kind, inner = pairs[0]
    if kind in ("S", "BOOL"):
        return inner
    if kind == "N":
        return _number(inner)
    if kind == "SS":
        return list(inner)
    if kind == "NS":
        return [_number(v) for v in inner]
    if kind == "B":
        return base64.b64encode(bytes(inner)).decode("ascii")
    if kind == "BS":
        return [base64.b64encode(bytes(v)).decode("ascii") for v in inner]
    if kind == "M":
        return from_item(inner)
    if kind == "L":
        return [from_attribute(v) for v in inner]
    return None


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): from_attribute(v) for k, v in item.items()}


class _DynamoDb(TaskPlugin, S3Connection):
    family: ClassVar[str] = "aws"

    tableName: Str

    def table(self, ctx: TaskContext) -> str:
        return render_str(ctx, self.tableName, "tableName", required=True) or ""


class PutItem(_DynamoDb):
    """Put an item into a DynamoDB table."""

    type: Literal["io.kestra.plugin.aws.dynamodb.PutItem"]
    item: dict[str, Any] | Str | None = None

    async def run(self, ctx: TaskContext) -> None:
        table = self.table(ctx)
        fields = render_map(ctx, self.item, "item")
        async with connect(ctx, self, "dynamodb", "DynamoDB") as db:
            await db.call("put_item", table, TableName=table, Item=to_item(fields))


class GetItem(_DynamoDb):
    """Get an item of a DynamoDB table by its key."""

    type: Literal["io.kestra.plugin.aws.dynamodb.GetItem"]
    key: dict[str, Any] | Str

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        table = self.table(ctx)
        key = to_item(render_map(ctx, self.key, "key"))
        async with connect(ctx, self, "dynamodb", "DynamoDB") as db:
            answer = await db.call("get_item", table, TableName=table, Key=key)
        return {"row": from_item(answer.get("Item") or {})}


class DeleteItem(_DynamoDb):
    """Delete an item of a DynamoDB table by its key."""

    type: Literal["io.kestra.plugin.aws.dynamodb.DeleteItem"]
    key: dict[str, Any] | Str

    async def run(self, ctx: TaskContext) -> None:
        table = self.table(ctx)
        key = to_item(render_map(ctx, self.key, "key"))
        async with connect(ctx, self, "dynamodb", "DynamoDB") as db:
            await db.call("delete_item", table, TableName=table, Key=key)


class _Read(_DynamoDb):
    fetchType: Literal["STORE", "FETCH", "FETCH_ONE"] | Str = "STORE"
    limit: IntOrExpr | None = None
    filterExpression: Str | None = None

    async def read(self, ctx: TaskContext, operation: str, **params: Any) -> TaskOutcome:
        table = self.table(ctx)
        fetch = c.render_choice(ctx, self.fetchType, "fetchType", FETCH_TYPES) or "STORE"
        async with connect(ctx, self, "dynamodb", "DynamoDB") as db:
            answer = await db.call(
                operation,
                table,
                TableName=table,
                Limit=render_int(ctx, self.limit, "limit"),
                **params,
            )
        rows = [from_item(item) for item in answer.get("Items") or []]
        metrics = {"records": len(rows)}
        if fetch == "FETCH":
            return TaskOutcome("SUCCESS", {"rows": rows, "size": len(rows)}, metrics=metrics)
        if fetch == "FETCH_ONE":
            row = rows[0] if rows else None
            metrics["records"] = 1 if row else 0
            return TaskOutcome(
                "SUCCESS", c.drop_none({"row": row, "size": 1 if row else 0}), metrics=metrics
            )
        c.scratch_dir(ctx)
        sink = await IonSink.create(ctx)
        try:
            for row in rows:
                sink.write(row)
            uri = await sink.store(ctx, f"{table}.ion")
        except BaseException:
            await sink.discard()
            raise
        return TaskOutcome("SUCCESS", {"uri": uri, "size": len(rows)}, metrics=metrics)

    def values(self, ctx: TaskContext, value: Any) -> dict[str, Any] | None:
        rendered = render_map(ctx, value, "expressionAttributeValues")
        return to_item(rendered) if rendered else None


class Query(_Read):
    """Query a DynamoDB table by key condition."""

    type: Literal["io.kestra.plugin.aws.dynamodb.Query"]
    keyConditionExpression: Str
    expressionAttributeValues: dict[str, Any] | Str

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        condition = render_str(
            ctx, self.keyConditionExpression, "keyConditionExpression", required=True
        )
        return await self.read(
            ctx,
            "query",
            KeyConditionExpression=condition,
            ExpressionAttributeValues=self.values(ctx, self.expressionAttributeValues),
            FilterExpression=render_str(ctx, self.filterExpression, "filterExpression") or None,
        )


class Scan(_Read):
    """Scan a DynamoDB table."""

    type: Literal["io.kestra.plugin.aws.dynamodb.Scan"]
    expressionAttributeValues: dict[str, Any] | Str | None = None

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        expression = render_str(ctx, self.filterExpression, "filterExpression") or None
        values = None
        if self.filterExpression is not None:
            values = self.values(ctx, self.expressionAttributeValues)
            if not values:
                raise TaskError(
                    "'expressionAttributeValues' must be provided when 'filterExpression' is used"
                )
        return await self.read(
            ctx, "scan", FilterExpression=expression, ExpressionAttributeValues=values
        )


PLUGINS: list[type[TaskPlugin]] = [PutItem, GetItem, DeleteItem, Query, Scan]
