"""parquet.IonToParquet and parquet.ParquetToIon (Kestra uses parquet-avro; here pyarrow).

IonToParquet: the Avro schema and conversion of IonToAvro (``schema`` or inference, and
AbstractAvroConverter's properties, :mod:`.avro_convert`), then ``compressionCodec`` (GZIP |
SNAPPY | ZSTD | UNCOMPRESSED), ``parquetVersion`` (V2: data pages v2; V1), ``rowGroupSize``
(128 MiB: rows are buffered until their Arrow size reaches it, then written as one row group),
``pageSize`` and ``dictionaryPageSize`` (1 MiB), dictionary encoding on. Columns follow
parquet-avro's mapping: a record is a struct, ``["null", X]`` an optional X, an array a list,
a map a map of text keys, int/long int32/int64, float/double, string/enum text, bytes and fixed
binary, date date32, time-millis time32[ms], time-micros time64[us], timestamp-* timestamps in
UTC, local-timestamp-* timestamps without zone, decimal decimal128/256, uuid text; a union of
several non-null types a struct of optional ``member0``, ``member1``... The Avro schema is kept
in the file's metadata (``parquet.avro.schema``), as parquet-avro does. A null for a field the
schema does not make nullable fails the row (``onBadLines`` as in IonToAvro).

ParquetToIon: every row of every row group, as IonToAvro's values read back (timestamps with
a zone as instants, without as local date-times, dates, times, decimals, binaries as blobs,
structs, lists, maps); a file written with an Avro schema whose root is IonToAvro's ``root``
wrapper of list rows gives the lists back, and unions written as ``member<N>`` structs give the
member that is set.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any, Literal

from executors.base import TaskContext, TaskError
from executors.plugin import render_choice, render_int
from executors.plugins.serdes.avro_convert import Branch
from executors.plugins.serdes.avro_files import AvroConversion, avro_value, root_wrapper
from executors.plugins.serdes.avro_schema import Names, Schema
from executors.plugins.serdes.base import Conversion, Run, write_rows
from schemas.flow.common import IntOrExpr, Str

CODECS = {"UNCOMPRESSED": "none", "SNAPPY": "snappy", "GZIP": "gzip", "ZSTD": "zstd"}
DEFAULT_ROW_GROUP = 128 * 1024 * 1024  # parquet-mr's DEFAULT_BLOCK_SIZE
DEFAULT_PAGE = 1024 * 1024  # parquet-mr's DEFAULT_PAGE_SIZE
AVRO_SCHEMA_KEY = b"parquet.avro.schema"
# Rows converted between two looks at the buffered size.
_BATCH = 10_000


class _Arrow:
    """An Avro schema as Arrow types (see the module docstring)."""

    def __init__(self, names: Names) -> None:
        import pyarrow as pa

        self.pa = pa
        self.names = names

    def schema(self, record: dict[str, Any]) -> Any:
        return self.pa.schema([self.field(f["name"], f["type"]) for f in record["fields"]])

    def field(self, name: str, schema: Schema) -> Any:
        kind, nullable = self.type(schema)
        return self.pa.field(name, kind, nullable=nullable)

    def type(self, schema: Schema) -> tuple[Any, bool]:
        pa = self.pa
        schema = self.names.resolve(schema)
        if isinstance(schema, list):
            non_null = [t for t in schema if self.names.resolve(t) != "null"]
            if not non_null:
                return pa.null(), True
            if len(non_null) == 1:
                return self.type(non_null[0])[0], len(non_null) < len(schema)
            members = [
                self.field(f"member{i}", t).with_nullable(True) for i, t in enumerate(non_null)
            ]
            return pa.struct(members), len(non_null) < len(schema)
        if isinstance(schema, dict):
            logical = schema.get("logicalType")
            if logical == "decimal":
                precision, scale = int(schema["precision"]), int(schema.get("scale", 0))
                build = pa.decimal128 if precision <= 38 else pa.decimal256
                return build(precision, scale), False
            simple = {
                "date": pa.date32(),
                "time-millis": pa.time32("ms"),
                "time-micros": pa.time64("us"),
                "timestamp-millis": pa.timestamp("ms", tz="UTC"),
                "timestamp-micros": pa.timestamp("us", tz="UTC"),
                "local-timestamp-millis": pa.timestamp("ms"),
                "local-timestamp-micros": pa.timestamp("us"),
                "uuid": pa.string(),
            }
            if logical in simple:
                return simple[logical], False
            kind = schema["type"]
            if kind in ("record", "error"):
                return pa.struct(
                    [self.field(f["name"], f["type"]) for f in schema["fields"]]
                ), False
            if kind == "array":
                return pa.list_(self.field("element", schema["items"])), False
            if kind == "map":
                value = self.field("value", schema["values"])
                return pa.map_(pa.string(), value), False
            if kind == "enum":
                return pa.string(), False
            if kind == "fixed":
                return pa.binary(int(schema["size"])), False
            schema = kind
        primitive = {
            "null": pa.null(),
            "boolean": pa.bool_(),
            "int": pa.int32(),
            "long": pa.int64(),
            "float": pa.float32(),
            "double": pa.float64(),
            "bytes": pa.binary(),
            "string": pa.string(),
        }
        return primitive[schema], schema == "null"


def _arrow_value(value: Any, kind: Any) -> Any:
    """A converted Avro value shaped as pyarrow's ``from_pylist`` wants it."""
    import pyarrow as pa

    if value is None:
        return None
    if isinstance(value, Branch):
        return {f"member{value.index}": _arrow_value(value.value, kind.field(value.index).type)}
    if pa.types.is_struct(kind):
        return {
            kind.field(i).name: _arrow_value(value.get(kind.field(i).name), kind.field(i).type)
            for i in range(kind.num_fields)
        }
    if pa.types.is_map(kind):
        return [(k, _arrow_value(v, kind.item_type)) for k, v in value.items()]
    if pa.types.is_list(kind):
        return [_arrow_value(v, kind.value_type) for v in value]
    return value


def _nulls(record: Mapping[str, Any], schema: Any) -> str | None:
    """The first non-nullable field holding a null (parquet-avro fails on it)."""
    for field in schema:
        if not field.nullable and record.get(field.name) is None:
            return str(field.name)
    return None


class IonToParquet(AvroConversion):
    """Convert an ION file to Parquet."""

    type: Literal["io.kestra.plugin.serdes.parquet.IonToParquet"]
    compressionCodec: Str = "GZIP"
    parquetVersion: Str = "V2"
    rowGroupSize: IntOrExpr = DEFAULT_ROW_GROUP
    pageSize: IntOrExpr = DEFAULT_PAGE
    dictionaryPageSize: IntOrExpr = DEFAULT_PAGE

    def result_name(self) -> str:
        return "result.parquet"

    def prepare(self, ctx: TaskContext) -> None:
        super().prepare(ctx)
        codec = (
            render_choice(ctx, self.compressionCodec, "compressionCodec", tuple(CODECS)) or "GZIP"
        )
        self._codec = CODECS[codec]
        self._version = (
            render_choice(ctx, self.parquetVersion, "parquetVersion", ("V1", "V2")) or "V2"
        )
        self._row_group = render_int(ctx, self.rowGroupSize, "rowGroupSize") or DEFAULT_ROW_GROUP
        self._page = render_int(ctx, self.pageSize, "pageSize") or DEFAULT_PAGE
        self._dictionary = (
            render_int(ctx, self.dictionaryPageSize, "dictionaryPageSize") or DEFAULT_PAGE
        )

    def convert(self, source: IO[bytes], target: IO[bytes], run: Run) -> int:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = self.schema_of(source, run)
        arrow = _Arrow(Names(schema)).schema(schema)
        arrow = arrow.with_metadata({AVRO_SCHEMA_KEY: json.dumps(schema).encode()})
        writer = pq.ParquetWriter(
            target,
            arrow,
            compression=self._codec,
            data_page_version="2.0" if self._version == "V2" else "1.0",
            data_page_size=self._page,
            dictionary_pagesize_limit=self._dictionary,
            use_dictionary=True,
        )
        pending: list[Any] = []
        pending_bytes = 0
        batch: list[dict[str, Any]] = []
        count = 0

        def flush_batch() -> None:
            nonlocal pending_bytes
            if batch:
                table = pa.Table.from_pylist(batch, schema=arrow)
                pending.append(table)
                pending_bytes += table.nbytes
                batch.clear()

        def write_group() -> None:
            nonlocal pending_bytes
            if pending:
                table = pa.concat_tables(pending)
                writer.write_table(table, row_group_size=max(table.num_rows, 1))
                pending.clear()
                pending_bytes = 0

        try:
            for count, record in self.records(source, schema, run, tag_unions=True):
                missing = _nulls(record, arrow)
                if missing is not None:
                    self.bad_record(count, f"null value in the non-nullable field '{missing}'", run)
                    continue
                batch.append({f.name: _arrow_value(record.get(f.name), f.type) for f in arrow})
                if len(batch) >= _BATCH:
                    flush_batch()
                    if pending_bytes >= self._row_group:
                        write_group()
            flush_batch()
            write_group()
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise TaskError(f"row {count}: cannot write the value to Parquet: {exc}") from None
        finally:
            writer.close()
        return count


def _ion_value(value: Any, schema: Schema, names: Names | None) -> Any:
    """A value pyarrow read, as ION (with the file's Avro schema when it has one)."""
    resolved = names.resolve(schema) if names is not None and schema is not None else None
    if isinstance(resolved, list):
        non_null = [t for t in resolved if names is not None and names.resolve(t) != "null"]
        if len(non_null) > 1 and isinstance(value, dict):
            for index, member in enumerate(non_null):
                if value.get(f"member{index}") is not None:
                    return _ion_value(value[f"member{index}"], member, names)
            return None
        return _ion_value(value, non_null[0] if non_null else None, names)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    if isinstance(value, dict):
        fields: dict[str, Any] = {}
        if isinstance(resolved, dict) and resolved.get("type") in ("record", "error"):
            fields = {f["name"]: f["type"] for f in resolved["fields"]}
        return {k: _ion_value(v, fields.get(k), names) for k, v in value.items()}
    if isinstance(value, list):
        if value and all(isinstance(item, tuple) and len(item) == 2 for item in value):
            values = resolved.get("values") if isinstance(resolved, dict) else None
            return {str(k): _ion_value(v, values, names) for k, v in value}
        items = resolved.get("items") if isinstance(resolved, dict) else None
        return [_ion_value(item, items, names) for item in value]
    return avro_value(value)


class ParquetToIon(Conversion):
    """Convert a Parquet file to ION."""

    type: Literal["io.kestra.plugin.serdes.parquet.ParquetToIon"]

    def convert(self, source: IO[bytes], target: IO[bytes], run: Run) -> int:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(source)
        except (pa.ArrowInvalid, OSError) as exc:
            raise TaskError(f"the source is not a Parquet file: {exc}") from None
        metadata = parquet.schema_arrow.metadata or {}
        avro: Any = None
        if AVRO_SCHEMA_KEY in metadata:
            try:
                avro = json.loads(metadata[AVRO_SCHEMA_KEY])
            except ValueError:
                avro = None
        names = Names(avro) if isinstance(avro, dict) else None
        fields = {f["name"]: f["type"] for f in avro.get("fields", [])} if names else {}
        wrapped = root_wrapper(avro)

        def rows() -> Any:
            try:
                for batch in parquet.iter_batches(batch_size=_BATCH):
                    for row in batch.to_pylist():
                        record = {k: _ion_value(v, fields.get(k), names) for k, v in row.items()}
                        yield record["value"] if wrapped else record
            except (pa.ArrowInvalid, OSError) as exc:
                raise TaskError(f"the Parquet file cannot be read: {exc}") from None

        return write_rows(target, rows(), run)
