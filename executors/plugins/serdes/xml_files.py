"""xml.IonToXml and xml.XmlToIon (Kestra uses Jackson's XmlMapper and org.json's XML).

IonToXml: ``rootName`` (``items``), ``charset`` (UTF-8), ``timeZoneId`` (here UTC). Jackson's
indented XML of the rows as one list: ``<?xml version='1.0' encoding='UTF-8'?>``, then the
root element holding one ``<item>`` per row, two spaces per level, no trailing newline. A
struct's entries are child elements, a list repeats its key's element for each value, null
and empty values are empty elements (``<a/>``); values are Jackson's text (doubles as Java
prints them, dates and times as JavaTimeModule's text, zoned date-times in ``timeZoneId``,
bytes in base64). Rows are written as they are read (Kestra collects them first).

XmlToIon: ``charset``, ``query`` and ``parserConfiguration.forceList``, with org.json's
conversion: an element is a struct of its attributes and child elements, a repeated name a
list, its text under ``content`` (or the element's value when it has nothing else), an empty
element ``""``; text is trimmed, ``true``/``false``/``null`` become booleans and null, numbers
(not ``007``) integers or decimals; CDATA stays text; names in ``forceList`` are always lists.
Without ``query`` the whole file is one record ``{root: ...}``, except that a root holding a
list (``<items><item/><item/></items>``, directly or under one child) gives one record per
element. With ``query`` (``/catalog/book``) the file streams: each ``book`` child of the root
``catalog`` is a record (names without their namespace prefix, as Kestra's StAX reader gives
them).

Errors name the line and column of malformed XML. Differences: with ``query`` Kestra returns
no record for a malformed file (it logs at DEBUG); here it fails, naming where. A key that is
not an XML name fails IonToXml (Jackson writes it as is, making a file no parser reads). Key
order is the file's (org.json's maps are unordered).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date, time, tzinfo
from decimal import Decimal, InvalidOperation
from typing import IO, Any, Literal
from xml.parsers import expat

from executors import ion
from executors.base import TaskContext, TaskError
from executors.plugin import render_str
from executors.plugins.serdes.base import (
    Conversion,
    Run,
    charset,
    encode_error,
    ion_rows,
    write_rows,
    writing,
    zone,
)
from executors.plugins.serdes.javatext import jackson_text
from schemas.flow.common import FlowModel, Str

_NAME = re.compile(r"[A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?\Z")
_INVALID_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _escape(text: str) -> str:
    """Woodstox's text escaping: ``&`` and ``<``, and ``>`` closing a ``]]``."""
    if _INVALID_TEXT.search(text):
        raise ValueError(f"{text!r} holds a control character XML 1.0 cannot hold")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("]]>", "]]&gt;")


class _XmlWriter:
    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone

    def text(self, value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return ion.java_double(value)
        if isinstance(value, int | Decimal):
            return str(value)
        if isinstance(value, date | time):
            return jackson_text(value, self.zone)
        if isinstance(value, bytes | bytearray):
            import base64

            return base64.b64encode(bytes(value)).decode("ascii")
        return str(value)

    def element(self, name: str, value: Any, level: int, out: list[str]) -> None:
        if not _NAME.match(name):
            raise ValueError(f"{name!r} is not an XML element name")
        pad = "\n" + "  " * level
        if isinstance(value, list | tuple):
            for item in value:
                self.element(name, item, level, out)
        elif isinstance(value, Mapping):
            if not value:
                out.append(f"{pad}<{name}/>")
                return
            out.append(f"{pad}<{name}>")
            for key, item in value.items():
                self.element(str(key), item, level + 1, out)
            out.append(f"{pad}</{name}>")
        elif value is None or value == "":
            out.append(f"{pad}<{name}/>")
        else:
            out.append(f"{pad}<{name}>{_escape(self.text(value))}</{name}>")


class IonToXml(Conversion):
    """Convert an ION file to XML."""

    type: Literal["io.kestra.plugin.serdes.xml.IonToXml"]
    charset: Str = "UTF-8"
    rootName: Str = "items"
    timeZoneId: Str | None = None

    def result_name(self) -> str:
        return "result.xml"

    def prepare(self, ctx: TaskContext) -> None:
        self._charset = charset(ctx, self.charset)
        self._root = render_str(ctx, self.rootName, "rootName", required=True) or "items"
        if not _NAME.match(self._root):
            raise TaskError(f"property 'rootName': {self._root!r} is not an XML element name")
        self._zone = zone(ctx, self.timeZoneId)

    def convert(self, source: IO[bytes], target: IO[bytes], run: Run) -> int:
        writer = _XmlWriter(self._zone)
        count = 0
        with writing(target, self._charset) as out:
            try:
                out.write(f"<?xml version='1.0' encoding='UTF-8'?>\n<{self._root}")
                for count, row in enumerate(ion_rows(source, run), start=1):
                    if count == 1:
                        out.write(">")
                    parts: list[str] = []
                    try:
                        writer.element("item", row, 1, parts)
                    except ValueError as exc:
                        raise TaskError(f"record {count}: {exc}") from None
                    out.write("".join(parts))
                out.write(f"\n</{self._root}>" if count else "/>")
                return count
            except UnicodeEncodeError as exc:
                raise encode_error(exc, count, self._charset) from None


# ------------------------------------------------------------------------------- XmlToIon

_DECIMAL = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_INTEGER = re.compile(r"-?\d+\Z")
CONTENT = "content"  # org.json's cDataTagName


def string_to_value(text: str) -> Any:
    """org.json's XML.stringToValue."""
    if not text:
        return text
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    if lowered == "null":
        return None
    if not (text[0].isdigit() or text[0] == "-"):
        return text
    if "." in text or "e" in lowered or text == "-0":
        if not _DECIMAL.match(text):
            return text
        try:
            value = Decimal(text)
        except InvalidOperation:
            return text
        return -0.0 if text[0] == "-" and value == 0 else value
    if not _INTEGER.match(text):
        return text
    digits = text.lstrip("-")
    if len(digits) > 1 and digits[0] == "0":
        return text  # 007: Java would read octal, org.json keeps the text
    return int(text)


class _Node:
    """An element being read: org.json's JSONObject, in the file's order."""

    __slots__ = ("name", "text", "values")

    def __init__(self, name: str) -> None:
        self.name = name
        self.values: dict[str, Any] = {}
        self.text: list[str] = []


class _Lists(list[Any]):
    """A list org.json made (accumulate/append), as opposed to a value that is a list."""


def _accumulate(values: dict[str, Any], key: str, value: Any, force: bool) -> None:
    existing = values.get(key, _MISSING)
    if force:
        if existing is _MISSING:
            values[key] = _Lists([value])
        elif isinstance(existing, _Lists):
            existing.append(value)
        else:
            raise ValueError(f"JSONObject[{key!r}] is not a JSONArray")
        return
    if existing is _MISSING:
        values[key] = value
    elif isinstance(existing, _Lists):
        existing.append(value)
    else:
        values[key] = _Lists([existing, value])


_MISSING: Any = object()


class _Builder:
    """org.json's XML.toJSONObject as expat events (see the module docstring)."""

    def __init__(self, force: set[str], local_names: bool) -> None:
        self.force = force
        self.local = local_names
        self.stack: list[_Node] = [_Node("")]

    def name(self, raw: str) -> str:
        return raw.rpartition(":")[2] if self.local else raw

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        self.flush_text()
        node = _Node(self.name(tag))
        for key, value in attributes.items():
            if self.local and (key == "xmlns" or key.startswith("xmlns:")):
                continue  # StAX gives namespace declarations apart
            _accumulate(node.values, self.name(key), string_to_value(value), False)
        self.stack.append(node)

    def text(self, data: str) -> None:
        self.stack[-1].text.append(data)

    def cdata(self, data: str) -> None:
        self.flush_text()
        if data:
            _accumulate(self.stack[-1].values, CONTENT, data, False)

    def flush_text(self) -> None:
        node = self.stack[-1]
        if node.text:
            text = "".join(node.text).strip()
            node.text.clear()
            if text:
                _accumulate(node.values, CONTENT, string_to_value(text), False)

    def end(self, tag: str) -> None:
        self.flush_text()
        node = self.stack.pop()
        parent = self.stack[-1].values
        forced = node.name in self.force
        if not node.values:
            if forced:
                parent[node.name] = _Lists()
            else:
                _accumulate(parent, node.name, "", False)
        elif len(node.values) == 1 and CONTENT in node.values:
            _accumulate(parent, node.name, node.values[CONTENT], forced)
        else:
            _accumulate(parent, node.name, node.values, forced)

    def result(self) -> dict[str, Any]:
        return self.stack[0].values


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _unwrap(document: dict[str, Any]) -> Any:
    """Kestra's unwrapRootArray."""
    if len(document) != 1:
        return document
    root = next(iter(document.values()))
    if isinstance(root, _Lists):
        return root
    if isinstance(root, dict) and len(root) == 1:
        inner = next(iter(root.values()))
        if isinstance(inner, _Lists):
            return inner
    return document


_CHUNK = 64 * 1024


class _Parser:
    def __init__(self, encoding: str) -> None:
        self.parser = expat.ParserCreate(encoding="utf-8")
        self.parser.buffer_text = True
        self.encoding = encoding

    def feed(self, source: IO[bytes], run: Run) -> Iterator[None]:
        """Parse ``source`` chunk by chunk, yielding after each chunk."""
        import codecs

        decoder = codecs.getincrementaldecoder(self.encoding)()
        index = 0
        while True:
            chunk = source.read(_CHUNK)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                raise TaskError(
                    f"the file is not valid {self.encoding} text ({exc.reason})"
                ) from None
            try:
                self.parser.Parse(text.encode("utf-8"), not chunk)
            except expat.ExpatError as exc:
                message = expat.ErrorString(exc.code)
                raise TaskError(
                    f"line {exc.lineno}, column {exc.offset + 1}: invalid XML: {message}"
                ) from None
            run.check(index)
            index += 1
            yield
            if not chunk:
                return


class ParserConfiguration(FlowModel):
    """XML parser configuration."""

    forceList: list[Str] | Str | None = None


class XmlToIon(Conversion):
    """Convert an XML file to ION."""

    type: Literal["io.kestra.plugin.serdes.xml.XmlToIon"]
    charset: Str = "UTF-8"
    query: Str | None = None
    parserConfiguration: ParserConfiguration | None = None

    def prepare(self, ctx: TaskContext) -> None:
        self._charset = charset(ctx, self.charset)
        self._query = render_str(ctx, self.query, "query")
        force: Any = None
        if self.parserConfiguration is not None:
            force = ctx.render(self.parserConfiguration.forceList)
        self._force = {force} if isinstance(force, str) else {str(f) for f in force or []}

    def convert(self, source: IO[bytes], target: IO[bytes], run: Run) -> int:
        if self._query:
            return write_rows(target, self.stream(source, run), run)
        return write_rows(target, self.batch(source, run), run)

    def batch(self, source: IO[bytes], run: Run) -> Iterator[Any]:
        parser = _Parser(self._charset)
        builder = _Builder(self._force, local_names=False)
        handlers(parser.parser, builder)
        if not source.read(1):
            yield {}  # org.json reads nothing as an empty object
            return
        source.seek(0)
        for _ in parser.feed(source, run):
            pass
        result = _unwrap(builder.result())
        if isinstance(result, _Lists):
            yield from (_plain(v) for v in result)
        else:
            yield _plain(result)

    def stream(self, source: IO[bytes], run: Run) -> Iterator[Any]:
        segments = (self._query or "").lstrip("/").split("/")
        parents, name = segments[:-1], segments[-1]
        builder = _Builder(self._force, local_names=True)
        records: list[Any] = []
        state = {"depth": 0, "matched": 0, "done": False, "inside": 0}

        def start(tag: str, attributes: dict[str, str]) -> None:
            local = tag.rpartition(":")[2]
            depth = state["depth"]
            state["depth"] += 1
            if state["inside"]:
                state["inside"] += 1
                builder.start(tag, attributes)
                return
            if state["done"] or depth != state["matched"]:
                return
            if depth < len(parents):
                if local == parents[depth]:
                    state["matched"] += 1
                else:
                    state["matched"] = -1 if depth == 0 else state["matched"]
                return
            if local == name:
                state["inside"] = 1
                builder.stack = [_Node("")]
                builder.start(tag, attributes)

        def end(tag: str) -> None:
            state["depth"] -= 1
            if state["inside"]:
                builder.end(tag)
                state["inside"] -= 1
                if not state["inside"]:
                    value = builder.result().get(name)
                    if isinstance(value, _Lists):
                        records.extend(_plain(v) for v in value)
                    else:
                        records.append(_plain(value))
                return
            if parents and state["depth"] == len(parents) - 1 and state["matched"] == len(parents):
                state["done"] = True  # the end of the (first) parent element

        parser = _Parser(self._charset)
        parser.parser.StartElementHandler = start
        parser.parser.EndElementHandler = end

        def text(data: str) -> None:
            if state["inside"]:
                builder.text(data)

        parser.parser.CharacterDataHandler = text
        parser.parser.StartCdataSectionHandler = lambda: _cdata(parser.parser, builder, state)
        if not source.read(1):
            return
        source.seek(0)
        for _ in parser.feed(source, run):
            yield from records
            records.clear()


def _cdata(parser: Any, builder: _Builder, state: dict[str, Any]) -> None:
    """Collect a CDATA section's text apart (org.json does not convert it)."""
    if not state["inside"]:
        return
    builder.flush_text()
    chunks: list[str] = []
    previous = parser.CharacterDataHandler

    def collect(data: str) -> None:
        chunks.append(data)

    def close() -> None:
        parser.CharacterDataHandler = previous
        parser.EndCdataSectionHandler = None
        builder.cdata("".join(chunks))

    parser.CharacterDataHandler = collect
    parser.EndCdataSectionHandler = close


def handlers(parser: Any, builder: _Builder) -> None:
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.text
    state = {"inside": 1}
    parser.StartCdataSectionHandler = lambda: _cdata(parser, builder, state)
