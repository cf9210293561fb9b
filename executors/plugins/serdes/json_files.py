"""json.IonToJson, json.JsonToIon and json.JsonToJsonl.

IonToJson: ``newLine`` (true: JSON lines; false: one value, or an array when there are several
records), ``charset`` (UTF-8), ``timeZoneId`` (Kestra: the server's zone; here UTC),
``shouldKeepAnnotations`` (false). Kestra reads the ION file with plain Jackson, so an
annotated string (``ZonedDateTime::"..."``) is written as its text, and writes with its JSON
mapper: compact, map entries whose value is null left out, doubles as Java prints them.
With ``shouldKeepAnnotations`` an annotated string becomes ``{"ion_annotations": [...],
"value": ...}``, a timestamp its ``ZonedDateTime.toString`` in ``timeZoneId``, and nulls stay.
The result is ``result.jsonl`` (``.json`` without newLine).

JsonToIon: ``newLine`` (true: one JSON value a line; false: the file is one JSON value, an
array giving one row per element), ``charset``. Numbers with a fraction or exponent are
doubles (Jackson's default), integers of any size stay exact; null rows are skipped and not
counted (FileSerde).

JsonToJsonl: ``charset``. A top-level array gives one line per element; objects (one, or
several in a row) one line each; anything else fails ("Invalid JSON format. Expected JSON
array or object"). Each line is Jackson's compact JSON of the tree (nulls kept).

Errors name the line and column of malformed JSON. Differences: Kestra's IonToJson writes an
ION timestamp as the fields of ion-java's Timestamp object (Jackson has no serializer for it);
here it is JavaTimeModule's text of what Kestra's ION reader makes of it (an instant
``2024-01-01T10:00:00Z``, a date ``2024-01-01``, another offset converted to ``timeZoneId``).
``shouldKeepAnnotations``' rewrites of Avro-shaped structs (fields named ``Instant``,
``timestampMillis``, ``date``...) are not ported. JsonToIon skips blank lines (Jackson fails
on them) and reads an array without newLine element by element instead of all at once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, tzinfo
from typing import IO, Any, Literal
from zoneinfo import ZoneInfo

import orjson

from executors import ion
from executors.base import TaskContext, TaskError
from executors.plugin import render_bool
from executors.plugins.serdes.base import (
    Conversion,
    Run,
    charset,
    encode_error,
    ion_rows,
    reading,
    write_rows,
    writing,
    zone,
)
from executors.plugins.serdes.javatext import java_time_text
from executors.plugins.serdes.jsontext import (
    JsonReader,
    JsonWriter,
    first_document,
    iter_json_lines,
)
from schemas.flow.common import BoolOrExpr, Str


def zoned_string(moment: datetime) -> str:
    """``ZonedDateTime.toString``: local date-time, offset (``Z``), ``[region]``."""
    offset = ion.iso_offset(moment.utcoffset())
    text = f"{moment.date().isoformat()}T{java_time_text(moment.time())}{offset}"
    tz = moment.tzinfo
    return f"{text}[{tz.key}]" if isinstance(tz, ZoneInfo) else text


class _AnnotatedJson(JsonWriter):
    """``shouldKeepAnnotations``: annotations kept, timestamps as ZonedDateTime, nulls kept."""

    def write(self, value: Any, out: list[str]) -> None:
        if isinstance(value, date | time) and not isinstance(value, time):
            moment = value if isinstance(value, datetime) else None
            if moment is None:
                moment = datetime(value.year, value.month, value.day, tzinfo=UTC)
            if moment.tzinfo is not None:
                out.append(orjson.dumps(zoned_string(moment.astimezone(self.zone))).decode())
                return
        super().write(value, out)

    def other(self, value: Any, out: list[str]) -> None:
        if isinstance(value, ion.Annotated):
            names = ",".join(orjson.dumps(n).decode() for n in value.annotations)
            out.append(
                f'{{"ion_annotations":[{names}],"value":{orjson.dumps(value.value).decode()}}}'
            )
        else:
            super().other(value, out)


class IonToJson(Conversion):
    """Convert an ION file to JSON (JSON lines by default)."""

    type: Literal["io.kestra.plugin.serdes.json.IonToJson"]
    charset: Str = "UTF-8"
    newLine: BoolOrExpr = True
    timeZoneId: Str | None = None
    shouldKeepAnnotations: BoolOrExpr = False

    def prepare(self, ctx: TaskContext) -> None:
        self._lines = render_bool(ctx, self.newLine, "newLine", True)
        self._charset = charset(ctx, self.charset)
        self._zone: tzinfo = zone(ctx, self.timeZoneId)
        self._keep = render_bool(ctx, self.shouldKeepAnnotations, "shouldKeepAnnotations")

    def result_name(self) -> str:
        return "result.jsonl" if self._lines else "result.json"

    def convert(self, source: IO[bytes], target: IO[bytes], run: Run) -> int:
        if self._keep:
            writer: JsonWriter = _AnnotatedJson(self._zone, drop_nulls=False)
            rows = ion_rows(source, run, annotations="keep")
        else:
            writer = JsonWriter(self._zone, drop_nulls=True)
            rows = ion_rows(source, run, annotations="ignore")
        count = 0
        with writing(target, self._charset) as out:
            try:
                if self._lines:
                    for row in rows:
                        out.write(writer.dumps(row) + "\n")
                        count += 1
                    return count
                first: Any = None
                for count, row in enumerate(rows, start=1):
                    if count == 1:
                        first = row
                        continue
                    if count == 2:
                        out.write("[" + writer.dumps(first))
                    out.write("," + writer.dumps(row))
                if count == 1:
                    out.write(writer.dumps(first))
                elif count > 1:
                    out.write("]")
                return count
            except UnicodeEncodeError as exc:
                raise encode_error(exc, count, self._charset) from None


class JsonToIon(Conversion):
    """Convert a JSON file (JSON lines by default) to ION."""

    type: Literal["io.kestra.plugin.serdes.json.JsonToIon"]
    charset: Str = "UTF-8"
    newLine: BoolOrExpr = True

    def prepare(self, ctx: TaskContext) -> None:
        self._lines = render_bool(ctx, self.newLine, "newLine", True)
        self._charset = charset(ctx, self.charset)

    def convert(self, source: IO[bytes], target: IO[bytes], run: Run) -> int:
        with reading(source, self._charset) as text:
            rows = iter_json_lines(text) if self._lines else first_document(text)
            return write_rows(target, rows, run)


class JsonToJsonl(Conversion):
    """Convert a JSON file (an array, or objects) to JSON lines."""

    type: Literal["io.kestra.plugin.serdes.json.JsonToJsonl"]
    charset: Str = "UTF-8"

    def prepare(self, ctx: TaskContext) -> None:
        self._charset = charset(ctx, self.charset)

    def result_name(self) -> str:
        return "result.jsonl"

    def convert(self, source: IO[bytes], target: IO[bytes], run: Run) -> int:
        writer = JsonWriter(UTC, drop_nulls=False)
        count = 0
        with reading(source, self._charset) as text, writing(target, self._charset) as out:
            reader = JsonReader(text)
            first = reader.first()
            if first is None:
                return 0
            if first not in "[{":
                raise TaskError(
                    "Invalid JSON format. Expected JSON array or object, but found: "
                    + _TOKENS.get(first, "VALUE_NUMBER")
                )
            values = reader.items() if first == "[" else reader.values()
            for index, value in enumerate(values):
                run.check(index)
                if first == "{" and not isinstance(value, dict):
                    continue  # Kestra reads the objects that follow the first, and only those
                out.write(writer.dumps(value) + "\n")
                count += 1
            return count


# Jackson's name of the first token, for JsonToJsonl's error.
_TOKENS = {'"': "VALUE_STRING", "t": "VALUE_TRUE", "f": "VALUE_FALSE", "n": "VALUE_NULL"}
