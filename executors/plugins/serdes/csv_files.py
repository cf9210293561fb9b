"""csv.IonToCsv and csv.CsvToIon (Kestra's FastCSV-based types).

IonToCsv (alias ``csv.CsvWriter``): ``header`` (true), ``fieldSeparator`` (``,``),
``textDelimiter`` (``"``), ``lineDelimiter`` (``\\n``; FastCSV takes ``\\n``, ``\\r\\n``, ``\\r``),
``alwaysDelimitText`` (false, deprecated), ``quoteMode`` (ALWAYS | REQUIRED | NON_NUMERIC, wins
over ``alwaysDelimitText``), ``charset`` (UTF-8), and AbstractTextWriter's ``dateFormat``
(``yyyy-MM-dd``), ``timeFormat`` (``HH:mm:ss[XXX]``), ``dateTimeFormat``
(``yyyy-MM-dd'T'HH:mm:ss.SSS[XXX]``), ``timeZoneId`` (Kestra: the server's zone; here UTC).
A struct row writes its values in its own key order, the first struct's keys being the header;
a list row is written as is and fails with a header ("Invalid data of type List with
header"); other rows are counted, not written. Values (AbstractTextWriter.convert): instants
and local date-times with ``dateTimeFormat`` in UTC (a local one has no offset to print), other
date-times converted to ``timeZoneId``, dates with ``dateFormat``, times with ``timeFormat``
(a local time has no offset), null as an empty field, anything else as Java's ``toString``
(``1.0E7``, ``{a=1, b=x}``, ``[1, 2]``). FastCSV's quoting: a field holding the separator, the
quote, CR or LF, or a record's first field starting with ``#``, is quoted with its quotes
doubled; ALWAYS also quotes empty and null fields; NON_NUMERIC quotes every non-empty value
but ``[+-]digits[.digits]``. Every record ends with the line delimiter.

CsvToIon (alias ``csv.CsvReader``): ``header`` (true), ``fieldSeparator``, ``textDelimiter``,
``skipEmptyRows`` (false), ``errorOnDifferentFieldCount`` (deprecated, unused by Kestra),
``onBadLines`` (ERROR | WARN | SKIP), ``onEmptyHeader`` (DROP | RENAME), ``skipRows`` (0: data
rows skipped after the header), ``charset`` (a UTF-8 BOM is dropped), ``maxBufferSize``,
``allowExtraCharsAfterClosingQuote`` (false), ``maxFieldSize`` (16 Mi). With a header each row
is a struct of the header's names (the record starting on line 1) and string values, ``\\N``
is null; a row with another field count is a bad line ("Bad line encountered (field count
mismatch): Expected 3, got 2 fields."). DROP removes the trailing unnamed header columns
(keeping one) and warns about remaining duplicates, RENAME names each unnamed column
``col_<index>`` (``_2``... when taken). Without a header each row is a list. An empty line is
a record of one empty field.

Errors name the line the record starts on and the column (field number) where it goes
wrong: a malformed quote, a field over ``maxFieldSize``.

Differences: Kestra stops at the first malformed CSV record even with ``onBadLines`` WARN/SKIP
(its ``onErrorResume`` ends the stream); here that record is skipped and reading goes on, as
the property documents. ``maxBufferSize`` is accepted and unused (rows stream; a field is
bounded by ``maxFieldSize``). Python's ``csv`` module parses: an unclosed
quote at the end of the file is an error (FastCSV takes the rest of the file as the field).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import IO, Any, ClassVar, Literal

from executors.base import TaskContext, TaskError
from executors.plugin import render_bool, render_choice, render_int, render_str
from executors.plugins.serdes.base import (
    ON_BAD_LINES,
    PKG,
    Conversion,
    Run,
    Warn,
    char,
    charset,
    encode_error,
    ion_rows,
    reading,
    write_rows,
    writing,
    zone,
)
from executors.plugins.serdes.javatext import JavaDateFormat, is_instant, java_string, zone_name
from schemas.flow.common import BoolOrExpr, IntOrExpr, Str

# FastCSV's limits in Kestra's CsvToIon (16 MiB each).
DEFAULT_MAX_SIZE = 16 * 1024 * 1024
_NUMERIC = re.compile(r"[+-]?(?=.)\d*\.?\d*\Z")


def is_numeric(value: str) -> bool:
    """Kestra's NON_NUMERIC test: an optional sign then digits with at most one '.' (so '.'
    and '-5.' are numeric, '-' and '1e5' are not)."""
    return _NUMERIC.match(value) is not None


class _Lines:
    """The text's lines for csv.reader, remembering those of the record being read."""

    def __init__(self, text: IO[str]) -> None:
        self.text = text
        self.record: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.text.readline()
        if not line:
            raise StopIteration
        self.record.append(line)
        return line


def _error_field(raw: str, sep: str, quote: str) -> int:
    """The number (1-based) of the field where a malformed record goes wrong."""
    field, quoted, at_start, i = 1, False, True, 0
    while i < len(raw):
        char = raw[i]
        if quoted:
            if char == quote:
                if raw[i + 1 : i + 2] == quote:
                    i += 2
                    continue
                quoted = False
                if raw[i + 1 : i + 2] not in (sep, "\n", "\r", ""):
                    return field  # text after a closing quote
            i += 1
            continue
        if char == quote and at_start:
            quoted = True
        elif char == sep:
            field += 1
            at_start = True
            i += 1
            continue
        at_start = False
        i += 1
    return field  # the end of the file inside a quoted field


class IonToCsv(Conversion):
    """Convert an ION file to CSV."""

    aliases: ClassVar[tuple[str, ...]] = (f"{PKG}.csv.CsvWriter",)

    type: Literal["io.kestra.plugin.serdes.csv.IonToCsv"]
    header: BoolOrExpr = True
    fieldSeparator: Str = ","
    textDelimiter: Str = '"'
    lineDelimiter: Str = "\n"
    alwaysDelimitText: BoolOrExpr = False
    quoteMode: Str | None = None
    charset: Str = "UTF-8"
    dateFormat: Str = "yyyy-MM-dd"
    timeFormat: Str = "HH:mm:ss[XXX]"
    dateTimeFormat: Str = "yyyy-MM-dd'T'HH:mm:ss.SSS[XXX]"
    timeZoneId: Str | None = None

    def result_name(self) -> str:
        return "result.csv"

    def prepare(self, ctx: TaskContext) -> None:
        self._header = render_bool(ctx, self.header, "header", True)
        self._sep = char(ctx, self.fieldSeparator, "fieldSeparator")
        self._quote = char(ctx, self.textDelimiter, "textDelimiter")
        self._eol = render_str(ctx, self.lineDelimiter, "lineDelimiter") or "\n"
        if self._eol not in ("\n", "\r\n", "\r"):
            raise TaskError(f"property 'lineDelimiter': Unknown line delimiter: {self._eol!r}")
        if len({self._sep, self._quote, "#"}) != 3 or {self._sep, self._quote} & {"\r", "\n"}:
            raise TaskError(
                "Control characters must differ and not be CR or LF (fieldSeparator="
                f"{self._sep!r}, quoteCharacter={self._quote!r}, commentCharacter='#')"
            )
        mode = render_choice(
            ctx, self.quoteMode, "quoteMode", ("ALWAYS", "REQUIRED", "NON_NUMERIC")
        )
        if mode is None:
            always = render_bool(ctx, self.alwaysDelimitText, "alwaysDelimitText", False)
            mode = "ALWAYS" if always else "REQUIRED"
        self._mode = mode
        self._charset = charset(ctx, self.charset)
        self._zone = zone(ctx, self.timeZoneId)
        self._date = JavaDateFormat(ctx.render_str(self.dateFormat) or "", "dateFormat")
        self._time = JavaDateFormat(ctx.render_str(self.timeFormat) or "", "timeFormat")
        self._datetime = JavaDateFormat(ctx.render_str(self.dateTimeFormat) or "", "dateTimeFormat")

    def text(self, value: Any) -> str | None:
        """AbstractTextWriter.convert."""
        if value is None:
            return None
        if isinstance(value, datetime):
            if value.tzinfo is None:  # LocalDateTime: the zone adds no offset to print
                return self._datetime.format(value.date(), value.time(), None, "UTC")
            if is_instant(value):
                utc = value.astimezone(UTC)
                return self._datetime.format(utc.date(), utc.time(), timedelta(0), "UTC")
            local = value.astimezone(self._zone)
            return self._datetime.format(
                local.date(), local.time(), local.utcoffset(), zone_name(self._zone)
            )
        if isinstance(value, date):
            return self._date.format(value, None, None, None)
        if isinstance(value, time):
            offset = value.utcoffset()
            name = zone_name(value.tzinfo) if offset is not None else zone_name(self._zone)
            return self._time.format(None, value.replace(tzinfo=None), offset, name)
        return java_string(value)

    def field(self, value: str | None, index: int) -> str:
        if not value:  # null and empty: quoted only by ALWAYS
            return self._quote * 2 if self._mode == "ALWAYS" else ""
        needs_escape = self._quote in value
        quoted = (
            needs_escape
            or self._mode == "ALWAYS"
            or (self._mode == "NON_NUMERIC" and not is_numeric(value))
            or self._sep in value
            or "\n" in value
            or "\r" in value
            or (index == 0 and value[0] == "#")
        )
        if needs_escape:
            value = value.replace(self._quote, self._quote * 2)
        return f"{self._quote}{value}{self._quote}" if quoted else value

    def record(self, values: list[Any]) -> str:
        fields = (self.field(self.text(v), i) for i, v in enumerate(values))
        return self._sep.join(fields) + self._eol

    def convert(self, source: IO[bytes], target: IO[bytes], run: Run) -> int:
        count = 0
        first = True
        with writing(target, self._charset) as out:
            try:
                for count, row in enumerate(ion_rows(source, run), start=1):
                    if isinstance(row, list):
                        if self._header:
                            raise TaskError(
                                f"record {count}: Invalid data of type List with header"
                            )
                        out.write(self.record(row))
                    elif isinstance(row, dict):
                        if first:
                            first = False
                            if self._header:
                                out.write(self.record(list(row)))
                        out.write(self.record(list(row.values())))
            except UnicodeEncodeError as exc:
                raise encode_error(exc, count, self._charset) from None
        return count


class CsvToIon(Conversion):
    """Convert a CSV file to ION."""

    aliases: ClassVar[tuple[str, ...]] = (f"{PKG}.csv.CsvReader",)

    type: Literal["io.kestra.plugin.serdes.csv.CsvToIon"]
    header: BoolOrExpr = True
    fieldSeparator: Str = ","
    textDelimiter: Str = '"'
    skipEmptyRows: BoolOrExpr = False
    errorOnDifferentFieldCount: BoolOrExpr | None = None
    onBadLines: Str = "ERROR"
    onEmptyHeader: Str = "DROP"
    skipRows: IntOrExpr = 0
    charset: Str = "UTF-8"
    maxBufferSize: IntOrExpr = DEFAULT_MAX_SIZE
    allowExtraCharsAfterClosingQuote: BoolOrExpr = False
    maxFieldSize: IntOrExpr = DEFAULT_MAX_SIZE

    def prepare(self, ctx: TaskContext) -> None:
        self._header = render_bool(ctx, self.header, "header", True)
        self._sep = char(ctx, self.fieldSeparator, "fieldSeparator")
        self._quote = char(ctx, self.textDelimiter, "textDelimiter")
        self._skip_empty = render_bool(ctx, self.skipEmptyRows, "skipEmptyRows", False)
        self._bad = render_choice(ctx, self.onBadLines, "onBadLines", ON_BAD_LINES) or "ERROR"
        self._empty = render_choice(ctx, self.onEmptyHeader, "onEmptyHeader", ("DROP", "RENAME"))
        self._skip_rows = render_int(ctx, self.skipRows, "skipRows", 0) or 0
        self._relaxed = render_bool(
            ctx, self.allowExtraCharsAfterClosingQuote, "allowExtraCharsAfterClosingQuote"
        )
        self._max_field = render_int(ctx, self.maxFieldSize, "maxFieldSize") or DEFAULT_MAX_SIZE
        render_int(ctx, self.maxBufferSize, "maxBufferSize")
        encoding = charset(ctx, self.charset)
        self._charset = "utf-8-sig" if encoding == "utf-8" else encoding

    def headers(self, names: list[str], warn: Warn) -> tuple[list[str], int]:
        """Kestra's resolveHeaders: (names, how many columns each row emits)."""
        if self._empty == "RENAME":
            taken = set(names)
            resolved = []
            for index, name in enumerate(names):
                if not name:
                    attempt = 1
                    name = f"col_{index}"
                    while name in taken:
                        attempt += 1
                        name = f"col_{index}_{attempt}"
                    taken.add(name)
                resolved.append(name)
            return resolved, len(names)
        named = [i for i, n in enumerate(names) if n]
        kept = (named[-1] if named else len(names) - 1) + 1
        if kept < len(names):
            warn(
                f"Dropped {len(names) - kept} trailing unnamed header column(s); their values are"
                " not emitted. Set onEmptyHeader=RENAME to keep them."
            )
        distinct = len(set(names[:kept]))
        if distinct < kept:
            warn(
                f"Header has {kept - distinct} duplicate or empty column name(s) among the kept "
                "columns. Colliding columns share one output key and only the last value is "
                "kept. Set onEmptyHeader=RENAME to keep every column."
            )
        return names, kept

    def bad(self, message: str, warn: Warn, prefix: str = "") -> None:
        if self._bad == "ERROR":
            raise TaskError(message)
        if self._bad == "WARN":
            warn(prefix + message)

    def records(self, text: IO[str], warn: Warn) -> Iterator[tuple[int, list[str]]]:
        """(starting line, fields) of each CSV record; malformed ones per ``onBadLines``."""
        if csv.field_size_limit() < self._max_field:
            # The limit is process-wide; raising it only loosens other readers' guard.
            csv.field_size_limit(self._max_field)
        lines = _Lines(text)
        reader = csv.reader(
            lines,
            delimiter=self._sep,
            quotechar=self._quote,
            doublequote=True,
            strict=not self._relaxed,
        )
        start = 1
        while True:
            lines.record.clear()
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                column = _error_field("".join(lines.record), self._sep, self._quote)
                message = f"line {start}, column {column}: malformed CSV record ({exc})"
                start = reader.line_num + 1
                self.bad(message, warn, "Bad line encountered (skipped): ")
                continue
            line, start = start, reader.line_num + 1
            if not fields:
                if self._skip_empty:
                    continue
                fields = [""]
            for column, value in enumerate(fields, start=1):
                if len(value) > self._max_field:
                    raise TaskError(
                        f"line {line}, column {column}: the field exceeds maxFieldSize "
                        f"({self._max_field} characters)"
                    )
            yield line, fields

    def convert(self, source: IO[bytes], target: IO[bytes], run: Run) -> int:
        with reading(source, self._charset) as text:
            return write_rows(target, self.rows(text, run), run)

    def rows(self, text: IO[str], run: Run) -> Iterator[Any]:
        names: list[str] = []
        width = 0
        skipped = 0
        for line, fields in self.records(text, run.warn):
            if self._header and line == 1:
                names, width = self.headers(fields, run.warn)
                continue
            if skipped < self._skip_rows:
                skipped += 1
                continue
            values: list[str | None] = [None if f == "\\N" else f for f in fields]
            if not self._header:
                yield values
                continue
            if len(fields) != len(names):
                self.bad(
                    f"line {line}: Bad line encountered (field count mismatch): Expected "
                    f"{len(names)}, got {len(fields)} fields.",
                    run.warn,
                )
                continue
            yield {names[i]: values[i] for i in range(width)}
