"""avro.IonToAvro, avro.AvroToIon and avro.InferAvroSchemaFromIon (on fastavro).

IonToAvro: ``schema`` (the Avro schema JSON; when absent it is inferred from the first
``numberOfRowsToScan`` (100) rows, every row with ``inferAllFields``, see
:mod:`.avro_schema`) and AbstractAvroConverter's properties (:mod:`.avro_convert`), and
``onBadLines`` (ERROR | WARN | SKIP): a field that does not convert fails the row (ERROR) or
becomes null; a record the schema then refuses (a null in a field that is not nullable) fails
the task, or is logged (WARN, "Bad record skipped") and left out. ``size`` counts the rows
read, as Kestra does. The result is an Avro object container file (no compression), ``.avro``.

AvroToIon: each record of an Avro object container file (any codec fastavro reads) is a
struct in schema order; a ``root`` record whose only field ``value`` is an array (what
IonToAvro makes of list rows) gives that list. Logical types read as their values (timestamps
as instants, local timestamps as local date-times, dates, times, decimals, uuids as text);
enums are text, fixed and bytes blobs. ``onBadLines``: a corrupt block fails the task (ERROR)
or ends the reading (WARN logs it), as Kestra's stream does.

InferAvroSchemaFromIon: ``numberOfRowsToScan`` (100); outputs ``uri``, the inferred schema as
compact JSON (``.avsc``).

Differences: Kestra's AvroToIon first checks each top-level field against a few types and
rejects enum, fixed and bytes fields as "Unsupported Avro type"; here any valid Avro file is
read (fastavro validates it).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from typing import IO, Any, Literal

from pydantic import Field

from executors.base import TaskContext, TaskError, TaskOutcome
from executors.plugin import render_bool, render_choice, render_int, render_str
from executors.plugins.serdes.avro_convert import (
    FALSE_VALUES,
    NULL_VALUES,
    TRUE_VALUES,
    CellError,
    Converter,
)
from executors.plugins.serdes.avro_schema import Names, infer_schema
from executors.plugins.serdes.base import (
    ON_BAD_LINES,
    Conversion,
    Run,
    char,
    ion_rows,
    write_rows,
    zone,
)
from executors.plugins.serdes.javatext import JavaDateFormat
from schemas.flow.common import BoolOrExpr, IntOrExpr, Str


def _strings(ctx: TaskContext, value: Any, name: str) -> list[str]:
    rendered = ctx.render(value)
    if isinstance(rendered, str):
        try:
            rendered = json.loads(rendered)
        except ValueError:
            rendered = [rendered]
    if not isinstance(rendered, list):
        raise TaskError(f"property '{name}': expected a list of strings, got {rendered!r}")
    return ["" if v is None else str(v) for v in rendered]


class AvroConversion(Conversion):
    """AbstractAvroConverter: the schema and how ION values become Avro values."""

    schema_: Str | None = Field(default=None, alias="schema")
    numberOfRowsToScan: IntOrExpr = 100
    trueValues: list[Str] | Str = Field(default_factory=lambda: list(TRUE_VALUES))
    falseValues: list[Str] | Str = Field(default_factory=lambda: list(FALSE_VALUES))
    nullValues: list[Str] | Str = Field(default_factory=lambda: list(NULL_VALUES))
    dateFormat: Str = "yyyy-MM-dd[XXX]"
    timeFormat: Str = "HH:mm[:ss][.SSSSSS][XXX]"
    datetimeFormat: Str = "yyyy-MM-dd'T'HH:mm[:ss][.SSSSSS][XXX]"
    decimalSeparator: Str = "."
    strictSchema: BoolOrExpr = False
    inferAllFields: BoolOrExpr = False
    timeZoneId: Str | None = None
    onBadLines: Str = "ERROR"

    def prepare(self, ctx: TaskContext) -> None:
        text = render_str(ctx, self.schema_, "schema")
        self._schema: dict[str, Any] | None = None
        if text:
            self._schema = parse_schema_text(text)
        infer_all = render_bool(ctx, self.inferAllFields, "inferAllFields", False)
        rows = render_int(ctx, self.numberOfRowsToScan, "numberOfRowsToScan", 100) or 0
        self._scan = 2**62 if infer_all else rows
        self._options: dict[str, Any] = {
            "true_values": _strings(ctx, self.trueValues, "trueValues"),
            "false_values": _strings(ctx, self.falseValues, "falseValues"),
            "null_values": _strings(ctx, self.nullValues, "nullValues"),
            "date_format": JavaDateFormat(ctx.render_str(self.dateFormat) or "", "dateFormat"),
            "time_format": JavaDateFormat(ctx.render_str(self.timeFormat) or "", "timeFormat"),
            "datetime_format": JavaDateFormat(
                ctx.render_str(self.datetimeFormat) or "", "datetimeFormat"
            ),
            "decimal_separator": char(ctx, self.decimalSeparator, "decimalSeparator"),
            "strict": render_bool(ctx, self.strictSchema, "strictSchema", False),
            "infer_all": infer_all,
            "zone": zone(ctx, self.timeZoneId),
            "on_bad_lines": (
                render_choice(ctx, self.onBadLines, "onBadLines", ON_BAD_LINES) or "ERROR"
            ),
        }

    def schema_of(self, source: IO[bytes], run: Run) -> dict[str, Any]:
        """The given schema, or one inferred from the source (then rewound)."""
        if self._schema is not None:
            return self._schema
        rows = ion_rows(source, run)
        try:
            return infer_schema(rows, self._scan)
        finally:
            rows.close()
            source.seek(0)

    def records(
        self, source: IO[bytes], schema: dict[str, Any], run: Run, *, tag_unions: bool = False
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """(row number, converted record) for each row; a row that cannot convert fails."""
        converter = Converter(Names(schema), tag_unions=tag_unions, **self._options)
        for number, row in enumerate(ion_rows(source, run), start=1):
            try:
                record = converter.row(schema, row)
            except CellError as exc:
                raise TaskError(f"row {number}: {exc}") from None
            finally:
                for line in converter.warnings:
                    run.warn(f"row {number}: {line}")
                converter.warnings.clear()
            yield number, record

    def bad_record(self, number: int, message: str, run: Run) -> None:
        mode = self._options["on_bad_lines"]
        if mode == "ERROR":
            raise TaskError(f"row {number}: {message}")
        if mode == "WARN":
            run.warn(f"Bad record skipped (onBadLines=WARN): row {number}: {message}")


def parse_schema_text(text: str) -> dict[str, Any]:
    import fastavro

    try:
        schema = json.loads(text)
        fastavro.parse_schema(schema)
    except (ValueError, TypeError, KeyError, fastavro.schema.SchemaParseException) as exc:
        raise TaskError(f"Invalid Avro schema: {exc}") from None
    if not isinstance(schema, dict) or schema.get("type") not in ("record", "error"):
        raise TaskError("Invalid Avro schema: the top-level type must be a record")
    return schema


def validation_message(exc: Exception) -> str:
    errors = getattr(exc, "errors", None) or []
    parts = []
    for error in errors:
        field = getattr(error, "field", None)
        datum = getattr(error, "datum", None)
        schema = getattr(error, "schema", None)
        kind = json.dumps(schema) if not isinstance(schema, str) else schema
        # fastavro names the field after its record's full name (com.example.Ride.member)
        where = f"field '{str(field).rpartition('.')[2]}': " if field else ""
        parts.append(f"{where}{datum!r} is not a {kind}")
    return "; ".join(parts) or str(exc)


class IonToAvro(AvroConversion):
    """Convert an ION file to Avro."""

    type: Literal["io.kestra.plugin.serdes.avro.IonToAvro"]

    def result_name(self) -> str:
        return "result.avro"

    def convert(self, source: IO[bytes], target: IO[bytes], run: Run) -> int:
        import fastavro
        from fastavro.validation import ValidationError, validate

        schema = self.schema_of(source, run)
        try:
            parsed = fastavro.parse_schema(schema)
        except fastavro.schema.SchemaParseException as exc:
            raise TaskError(f"the inferred Avro schema is not valid: {exc}") from None
        writer = fastavro.write.Writer(target, parsed, codec="null")
        count = 0
        for count, record in self.records(source, schema, run):
            try:
                validate(record, parsed, raise_errors=True)
            except ValidationError as exc:
                self.bad_record(count, validation_message(exc), run)
                continue
            writer.write(record)
        writer.flush()
        return count


class InferAvroSchemaFromIon(Conversion):
    """Infer the Avro schema of an ION file."""

    type: Literal["io.kestra.plugin.serdes.avro.InferAvroSchemaFromIon"]
    numberOfRowsToScan: IntOrExpr = 100

    def prepare(self, ctx: TaskContext) -> None:
        self._scan = render_int(ctx, self.numberOfRowsToScan, "numberOfRowsToScan", 100) or 0

    def result_name(self) -> str:
        return "schema.avsc"

    def convert(self, source: IO[bytes], target: IO[bytes], run: Run) -> int:
        schema = infer_schema(ion_rows(source, run), self._scan)
        target.write(json.dumps(schema, separators=(",", ":"), ensure_ascii=False).encode())
        return 0

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        outcome = await super().run(ctx)
        outcome.outputs.pop("size", None)
        outcome.metrics = {}
        return outcome


def avro_value(value: Any) -> Any:
    """A value fastavro read, as ION can hold it."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): avro_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [avro_value(v) for v in value]
    return value


def root_wrapper(schema: Any) -> bool:
    """IonToAvro's wrapper of list rows: a ``root`` record with one array field ``value``."""
    if not isinstance(schema, dict) or str(schema.get("name", "")).rpartition(".")[2] != "root":
        return False
    fields = schema.get("fields") or []
    if len(fields) != 1 or fields[0]["name"] != "value":
        return False
    kind = fields[0]["type"]
    return isinstance(kind, dict) and kind.get("type") == "array"


class AvroToIon(Conversion):
    """Convert an Avro file to ION."""

    type: Literal["io.kestra.plugin.serdes.avro.AvroToIon"]
    onBadLines: Str = "ERROR"

    def prepare(self, ctx: TaskContext) -> None:
        self._bad = render_choice(ctx, self.onBadLines, "onBadLines", ON_BAD_LINES) or "ERROR"

    def convert(self, source: IO[bytes], target: IO[bytes], run: Run) -> int:
        import fastavro

        try:
            reader = fastavro.reader(source)
        except Exception as exc:  # fastavro raises ValueError, EOFError... on a bad header
            raise TaskError(f"the source is not an Avro file: {exc}") from None
        wrapped = root_wrapper(reader.writer_schema)
        return write_rows(target, self._rows(reader, wrapped, run), run)

    def _rows(self, reader: Any, wrapped: bool, run: Run) -> Iterator[Any]:
        number = 0
        records = iter(reader)
        while True:
            number += 1
            try:
                record = next(records)
            except StopIteration:
                return
            except Exception as exc:  # a corrupt block: fastavro's error says what
                message = f"Bad Avro record encountered: record {number}: {exc}"
                if self._bad == "ERROR":
                    raise TaskError(message) from None
                if self._bad == "WARN":
                    run.warn(message)
                return
            yield avro_value(record["value"] if wrapped else record)
