"""Avro schemas for the serdes types: Kestra's inference from ION rows, and name resolution.

:func:`infer_schema` ports Kestra's ``InferAvroSchema`` (used when ``schema`` is not given):
the first ``numberOfRowsToScan`` rows each give a schema, merged in turn. A struct is a record
named after its key (the root ``root``, namespace ``io.kestra.plugin.serdes.avro``), nested
``[record, "null"]``; a list ``[array, "null"]`` of its items' merged schema (``<key>_items``;
an empty list ``array<string>``), a root list a ``root`` record with one ``value`` array field;
text and decimals ``["null", "string"]``, ints ``["null", "int"]``, doubles ``["null",
"double"]``, booleans, bytes; every date-time ``["null", local-timestamp-millis]``, dates
``["null", date]``, times ``["null", time-millis]``; null ``"null"``; all with default null.
Merging joins types into unions (records merged field by field, two arrays keep the first).
Names must be Avro names (a letter or ``_``, then letters, digits, ``_``), as Avro requires.

Difference: Kestra's inference fails on an integer past 32 bits ("Unhandled node"); here it
is a ``long``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from executors.base import TaskError

NAMESPACE = "io.kestra.plugin.serdes.avro"
PRIMITIVES = frozenset("null boolean int long float double bytes string".split())
_INT32 = range(-(2**31), 2**31)

Schema = Any  # Avro schema JSON: a type name, a list (union) or a dict


def check_name(name: str) -> str:
    """Avro's name rule (Java's Character.isLetter / isLetterOrDigit)."""
    if not name or not (name[0].isalpha() or name[0] == "_"):
        raise TaskError(f"{name!r} is not a valid Avro name: it must start with a letter or '_'")
    for char in name[1:]:
        if not (char.isalnum() or char == "_"):
            raise TaskError(
                f"{name!r} is not a valid Avro name: only letters, digits and '_' (found "
                f"{char!r}); rename the column or give a schema"
            )
    return name


def _key(schema: Schema) -> str:
    return json.dumps(schema, sort_keys=True)


def _nullable(kind: Schema) -> dict[str, Any]:
    return {"type": ["null", kind], "default": None}


class Inference:
    """Kestra's InferAvroSchema: fields merged by their full path across rows."""

    def __init__(self) -> None:
        self.known: dict[str, dict[str, Any]] = {}

    def row(self, value: Any) -> dict[str, Any]:
        return self.field(".", "root", value)

    def field(self, path: str, name: str, node: Any) -> dict[str, Any]:
        field = {"name": check_name(name), **self._kind(path, name, node)}
        known = self.known.get(path)
        if known is not None:
            field = merge(field, known)
        self.known[path] = field
        return field

    def _kind(self, path: str, name: str, node: Any) -> dict[str, Any]:
        if isinstance(node, dict):
            fields = [self.field(f"{path}_{name}_{k}", str(k), v) for k, v in node.items()]
            record = {"type": "record", "name": name, "namespace": NAMESPACE, "fields": fields}
            return {"type": record if name == "root" else [record, "null"]}
        if isinstance(node, list):
            if not node:
                return {"type": [{"type": "array", "items": "string"}, "null"]}
            items: dict[str, Any] = {}
            for item in node:
                items = self.field(f"{path}_{name}_items", f"{name}_items", item)
            array = {"type": "array", "items": items["type"]}
            if name == "root":
                value = {"name": "value", "type": array, "default": []}
                return {
                    "type": {
                        "type": "record", "name": "root", "namespace": NAMESPACE,
                        "fields": [value],
                    }
                }  # fmt: skip
            return {"type": [array, "null"]}
        if node is None:
            return {"type": "null"}
        return _nullable(_primitive(path, node))


def _primitive(path: str, node: Any) -> Schema:
    if isinstance(node, bool):
        return "boolean"
    if isinstance(node, int):
        return "int" if node in _INT32 else "long"
    if isinstance(node, float):
        return "double"
    if isinstance(node, str | Decimal):
        return "string"
    if isinstance(node, bytes | bytearray):
        return "bytes"
    if isinstance(node, datetime):
        return {"type": "long", "logicalType": "local-timestamp-millis"}
    if isinstance(node, date):
        return {"type": "int", "logicalType": "date"}
    if isinstance(node, time):
        return {"type": "int", "logicalType": "time-millis"}
    raise TaskError(f"cannot infer an Avro type for {path}: {node!r}")


def _types(schema: Schema) -> list[Schema]:
    return list(schema) if isinstance(schema, list) else [schema]


def _is(schema: Schema, kind: str) -> bool:
    return isinstance(schema, dict) and schema.get("type") == kind


def _type_name(schema: Schema) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        return str(schema.get("logicalType") or schema["type"]) if "type" in schema else "?"
    return str(schema)


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Kestra's mergeTypes of two fields (a's name and default)."""
    sa, sb = a["type"], b["type"]
    if isinstance(sa, list) or isinstance(sb, list):
        return {**a, "type": _merge_union(sa, sb)}
    if _is(sa, "record") or _is(sb, "record"):
        if _is(sa, "record") and _is(sb, "record"):
            return {**a, "type": _merge_records(sa, sb)}
        raise TaskError(
            f"cannot infer one Avro schema: '{a['name']}' is a record in one row and "
            f"{_type_name(sb if _is(sa, 'record') else sa)} in another; give a schema"
        )
    if _base(sa) == _base(sb):
        return a
    return {**a, "type": [sa, sb]}


def _base(schema: Schema) -> str:
    return str(schema["type"]) if isinstance(schema, dict) else str(schema)


def _merge_union(sa: Schema, sb: Schema) -> list[Schema]:
    seen: dict[str, Schema] = {}
    for schema in [*_types(sa), *_types(sb)]:
        seen.setdefault(_key(schema), schema)
    types = list(seen.values())
    records = [t for t in types if _is(t, "record")]
    arrays = [t for t in types if _is(t, "array")]
    if len(records) > 1:
        types = [t for t in types if not _is(t, "record")]
        types.append(_merge_records(records[0], records[1]))
    elif len(arrays) > 1:
        types = [t for t in types if not _is(t, "array")]
        types.append(arrays[0])  # two arrays: Kestra keeps the first
    return types


def _merge_records(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    fields_a = {f["name"]: f for f in a["fields"]}
    fields_b = {f["name"]: f for f in b["fields"]}
    merged = []
    for name in [*fields_a, *(n for n in fields_b if n not in fields_a)]:
        if name in fields_a and name in fields_b:
            merged.append(merge(fields_a[name], fields_b[name]))
        else:
            merged.append(fields_a.get(name) or fields_b[name])
    return {**a, "fields": merged}


def infer_schema(rows: Iterable[Any], limit: int) -> dict[str, Any]:
    """The Avro schema of the first ``limit`` rows (the root record)."""
    if limit < 1:
        raise TaskError("Number of rows to scan must be greater than 0")
    inference = Inference()
    result: dict[str, Any] | None = None
    for index, row in enumerate(rows):
        if index >= limit:
            break
        field = inference.row(row)
        result = field if result is None else merge(result, field)
    if result is None:
        raise TaskError(
            "Cannot infer Avro schema from ION input: the file appears to be empty or "
            "contains no valid records."
        )
    schema = result["type"]
    if not _is(schema, "record"):
        raise TaskError(f"cannot infer an Avro record from rows of type {_type_name(schema)}")
    return dict(schema)


class Names:
    """The named types of a schema (records, enums, fixed) by full name."""

    def __init__(self, schema: Schema) -> None:
        self.named: dict[str, dict[str, Any]] = {}
        self._walk(schema, "")

    def _walk(self, schema: Schema, namespace: str) -> None:
        if isinstance(schema, list):
            for item in schema:
                self._walk(item, namespace)
            return
        if not isinstance(schema, dict):
            return
        kind = schema.get("type")
        if kind in ("record", "error", "enum", "fixed"):
            name = str(schema["name"])
            space = (
                schema.get("namespace", namespace) if "." not in name else name.rpartition(".")[0]
            )
            full = name if "." in name else (f"{space}.{name}" if space else name)
            self.named.setdefault(full, schema)
            self.named.setdefault(name.rpartition(".")[2], schema)
            for field in schema.get("fields", []):
                self._walk(field["type"], space or "")
        elif kind == "array":
            self._walk(schema["items"], namespace)
        elif kind == "map":
            self._walk(schema["values"], namespace)
        elif isinstance(kind, list | dict):
            self._walk(kind, namespace)

    def resolve(self, schema: Schema) -> Schema:
        """A named reference replaced by its definition; a ``{"type": x}`` wrapper unwrapped."""
        while True:
            if isinstance(schema, str) and schema not in PRIMITIVES:
                found = self.named.get(schema) or self.named.get(schema.rpartition(".")[2])
                if found is None:
                    raise TaskError(f"the Avro schema names an unknown type {schema!r}")
                return found
            if isinstance(schema, dict) and isinstance(schema.get("type"), list | dict):
                schema = schema["type"]
                continue
            if isinstance(schema, dict) and schema.get("type") in PRIMITIVES and len(schema) == 1:
                return schema["type"]
            if (
                isinstance(schema, dict)
                and isinstance(schema.get("type"), str)
                and schema["type"] not in PRIMITIVES
                and schema["type"] not in ("record", "error", "enum", "fixed", "array", "map")
            ):
                schema = schema["type"]
                continue
            return schema
