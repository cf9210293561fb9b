"""Kestra's ION files: a streaming reader and a writer of Amazon Ion text.

Kestra stores row results (``fetchType: STORE``, serdes conversions, consumed messages) as Ion
TEXT, one top-level value per line: ``FileSerde.write`` writes ``JacksonMapper.ofIon()``'s bytes
of each row then ``"\\n"`` (``writeAll`` separates values by newlines the same way). That mapper
is Jackson's ``IonObjectMapper`` over ion-java's compact text writer plus Kestra's ``IonModule``
(serializers) and ``IonParser`` (how timestamps and annotated strings read back).

Python value -> Ion text, as Kestra writes the equivalent Java value:

=========================  =====================================================================
``None``                   ``null`` (map entries with a null value are kept: ``{a:null}``)
``bool``                   ``true`` / ``false``
``int``                    ``42`` (Long/BigInteger)
``float``                  Ion float in ion-java's rendering: ``1.5e0``, ``1e0``, ``100e0``,
                           ``0.001e0``, ``1.0e7``, ``1.5e-5``, ``0e0``, ``nan``, ``+inf``, ``-inf``
``Decimal``                Ion decimal (BigDecimal): ``1.50``, ``10.``, ``0.000001``, ``1d-7``,
                           ``12d3``
``str``                    ``"text"``: ``\\" \\\\`` and controls escaped (``\\n \\t \\0 \\x01``...,
                           ``\\x7f``-``\\x9f`` too); other characters as UTF-8
``bytes``                  blob ``{{base64}}``
``dict``                   struct ``{a:1,'b c':"x"}``: keys as symbols, quoted when not an
                           identifier or when a keyword (``'null'``, ``'true'``, ``'$1'``...)
``list`` / ``tuple``       ``[1,2]``
``datetime`` in UTC        timestamp at millisecond precision ``2024-01-01T10:00:00.000Z``
                           (``Instant``: ``Timestamp.forDateZ``)
``datetime`` +offset       ``OffsetDateTime::"2024-01-01T10:00:00+02:00"``
``datetime`` ZoneInfo      ``ZonedDateTime::"2024-01-01T10:00:00+01:00[Europe/Paris]"``
naive ``datetime``         ``LocalDateTime::"2024-01-01T10:00:00"`` (ISO_LOCAL_DATE_TIME)
``date``                   day timestamp ``2024-01-01`` (``LocalDate``)
naive / aware ``time``     ``LocalTime::"10:00:00"`` / ``OffsetTime::"10:00:00+02:00"``
=========================  =====================================================================

Ion text -> Python (Kestra's ``IonParser``): structs -> ``dict`` (fields in order; a repeated
field keeps the last value, as a Java map), lists and s-expressions -> ``list``, strings and
symbols -> ``str``, ints -> ``int``, decimals -> ``Decimal``, floats -> ``float``, bools, any
``null``/``null.<type>`` -> ``None``, blobs and clobs -> ``bytes``. A timestamp in UTC (``Z``) or
of unknown offset (``-00:00``) at exactly midnight is a ``date`` (Kestra reads a ``LocalDate``),
otherwise an aware ``datetime`` in UTC; with another offset, an aware ``datetime`` at that
offset (Kestra: a ``ZonedDateTime``). Strings annotated with a ``java.time`` class name read as
that type: ``Instant``/``OffsetDateTime``/``ZonedDateTime`` -> aware ``datetime`` (a region
``[Europe/Paris]`` becomes a ``ZoneInfo``), ``LocalDateTime`` -> naive ``datetime``,
``LocalDate`` -> ``date``, ``LocalTime``/``OffsetTime`` -> ``time``. Other annotations are
dropped. ``annotations="ignore"`` reads as plain Jackson does (annotated strings stay text,
what Kestra's IonToJson sees); ``"keep"`` gives :class:`Annotated` for annotated strings.
Python keeps microseconds: finer digits are truncated. Symbol ids (``$10``) stay text.

Reading is streaming: :func:`iter_values` pulls one line at a time from a binary file and
yields each value as soon as it is complete, so memory holds one value (plus the rest of its
line), whatever the file's size. Values may span lines (containers, long strings, comments).
Malformed input raises :class:`IonError` naming the line (and the column where the parser
knows it). Binary Ion is refused (Kestra only writes text). Writing: :func:`dumps` gives one
value's text, :class:`IonWriter` writes ``value + "\\n"`` per row into a binary file.
"""

from __future__ import annotations

import base64
import codecs
import io
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from typing import IO, Any, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

BINARY_ION_MARKER = b"\xe0\x01\x00\xea"


class IonError(ValueError):
    """Malformed Ion text; ``line`` and ``column`` (when known) are 1-based."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        self.line = line
        self.column = column
        where = ""
        if line is not None:
            where = f"line {line}, column {column}: " if column is not None else f"line {line}: "
        super().__init__(where + message)


@dataclass(frozen=True, slots=True)
class Annotated:
    """An annotated string or symbol, as read with ``annotations="keep"``."""

    annotations: tuple[str, ...]
    value: str


# How annotations are read: "java" as Kestra's own reader (java.time class names make
# temporal values, others are dropped), "ignore" as plain Jackson (every annotation dropped),
# "keep" (annotated strings and symbols become Annotated, as IonToJson's shouldKeepAnnotations).
AnnotationMode = Literal["java", "ignore", "keep"]


# ----------------------------------------------------------------------------------- writing

_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*\Z")
_KEYWORD = re.compile(r"(?:null|true|false|nan|\$[0-9]+)\Z")


def _escape_table(quote: str) -> dict[int, str]:
    table = {i: f"\\x{i:02x}" for i in range(1, 0x20)}
    table.update({0: "\\0", 7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f"})
    table.update({13: "\\r", ord("\\"): "\\\\", ord(quote): "\\" + quote})
    # ion-java escapes DEL and the C1 controls U+80-U+9F; Latin-1 letters stay UTF-8.
    table.update({i: f"\\x{i:02x}" for i in range(0x7F, 0xA0)})
    return table


_STRING_ESCAPES = _escape_table('"')
_SYMBOL_ESCAPES = _escape_table("'")
_NEEDS_ESCAPE = re.compile(r"[\x00-\x1f\"\\\x7f-\x9f]")
_SYMBOL_NEEDS_ESCAPE = re.compile(r"[\x00-\x1f'\\\x7f-\x9f]")


def _string(text: str) -> str:
    if _NEEDS_ESCAPE.search(text) is None:
        return f'"{text}"'
    return '"' + text.translate(_STRING_ESCAPES) + '"'


def _symbol(text: str) -> str:
    if _IDENTIFIER.match(text) and not _KEYWORD.match(text):
        return text
    if _SYMBOL_NEEDS_ESCAPE.search(text) is None:
        return f"'{text}'"
    return "'" + text.translate(_SYMBOL_ESCAPES) + "'"


def _shortest_digits(value: float) -> tuple[str, int]:
    """(digits, e) with abs(value) == 0.<digits> * 10**e, digits the shortest round trip."""
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple))
    return digits.rstrip("0") or "0", len(digits) + exponent


def java_double(value: float) -> str:
    """Java's ``Double.toString``: ``1.0``, ``1.5``, ``0.001``, ``1.0E7``, ``1.5E-5``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    digits, e = _shortest_digits(value)
    if 0 < e <= 7:  # 1 <= |v| < 1e7: plain
        whole = (digits[:e]).ljust(e, "0")
        frac = digits[e:] or "0"
        return f"{sign}{whole}.{frac}"
    if -3 < e <= 0:  # 1e-3 <= |v| < 1: plain with leading zeros
        return f"{sign}0.{'0' * -e}{digits}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{e - 1}"


def _float(value: float) -> str:
    """ion-java's float text: Java's digits, ``.0`` becomes ``e0``, else ``e0`` appended."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    text = java_double(value)
    if "E" in text:
        return text.replace("E", "e")
    if text.endswith(".0"):
        return text[:-2] + "e0"
    return text + "e0"


def _decimal(value: Decimal) -> str:
    """ion-java's ``printDecimal`` of a BigDecimal."""
    if not value.is_finite():
        raise TypeError(f"Ion has no decimal for {value}")
    sign, digit_tuple, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    unscaled = "".join(map(str, digit_tuple)).lstrip("0") or "0"
    text = "-" if sign else ""
    if exponent == 0:
        return f"{text}{unscaled}."
    if exponent > 0:
        return f"{text}{unscaled}d{exponent}"
    scale = -exponent
    adjusted = len(unscaled) - 1 - scale
    if adjusted >= 0:
        whole = len(unscaled) - scale
        return f"{text}{unscaled[:whole]}.{unscaled[whole:]}"
    if adjusted >= -6:
        return f"{text}0.{'0' * (scale - len(unscaled))}{unscaled}"
    return f"{text}{unscaled}d-{scale}"


def _fraction(micro: int) -> str:
    """Java's ISO formatters' fraction: only the digits needed (none for zero)."""
    return f".{micro:06d}".rstrip("0") if micro else ""


def iso_local_time(value: time | datetime) -> str:
    """``DateTimeFormatter.ISO_LOCAL_TIME``: ``HH:mm:ss`` plus the needed fraction digits."""
    return f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}{_fraction(value.microsecond)}"


def iso_offset(offset: timedelta | None) -> str:
    """``XXX`` / ``ISO_OFFSET_*``'s offset id: ``Z`` for zero, else ``+HH:MM[:ss]``."""
    if not offset:
        return "Z"
    seconds = int(offset.total_seconds())
    sign = "+" if seconds >= 0 else "-"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


def iso_local_date_time(value: datetime) -> str:
    return f"{value.date().isoformat()}T{iso_local_time(value)}"


def is_utc(tz: tzinfo | None) -> bool:
    """UTC itself (an Instant), as opposed to a zone or an offset that is zero today."""
    if tz is UTC or tz == UTC:
        return True
    return isinstance(tz, ZoneInfo) and tz.key in ("UTC", "Etc/UTC", "Z")


def _timestamp(value: datetime) -> str:
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _datetime(value: datetime) -> str:
    tz = value.tzinfo
    if tz is None or value.utcoffset() is None:
        return "LocalDateTime::" + _string(iso_local_date_time(value))
    if is_utc(tz):
        return _timestamp(value)
    text = iso_local_date_time(value) + iso_offset(value.utcoffset())
    if isinstance(tz, ZoneInfo):
        return "ZonedDateTime::" + _string(f"{text}[{tz.key}]")
    return "OffsetDateTime::" + _string(text)


def _time(value: time) -> str:
    offset = value.utcoffset()
    if offset is None:
        return "LocalTime::" + _string(iso_local_time(value))
    return "OffsetTime::" + _string(iso_local_time(value) + iso_offset(offset))


def _write(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, float):
        out.append(_float(value))
    elif isinstance(value, Mapping):
        out.append("{")
        first = True
        for key, item in value.items():
            if not first:
                out.append(",")
            first = False
            out.append(_symbol(str(key)))
            out.append(":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    elif isinstance(value, Decimal):
        out.append(_decimal(value))
    elif isinstance(value, datetime):
        out.append(_datetime(value))
    elif isinstance(value, date):
        out.append(value.isoformat())
    elif isinstance(value, time):
        out.append(_time(value))
    elif isinstance(value, bytes | bytearray | memoryview):
        out.append("{{" + base64.b64encode(bytes(value)).decode("ascii") + "}}")
    else:
        raise TypeError(f"cannot write a {type(value).__name__} as Ion")


def dumps(value: Any) -> str:
    """One value's Ion text, as Kestra's mapper writes it (no trailing newline)."""
    out: list[str] = []
    _write(value, out)
    return "".join(out)


class IonWriter:
    """Writes rows into a binary file as Kestra's ``FileSerde.write`` does: text, then ``\\n``.

    A ``None`` row is skipped ("avoid writing null", as FileSerde does); ``count`` counts the
    rows written.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.count = 0

    def write(self, value: Any) -> None:
        if value is None:
            return
        self.stream.write(dumps(value).encode("utf-8") + b"\n")
        self.count += 1

    def write_all(self, values: Iterable[Any]) -> int:
        for value in values:
            self.write(value)
        return self.count


# ----------------------------------------------------------------------------------- reading

_WS = re.compile(r"[ \t\n\r\v\f]*")
_IDENT_RE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_OPERATOR_RE = re.compile(r"[!#%&*+\-./;<=>?@^`|~]+")
_TIMESTAMP_RE = re.compile(
    r"(\d{4})(?:T|-(\d{2})(?:T|-(\d{2})(?:T(?:(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?"
    r"(Z|[+-]\d{2}:\d{2}))?)?)?)"
)
_NUMBER_RE = re.compile(
    r"-?(?:0[xX][0-9a-fA-F](?:_?[0-9a-fA-F])*|0[bB][01](?:_?[01])*"
    r"|(?:0|[1-9](?:_?[0-9])*)(?:\.(?:[0-9](?:_?[0-9])*)?)?(?:[eEdD][+-]?[0-9]+)?)"
)
_STOP = frozenset(" \t\n\r\v\f,]})[({\"'/:")
_NULL_TYPES = frozenset(
    "null bool int float decimal timestamp symbol string clob blob list sexp struct".split()
)
_SIMPLE_ESCAPES = {
    "a": "\a", "b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", "v": "\v",
    "?": "?", "0": "\0", "'": "'", '"': '"', "/": "/", "\\": "\\",
}  # fmt: skip
_TEMPORAL_ANNOTATIONS = frozenset(
    "Instant OffsetDateTime ZonedDateTime LocalDateTime LocalDate OffsetTime LocalTime".split()
)


class _Missing:
    pass


_NOTHING = _Missing()


class _LineSource(Protocol):
    def readline(self) -> str: ...


class _Parser:
    """Recursive descent over a buffer that always ends at a line boundary (or at EOF)."""

    def __init__(self, stream: _LineSource, annotations: AnnotationMode = "java") -> None:
        self.stream = stream
        self.mode = annotations
        self.buf = ""
        self.pos = 0
        self.base_line = 0  # lines before buf[0]
        self.eof = False

    # -- buffer

    def line(self, pos: int | None = None) -> int:
        at = self.pos if pos is None else pos
        return self.base_line + self.buf.count("\n", 0, at) + 1

    def error(self, message: str, pos: int | None = None) -> IonError:
        at = self.pos if pos is None else pos
        column = at - (self.buf.rfind("\n", 0, at) + 1) + 1
        return IonError(message, self.line(at), column)

    def more(self) -> bool:
        """Append the next line (positions stay valid: only :meth:`compact` drops text)."""
        if self.eof:
            return False
        try:
            line = self.stream.readline()
        except UnicodeDecodeError as exc:
            number = self.base_line + self.buf.count("\n") + 1  # the line being read
            raise IonError(f"the file is not valid text: {exc.reason}", number) from None
        if not line:
            self.eof = True
            return False
        self.buf += line
        return True

    def compact(self) -> None:
        """Drop the text already parsed (between top-level values)."""
        if self.pos:
            self.base_line += self.buf.count("\n", 0, self.pos)
            self.buf = self.buf[self.pos :]
            self.pos = 0

    def skip_space(self) -> bool:
        """Skip whitespace and comments; False at the end of the input."""
        while True:
            match = _WS.match(self.buf, self.pos)
            self.pos = match.end() if match else self.pos
            if self.pos >= len(self.buf):
                if not self.more():
                    return False
                continue
            if self.buf.startswith("//", self.pos):
                end = self.buf.find("\n", self.pos)
                self.pos = len(self.buf) if end < 0 else end + 1
                continue
            if self.buf.startswith("/*", self.pos):
                start_line = self.line()
                while (end := self.buf.find("*/", self.pos + 2)) < 0:
                    if not self.more():
                        raise IonError("unterminated /* comment", start_line)
                self.pos = end + 2
                continue
            return True

    # -- values

    def top_level(self) -> Iterator[Any]:
        while True:
            self.compact()
            if not self.skip_space():
                return
            start = self.pos
            annotations, value = self.value(in_sexp=False)
            if not annotations and value == "$ion_1_0" and self.buf[start] == "$":
                continue  # the version marker
            if "$ion_symbol_table" in annotations:
                continue  # a local symbol table: text files have no use for it
            yield value

    def value(self, *, in_sexp: bool) -> tuple[list[str], Any]:
        annotations: list[str] = []
        while True:
            start = self.pos
            kind, value = self.atom(in_sexp=in_sexp)
            if kind == "symbol":
                after = self.pos
                if self.skip_space() and self.buf.startswith("::", self.pos):
                    self.pos += 2
                    annotations.append(value)
                    if not self.skip_space():
                        raise self.error("a value must follow an annotation")
                    continue
                self.pos = after
            return annotations, _annotated(annotations, value, self, start)

    def atom(self, *, in_sexp: bool) -> tuple[str, Any]:
        buf, pos = self.buf, self.pos
        char = buf[pos]
        if char == "{":
            if buf.startswith("{{", pos):
                return "lob", self.lob()
            return "struct", self.struct()
        if char == "[":
            return "list", self.sequence("]", in_sexp=False)
        if char == "(":
            return "sexp", self.sequence(")", in_sexp=True)
        if char == '"':
            return "string", self.short_string()
        if char == "'":
            if buf.startswith("'''", pos):
                return "string", self.long_strings()
            return "symbol", self.quoted_symbol()
        if char.isdigit() or (char == "-" and pos + 1 < len(buf) and buf[pos + 1].isdigit()):
            return "number", self.number()
        if buf.startswith(("+inf", "-inf"), pos) and self.ends_token(pos + 4, in_sexp):
            self.pos = pos + 4
            return "float", math.inf if char == "+" else -math.inf
        match = _IDENT_RE.match(buf, pos)
        if match:
            word = match.group()
            self.pos = match.end()
            if word == "null":
                if buf.startswith(".", self.pos):
                    typed = _IDENT_RE.match(buf, self.pos + 1)
                    if not typed or typed.group() not in _NULL_TYPES:
                        raise self.error("unknown typed null", pos)
                    self.pos = typed.end()
                return "null", None
            if word in ("true", "false"):
                return "bool", word == "true"
            if word == "nan":
                return "float", math.nan
            return "symbol", word
        if in_sexp:
            match = _OPERATOR_RE.match(buf, pos)
            if match:
                self.pos = match.end()
                return "operator", match.group()
        raise self.error(f"unexpected character {char!r}")

    def ends_token(self, pos: int, in_sexp: bool) -> bool:
        if pos >= len(self.buf):
            return True
        char = self.buf[pos]
        return char in _STOP or (in_sexp and _OPERATOR_RE.match(char) is not None)

    def struct(self) -> dict[str, Any]:
        open_line = self.line()
        self.pos += 1
        result: dict[str, Any] = {}
        while True:
            if not self.skip_space():
                raise IonError("unterminated struct (missing '}')", open_line)
            if self.buf[self.pos] == "}":
                self.pos += 1
                return result
            name = self.field_name()
            if not self.skip_space() or self.buf[self.pos] != ":":
                raise self.error(f"expected ':' after the field name {name!r}")
            self.pos += 1
            if not self.skip_space():
                raise IonError("unterminated struct (missing '}')", open_line)
            _, value = self.value(in_sexp=False)
            result[name] = value
            if not self.skip_space():
                raise IonError("unterminated struct (missing '}')", open_line)
            char = self.buf[self.pos]
            if char == ",":
                self.pos += 1
            elif char != "}":
                raise self.error(f"expected ',' or '}}' in a struct, got {char!r}")

    def field_name(self) -> str:
        char = self.buf[self.pos]
        if char == '"':
            return self.short_string()
        if char == "'":
            return (
                self.long_strings()
                if self.buf.startswith("'''", self.pos)
                else (self.quoted_symbol())
            )
        match = _IDENT_RE.match(self.buf, self.pos)
        if not match:
            raise self.error(f"expected a field name, got {char!r}")
        self.pos = match.end()
        return match.group()

    def sequence(self, close: str, *, in_sexp: bool) -> list[Any]:
        open_line = self.line()
        what = "s-expression" if in_sexp else "list"
        self.pos += 1
        result: list[Any] = []
        while True:
            if not self.skip_space():
                raise IonError(f"unterminated {what} (missing '{close}')", open_line)
            if self.buf[self.pos] == close:
                self.pos += 1
                return result
            _, value = self.value(in_sexp=in_sexp)
            result.append(value)
            if in_sexp:
                continue
            if not self.skip_space():
                raise IonError(f"unterminated {what} (missing '{close}')", open_line)
            char = self.buf[self.pos]
            if char == ",":
                self.pos += 1
            elif char != close:
                raise self.error(f"expected ',' or '{close}' in a list, got {char!r}")

    def number(self) -> Any:
        buf, pos = self.buf, self.pos
        stamp = _TIMESTAMP_RE.match(buf, pos)
        if stamp and self.ends_token(stamp.end(), False):
            self.pos = stamp.end()
            return self.timestamp(stamp, pos)
        match = _NUMBER_RE.match(buf, pos)
        if not match or not self.ends_token(match.end(), False):
            raise self.error("invalid number", pos)
        self.pos = match.end()
        text = match.group().replace("_", "")
        lower = text.lower()
        if lower.lstrip("-").startswith(("0x", "0b")):
            return int(text, 0)
        if "e" in lower:
            return float(text)
        if "." in text or "d" in lower:
            try:
                return Decimal(lower.replace("d", "e"))
            except InvalidOperation:
                raise self.error(f"invalid decimal {text!r}", pos) from None
        return int(text)

    def timestamp(self, match: re.Match[str], pos: int) -> Any:
        year, month, day, hour, minute, second, frac, offset = match.groups()
        try:
            if hour is None:
                moment = datetime(int(year), int(month or 1), int(day or 1), tzinfo=UTC)
            else:
                micro = int((frac[1:] + "000000")[:6]) if frac else 0
                if offset in ("Z", "-00:00"):
                    zone: tzinfo = UTC
                else:
                    sign = -1 if offset[0] == "-" else 1
                    delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
                    zone = timezone(sign * delta)
                moment = datetime(
                    int(year), int(month), int(day), int(hour), int(minute),
                    int(second or 0), micro, tzinfo=zone,
                )  # fmt: skip
        except ValueError as exc:
            raise self.error(f"invalid timestamp {match.group()!r}: {exc}", pos) from None
        if moment.tzinfo is UTC:
            exact = (frac is None or not frac[1:].strip("0")) and moment.time() == time(0)
            return moment.date() if exact else moment
        return moment

    def short_string(self) -> str:
        buf, start = self.buf, self.pos
        end = buf.find('"', start + 1)
        if end > 0 and "\\" not in buf[start + 1 : end] and "\n" not in buf[start + 1 : end]:
            self.pos = end + 1
            return buf[start + 1 : end]
        return self.escaped('"', start + 1, long=False)

    def quoted_symbol(self) -> str:
        return self.escaped("'", self.pos + 1, long=False)

    def long_strings(self) -> str:
        parts = []
        while True:
            parts.append(self.escaped("'''", self.pos + 3, long=True))
            after = self.pos
            if self.skip_space() and self.buf.startswith("'''", self.pos):
                continue
            self.pos = after
            return "".join(parts)

    def escaped(self, quote: str, pos: int, *, long: bool) -> str:
        """Text from ``pos`` up to the closing ``quote``, escapes decoded."""
        start_line = self.line(pos)
        out: list[str] = []
        while True:
            buf = self.buf
            if pos >= len(buf):
                if long:
                    if not self.more():
                        raise IonError("unterminated long string", start_line)
                    continue
                raise IonError("unterminated string", start_line)
            char = buf[pos]
            if buf.startswith(quote, pos):
                self.pos = pos + len(quote)
                return "".join(out)
            if char == "\\":
                if pos + 1 >= len(buf):
                    raise IonError("unterminated string", start_line)
                code = buf[pos + 1]
                if code in _SIMPLE_ESCAPES:
                    out.append(_SIMPLE_ESCAPES[code])
                    pos += 2
                elif code in "xuU":
                    width = {"x": 2, "u": 4, "U": 8}[code]
                    digits = buf[pos + 2 : pos + 2 + width]
                    if len(digits) != width or not re.fullmatch(r"[0-9a-fA-F]+", digits):
                        raise self.error(f"invalid \\{code} escape", pos)
                    point = int(digits, 16)
                    pos += 2 + width
                    if 0xD800 <= point < 0xDC00 and buf.startswith("\\u", pos):
                        low = int(buf[pos + 2 : pos + 6] or "0", 16)
                        if 0xDC00 <= low < 0xE000:
                            point = 0x10000 + ((point - 0xD800) << 10) + (low - 0xDC00)
                            pos += 6
                    out.append(chr(point))
                elif code == "\n":
                    pos += 2  # an escaped newline continues the string
                elif code == "\r":
                    pos += 3 if buf.startswith("\n", pos + 2) else 2
                else:
                    raise self.error(f"invalid escape \\{code}", pos)
                continue
            if char == "\n" and not long:
                raise IonError('unterminated string (a newline inside "...")', start_line)
            out.append(char)
            pos += 1

    def lob(self) -> bytes:
        start_line = self.line()
        while (end := self.buf.find("}}", self.pos + 2)) < 0:
            if not self.more():
                raise IonError("unterminated blob (missing '}}')", start_line)
        body = self.buf[self.pos + 2 : end].strip()
        self.pos = end + 2
        if body.startswith('"') or body.startswith("'''"):
            inner = _Parser(io.StringIO(body))
            inner.more()
            text = inner.long_strings() if body.startswith("'''") else inner.short_string()
            try:
                return text.encode("latin-1")
            except UnicodeEncodeError:
                raise IonError("a clob holds only ASCII/Latin-1 characters", start_line) from None
        try:
            return base64.b64decode("".join(body.split()), validate=True)
        except ValueError:
            raise IonError("invalid base64 in a blob", start_line) from None


def _annotated(annotations: list[str], value: Any, parser: _Parser, pos: int) -> Any:
    if not annotations or not isinstance(value, str) or parser.mode == "ignore":
        return value
    if parser.mode == "keep":
        return Annotated(tuple(annotations), value)
    kind = annotations[0]
    if kind not in _TEMPORAL_ANNOTATIONS:
        return value
    try:
        return parse_java_time(kind, value)
    except ValueError as exc:
        raise parser.error(f"invalid {kind} {value!r}: {exc}", pos) from None


def parse_java_time(kind: str, text: str) -> Any:
    """A ``java.time`` value's ISO text (as Kestra's IonModule writes it) as Python."""
    if kind == "LocalDate":
        return date.fromisoformat(text)
    if kind == "LocalTime":
        return time.fromisoformat(_trim_fraction(text))
    if kind == "OffsetTime":
        return time.fromisoformat(_trim_fraction(text))
    if kind == "LocalDateTime":
        parsed = datetime.fromisoformat(_trim_fraction(text))
        return parsed.replace(tzinfo=None)
    region = None
    if text.endswith("]") and "[" in text:
        text, _, region = text[:-1].partition("[")
    parsed = datetime.fromisoformat(_trim_fraction(text))
    if parsed.tzinfo is None:
        raise ValueError("no offset")
    if kind == "Instant":
        return parsed.astimezone(UTC)
    if region:
        try:
            return parsed.astimezone(ZoneInfo(region))
        except (ZoneInfoNotFoundError, ValueError):
            return parsed
    return parsed


_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


def _trim_fraction(text: str) -> str:
    """Java prints up to nanoseconds; Python keeps microseconds."""
    return _LONG_FRACTION.sub(r"\1", text, count=1)


def iter_values(
    stream: IO[bytes], encoding: str = "utf-8", *, annotations: AnnotationMode = "java"
) -> Iterator[Any]:
    """Each top-level value of an Ion text file, read as it streams in."""
    buffered: Any = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream)
    if buffered.peek(4)[:4] == BINARY_ION_MARKER:
        raise IonError("this is binary Ion; Kestra's files (and Headwater) use Ion text")
    yield from _Parser(_LineDecoder(buffered, encoding), annotations).top_level()


class _LineDecoder:
    """``readline`` over a binary stream, decoding line by line (so that an invalid byte is
    reported on its own line, not on the first line of an 8 KiB block)."""

    def __init__(self, stream: IO[bytes], encoding: str) -> None:
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder(encoding)()

    def readline(self) -> str:
        raw = self.stream.readline()
        return self.decoder.decode(raw, final=not raw)


def loads(text: str, *, annotations: AnnotationMode = "java") -> list[Any]:
    """Every top-level value of an Ion text."""
    parser = _Parser(io.StringIO(text), annotations)
    return list(parser.top_level())


def loads_one(text: str) -> Any:
    """The single value of an Ion text; IonError if there is not exactly one."""
    values = loads(text)
    if len(values) != 1:
        raise IonError(f"expected one Ion value, found {len(values)}")
    return values[0]
