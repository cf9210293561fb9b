"""JSON reading and writing as Kestra's Jackson mappers do it.

:class:`JsonReader` streams the top-level values of a JSON text (whitespace-separated values)
or the elements of its top-level array, holding one value at a time; :func:`iter_json_lines`
reads JSON lines. A malformed text fails naming the line and column.

:class:`JsonWriter` writes Jackson's compact JSON of the values Kestra reads from ION:
doubles as Java prints them (``1.0E7``, ``"NaN"``), decimals as BigDecimal's text, bytes as
base64, temporal values as JavaTimeModule's text
(:func:`~executors.plugins.serdes.javatext.jackson_text`), and (``drop_nulls``, Kestra's JSON
mapper is NON_NULL) map entries whose value is null left out.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterator, Mapping
from datetime import date, time, tzinfo
from decimal import Decimal
from typing import IO, Any

import orjson

from executors import ion
from executors.base import TaskError
from executors.plugins.serdes.javatext import jackson_text

_CHUNK = 64 * 1024
_LONG_DIGITS = re.compile(r"\d{19}")
_WHITESPACE = " \t\n\r"


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)


class _Reader:
    """A text buffer over a stream that knows the line of its first character."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.buf = ""
        self.pos = 0
        self.line = 1  # line of buf[0]
        self.eof = False
        self.chunk = _CHUNK

    def more(self) -> bool:
        if self.eof:
            return False
        data = self.stream.read(self.chunk)
        if not data:
            self.eof = True
            return False
        self.line += self.buf.count("\n", 0, self.pos)
        self.buf = self.buf[self.pos :] + data
        self.pos = 0
        return True

    def skip(self, also: str = "") -> str | None:
        """The next significant character (not consumed), None at the end."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WHITESPACE + also:
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return None

    def where(self, pos: int) -> str:
        line = self.line + self.buf.count("\n", 0, pos)
        column = pos - (self.buf.rfind("\n", 0, pos) + 1) + 1
        return f"line {line}, column {column}"

    def value(self) -> Any:
        """Decode the value at ``pos`` (reading more until it is complete)."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self.more():
                    self.chunk *= 2  # a big value: fewer, larger retries
                    continue
                raise TaskError(f"{self.where(exc.pos)}: invalid JSON: {exc.msg}") from None
            except ValueError as exc:
                raise TaskError(f"{self.where(self.pos)}: invalid JSON: {exc}") from None
            if end == len(self.buf) and not self.eof and self.more():
                continue  # a number may go on in the next chunk
            self.chunk = _CHUNK
            self.pos = end
            return value


class JsonReader(_Reader):
    """Streams JSON values from a text (see :func:`first_document` and :meth:`values`)."""

    def first(self) -> str | None:
        """The first significant character (not consumed); None for an empty text."""
        return self.skip()

    def values(self) -> Iterator[Any]:
        """Every whitespace-separated top-level value (JSON lines, concatenated JSON)."""
        while self.skip() is not None:
            yield self.value()

    def items(self) -> Iterator[Any]:
        """The elements of the array at the current position."""
        self.pos += 1
        yield from _items(self)


def first_document(stream: IO[str]) -> Iterator[Any]:
    """The first JSON value of ``stream``, or its elements when it is an array (what Jackson's
    ``readValue`` then Kestra's ``Collection`` check give); trailing content is ignored."""
    reader = JsonReader(stream)
    char = reader.first()
    if char is None:
        return
    if char == "[":
        yield from reader.items()
    else:
        yield reader.value()


def _items(reader: _Reader) -> Iterator[Any]:
    if reader.skip() == "]":
        reader.pos += 1
        return
    while True:
        if reader.skip() is None:
            raise TaskError(f"{reader.where(reader.pos)}: invalid JSON: unterminated array")
        yield reader.value()
        char = reader.skip()
        if char == ",":
            reader.pos += 1
        elif char == "]":
            reader.pos += 1
            return
        else:
            where = reader.where(reader.pos)
            raise TaskError(f"{where}: invalid JSON: expected ',' or ']' in an array")


def iter_json_lines(stream: IO[str]) -> Iterator[Any]:
    """One JSON value per line (blank lines skipped); errors name the line and column."""
    for number, line in enumerate(iter(stream.readline, ""), start=1):
        if not line.strip():
            continue
        if _LONG_DIGITS.search(line) is None:  # orjson makes integers past 64 bits floats
            try:
                yield orjson.loads(line)
                continue
            except orjson.JSONDecodeError:
                pass  # the standard parser says where
        try:
            value, end = _DECODER.raw_decode(line, len(line) - len(line.lstrip()))
        except json.JSONDecodeError as exc:
            raise TaskError(f"line {number}, column {exc.colno}: invalid JSON: {exc.msg}") from None
        except ValueError as exc:
            raise TaskError(f"line {number}: invalid JSON: {exc}") from None
        if line[end:].strip():
            raise TaskError(f"line {number}, column {end + 1}: invalid JSON: extra data")
        yield value


def java_json_number(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return '"' + ion.java_double(value) + '"'  # Jackson quotes non-numeric numbers
    return ion.java_double(value)


def _text(value: str) -> str:
    return orjson.dumps(value).decode()


class JsonWriter:
    """Jackson's compact JSON of the values Kestra reads from ION (see the module docstring)."""

    def __init__(self, zone: tzinfo, *, drop_nulls: bool) -> None:
        self.zone = zone
        self.drop_nulls = drop_nulls

    def write(self, value: Any, out: list[str]) -> None:
        if value is None:
            out.append("null")
        elif isinstance(value, bool):
            out.append("true" if value else "false")
        elif isinstance(value, int):
            out.append(str(value))
        elif isinstance(value, str):
            out.append(_text(value))
        elif isinstance(value, float):
            out.append(java_json_number(value))
        elif isinstance(value, Decimal):
            out.append(str(value))
        elif isinstance(value, Mapping):
            out.append("{")
            first = True
            for key, item in value.items():
                if item is None and self.drop_nulls:
                    continue
                if not first:
                    out.append(",")
                first = False
                out.append(_text(str(key)))
                out.append(":")
                self.write(item, out)
            out.append("}")
        elif isinstance(value, list | tuple):
            out.append("[")
            for index, item in enumerate(value):
                if index:
                    out.append(",")
                self.write(item, out)
            out.append("]")
        elif isinstance(value, date | time):
            out.append(_text(jackson_text(value, self.zone)))
        elif isinstance(value, bytes | bytearray):
            out.append(_text(base64.b64encode(bytes(value)).decode("ascii")))
        else:
            self.other(value, out)

    def other(self, value: Any, out: list[str]) -> None:
        out.append(_text(str(value)))

    def dumps(self, value: Any) -> str:
        out: list[str] = []
        self.write(value, out)
        return "".join(out)
