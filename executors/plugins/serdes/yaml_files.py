"""yaml.IonToYaml, yaml.YamlToIon, yaml.JsonToYaml and yaml.YamlToJson.

Every type has ``charset`` (UTF-8). Kestra's YAML mapper (Jackson, MINIMIZE_QUOTES, no
document start marker, no line splitting, NON_NULL) writes block style: a string plain when
it can be, double-quoted when it would read back as something else (``"true"``, ``"123"``),
a multi-line one as a literal block (``|-``); doubles as Java prints them (``1.0E7``), dates
and times as JavaTimeModule's text, and leaves out map entries whose value is null. It reads
YAML 1.1 scalars, timestamps staying strings.

- IonToYaml: one record: its YAML then a blank line; several: each after ``---``.
- YamlToIon: each YAML document is a row (empty documents are skipped).
- JsonToYaml: ``jsonl`` (false): the file is one JSON value, an array giving one document per
  element; with ``jsonl`` each non-blank line is a document. One document is written as is,
  several each after ``---``.
- YamlToJson: ``jsonl`` (false): one JSON line per document; without it one document is
  written as one JSON value, several (or a first document that is a list) as an array, none
  as ``{}``. Map entries whose value is null are left out (Kestra's JSON mapper).

Differences: PyYAML emits the YAML (Jackson uses SnakeYAML): when a string cannot be plain
and needs no type-preserving quotes, both fall back to single quotes; exotic scalars may be
quoted differently. YAML 1.1's ``y``/``n`` booleans read as strings here (Jackson: booleans).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import IO, Any, Literal

import yaml

from executors import ion
from executors.base import TaskContext, TaskError
from executors.plugin import render_bool
from executors.plugins.serdes.base import (
    Conversion,
    Run,
    charset,
    ion_rows,
    reading,
    write_rows,
    writing,
)
from executors.plugins.serdes.javatext import jackson_text
from executors.plugins.serdes.jsontext import JsonWriter, first_document, iter_json_lines
from schemas.flow.common import BoolOrExpr, Str

_STR = "tag:yaml.org,2002:str"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
# Jackson's SPLIT_LINES is off: never fold a long string.
_NO_WRAP = 2**31


class _Dumper(yaml.SafeDumper):
    """Jackson's YAML output (see the module docstring)."""


_Dumper.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
    for key, resolvers in yaml.SafeDumper.yaml_implicit_resolvers.items()
}


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style: str | None = None
    if "\n" in value:
        style = "|"
    elif _resolve(dumper)(yaml.ScalarNode, value, (True, False)) != _STR:
        style = '"'  # would read back as a number, a boolean or null
    return dumper.represent_scalar(_STR, value, style=style)


def _resolve(dumper: yaml.SafeDumper) -> Any:
    return dumper.resolve  # untyped in types-PyYAML


def _number(text: Callable[[Any], str]) -> Any:
    """A number written plain, as Jackson does (``1.0E7`` is not a YAML 1.1 float: untagged)."""

    def represent(dumper: yaml.SafeDumper, value: Any) -> yaml.Node:
        written = text(value)
        tag = _resolve(dumper)(yaml.ScalarNode, written, (True, False))
        return dumper.represent_scalar(tag, written)

    return represent


def _mapping(dumper: yaml.SafeDumper, value: Mapping[Any, Any]) -> yaml.Node:
    kept = {k: v for k, v in value.items() if v is not None}  # NON_NULL
    return dumper.represent_mapping("tag:yaml.org,2002:map", kept.items())


def _temporal(dumper: yaml.SafeDumper, value: date | time) -> yaml.Node:
    return _str(dumper, jackson_text(value, UTC))


_Dumper.add_representer(str, _str)
_Dumper.add_representer(float, _number(ion.java_double))
_Dumper.add_representer(Decimal, _number(str))
_Dumper.add_representer(dict, _mapping)
_Dumper.add_representer(datetime, _temporal)
_Dumper.add_representer(date, _temporal)
_Dumper.add_representer(time, _temporal)


def yaml_text(value: Any) -> str:
    """One document as Kestra's YAML mapper writes it."""
    try:
        text = yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=_NO_WRAP)
    except yaml.YAMLError as exc:
        raise TaskError(f"cannot write YAML: {exc}") from None
    return text.removesuffix("...\n")


class _Loader(yaml.SafeLoader):
    """Jackson reads YAML timestamps as strings."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def yaml_documents(text: IO[str], run: Run) -> Iterator[Any]:
    """The documents of a YAML text (null ones skipped); errors name the line and column."""
    try:
        for index, document in enumerate(yaml.load_all(text, Loader=_Loader)):
            run.check(index)
            if document is not None:
                yield document
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise TaskError(f"{where}invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise TaskError(f"invalid YAML: {exc}") from None


class _YamlConversion(Conversion):
    charset: Str = "UTF-8"

    def prepare(self, ctx: TaskContext) -> None:
        self._charset = charset(ctx, self.charset)


class IonToYaml(_YamlConversion):
    """Convert an ION file to YAML (one document per record)."""

    type: Literal["io.kestra.plugin.serdes.yaml.IonToYaml"]

    def result_name(self) -> str:
        return "result.yaml"

    def convert(self, source: IO[bytes], target: IO[bytes], run: Run) -> int:
        count = 0
        first: Any = None
        with writing(target, self._charset) as out:
            for count, row in enumerate(ion_rows(source, run), start=1):
                if count == 1:
                    first = row
                    continue
                if count == 2:
                    out.write("---\n" + yaml_text(first) + "\n")
                out.write("---\n" + yaml_text(row) + "\n")
            if count == 1:
                out.write(yaml_text(first) + "\n")
            return count


class YamlToIon(_YamlConversion):
    """Convert a YAML file to ION (one record per document)."""

    type: Literal["io.kestra.plugin.serdes.yaml.YamlToIon"]

    def convert(self, source: IO[bytes], target: IO[bytes], run: Run) -> int:
        with reading(source, self._charset) as text:
            return write_rows(target, yaml_documents(text, run), run)


class JsonToYaml(_YamlConversion):
    """Convert a JSON (or JSON lines) file to YAML."""

    type: Literal["io.kestra.plugin.serdes.yaml.JsonToYaml"]
    jsonl: BoolOrExpr = False

    def prepare(self, ctx: TaskContext) -> None:
        super().prepare(ctx)
        self._jsonl = render_bool(ctx, self.jsonl, "jsonl", False)

    def result_name(self) -> str:
        return "result.yaml"

    def convert(self, source: IO[bytes], target: IO[bytes], run: Run) -> int:
        with reading(source, self._charset) as text, writing(target, self._charset) as out:
            values = iter_json_lines(text) if self._jsonl else first_document(text)
            count = 0
            first: Any = None
            for count, value in enumerate((v for v in values if v is not None), start=1):
                run.check(count)
                if count == 1:
                    first = value
                    continue
                if count == 2:
                    out.write("---\n" + yaml_text(first) + "\n")
                out.write("---\n" + yaml_text(value) + "\n")
            if count == 1:
                out.write(yaml_text(first))
            return count


class YamlToJson(_YamlConversion):
    """Convert a YAML file to JSON (or JSON lines)."""

    type: Literal["io.kestra.plugin.serdes.yaml.YamlToJson"]
    jsonl: BoolOrExpr = False

    def prepare(self, ctx: TaskContext) -> None:
        super().prepare(ctx)
        self._jsonl = render_bool(ctx, self.jsonl, "jsonl", False)

    def result_name(self) -> str:
        return "result.jsonl" if self._jsonl else "result.json"

    def convert(self, source: IO[bytes], target: IO[bytes], run: Run) -> int:
        writer = JsonWriter(UTC, drop_nulls=True)
        count = 0
        with reading(source, self._charset) as text, writing(target, self._charset) as out:
            docs = yaml_documents(text, run)
            if self._jsonl:
                for doc in docs:
                    out.write(writer.dumps(doc) + "\n")
                    count += 1
                return count
            first = next(docs, _NONE)
            if first is _NONE:
                out.write("{}")
                return 0
            second = next(docs, _NONE)
            if second is _NONE and not isinstance(first, list):
                out.write(writer.dumps(first))
                return 1
            out.write("[" + writer.dumps(first))
            count = 1
            for doc in docs if second is _NONE else _chain(second, docs):
                out.write("," + writer.dumps(doc))
                count += 1
            out.write("]")
            return count


_NONE: Any = object()


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest
