"""io.kestra.plugin.serdes avro and parquet types, run as a worker runs them; the files are
checked by reading them back with fastavro and pyarrow, and files those libraries write are
read by AvroToIon and ParquetToIon."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.unit.serdes_support import Serdes, warnings


@pytest.fixture
def sd(tmp_path: Path) -> Serdes:
    return Serdes(tmp_path)


def _avro(sd: Serdes, uri: str) -> tuple[Any, list[Any]]:
    reader = fastavro.reader(io.BytesIO(sd.read(uri)))
    return reader.writer_schema, list(reader)


ROWS = (
    '{id:1,name:"a",price:1.50,ratio:0.5e0,at:2024-01-01T10:00:00Z,day:2024-01-02,'
    'tags:["x"],meta:{k:1},none:null}\n'
    "{id:3000000000,name:null,price:2.,ratio:1e0,at:null,day:null,tags:[],meta:null,none:null}\n"
)


def test_inferred_schema_is_kestras(sd: Serdes) -> None:
    outcome, _ = sd.run("avro.InferAvroSchemaFromIon", **{"from": sd.put("in.ion", ROWS)})
    assert outcome.state == "SUCCESS", outcome.error
    assert list(outcome.outputs) == ["uri"]
    assert json.loads(sd.text(outcome.outputs["uri"])) == {
        "type": "record",
        "name": "root",
        "namespace": "io.kestra.plugin.serdes.avro",
        "fields": [
            {"name": "id", "type": ["null", "int", "long"], "default": None},
            {"name": "name", "type": ["null", "string"], "default": None},
            {"name": "price", "type": ["null", "string"], "default": None},
            {"name": "ratio", "type": ["null", "double"], "default": None},
            {
                "name": "at",
                "type": ["null", {"type": "long", "logicalType": "local-timestamp-millis"}],
                "default": None,
            },
            {
                "name": "day",
                "type": ["null", {"type": "int", "logicalType": "date"}],
                "default": None,
            },
            {"name": "tags", "type": ["null", {"type": "array", "items": ["null", "string"]}]},
            {
                "name": "meta",
                "type": [
                    {
                        "type": "record",
                        "name": "meta",
                        "namespace": "io.kestra.plugin.serdes.avro",
                        "fields": [{"name": "k", "type": ["null", "int"], "default": None}],
                    },
                    "null",
                ],
            },
            {"name": "none", "type": "null"},
        ],
    }
    error = sd.fail("avro.InferAvroSchemaFromIon", '{"first name":"a"}\n')
    assert "'first name' is not a valid Avro name" in error
    assert "appears to be empty" in sd.fail("avro.InferAvroSchemaFromIon", "")


def test_ion_to_avro_with_inferred_schema(sd: Serdes) -> None:
    outputs, _ = sd.ok(
        "avro.IonToAvro", **{"from": sd.put("in.ion", ROWS), "timeZoneId": "Europe/Paris"}
    )
    assert outputs["uri"].endswith(".avro")
    _, records = _avro(sd, outputs["uri"])
    assert records == [
        {
            "id": 1, "name": "a", "price": "1.50", "ratio": 0.5,
            "at": datetime.fromisoformat("2024-01-01T11:00:00"),  # local time in timeZoneId
            "day": date(2024, 1, 2), "tags": ["x"], "meta": {"k": 1}, "none": None,
        },
        {
            "id": 3000000000, "name": None, "price": "2", "ratio": 1.0, "at": None,
            "day": None, "tags": [], "meta": None, "none": None,
        },
    ]  # fmt: skip
    # list rows: a root record wrapping them, and AvroToIon gives the lists back
    lists, _ = sd.ok("avro.IonToAvro", **{"from": sd.put("in.ion", "[1,2]\n[3]\n")})
    assert sd.convert("avro.AvroToIon", sd.read(lists["uri"])) == "[1,2]\n[3]\n"


SCHEMA = {
    "type": "record",
    "name": "Ride",
    "namespace": "com.example",
    "fields": [
        {"name": "ride_id", "type": "string"},
        {"name": "started_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "lat", "type": ["null", "double"]},
        {"name": "member", "type": "boolean"},
        {"name": "day", "type": ["null", {"type": "int", "logicalType": "date"}]},
        {"name": "clock", "type": ["null", {"type": "int", "logicalType": "time-millis"}]},
        {
            "name": "amount",
            "type": {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2},
        },
        {
            "name": "kind",
            "type": {"type": "enum", "name": "Kind", "symbols": ["classic", "electric"]},
        },
        {"name": "ref", "type": ["null", {"type": "string", "logicalType": "uuid"}]},
        {"name": "count", "type": ["null", "int"]},
    ],
}
CSV_ROW = (
    '{ride_id:"r1",started_at:"2024-03-01 08:15:00",lat:"45,5",member:"yes",day:"2024-03-01",'
    'clock:"08:15",amount:"12,345",kind:"electric",ref:"12345678-1234-5678-1234-567812345678",'
    'count:"7"}\n'
)


def test_ion_to_avro_with_a_schema_converts_text(sd: Serdes) -> None:
    outputs, _ = sd.ok(
        "avro.IonToAvro",
        **{"from": sd.put("in.ion", CSV_ROW + '{ride_id:"r2",started_at:1700000000000,lat:"",'
           'member:0,day:null,clock:null,amount:3,kind:"classic",ref:null,count:"NA"}\n'),
           "schema": json.dumps(SCHEMA), "datetimeFormat": "yyyy-MM-dd' 'HH:mm:ss",
           "decimalSeparator": ",", "timeZoneId": "+01:00"},
    )  # fmt: skip
    _, records = _avro(sd, outputs["uri"])
    assert records == [
        {
            "ride_id": "r1", "started_at": datetime(2024, 3, 1, 7, 15, tzinfo=UTC), "lat": 45.5,
            "member": True, "day": date(2024, 3, 1), "clock": time(8, 15),
            "amount": Decimal("12.34"), "kind": "electric",
            "ref": uuid.UUID("12345678-1234-5678-1234-567812345678"), "count": 7,
        },
        {
            "ride_id": "r2", "started_at": datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
            "lat": None, "member": False, "day": None, "clock": None,
            "amount": Decimal("3.00"), "kind": "classic", "ref": None, "count": None,
        },
    ]  # fmt: skip


def test_ion_to_avro_bad_records(sd: Serdes) -> None:
    bad = CSV_ROW + CSV_ROW.replace('"yes"', "null") + CSV_ROW.replace('"electric"', '"tandem"')
    error = sd.fail(
        "avro.IonToAvro",
        bad,
        schema=json.dumps(SCHEMA),
        datetimeFormat="yyyy-MM-dd' 'HH:mm:ss",
        decimalSeparator=",",
    )
    assert error == "row 2: field 'member': expected a boolean, got None"
    outputs, ctx = sd.ok(
        "avro.IonToAvro",
        **{"from": sd.put("in.ion", bad), "schema": json.dumps(SCHEMA), "onBadLines": "WARN",
           "datetimeFormat": "yyyy-MM-dd' 'HH:mm:ss", "decimalSeparator": ","},
    )  # fmt: skip
    assert outputs["size"] == 3
    assert [r["ride_id"] for r in _avro(sd, outputs["uri"])[1]] == ["r1"]
    assert warnings(ctx) == [
        "row 2: Conversion error for field 'member': expected a boolean, got None",
        "Bad record skipped (onBadLines=WARN): row 2: field 'member': None is not a boolean",
        "row 3: Conversion error for field 'kind': Invalid enum value, found tandem, "
        "expected ['classic', 'electric']",
        "Bad record skipped (onBadLines=WARN): row 3: field 'kind': None is not a "
        '{"type": "enum", "name": "com.example.Kind", "symbols": ["classic", "electric"]}',
    ]
    unparsable = sd.fail("avro.IonToAvro", CSV_ROW, schema=json.dumps(SCHEMA))
    assert unparsable.startswith("row 1: field 'started_at': Text '2024-03-01 08:15:00' could not")
    assert sd.fail("avro.IonToAvro", CSV_ROW, schema="{").startswith("Invalid Avro schema")


def test_ion_to_avro_strict_positional_and_infer_all(sd: Serdes) -> None:
    schema = {
        "type": "record",
        "name": "R",
        "fields": [
            {"name": "a", "type": ["null", "string"]},
            {"name": "b", "type": ["null", "boolean"]},
        ],
    }
    outputs, _ = sd.ok(
        "avro.IonToAvro",
        **{"from": sd.put("in.ion", '{col0:"x",col1:"on"}\n["y","0"]\n{a:"1",b:"no",c:3}\n'),
           "schema": json.dumps(schema), "inferAllFields": True},
    )  # fmt: skip
    assert _avro(sd, outputs["uri"])[1] == [
        {"a": "x", "b": True},
        {"a": "y", "b": False},
        {"a": "true", "b": False},  # inferAllFields turns "1" into true before the string
    ]
    error = sd.fail(
        "avro.IonToAvro", '{a:"1",b:true,c:3}\n', schema=json.dumps(schema), strictSchema=True
    )
    assert error == "row 1: Data contains more fields than schema: expected 2, got 3"


def test_avro_to_ion_reads_every_type(sd: Serdes) -> None:
    schema = fastavro.parse_schema(
        {
            "type": "record",
            "name": "All",
            "fields": [
                {"name": "s", "type": "string"},
                {"name": "i", "type": "int"},
                {"name": "f", "type": "float"},
                {"name": "b", "type": "bytes"},
                {"name": "fx", "type": {"type": "fixed", "name": "F", "size": 2}},
                {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"]}},
                {"name": "m", "type": {"type": "map", "values": "long"}},
                {"name": "u", "type": {"type": "string", "logicalType": "uuid"}},
                {
                    "name": "d",
                    "type": {"type": "bytes", "logicalType": "decimal", "precision": 5, "scale": 2},
                },
                {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
                {"name": "lt", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
                {"name": "t", "type": {"type": "long", "logicalType": "time-micros"}},
                {
                    "name": "o",
                    "type": [
                        "null",
                        {"type": "record", "name": "O", "fields": [{"name": "x", "type": "int"}]},
                    ],
                },
            ],
        }
    )
    record = {
        "s": "é", "i": 1, "f": 1.5, "b": b"\x00", "fx": b"ab", "e": "B", "m": {"k": 2},
        "u": uuid.UUID("12345678-1234-5678-1234-567812345678"), "d": Decimal("1.25"),
        "ts": datetime(2024, 1, 1, 10, 0, 0, 123456, tzinfo=UTC),
        "lt": datetime.fromisoformat("2024-01-01T10:00:00"), "t": time(10, 0, 0, 5), "o": {"x": 3},
    }  # fmt: skip
    data = io.BytesIO()
    fastavro.writer(data, schema, [record], codec="deflate")
    assert sd.convert("avro.AvroToIon", data.getvalue()) == (
        '{s:"é",i:1,f:1.5e0,b:{{AA==}},fx:{{YWI=}},e:"B",m:{k:2},'
        'u:"12345678-1234-5678-1234-567812345678",d:1.25,ts:2024-01-01T10:00:00.123Z,'
        'lt:LocalDateTime::"2024-01-01T10:00:00",t:LocalTime::"10:00:00.000005",o:{x:3}}\n'
    )
    assert "not an Avro file" in sd.fail("avro.AvroToIon", "{a:1}\n")
    truncated = data.getvalue()[:-30]
    assert sd.fail("avro.AvroToIon", truncated).startswith("Bad Avro record encountered: record 1")
    outputs, ctx = sd.ok(
        "avro.AvroToIon", **{"from": sd.put("in", truncated), "onBadLines": "WARN"}
    )
    assert outputs["size"] == 0
    assert warnings(ctx)[0].startswith("Bad Avro record encountered")


def test_ion_to_parquet_and_back(sd: Serdes) -> None:
    rows = ROWS.replace("none:null}", "none:null,mix:1}", 1).replace(
        "none:null}", 'none:null,mix:"x"}'
    )
    outputs, _ = sd.ok("parquet.IonToParquet", **{"from": sd.put("in.ion", rows)})
    assert outputs["uri"].endswith(".parquet")
    parquet = pq.ParquetFile(io.BytesIO(sd.read(outputs["uri"])))
    schema = parquet.schema_arrow
    assert str(schema.field("id").type) == "struct<member0: int32, member1: int64>"
    assert str(schema.field("at").type) == "timestamp[ms]"
    assert str(schema.field("day").type) == "date32[day]"
    assert str(schema.field("tags").type) == "list<element: string>"
    assert parquet.metadata.row_group(0).column(0).compression == "GZIP"
    assert b"parquet.avro.schema" in (schema.metadata or {})
    assert sd.convert("parquet.ParquetToIon", sd.read(outputs["uri"])) == (
        '{id:1,name:"a",price:"1.50",ratio:0.5e0,at:LocalDateTime::"2024-01-01T10:00:00",'
        'day:2024-01-02,tags:["x"],meta:{k:1},none:null,mix:1}\n'
        '{id:3000000000,name:null,price:"2",ratio:1e0,at:null,day:null,tags:[],meta:null,'
        'none:null,mix:"x"}\n'
    )
    lists, _ = sd.ok("parquet.IonToParquet", **{"from": sd.put("in.ion", "[1,2]\n[3]\n")})
    assert sd.convert("parquet.ParquetToIon", sd.read(lists["uri"])) == "[1,2]\n[3]\n"


def test_ion_to_parquet_options_and_errors(sd: Serdes) -> None:
    source = sd.put("in.ion", "".join(f'{{n:{i},s:"v{i % 7}"}}\n' for i in range(25_000)))
    outputs, _ = sd.ok(
        "parquet.IonToParquet",
        **{"from": source, "compressionCodec": "ZSTD", "parquetVersion": "V1", "rowGroupSize": 1},
    )
    parquet = pq.ParquetFile(io.BytesIO(sd.read(outputs["uri"])))
    assert parquet.metadata.num_rows == 25_000
    assert parquet.metadata.num_row_groups == 3  # one per 10,000-row batch past rowGroupSize
    assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
    schema = {"type": "record", "name": "R", "fields": [{"name": "n", "type": "long"}]}
    error = sd.fail("parquet.IonToParquet", "{n:1}\n{n:null}\n", schema=json.dumps(schema))
    assert error == "row 2: field 'n': expected an integer, got None"
    assert "compressionCodec" in sd.fail("parquet.IonToParquet", "{n:1}\n", compressionCodec="LZ4")


def test_parquet_to_ion_reads_files_pyarrow_writes(sd: Serdes) -> None:
    table = pa.table({
        "ts": pa.array([datetime(2024, 1, 1, 10, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
        "m": pa.array([[("a", 1)]], pa.map_(pa.string(), pa.int64())),
        "d": pa.array([Decimal("1.50")], pa.decimal128(5, 2)),
        "s": pa.array([{"x": [1, None]}]),
    })  # fmt: skip
    data = io.BytesIO()
    pq.write_table(table, data)
    assert sd.convert("parquet.ParquetToIon", data.getvalue()) == (
        "{ts:2024-01-01T10:00:00.000Z,m:{a:1},d:1.50,s:{x:[1,null]}}\n"
    )
    assert "not a Parquet file" in sd.fail("parquet.ParquetToIon", "{a:1}\n")
