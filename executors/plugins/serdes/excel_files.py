"""excel.IonToExcel and excel.ExcelToIon (Kestra uses Apache POI; here openpyxl).

IonToExcel: ``from`` is an ION file's URI, or a map of sheet title to URI (one sheet each,
in the map's order); ``sheetsTitle`` (``Sheet``, the sheet's title for a single URI),
``header`` (true), ``styles`` (true), ``charset`` (unused, as in Kestra) and
AbstractTextWriter's ``dateFormat`` (``yyyy-MM-dd``), ``timeZoneId`` (here UTC). Rows as in
IonToCsv: a struct's keys make the header row, a list row fails with a header ("Invalid data
of type List with header"). Cells (Kestra's createCell): ints (up to 64 bits), doubles and
decimals are numbers, larger ints text; booleans are booleans; dates and local date-times are
Excel date numbers, and so are instants, as the date they fall on in ``timeZoneId`` (the time
is dropped, as Kestra does); with ``styles`` their column is formatted with ``dateFormat``.
Text starting with ``Formula:`` becomes that formula; anything else is Java's text of the
value, null being the text ``null`` (Kestra's ``String.valueOf``). Outputs ``uri`` (an
``.xlsx``) and ``size`` (rows read, all sheets). Errors name the sheet and row: more rows than
Excel holds (1,048,576), text longer than a cell holds (32,767 characters).

ExcelToIon: ``from``, ``sheetsTitle`` (the sheets to read; all by default), ``header`` (true),
``skipRows`` (0), ``skipEmptyRows`` (false), ``valueRender`` (UNFORMATTED_VALUE |
FORMATTED_VALUE | FORMULA), ``dateTimeRender`` (UNFORMATTED_VALUE | SERIAL_NUMBER |
FORMATTED_STRING), ``charset`` (unused). One ION file per sheet: outputs ``uris`` (sheet title
-> URI) and ``size`` (rows, all sheets); metric ``sheets``. With a header the row after
``skipRows`` rows names the columns (``Column<i>`` for an empty cell; its first and last cells
bound every row) and rows are structs; without one rows are lists as wide as the first row.
Rows missing from the sheet are not rows. Unformatted values: text, booleans, numbers always
doubles (``1.0``), date-formatted numbers the ISO date (``2024-01-01``; SERIAL_NUMBER: the
number, FORMATTED_STRING: the cell's format applied), errors and blanks null; a formula cell
gives its cached result. FORMATTED_VALUE gives every cell as the text its number format shows
(General, ``0``, ``0.00``, ``#,##0.00``, percentages, dates; other formats: General).

Differences: Kestra writes every boolean cell FALSE (it sets the cell type without the
value); here the value is written. Kestra's FORMULA render fails on any non-formula cell;
here such a cell gives its value. Kestra's ``skipRows`` without a header keeps the first row
and skips the ones after it, and its ``skipEmptyRows`` does nothing; here they skip the first
rows and the rows with no value. FORMATTED_VALUE knows fewer formats than POI's DataFormatter.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal
from typing import IO, Any, ClassVar, Literal

from pydantic import Field

from executors.base import TaskContext, TaskError, TaskOutcome
from executors.plugin import TaskPlugin, render_bool, render_choice, render_int, render_str
from executors.plugins.serdes.base import (
    Cancelled,
    Files,
    Run,
    convert_in_thread,
    ion_rows,
    write_rows,
    zone,
)
from executors.plugins.serdes.javatext import is_instant, java_string
from schemas.flow.common import BoolOrExpr, IntOrExpr, Str

MAX_ROWS = 1_048_576  # Excel's sheet limit
MAX_CELL_TEXT = 32_767
_LONG = range(-(2**63), 2**63)
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _sheet_title(title: str) -> str:
    """POI's rules for a sheet name (Excel refuses the others)."""
    if not 1 <= len(title) <= 31 or re.search(r"[\[\]*?/\\:]", title) or title[0] == "'":
        raise TaskError(
            f"invalid sheet title {title!r}: 1 to 31 characters, none of []*?/\\: and not "
            "starting with a quote"
        )
    return title


class IonToExcel(TaskPlugin):
    """Convert ION files to an Excel workbook (one sheet per file)."""

    family: ClassVar[str] = "serdes"

    type: Literal["io.kestra.plugin.serdes.excel.IonToExcel"]
    from_: Str | dict[str, Str] = Field(alias="from")
    charset: Str = "UTF-8"
    sheetsTitle: Str = "Sheet"
    header: BoolOrExpr = True
    styles: BoolOrExpr = True
    dateFormat: Str = "yyyy-MM-dd"
    timeFormat: Str = "HH:mm:ss[XXX]"
    dateTimeFormat: Str = "yyyy-MM-dd'T'HH:mm:ss.SSS[XXX]"
    timeZoneId: Str | None = None

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        sheets = self._sheets(ctx)
        header = render_bool(ctx, self.header, "header", True)
        styles = render_bool(ctx, self.styles, "styles", True)
        date_format = render_str(ctx, self.dateFormat, "dateFormat") or "yyyy-MM-dd"
        writer = _ExcelWriter(header, styles, date_format, zone(ctx, self.timeZoneId))
        files = Files(ctx)
        sources = [(title, await files.source(uri)) for title, uri in sheets]
        return await convert_in_thread(
            ctx,
            files,
            files.target("result.xlsx"),
            lambda target, run: writer.write(sources, target, run),
            [source for _, source in sources],
        )

    def _sheets(self, ctx: TaskContext) -> list[tuple[str, str]]:
        if isinstance(self.from_, str):
            rendered = ctx.render(self.from_)
            if isinstance(rendered, Mapping):
                return [(_sheet_title(str(k)), str(v)) for k, v in rendered.items()]
            title = render_str(ctx, self.sheetsTitle, "sheetsTitle") or "Sheet"
            return [(_sheet_title(title), str(rendered or ""))]
        rendered_map = ctx.render(self.from_)
        if not rendered_map:
            raise TaskError("property 'from': expected a URI or a map of sheet title to URI")
        return [(_sheet_title(str(k)), str(v)) for k, v in rendered_map.items()]


class _ExcelWriter:
    def __init__(self, header: bool, styles: bool, date_format: str, tz: tzinfo) -> None:
        self.header = header
        self.styles = styles
        self.date_format = date_format
        self.zone = tz

    def write(self, sources: list[tuple[str, IO[bytes]]], target: IO[bytes], run: Run) -> int:
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        total = 0
        try:
            for title, source in sources:
                sheet = workbook.create_sheet(title)
                total += self.sheet(sheet, title, source, run)
        except BaseException:
            for sheet in workbook.worksheets:
                sheet.close()  # ends its row writer; the file is discarded
            raise
        workbook.save(target)
        return total

    def sheet(self, sheet: Any, title: str, source: IO[bytes], run: Run) -> int:
        count = 0
        written = 0
        first = True
        for count, row in enumerate(ion_rows(source, run), start=1):
            cells: list[Any] = []
            if isinstance(row, list):
                if self.header:
                    raise TaskError(
                        f"sheet {title!r}, record {count}: Invalid data of type List with header"
                    )
                cells = row
            elif isinstance(row, dict):
                if first and self.header:
                    written += 1
                    sheet.append([self.cell(sheet, k, title, written) for k in row])
                first = False
                cells = list(row.values())
            else:
                continue
            written += 1
            if written > MAX_ROWS:
                raise TaskError(f"sheet {title!r}: more than {MAX_ROWS} rows, Excel's limit")
            sheet.append([self.cell(sheet, v, title, written) for v in cells])
        return count

    def cell(self, sheet: Any, value: Any, title: str, row: int) -> Any:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.utils.datetime import to_excel

        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value if value in _LONG else str(value)
        if isinstance(value, float | Decimal):
            return float(value)
        serial: float | None = None
        if isinstance(value, datetime):
            if value.tzinfo is None:
                serial = to_excel(value)
            elif is_instant(value):
                serial = to_excel(value.astimezone(self.zone).date())
        elif isinstance(value, date):
            serial = to_excel(value)
        if serial is not None:
            cell = WriteOnlyCell(sheet, value=serial)
            if self.styles:
                cell.number_format = self.date_format
            return cell
        text = java_string(value)
        if text.startswith("Formula:"):
            return "=" + text[len("Formula:") :]
        if len(text) > MAX_CELL_TEXT:
            raise TaskError(
                f"sheet {title!r}, row {row}: a text of {len(text)} characters is longer than "
                f"an Excel cell holds ({MAX_CELL_TEXT})"
            )
        return _ILLEGAL.sub(lambda m: f"_x{ord(m.group()):04X}_", text)


# ----------------------------------------------------------------------------- ExcelToIon

VALUE_RENDERS = ("FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA")
DATE_RENDERS = ("SERIAL_NUMBER", "FORMATTED_STRING", "UNFORMATTED_VALUE")


class ExcelToIon(TaskPlugin):
    """Convert the sheets of an Excel workbook to ION files (one per sheet)."""

    family: ClassVar[str] = "serdes"

    type: Literal["io.kestra.plugin.serdes.excel.ExcelToIon"]
    from_: Str = Field(alias="from")
    sheetsTitle: list[Str] | Str | None = None
    charset: Str = "UTF-8"
    valueRender: Str = "UNFORMATTED_VALUE"
    dateTimeRender: Str = "UNFORMATTED_VALUE"
    header: BoolOrExpr = True
    skipEmptyRows: BoolOrExpr = False
    skipRows: IntOrExpr = 0

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        uri = render_str(ctx, self.from_, "from", required=True)
        assert uri is not None
        wanted = ctx.render(self.sheetsTitle)
        titles = [wanted] if isinstance(wanted, str) else [str(t) for t in wanted or []]
        reader = _ExcelReader(
            header=render_bool(ctx, self.header, "header", True),
            skip_empty=render_bool(ctx, self.skipEmptyRows, "skipEmptyRows", False),
            skip_rows=max(render_int(ctx, self.skipRows, "skipRows", 0) or 0, 0),
            values=render_choice(ctx, self.valueRender, "valueRender", VALUE_RENDERS) or "",
            dates=render_choice(ctx, self.dateTimeRender, "dateTimeRender", DATE_RENDERS) or "",
        )
        files = Files(ctx)
        run = Run(ctx.cancelled)
        source = await files.source(uri)
        try:
            with source:
                sheets = await asyncio.to_thread(reader.read, source, files, titles, run)
        except Cancelled:
            return TaskOutcome(state="KILLED")
        uris: dict[str, str] = {}
        size = 0
        for title, target, count in sheets:
            uris[title] = await files.publish(target)
            size += count
        return TaskOutcome(
            state="SUCCESS",
            outputs={"uris": uris, "size": size},
            metrics={"sheets": reader.sheet_count},
        )


class _ExcelReader:
    def __init__(
        self, *, header: bool, skip_empty: bool, skip_rows: int, values: str, dates: str
    ) -> None:
        self.header = header
        self.skip_empty = skip_empty
        self.skip_rows = skip_rows
        self.values = values
        self.dates = dates
        self.sheet_count = 0

    def read(
        self, source: IO[bytes], files: Files, titles: list[str], run: Run
    ) -> list[tuple[str, Any, int]]:
        from openpyxl import load_workbook

        try:
            workbook = load_workbook(source, read_only=True, data_only=True)
        except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException...
            raise TaskError(f"the source is not a readable Excel (.xlsx) file: {exc}") from None
        results: list[tuple[str, Any, int]] = []
        try:
            self.sheet_count = len(workbook.worksheets)
            for sheet in workbook.worksheets:
                if titles and sheet.title not in titles:
                    continue
                sheet.reset_dimensions()  # some writers record wrong dimensions
                target = files.target(f"{sheet.title}.ion")
                try:
                    count = write_rows(target.stream, self.rows(sheet), run)
                except BaseException:
                    target.discard()
                    for _, done, _ in results:
                        done.discard()
                    raise
                results.append((sheet.title, target, count))
        finally:
            workbook.close()
        return results

    def rows(self, sheet: Any) -> Iterator[Any]:
        present = (row for row in sheet.iter_rows() if row)  # rows missing from the file
        names: list[str] | None = None
        first_col = 0
        last_col: int | None = None
        skipped = 0
        for row in present:
            if skipped < self.skip_rows:
                skipped += 1
                continue
            if self.header and names is None:
                used = [i for i, c in enumerate(row) if getattr(c, "value", None) is not None]
                first_col = used[0] if used else 0
                last_col = used[-1] + 1 if used else 0
                names = []
                for i in range(first_col, last_col):
                    value = row[i].value if i < len(row) else None
                    names.append(f"Column{i}" if value is None else java_string(self.value(row[i])))
                continue
            values = [self.value(row[i]) if i < len(row) else None for i in range(len(row))]
            if last_col is None:
                last_col = max((i + 1 for i, v in enumerate(values) if v is not None), default=0)
            window = values[first_col:last_col]
            window += [None] * (last_col - first_col - len(window))
            if self.skip_empty and all(v is None for v in window):
                continue
            if names is not None:
                yield dict(zip(names, window, strict=True))
            else:
                yield window

    def value(self, cell: Any) -> Any:
        value = getattr(cell, "value", None)
        if value is None or getattr(cell, "data_type", None) == "e":
            if self.values == "FORMATTED_VALUE" and value is not None:
                return str(value)
            return None
        if self.values == "FORMATTED_VALUE" and not isinstance(value, datetime | date | time):
            return format_cell(value, getattr(cell, "number_format", "General"))
        if isinstance(value, bool | str):
            return value
        if isinstance(value, datetime | date | time):
            return self.temporal(value, getattr(cell, "number_format", "General"))
        return float(value)

    def temporal(self, value: datetime | date | time, number_format: str) -> Any:
        from openpyxl.utils.datetime import to_excel

        if self.dates == "SERIAL_NUMBER":
            return float(to_excel(value))
        if self.dates == "FORMATTED_STRING":
            return format_cell(value, number_format)
        if self.values == "FORMATTED_VALUE":  # POI's Date, written as an instant
            moment = value if isinstance(value, datetime) else None
            if moment is None:
                return value.isoformat()
            return moment.replace(tzinfo=UTC)
        if isinstance(value, datetime):
            return value.date().isoformat()
        return value.isoformat()


# --------------------------------------------------------------- a cell's displayed text

_DATE_TOKENS = re.compile(r"yyyy|yy|mmmm|mmm|mm|m|dddd|ddd|dd|d|hh|h|ss|s|am/pm|a/p|\.0+", re.I)


def format_cell(value: Any, number_format: str) -> str:
    """The text Excel shows for ``value`` in ``number_format`` (the common formats)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return value
    fmt = (number_format or "General").split(";")[0]
    fmt = re.sub(r"\[[^\]]*\]|\\|\"|_.|\*.", "", fmt)
    if isinstance(value, datetime | date | time):
        return _format_date(value, fmt)
    number = float(value)
    if fmt in ("General", "@", ""):
        return _general(number)
    percent = fmt.endswith("%")
    if percent:
        number *= 100
        fmt = fmt[:-1]
    decimals = len(fmt.split(".")[1]) if "." in fmt else 0
    text = f"{number:,.{decimals}f}" if "," in fmt else f"{number:.{decimals}f}"
    return text + ("%" if percent else "")


def _general(number: float) -> str:
    if number == int(number) and abs(number) < 1e15:
        return str(int(number))
    return f"{number:.10f}".rstrip("0").rstrip(".")


def _format_date(value: datetime | date | time, fmt: str) -> str:
    moment = (
        value
        if isinstance(value, datetime)
        else datetime.combine(value, time())
        if isinstance(value, date)
        else datetime.combine(date(1899, 12, 31), value)
    )
    twelve = re.search(r"am/pm|a/p", fmt, re.I) is not None
    out: list[str] = []
    last = ""
    pos = 0
    for match in _DATE_TOKENS.finditer(fmt):
        out.append(fmt[pos : match.start()])
        pos = match.end()
        token = match.group().lower()
        rest = fmt[pos:].lower()
        if token in ("m", "mm") and (last.startswith("h") or rest.lstrip(":").startswith("s")):
            token = "min" + token  # after hours or before seconds, m is minutes
        out.append(_date_part(moment, token, twelve))
        last = token
    out.append(fmt[pos:])
    return "".join(out)


def _date_part(moment: datetime, token: str, twelve: bool) -> str:
    hour = moment.hour % 12 or 12 if twelve else moment.hour
    parts = {
        "yyyy": f"{moment.year:04d}",
        "yy": f"{moment.year % 100:02d}",
        "mmmm": moment.strftime("%B"),
        "mmm": moment.strftime("%b"),
        "mm": f"{moment.month:02d}",
        "m": str(moment.month),
        "minmm": f"{moment.minute:02d}",
        "minm": str(moment.minute),
        "dddd": moment.strftime("%A"),
        "ddd": moment.strftime("%a"),
        "dd": f"{moment.day:02d}",
        "d": str(moment.day),
        "hh": f"{hour:02d}",
        "h": str(hour),
        "ss": f"{moment.second:02d}",
        "s": str(moment.second),
        "am/pm": "AM" if moment.hour < 12 else "PM",
        "a/p": "A" if moment.hour < 12 else "P",
    }
    if token.startswith("."):
        return "." + f"{moment.microsecond:06d}"[: len(token) - 1]
    return parts[token]
