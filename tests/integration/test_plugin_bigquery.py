"""io.kestra.plugin.gcp.bigquery.* against a real BigQuery server: bqemulator from deploy/local
(`up bigquery`), reached as Google's clients reach an emulator (BIGQUERY_EMULATOR_HOST).

Each test makes its own dataset so that runs sharing the server never meet. ``gs://`` URIs of
load and extract jobs resolve under the server's ``bigquery/gcs`` folder (deploy/local), where
the tests put and read the files themselves.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local.localsvc.bigquery import emulator_host
from deploy.local.localsvc.config import load_config
from executors import ion
from tests.remote_support import put, read, run

pytestmark = pytest.mark.bigquery

P = "io.kestra.plugin.gcp.bigquery."
PROJECT = "headwater"
PORT = int(os.environ.get("HEADWATER_LOCAL_BIGQUERY_PORT", "9750"))
GCS_ROOT = load_config(dict(os.environ)).server_dir("bigquery") / "gcs"


@pytest.fixture(autouse=True)
def emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", emulator_host(PORT))


async def bq(type_: str, task: dict[str, Any], tmp_path: Path) -> Any:
    return await run(P + type_, task, tmp_path, projectId=PROJECT)


async def new_dataset(tmp_path: Path) -> str:
    name = f"hw_{uuid.uuid4().hex[:10]}"
    made, _ = await bq(
        "CreateDataset",
        {"name": name, "description": "tests", "friendlyName": "Tests", "labels": {"t": "x"}},
        tmp_path,
    )
    assert made.state == "SUCCESS", made.error
    assert made.outputs["dataset"] == name
    assert made.outputs["project"] == PROJECT
    assert (made.outputs["description"], made.outputs["friendlyName"]) == ("tests", "Tests")
    return name


def job(job_id: str) -> dict[str, Any]:
    answer = httpx.get(f"http://{emulator_host(PORT)}/bigquery/v2/projects/{PROJECT}/jobs/{job_id}")
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result


ALL_TYPES = """
SELECT 1 AS i, "x" AS s, TRUE AS b, 1.25 AS f, NULL AS n, DATE "2020-01-02" AS d,
  DATETIME "2008-12-25 15:30:00.123456" AS dt, TIME "15:30:00.5" AS t,
  TIMESTAMP "2020-01-01 00:00:00.123456+00" AS ts, [1, 2] AS arr,
  STRUCT(4 AS x, "y" AS y) AS st, CAST("3.5" AS NUMERIC) AS num, b"ab" AS by
"""


async def test_query_fetch_fetch_one_store_and_none(tmp_path: Path) -> None:
    fetched, _ = await bq("Query", {"sql": ALL_TYPES, "fetchType": "FETCH"}, tmp_path)
    assert fetched.state == "SUCCESS", fetched.error
    assert fetched.outputs["size"] == 1
    assert fetched.outputs["rows"] == [
        {
            "i": 1,
            "s": "x",
            "b": True,
            "f": 1.25,
            "n": None,
            "d": "2020-01-02",
            "dt": "2008-12-25T15:30:00.123456Z",
            "t": "15:30:00.5",
            "ts": "2020-01-01T00:00:00.123456Z",
            "arr": [1, 2],
            "st": {"x": 4, "y": "y"},
            "num": 3.5,
            "by": "YWI=",
        }
    ]
    assert fetched.outputs["jobId"].startswith("kestra_")
    # The query's result table (BigQuery's anonymous one) is the output's destinationTable.
    assert fetched.outputs["destinationTable"]["project"] == PROJECT
    assert fetched.metrics["total.rows"] == fetched.metrics["fetch.rows"] == 1
    # The job as BigQuery keeps it (the request's labels are asserted in the unit tests:
    # bqemulator does not echo them back).
    assert job(fetched.outputs["jobId"])["configuration"]["query"]["query"] == ALL_TYPES

    one, _ = await bq(
        "Query", {"sql": "SELECT 7 AS a UNION ALL SELECT 8 ORDER BY a", "fetchOne": True}, tmp_path
    )
    assert (one.outputs["row"], one.outputs["size"]) == ({"a": 7}, 2)
    empty, _ = await bq(
        "Query", {"sql": "SELECT 1 AS a FROM UNNEST([1]) WHERE FALSE", "fetchType": "FETCH_ONE"},
        tmp_path,
    )  # fmt: skip
    assert (empty.outputs["row"], empty.outputs["size"]) == ({}, 0)

    stored, _ = await bq(
        "Query", {"sql": ALL_TYPES + " UNION ALL " + ALL_TYPES, "fetchType": "STORE"}, tmp_path
    )
    assert stored.state == "SUCCESS", stored.error
    assert stored.outputs["size"] == 2
    text = read(tmp_path, stored.outputs["uri"]).decode()
    rows = ion.loads(text)
    assert len(rows) == 2
    assert 'dt:"2008-12-25T15:30:00.123456Z"' in text
    assert 't:LocalTime::"15:30:00.5"' in text
    assert "d:2020-01-02" in text
    assert rows[0]["by"] == b"ab"
    assert rows[0]["st"] == {"x": 4, "y": "y"}

    nothing, _ = await bq("Query", {"sql": "SELECT 1 AS a"}, tmp_path)
    assert set(nothing.outputs) == {"jobId", "destinationTable"}


async def test_load_csv_json_then_query_copy_extract(tmp_path: Path) -> None:
    dataset = await new_dataset(tmp_path)
    csv = await put(tmp_path, "people.csv", b"id;name\n1;alpha\n2;beta\n3;gamma\n")
    loaded, _ = await bq(
        "Load",
        {
            "from": csv,
            "destinationTable": f"{dataset}.people",
            "format": "CSV",
            "csvOptions": {"fieldDelimiter": ";", "skipLeadingRows": 1},
            "schema": {
                "fields": [
                    {"name": "id", "type": "INT64", "mode": "REQUIRED"},
                    {"name": "name", "type": "STRING"},
                ]
            },
            "createDisposition": "CREATE_IF_NEEDED",
            "writeDisposition": "WRITE_TRUNCATE",
        },
        tmp_path,
    )
    assert loaded.state == "SUCCESS", loaded.error
    assert loaded.outputs["destinationTable"] == f"{PROJECT}.{dataset}.people"
    assert loaded.outputs["rows"] == 3
    assert loaded.metrics["output.rows"] == 3

    lines = b'{"id": 4, "name": "delta"}\n{"id": 5, "name": "epsilon"}\n'
    jsonl = await put(tmp_path, "more.json", lines)
    appended, _ = await bq(
        "Load",
        {
            "from": jsonl,
            "destinationTable": f"{PROJECT}.{dataset}.people",
            "format": "JSON",
            "writeDisposition": "WRITE_APPEND",
        },
        tmp_path,
    )
    assert appended.state == "SUCCESS", appended.error
    # BigQuery counts the rows the job loaded; bqemulator the table's rows after it.
    assert appended.outputs["rows"] in (2, 5)

    query = f"SELECT id, name FROM {dataset}.people ORDER BY id"
    rows, _ = await bq("Query", {"sql": query, "fetchType": "FETCH"}, tmp_path)
    assert [r["name"] for r in rows.outputs["rows"]] == [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
    ]

    into, _ = await bq(
        "Query",
        {
            "sql": f"SELECT id FROM {dataset}.people WHERE id > 3",
            "destinationTable": f"{PROJECT}.{dataset}.big_ids",
            "writeDisposition": "WRITE_TRUNCATE",
            "createDisposition": "CREATE_IF_NEEDED",
            "labels": {"team": "data"},
        },
        tmp_path,
    )
    assert into.state == "SUCCESS", into.error
    # The job names its destination (bqemulator does not fill it: the copy below reads people).
    assert into.outputs["destinationTable"] == {
        "project": PROJECT,
        "dataset": dataset,
        "table": "big_ids",
    }

    copied, _ = await bq(
        "Copy",
        {"sourceTables": [f"{dataset}.people"], "destinationTable": f"{dataset}.people_copy"},
        tmp_path,
    )
    assert copied.state == "SUCCESS", copied.error
    assert list(copied.outputs) == ["jobId"]
    count, _ = await bq(
        "Query", {"sql": f"SELECT COUNT(*) AS c FROM {dataset}.people_copy", "fetchOne": True},
        tmp_path,
    )  # fmt: skip
    assert count.outputs["row"] == {"c": 5}

    bucket = f"bq-{dataset}"
    (GCS_ROOT / bucket).mkdir(parents=True)  # the bucket exists
    extracted, _ = await bq(
        "ExtractToGcs",
        {
            "sourceTable": f"{PROJECT}.{dataset}.people",
            "destinationUris": [f"gs://{bucket}/people.csv"],
            "format": "CSV",
            "printHeader": True,
        },
        tmp_path,
    )
    assert extracted.state == "SUCCESS", extracted.error
    assert extracted.outputs["sourceTable"] == "people"
    assert extracted.outputs["destinationUris"] == [f"gs://{bucket}/people.csv"]
    # BigQuery counts the files per URI; bqemulator reports none (the unit tests check [n]).
    assert extracted.outputs["fileCounts"] in ([], [1])
    written = (GCS_ROOT / bucket / "people.csv").read_text()
    assert written.splitlines()[0] == "id,name"
    assert "epsilon" in written

    empty = await put(tmp_path, "empty.csv", b"")
    refused, _ = await bq(
        "Load", {"from": empty, "destinationTable": f"{dataset}.people", "format": "CSV"}, tmp_path
    )
    assert refused.error == "Can't load an empty file and this one don't contain any data"
    allowed, _ = await bq(
        "Load",
        {
            "from": empty,
            "destinationTable": f"{dataset}.x",
            "format": "CSV",
            "failedOnEmpty": False,
        },
        tmp_path,
    )
    assert (allowed.state, allowed.outputs) == ("SUCCESS", {"rows": 0})


async def test_load_from_gcs(tmp_path: Path) -> None:
    dataset = await new_dataset(tmp_path)
    bucket = f"bq-{dataset}"
    folder = GCS_ROOT / bucket / "in"
    folder.mkdir(parents=True)
    (folder / "a.csv").write_text("colA,colB\nx,1.5\ny,2.5\n")
    loaded, _ = await bq(
        "LoadFromGcs",
        {
            "from": [f"gs://{bucket}/in/a.csv"],
            "destinationTable": f"{dataset}.from_gcs",
            "format": "CSV",
            "csvOptions": {"skipLeadingRows": 1},
            "schema": {
                "fields": [{"name": "colA", "type": "STRING"}, {"name": "colB", "type": "NUMERIC"}]
            },
        },
        tmp_path,
    )  # fmt: skip
    assert loaded.state == "SUCCESS", loaded.error
    assert loaded.outputs["rows"] == 2
    assert loaded.outputs["destinationTable"] == f"{PROJECT}.{dataset}.from_gcs"
    total, _ = await bq(
        "Query", {"sql": f"SELECT SUM(colB) AS s FROM {dataset}.from_gcs", "fetchOne": True},
        tmp_path,
    )  # fmt: skip
    assert total.outputs["row"] == {"s": 4.0}
    missing, _ = await bq(
        "LoadFromGcs",
        {"from": [f"gs://{bucket}/none.csv"], "destinationTable": f"{dataset}.t", "format": "CSV"},
        tmp_path,
    )
    assert missing.state == "FAILED"
    assert (missing.error or "").startswith("Bigquery Errors\n[ - BigQueryError{reason=")


async def test_datasets_and_tables(tmp_path: Path) -> None:
    dataset = await new_dataset(tmp_path)
    again, _ = await bq("CreateDataset", {"name": dataset}, tmp_path)
    assert again.state == "FAILED"
    assert f"dataset '{dataset}' already exists" in (again.error or "")
    kept, _ = await bq("CreateDataset", {"name": dataset, "ifExists": "SKIP"}, tmp_path)
    assert kept.outputs["description"] == "tests"
    changed, _ = await bq(
        "CreateDataset", {"name": dataset, "ifExists": "UPDATE", "description": "new"}, tmp_path
    )
    assert changed.outputs["description"] == "new"

    table = {"projectId": PROJECT, "dataset": dataset, "table": "events"}
    created, _ = await bq(
        "CreateTable",
        {
            **table,
            "tableDefinition": {
                "type": "TABLE",
                "schema": {
                    "fields": [
                        {"name": "id", "type": "INT64", "mode": "REQUIRED"},
                        {"name": "day", "type": "DATE"},
                        {"name": "tags", "type": "STRING", "mode": "REPEATED"},
                    ]
                },
                "standardTableDefinition": {
                    "timePartitioning": {"type": "DAY", "field": "day"},
                    "clustering": ["id"],
                },
            },
            "friendlyName": "Events",
            "description": "all events",
            "labels": {"env": "test"},
        },
        tmp_path,
    )
    assert created.state == "SUCCESS", created.error
    out = created.outputs
    assert (out["projectId"], out["datasetId"], out["table"]) == (PROJECT, dataset, "events")
    assert (out["friendlyName"], out["description"]) == ("Events", "all events")
    assert out["labels"] == {"env": "test"}
    definition = out["definition"]
    assert definition["type"] == "TABLE"
    assert definition["schema"]["fields"][0] == {"name": "id", "type": "INT64", "mode": "REQUIRED"}
    assert definition["schema"]["fields"][2]["mode"] == "REPEATED"
    assert out["creationTime"].endswith("Z")

    meta, _ = await bq("TableMetadata", table, tmp_path)
    assert meta.state == "SUCCESS", meta.error
    assert meta.outputs["table"] == "events"
    assert meta.outputs["numRows"] == 0
    updated, _ = await bq("UpdateTable", {**table, "description": "changed"}, tmp_path)
    assert updated.state == "SUCCESS", updated.error
    assert updated.outputs["description"] == "changed"

    view, _ = await bq(
        "CreateTable",
        {
            **table,
            "table": "recent",
            "tableDefinition": {
                "type": "VIEW",
                "viewDefinition": {"query": f"SELECT id FROM `{PROJECT}.{dataset}.events`"},
            },
        },
        tmp_path,
    )
    assert view.state == "SUCCESS", view.error
    assert view.outputs["definition"]["type"] == "VIEW"
    counted, _ = await bq(
        "Query", {"sql": f"SELECT COUNT(*) AS c FROM {dataset}.recent", "fetchOne": True}, tmp_path
    )
    assert counted.outputs["row"] == {"c": 0}

    deleted, _ = await bq("DeleteTable", table, tmp_path)
    assert deleted.outputs == {"projectId": PROJECT, "datasetId": dataset, "table": "events"}
    gone, _ = await bq("TableMetadata", table, tmp_path)
    assert gone.error == f"Unable to find table '{PROJECT}:{dataset}.events'"
    skipped, _ = await bq("TableMetadata", {**table, "ifNotExists": "SKIP"}, tmp_path)
    assert (skipped.state, skipped.outputs) == ("SUCCESS", {})
    again_deleted, _ = await bq("DeleteTable", table, tmp_path)
    assert again_deleted.error == f"Couldn't find table '{PROJECT}.{dataset}.events'"

    refused, _ = await bq("DeleteDataset", {"name": dataset}, tmp_path)
    assert refused.state == "FAILED"  # it still holds the view (bqemulator answers 404)
    still, _ = await bq("TableMetadata", {**table, "table": "recent"}, tmp_path)
    assert still.state == "SUCCESS", still.error
    dropped, _ = await bq("DeleteDataset", {"name": dataset, "deleteContents": True}, tmp_path)
    assert dropped.outputs == {"dataset": dataset}
    missing, _ = await bq("DeleteDataset", {"name": dataset}, tmp_path)
    assert missing.error == f"Couldn't find dataset '{dataset}'"


async def test_errors_name_the_query_and_the_property(tmp_path: Path) -> None:
    bad, ctx = await bq("Query", {"sql": "SELEC nonsense", "fetchType": "FETCH"}, tmp_path)
    assert bad.state == "FAILED"
    assert (bad.error or "").startswith("Bigquery Errors\n[ - BigQueryError{reason=")
    assert any("Error query on job" in line.message for line in ctx.logs if line.level == "WARN")
    both, _ = await bq("Query", {"sql": "SELECT 1", "fetch": True, "store": True}, tmp_path)
    assert both.error == (
        "Invalid store with fetch or fetchOne properties, you can't have both defined."
    )
    table, _ = await bq("Query", {"sql": "SELECT 1", "destinationTable": "just_one"}, tmp_path)
    assert table.error == "property 'destinationTable': Invalid table name 'just_one'"
    schema, _ = await bq(
        "Load",
        {
            "from": await put(tmp_path, "a.csv", b"1\n"),
            "destinationTable": "d.t",
            "format": "CSV",
            "schema": {"fields": [{"name": "a", "type": "INTEGERS"}]},
        },
        tmp_path,
    )
    assert "field 'a' has type 'INTEGERS'" in (schema.error or "")
    assert json.dumps(bad.outputs) == "{}"
