"""json.JsonToToon and json.ToonToJson: TOON (Token-Oriented Object Notation) as Kestra's own
encoder and parser write and read it (ported from kestra-io/plugin-serdes).

JsonToToon: ``charset`` (UTF-8). The file's first JSON value (empty: "Invalid JSON: empty
input") as TOON: objects as ``key: value`` lines (``key:`` then the nested lines two spaces in),
arrays with a ``key[N]:`` header: primitives inline (``tags[2]: web,api``), objects with the
same primitive fields as a table (``users[2]{id,name}:`` then one row each), anything else as
``- `` list items; numbers in plain decimal form (no exponent, no trailing zeros, -0 is 0);
strings quoted (``\\"`` ``\\\\`` ``\\n`` ``\\r`` ``\\t`` escaped) when empty, padded, a keyword,
number-like, holding ``: " \\ [ ] { } ,`` or a control character, or starting with ``-``; keys
unquoted when ``[A-Za-z_][A-Za-z0-9_.]*``. No trailing newline. ``size``: the root array's
length, else 1. The result is ``.toon``.

ToonToJson: ``charset``. Kestra's parser for the TOON JsonToToon writes (indentation in steps
of two spaces, else "Invalid indentation"); the value is written as Jackson's pretty JSON
(``"key" : value``, arrays inline ``[ 1, 2 ]``). Numbers ``-?digits[.digits]`` are integers or
decimals, ``true``/``false``/``null`` literals, quoted text unescaped, anything else text.
``size`` counts inline array values, table rows and list items. An empty file is ``{ }``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import IO, Any, Literal

import orjson

from executors.base import TaskContext, TaskError
from executors.plugins.serdes.base import Conversion, Run, charset, reading, writing
from executors.plugins.serdes.jsontext import JsonReader
from schemas.flow.common import Str

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
_NUMBER_LIKE = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\Z|0\d+\Z")
_QUOTED_CHARS = frozenset(':"\\[]{}\n\r\t,')


def _escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )


def _string(value: str) -> str:
    if (
        not value
        or value != value.strip()
        or value in ("true", "false", "null")
        or _NUMBER_LIKE.match(value)
        or any(c in _QUOTED_CHARS for c in value)
        or value.startswith("-")
    ):
        return f'"{_escape(value)}"'
    return value


def _key(key: str) -> str:
    return key if _KEY.match(key) else f'"{_escape(key)}"'


def _number(value: int | float | Decimal) -> str:
    if isinstance(value, int):
        return str(value)
    number = Decimal(repr(value)) if isinstance(value, float) else value
    if number == 0:
        return "0"
    text = format(number.normalize(), "f")
    return "0" if text == "-0" else text


def _primitive(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return _number(value)
    return _string(str(value))


def _is_primitive(value: Any) -> bool:
    return not isinstance(value, Mapping | list)


class _Encoder:
    """Kestra's ToonEncoder."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, indent: int, text: str) -> None:
        self.lines.append("  " * indent + text)

    def obj(self, node: Mapping[str, Any], indent: int) -> None:
        for key, value in node.items():
            name = _key(key)
            if isinstance(value, Mapping):
                self.line(indent, name + ":")
                self.obj(value, indent + 1)
            elif isinstance(value, list):
                self.array(value, indent, name)
            else:
                self.line(indent, f"{name}: {_primitive(value)}")

    def array(self, array: list[Any], indent: int, key: str) -> None:
        if not array or all(_is_primitive(v) for v in array):
            self.line(indent, self.inline(key, array))
        elif _tabular(array):
            self.table(array, indent, key, indent + 1, "")
        else:
            self.line(indent, f"{key}[{len(array)}]:")
            self.items(array, indent)

    @staticmethod
    def inline(key: str, array: list[Any]) -> str:
        values = ",".join(_primitive(v) for v in array)
        return f"{key}[{len(array)}]:" + (f" {values}" if array else "")

    def table(self, array: list[Any], indent: int, key: str, rows: int, prefix: str) -> None:
        fields = list(array[0])
        self.line(indent, f"{prefix}{key}[{len(array)}]{{{','.join(_key(f) for f in fields)}}}:")
        for row in array:
            self.line(rows, ",".join(_primitive(row.get(f)) for f in fields))

    def items(self, array: list[Any], indent: int) -> None:
        for item in array:
            if isinstance(item, Mapping):
                self.object_item(item, indent)
            elif isinstance(item, list):
                self.array_item(item, indent)
            else:
                self.line(indent + 1, "- " + _primitive(item))

    def object_item(self, item: Mapping[str, Any], indent: int) -> None:
        entries = list(item.items())
        if not entries:
            self.line(indent + 1, "-")
            return
        (first_key, first), rest = entries[0], entries[1:]
        name = _key(first_key)
        if isinstance(first, Mapping):
            self.line(indent + 1, f"- {name}:")
            self.obj(first, indent + 2)
        elif isinstance(first, list) and first and _tabular(first):
            self.table(first, indent + 1, name, indent + 3, "- ")
        elif isinstance(first, list):
            if all(_is_primitive(v) for v in first):
                self.line(indent + 1, "- " + self.inline(name, first))
            else:
                self.line(indent + 1, f"- {name}[{len(first)}]:")
                self.items(first, indent + 1)
        else:
            self.line(indent + 1, f"- {name}: {_primitive(first)}")
        for key, value in rest:
            name = _key(key)
            if isinstance(value, Mapping):
                self.line(indent + 2, name + ":")
                self.obj(value, indent + 3)
            elif isinstance(value, list):
                self.array(value, indent + 2, name)
            else:
                self.line(indent + 2, f"{name}: {_primitive(value)}")

    def array_item(self, array: list[Any], indent: int) -> None:
        if all(_is_primitive(v) for v in array):
            self.line(indent + 1, "- " + self.inline("", array))
        else:
            self.line(indent + 1, f"- [{len(array)}]:")
            self.items(array, indent + 1)


def _tabular(array: list[Any]) -> bool:
    """Kestra's isUniformPrimitiveObjectArray."""
    if not array or not all(isinstance(v, Mapping) for v in array) or not array[0]:
        return False
    fields = set(array[0])
    return all(set(v) == fields and all(_is_primitive(x) for x in v.values()) for v in array)


def encode(value: Any) -> str:
    encoder = _Encoder()
    if isinstance(value, list):
        encoder.array(value, 0, "")
    elif isinstance(value, Mapping):
        encoder.obj(value, 0)
    else:
        encoder.line(0, _primitive(value))
    return "\n".join(encoder.lines)


class JsonToToon(Conversion):
    """Convert a JSON file to TOON."""

    type: Literal["io.kestra.plugin.serdes.json.JsonToToon"]
    charset: Str = "UTF-8"

    def prepare(self, ctx: TaskContext) -> None:
        self._charset = charset(ctx, self.charset)

    def result_name(self) -> str:
        return "result.toon"

    def convert(self, source: IO[bytes], target: IO[bytes], run: Run) -> int:
        with reading(source, self._charset) as text, writing(target, self._charset) as out:
            reader = JsonReader(text)
            if reader.first() is None:
                raise TaskError("Invalid JSON: empty input")
            root = reader.value()
            out.write(encode(root))
            return len(root) if isinstance(root, list) else 1


# -------------------------------------------------------------------------------- parsing

_HEADER = re.compile(r"(.*?)\[(\d+)](?:\{([^}]*)})?\Z")
_TOON_NUMBER = re.compile(r"-?\d+(?:\.\d+)?\Z")
_UNESCAPES = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t"}


class _Parser:
    """Kestra's ToonParser (the subset JsonToToon writes)."""

    def __init__(self, text: IO[str]) -> None:
        self.lines: list[tuple[str, int]] = []
        self.index = 0
        self.count = 0
        for number, raw in enumerate(text, start=1):
            raw = raw.rstrip("\r\n")
            if not raw.strip():
                continue
            spaces = len(raw) - len(raw.lstrip(" "))
            if spaces % 2:
                raise TaskError(
                    f"line {number}: Invalid indentation: must be a multiple of 2 spaces"
                )
            self.lines.append((raw[spaces:], spaces // 2))

    def parse(self) -> Any:
        if not self.lines:
            return {}
        text, indent = self.lines[0]
        if indent == 0 and ":" in text:
            header = _HEADER.match(text[: text.index(":")].strip())
            if header and not header.group(1).strip():
                self.index = 1
                rest = text[text.index(":") + 1 :].strip()
                return self.array(int(header.group(2)), header.group(3), rest, 0)
        if ":" not in text and not text.startswith("[") and len(self.lines) == 1:
            self.index = 1
            return _scalar(text.strip())
        return self.obj(0)

    def obj(self, level: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while self.index < len(self.lines):
            text, indent = self.lines[self.index]
            if indent != level or text.startswith("- "):
                break
            self.index += 1
            if ":" not in text:
                continue
            key, rest = text[: text.index(":")].strip(), text[text.index(":") + 1 :].strip()
            header = _HEADER.match(key)
            if header:
                name = header.group(1).strip()
                result[name] = self.array(int(header.group(2)), header.group(3), rest, level)
            elif not rest:
                result[key] = self.obj(level + 1)
            else:
                result[key] = _scalar(rest)
        return result

    def array(self, size: int, fields: str | None, rest: str, level: int) -> list[Any]:
        if rest:
            values = [_scalar(token) for token in _split(rest)]
            self.count += len(values)
            return values
        if size == 0:
            return []
        if fields is not None:
            names = [f.strip() for f in fields.split(",")]
            table: list[Any] = []
            while len(table) < size and self.index < len(self.lines):
                text, indent = self.lines[self.index]
                if indent != level + 1:
                    break
                self.index += 1
                cells = _split(text.strip())
                table.append({n: _scalar(c) for n, c in zip(names, cells, strict=False)})
                self.count += 1
            return table
        items: list[Any] = []
        while len(items) < size and self.index < len(self.lines):
            if self.lines[self.index][1] <= level:
                break
            items.append(self.item(level + 1))
            self.count += 1
        return items

    def item(self, level: int) -> Any:
        text, indent = self.lines[self.index]
        if indent != level or not text.startswith("-"):
            return None
        text = text[1:].strip()
        self.index += 1
        if not text:
            return {}
        if ":" not in text:
            return _scalar(text)
        before, rest = text[: text.index(":")].strip(), text[text.index(":") + 1 :].strip()
        header = _HEADER.match(before)
        if header:
            name = header.group(1).strip()
            size, fields = int(header.group(2)), header.group(3)
            if not name:
                return self.array(size, fields, rest, level)
            item: dict[str, Any] = {
                name: self.array(size, fields, rest, level + 1 if fields is not None else level)
            }
            item.update(self.obj(level + 1))
            return item
        if not rest:
            return {before: self.obj(level + 1)}
        item = {before: _scalar(rest)}
        item.update(self.obj(level + 1))
        return item


def _split(line: str) -> list[str]:
    tokens: list[str] = []
    current: list[str] = []
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
            current.append(char)
        elif char == "," and not quoted:
            tokens.append("".join(current))
            current = []
        else:
            current.append(char)
    tokens.append("".join(current))
    return [t.strip() for t in tokens]


def _scalar(text: str) -> Any:
    text = text.strip()
    if text in ("", "true", "false", "null"):
        return {"": "", "true": True, "false": False, "null": None}[text]
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return re.sub(r"\\(.)", lambda m: _UNESCAPES.get(m.group(1), m.group(0)), text[1:-1])
    if _TOON_NUMBER.match(text):
        return Decimal(text) if "." in text else int(text)
    return text


def jackson_pretty(value: Any, level: int = 0) -> str:
    """Jackson's DefaultPrettyPrinter: objects one entry a line, arrays inline."""
    if isinstance(value, Mapping):
        if not value:
            return "{ }"
        pad = "  " * (level + 1)
        entries = [
            f"{pad}{orjson.dumps(str(k)).decode()} : {jackson_pretty(v, level + 1)}"
            for k, v in value.items()
        ]
        return "{\n" + ",\n".join(entries) + "\n" + "  " * level + "}"
    if isinstance(value, list):
        if not value:
            return "[ ]"
        return "[ " + ", ".join(jackson_pretty(v, level) for v in value) + " ]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    return orjson.dumps(value).decode()


class ToonToJson(Conversion):
    """Convert a TOON file to JSON."""

    type: Literal["io.kestra.plugin.serdes.json.ToonToJson"]
    charset: Str = "UTF-8"

    def prepare(self, ctx: TaskContext) -> None:
        self._charset = charset(ctx, self.charset)

    def result_name(self) -> str:
        return "result.json"

    def convert(self, source: IO[bytes], target: IO[bytes], run: Run) -> int:
        with reading(source, self._charset) as text, writing(target, self._charset) as out:
            parser = _Parser(text)
            out.write(jackson_pretty(parser.parse()))
            return parser.count
