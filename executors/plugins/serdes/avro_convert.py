"""Kestra's AvroConverter: an ION row made into a record of an Avro schema.

What the properties of IonToAvro / IonToParquet do (AbstractAvroConverter):
``trueValues`` (t, true, enabled, 1, on, yes), ``falseValues`` (f, false, disabled, 0, off,
no, ""), ``nullValues`` ("", #N/A, #N/A N/A, #NA, -1.#IND, -1.#QNAN, -NaN, 1.#IND, 1.#QNAN,
NA, n/a, nan, null), all case-insensitive; ``dateFormat`` (``yyyy-MM-dd[XXX]``),
``timeFormat`` (``HH:mm[:ss][.SSSSSS][XXX]``), ``datetimeFormat``
(``yyyy-MM-dd'T'HH:mm[:ss][.SSSSSS][XXX]``) parse text; ``decimalSeparator`` (``.``) is read
as the point in text numbers; ``strictSchema`` (false) makes a row with more fields than the
schema an error; ``inferAllFields`` (false) turns text in those lists into null/true/false
before any type; ``timeZoneId`` (here UTC) places local date-times.

Per type: a union takes its first type that converts; null takes null or a null value;
int/long parse text (``12``), float/double parse text with the separator; boolean the lists
above, 1/0 or a boolean; string is Java's text of anything (``String.valueOf``); bytes the
UTF-8 of that text (bytes stay bytes); enum a symbol; fixed text of the exact size; date text,
a date-time's date (an instant's in ``timeZoneId``); time-millis/micros text or a time;
timestamp-millis/micros text as epoch units, else parsed, or a date-time (a local one placed in
``timeZoneId``); local-timestamp-* the same, in ``timeZoneId``'s wall time; decimal text or a
number, rounded to the scale (half even); uuid text; record a struct; array a list; map a
struct. A struct whose keys are all ``col<N>`` fills fields by position, as a list row does.

A value that does not convert fails the row naming the field (ERROR), or becomes null (WARN
logs it, SKIP). Differences: Kestra's decimal of an integer multiplies it by 10^(precision -
2 x scale) (right only for precision = 2 x scale); here it is the integer. Kestra refuses a
64-bit integer in a double field (a Java cast); here any number converts to float/double.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

from executors.base import TaskError
from executors.plugins.serdes.avro_schema import Names, Schema
from executors.plugins.serdes.javatext import JavaDateFormat, is_instant, java_string

TRUE_VALUES = ["t", "true", "enabled", "1", "on", "yes"]
FALSE_VALUES = ["f", "false", "disabled", "0", "off", "no", ""]
NULL_VALUES = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "1.#IND", "1.#QNAN",
    "NA", "n/a", "nan", "null",
]  # fmt: skip
_INT = re.compile(r"[+-]?\d+\Z")
_POSITIONAL = re.compile(r"col\d+\Z")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT32 = range(-(2**31), 2**31)
_INT64 = range(-(2**63), 2**63)


class CellError(ValueError):
    """One value does not convert to its schema."""


@dataclass(frozen=True, slots=True)
class Branch:
    """A value of a union with several non-null types, and which one (for Parquet)."""

    index: int
    value: Any


@dataclass
class Converter:
    """Kestra's AvroConverter (see the module docstring)."""

    names: Names
    true_values: list[str] = field(default_factory=lambda: list(TRUE_VALUES))
    false_values: list[str] = field(default_factory=lambda: list(FALSE_VALUES))
    null_values: list[str] = field(default_factory=lambda: list(NULL_VALUES))
    date_format: JavaDateFormat = field(
        default_factory=lambda: JavaDateFormat("yyyy-MM-dd[XXX]", "dateFormat")
    )
    time_format: JavaDateFormat = field(
        default_factory=lambda: JavaDateFormat("HH:mm[:ss][.SSSSSS][XXX]", "timeFormat")
    )
    datetime_format: JavaDateFormat = field(
        default_factory=lambda: JavaDateFormat(
            "yyyy-MM-dd'T'HH:mm[:ss][.SSSSSS][XXX]", "datetimeFormat"
        )
    )
    decimal_separator: str = "."
    strict: bool = False
    infer_all: bool = False
    zone: tzinfo = UTC
    on_bad_lines: str = "ERROR"
    # Parquet stores a union of several non-null types as a struct: say which type was used.
    tag_unions: bool = False
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._true = {v.lower() for v in self.true_values}
        self._false = {v.lower() for v in self.false_values}
        self._null = {v.lower() for v in self.null_values}

    # -- rows

    def row(self, schema: Schema, row: Any) -> dict[str, Any]:
        record = self.names.resolve(schema)
        fields = record["fields"]
        if isinstance(row, list):
            if len(fields) == 1 and _kind(self.names.resolve(fields[0]["type"])) == "array":
                return self.record(record, {fields[0]["name"]: row}, "")
            return self.positional(record, row)
        if isinstance(row, Mapping):
            if row and all(_POSITIONAL.match(str(k)) for k in row):
                if self.strict and len(row) > len(fields):
                    raise CellError(self._strict_message(len(fields), len(row)))
                by_index = {int(str(k)[3:]): v for k, v in row.items()}
                return self.positional(record, [by_index.get(i) for i in range(len(fields))])
            return self.record(record, row, "")
        raise CellError(f"Unable to convert row of type: {type(row).__name__}")

    def positional(self, record: dict[str, Any], values: list[Any]) -> dict[str, Any]:
        fields = record["fields"]
        if self.strict and len(values) > len(fields):
            raise CellError(self._strict_message(len(fields), len(values)))
        padded = values + [None] * (len(fields) - len(values))
        return self.record(record, {f["name"]: padded[i] for i, f in enumerate(fields)}, "")

    @staticmethod
    def _strict_message(expected: int, got: int) -> str:
        return f"Data contains more fields than schema: expected {expected}, got {got}"

    def record(
        self, record: dict[str, Any], data: Mapping[str, Any], parent: str
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for spec in record["fields"]:
            name = spec["name"]
            value = data.get(name)
            if value is None:
                for alias in spec.get("aliases") or []:
                    if data.get(alias) is not None:
                        value = data[alias]
                        break
            path = f"{parent}.{name}" if parent else name
            try:
                out[name] = self.convert(spec["type"], value, path)
            except CellError as exc:
                if self.on_bad_lines == "ERROR":
                    raise CellError(f"field '{path}': {exc}") from None
                if self.on_bad_lines == "WARN":
                    self.warnings.append(f"Conversion error for field '{path}': {exc}")
                out[name] = None
        if self.strict and len(data) > len(record["fields"]):
            message = self._strict_message(len(record["fields"]), len(data))
            if self.on_bad_lines == "ERROR":
                raise CellError(message)
            if self.on_bad_lines == "WARN":
                self.warnings.append(message)
        return out

    # -- values

    def convert(self, schema: Schema, data: Any, path: str) -> Any:
        if self.infer_all and isinstance(data, str):
            lowered = data.lower()
            if lowered in self._null:
                return None
            if lowered in self._true:
                data = True
            elif lowered in self._false:
                data = False
        schema = self.names.resolve(schema)
        if isinstance(schema, list):
            return self.union(schema, data, path)
        if isinstance(schema, dict):
            logical = schema.get("logicalType")
            if logical is not None and logical in _LOGICAL:
                return _LOGICAL[logical](self, schema, data)
            kind = schema["type"]
            if kind in ("record", "error"):
                if not isinstance(data, Mapping):
                    raise CellError(
                        f"expected a struct for record {schema['name']}, got {_show(data)}"
                    )
                return self.record(schema, data, path)
            if kind == "array":
                if not isinstance(data, list):
                    raise CellError(f"expected a list, got {_show(data)}")
                return [
                    self.convert(schema["items"], v, f"{path}[{i}]") for i, v in enumerate(data)
                ]
            if kind == "map":
                if not isinstance(data, Mapping):
                    raise CellError(f"expected a struct for a map, got {_show(data)}")
                return {
                    java_string(k): self.convert(schema["values"], v, f"{path}[{k}]")
                    for k, v in data.items()
                }
            if kind == "enum":
                text = java_string(data)
                if text not in schema["symbols"]:
                    raise CellError(
                        f"Invalid enum value, found {text}, expected {schema['symbols']}"
                    )
                return text
            if kind == "fixed":
                raw = self.bytes_(data)
                if len(raw) != schema["size"]:
                    raise CellError(
                        f"Invalid length for fixed size, found {len(raw)}, "
                        f"expected {schema['size']}"
                    )
                return raw
            schema = kind
        return _PRIMITIVE[schema](self, data)

    def union(self, types: list[Schema], data: Any, path: str) -> Any:
        non_null = [t for t in types if self.names.resolve(t) != "null"]
        for schema in types:
            try:
                value = self.convert(schema, data, path)
            except CellError:
                continue
            if self.tag_unions and len(non_null) > 1 and value is not None:
                return Branch(non_null.index(schema), value)
            return value
        raise CellError(f"Invalid data for schema UNION, got {_show(data)}")

    # -- primitives (Kestra's primitive* methods)

    def null(self, data: Any) -> None:
        if data is None or (isinstance(data, str) and data.lower() in self._null):
            return None
        raise CellError(f"Unknown type for null values, found {_show(data)}")

    def int_(self, data: Any) -> int:
        value = self.long_(data)
        if value not in _INT32:
            raise CellError(f"{value} does not fit an int")
        return value

    def long_(self, data: Any) -> int:
        if isinstance(data, str):
            if not _INT.match(data):
                raise CellError(f'For input string: "{data}"')
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int):
            raise CellError(f"expected an integer, got {_show(data)}")
        if data not in _INT64:
            raise CellError(f"{data} does not fit a long")
        return data

    def double(self, data: Any) -> float:
        if isinstance(data, str):
            text = self.separator(data).strip()
            try:
                return float(text.rstrip("dDfF") if text[-1:] in "dDfF" else text)
            except ValueError:
                raise CellError(f'For input string: "{data}"') from None
        if isinstance(data, bool) or not isinstance(data, int | float | Decimal):
            raise CellError(f"expected a number, got {_show(data)}")
        return float(data)

    def bool_(self, data: Any) -> bool:
        if isinstance(data, str):
            if data.lower() in self._true:
                return True
            if data.lower() in self._false:
                return False
        if isinstance(data, bool):
            return data
        if isinstance(data, int) and data in (0, 1):
            return data == 1
        raise CellError(f"expected a boolean, got {_show(data)}")

    def string(self, data: Any) -> str:
        return java_string(data)

    def bytes_(self, data: Any) -> bytes:
        if isinstance(data, bytes | bytearray):
            return bytes(data)
        return java_string(data).encode()

    def separator(self, text: str) -> str:
        if self.decimal_separator == ".":
            return text
        return text.replace(self.decimal_separator, ".", 1)

    # -- logical types

    def decimal(self, schema: dict[str, Any], data: Any) -> Decimal:
        scale = int(schema.get("scale", 0))
        precision = int(schema["precision"])
        try:
            if isinstance(data, str):
                value = Decimal(self.separator(data).strip())
            elif isinstance(data, float):
                value = Context(prec=precision, rounding=ROUND_HALF_UP).create_decimal(
                    Decimal(data)
                )
            elif isinstance(data, Decimal):
                value = data
            elif isinstance(data, int) and not isinstance(data, bool):
                value = Decimal(data)
            else:
                raise CellError(f"expected a decimal, got {_show(data)}")
            result = value.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_EVEN)
        except InvalidOperation:
            raise CellError(f"{_show(data)} is not a decimal({precision}, {scale})") from None
        if len(result.as_tuple().digits) > precision:
            raise CellError(f"{result} has more digits than decimal({precision}, {scale})")
        return result

    def uuid(self, schema: dict[str, Any], data: Any) -> str:
        try:
            return str(uuid.UUID(str(data)))
        except ValueError:
            raise CellError(f"Invalid UUID string: {data}") from None

    def date_(self, schema: dict[str, Any], data: Any) -> date:
        if isinstance(data, str):
            day: date = self._parse(self.date_format.to_date, data)
            return day
        if isinstance(data, datetime):
            if is_instant(data):
                return data.astimezone(self.zone).date()
            return data.date()
        if isinstance(data, date):
            return data
        raise CellError(f"expected a date, got {_show(data)}")

    def time_(self, schema: dict[str, Any], data: Any) -> time:
        if isinstance(data, str):
            clock: time = self._parse(self.time_format.to_time, data)
            return clock
        if isinstance(data, time):
            return data.replace(tzinfo=None)
        raise CellError(f"expected a time, got {_show(data)}")

    def instant(self, data: Any, unit: int) -> datetime:
        if isinstance(data, str) and _INT.match(data):
            data = int(data)
        if isinstance(data, int) and not isinstance(data, bool):
            return _EPOCH + timedelta(microseconds=data * unit)
        if isinstance(data, str):
            moment: datetime = self._parse(
                lambda t: self.datetime_format.to_datetime(t, self.zone), data
            )
            return moment
        if isinstance(data, datetime):
            return data if data.tzinfo is not None else data.replace(tzinfo=self.zone)
        raise CellError(f"expected a date-time, got {_show(data)}")

    def timestamp(self, schema: dict[str, Any], data: Any) -> datetime:
        unit = 1000 if schema["logicalType"].endswith("millis") else 1
        return self.instant(data, unit).astimezone(UTC)

    def local_timestamp(self, schema: dict[str, Any], data: Any) -> datetime:
        unit = 1000 if schema["logicalType"].endswith("millis") else 1
        return self.instant(data, unit).astimezone(self.zone).replace(tzinfo=None)

    @staticmethod
    def _parse(parse: Any, text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise CellError(str(exc)) from None


_PRIMITIVE: dict[str, Any] = {
    "null": Converter.null,
    "int": Converter.int_,
    "long": Converter.long_,
    "float": Converter.double,
    "double": Converter.double,
    "boolean": Converter.bool_,
    "string": Converter.string,
    "bytes": Converter.bytes_,
}
_LOGICAL: dict[str, Any] = {
    "decimal": Converter.decimal,
    "uuid": Converter.uuid,
    "date": Converter.date_,
    "time-millis": Converter.time_,
    "time-micros": Converter.time_,
    "timestamp-millis": Converter.timestamp,
    "timestamp-micros": Converter.timestamp,
    "local-timestamp-millis": Converter.local_timestamp,
    "local-timestamp-micros": Converter.local_timestamp,
}


def _kind(schema: Schema) -> str:
    if isinstance(schema, dict):
        return str(schema.get("type"))
    return "union" if isinstance(schema, list) else str(schema)


def _show(data: Any) -> str:
    text = repr(data)
    return text if len(text) <= 80 else text[:77] + "..."


def bad_schema(error: Exception) -> TaskError:
    return TaskError(f"Invalid Avro schema: {error}")
