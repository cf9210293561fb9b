"""gcp.bigquery against a local HTTP receiver playing BigQuery's REST API, where the emulator
cannot show what was sent: the exact job insert (labels, dialect, location), the bearer token
from a service account's key (a local OAuth endpoint), polling a running job, result pages,
Kestra's retry of transient job errors, refusals, the resumable upload in chunks, a kill
cancelling the job. Time is a fake clock advanced by the sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from executors.base import TaskContext, TaskOutcome
from executors.registry import Registry, add_plugins
from executors.remote import bigquery
from tests.gcp_support import TOKEN, service_account, token_endpoint
from tests.unit.api_receiver import FakeTime, Receiver, Request, context, serve

P = "io.kestra.plugin.gcp.bigquery."
JOBS = "/bigquery/v2/projects/proj/jobs"
VARIABLES = {
    "flow": {"id": "Daily.Load", "namespace": "company.team"},
    "execution": {"id": "4wjtkzwVGBM9yKnjyNARzY"},
    "task": {"id": "query"},
}


@pytest.fixture
def google(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Receiver, str]]:
    """The receiver as BigQuery's endpoint, and a service account key for it."""
    with serve() as receiver, token_endpoint() as (token_uri, key, _grants):
        monkeypatch.setenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_BIGQUERY", receiver.url)
        monkeypatch.delenv("BIGQUERY_EMULATOR_HOST", raising=False)
        yield receiver, service_account(token_uri, key)


async def run(
    task: dict[str, Any], account: str, time: FakeTime | None = None, cancelled: bool = False
) -> tuple[TaskOutcome, TaskContext]:
    task = {"id": "query", "projectId": "proj", "serviceAccount": account, **task}
    ctx = context(task, variables=VARIABLES, time=time)
    if cancelled:
        ctx.cancelled.set()
    return await add_plugins(Registry()).run(task, ctx), ctx


def job(state: str, job_id: str = "job_1", **extra: Any) -> dict[str, Any]:
    return {
        "jobReference": {"projectId": "proj", "jobId": job_id, "location": "EU"},
        "status": {"state": state, **extra.pop("status", {})},
        **extra,
    }


FIELDS = [
    {"name": "id", "type": "INTEGER", "mode": "NULLABLE"},
    {"name": "at", "type": "TIMESTAMP", "mode": "NULLABLE"},
    {"name": "tags", "type": "STRING", "mode": "REPEATED"},
    {"name": "geo", "type": "GEOGRAPHY", "mode": "NULLABLE"},
    {"name": "payload", "type": "JSON", "mode": "NULLABLE"},
    {"name": "big", "type": "BIGNUMERIC", "mode": "NULLABLE"},
]


def page(request: Request) -> tuple[int, Any]:
    if "pageToken" not in request.query:
        rows = [
            {"f": [{"v": "1"}, {"v": "1577836800123456"}, {"v": [{"v": "a"}, {"v": "b"}]},
                   {"v": "POINT(50.6833 2.9)"}, {"v": '{"k": [1]}'}, {"v": "12.50"}]},
        ]  # fmt: skip
        return 200, {"jobComplete": True, "schema": {"fields": FIELDS}, "rows": rows,
                     "totalRows": "2", "pageToken": "p2"}  # fmt: skip
    rows = [{"f": [{"v": "2"}, {"v": "1.5E9"}, {"v": []}, {"v": None}, {"v": None}, {"v": None}]}]
    return 200, {"jobComplete": True, "schema": {"fields": FIELDS}, "rows": rows, "totalRows": "2"}


async def test_query_sends_kestras_job_polls_it_and_reads_every_page(
    google: tuple[Receiver, str],
) -> None:
    api, account = google
    done = job(
        "DONE",
        configuration={"query": {"destinationTable": {"projectId": "proj", "datasetId": "_anon",
                                                      "tableId": "anon1"}}},
        statistics={"startTime": "1000", "endTime": "3500", "query": {
            "totalBytesProcessed": "2048", "cacheHit": False, "totalSlotMs": "12"}},
    )  # fmt: skip
    api.on("POST", JOBS, (200, job("RUNNING")))
    api.on("GET", f"{JOBS}/job_1", [(200, job("RUNNING")), (200, done)])
    api.on("GET", "/bigquery/v2/projects/proj/queries/job_1", page)
    time = FakeTime()
    outcome, ctx = await run(
        {
            "type": P + "Query",
            "sql": "SELECT * FROM [proj:ds.t]",
            "legacySql": True,
            "fetchType": "FETCH",
            "location": "EU",
            "maxResults": 1,
            "labels": {"team": "data"},
            "jobTimeout": "PT1M",
        },
        account,
        time,
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {
        "jobId": "job_1",
        "rows": [
            {"id": 1, "at": "2020-01-01T00:00:00.123456Z", "tags": ["a", "b"],
             "geo": [50.6833, 2.9], "payload": {"k": [1]}, "big": 12.5},
            {"id": 2, "at": "2017-07-14T02:40:00Z", "tags": [], "geo": None, "payload": None,
             "big": None},
        ],
        "size": 2,
        "destinationTable": {"project": "proj", "dataset": "_anon", "table": "anon1"},
    }  # fmt: skip
    assert outcome.metrics == {
        "total.bytes.processed": 2048,
        "cache.hit": 0,
        "total.slot.ms": 12,
        "duration": 2.5,
        "total.rows": 2,
        "fetch.rows": 2,
    }
    [insert] = api.sent("POST", JOBS)
    assert insert.headers["authorization"] == f"Bearer {TOKEN}"
    body = insert.json
    assert body["jobReference"]["projectId"] == "proj"
    assert body["jobReference"]["location"] == "EU"
    assert body["jobReference"]["jobId"].startswith("kestra_")
    assert body["configuration"] == {
        "query": {
            "query": "SELECT * FROM [proj:ds.t]",
            "useLegacySql": True,
            "priority": "INTERACTIVE",
            "flattenResults": True,
        },
        "dryRun": False,
        "labels": {
            "kestra_namespace": "company_team",
            "kestra_flow_id": "daily_load",
            "kestra_execution_id": "4wjtkzwvgbm9yknjynarzy",
            "kestra_task_id": "query",
            "team": "data",
        },
        "jobTimeoutMs": "60000",
    }
    polls = api.sent("GET", f"{JOBS}/job_1")
    assert [p.query["location"] for p in polls] == [["EU"], ["EU"]]
    pages = api.sent("GET", "/bigquery/v2/projects/proj/queries/job_1")
    assert [p.query.get("pageToken") for p in pages] == [None, ["p2"]]
    assert pages[0].query["maxResults"] == ["1"]
    assert pages[0].query["formatOptions.useInt64Timestamp"] == ["true"]
    assert time.slept == [0.5, 0.75]
    assert all(TOKEN not in line.message for line in ctx.logs)


async def test_transient_job_errors_are_retried_and_others_fail_with_kestras_message(
    google: tuple[Receiver, str],
) -> None:
    api, account = google
    backend = {"reason": "backendError", "message": "Backend error. Retrying may solve it"}
    invalid = {"reason": "invalidQuery", "location": "query", "message": "Syntax error: x"}
    api.on(
        "POST",
        JOBS,
        [
            (200, job("DONE", "a", status={"errorResult": backend, "errors": [backend]})),
            (200, job("DONE", "b")),
            (200, job("DONE", "c", status={"errorResult": invalid, "errors": [invalid]})),
        ],
    )
    time = FakeTime()
    retried, ctx = await run({"type": P + "Query", "sql": "SELECT 1"}, account, time)
    assert retried.state == "SUCCESS", retried.error
    assert retried.outputs == {"jobId": "b"}
    assert time.slept == [5.0]
    assert "Retrying, attempts 1 elapsed 0 seconds" in [line.message for line in ctx.logs]

    failed, ctx = await run({"type": P + "Query", "sql": "SELEC 1"}, account)
    assert failed.state == "FAILED"
    text = "BigQueryError{reason=invalidQuery, location=query, message=Syntax error: x}"
    assert failed.error == f"Bigquery Errors\n[ - {text}\n - {text}\n]"
    assert any("Error query on job" in line.message for line in ctx.logs if line.level == "WARN")

    gone = "Not found: Dataset proj:nope"
    refusal = {"error": {"code": 404, "message": gone, "status": "NOT_FOUND",
                         "errors": [{"reason": "notFound", "message": gone}]}}  # fmt: skip
    api.on("POST", JOBS, (404, refusal))
    refused, _ = await run({"type": P + "Query", "sql": "SELECT 1 FROM nope.t"}, account)
    assert refused.error == (
        "Bigquery Errors\n[ - BigQueryError{reason=notFound, location=null, "
        "message=Not found: Dataset proj:nope}\n]"
    )


async def test_load_uploads_the_file_in_resumable_chunks(
    google: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    api, account = google
    monkeypatch.setattr(bigquery, "UPLOAD_CHUNK", 8)
    session = "/upload/bigquery/v2/session/s1"
    api.on(
        "POST",
        "/upload/bigquery/v2/projects/proj/jobs",
        (200, {}, {"Location": api.url + session}),
    )
    loaded = job(
        "DONE",
        statistics={"load": {"outputRows": "2", "inputFileBytes": "20", "badRecords": "0"}},
    )

    def chunk(request: Request) -> tuple[int, Any]:
        if request.headers["content-range"].endswith("/*"):
            return 308, ""
        return 200, loaded

    api.on("PUT", session, chunk)
    api.on("GET", f"{JOBS}/job_1", (200, loaded))
    data = b"id,name\n1,alpha\n2,beta\n"
    source = tmp_path / "data.csv"
    source.write_bytes(data)
    from engine.stores.storage import LocalStorage, TaskLocation

    storage = LocalStorage(tmp_path / "storage")
    uri = await storage.put(TaskLocation("company.team", "f", "e", "t", "r"), "d.csv", data)
    task = {
        "id": "query",
        "type": P + "Load",
        "projectId": "proj",
        "serviceAccount": account,
        "from": uri,
        "destinationTable": "ds.people",
        "format": "CSV",
        "csvOptions": {"skipLeadingRows": 1, "fieldDelimiter": ","},
        "schema": {"fields": [{"name": "id", "type": "INT64"}, {"name": "name", "type": "STRING"}]},
        "writeDisposition": "WRITE_APPEND",
    }
    ctx = context(task, variables=VARIABLES, storage=storage.for_task(TaskLocation(
        "company.team", "f", "e", "t", "r")))  # fmt: skip
    outcome = await add_plugins(Registry()).run(task, ctx)
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {"jobId": "job_1", "destinationTable": "proj.ds.people", "rows": 2}
    assert outcome.metrics == {"output.rows": 2, "input.bytes": 20, "bad.records": 0}
    [start] = api.sent("POST", "/upload/bigquery/v2/projects/proj/jobs")
    assert start.query["uploadType"] == ["resumable"]
    assert start.json["configuration"]["load"] == {
        "destinationTable": {"projectId": "proj", "datasetId": "ds", "tableId": "people"},
        "writeDisposition": "WRITE_APPEND",
        "schema": {
            "fields": [{"name": "id", "type": "INTEGER"}, {"name": "name", "type": "STRING"}]
        },
        "sourceFormat": "CSV",
        "fieldDelimiter": ",",
        "skipLeadingRows": 1,
    }
    puts = api.sent("PUT", session)
    assert [p.headers["content-range"] for p in puts] == [
        "bytes 0-7/*", "bytes 8-15/*", "bytes 16-22/23"]  # fmt: skip
    assert b"".join(p.body for p in puts) == data
    assert all(p.headers["authorization"] == f"Bearer {TOKEN}" for p in puts)


async def test_extract_outputs_and_a_kill_cancels_the_running_job(
    google: tuple[Receiver, str],
) -> None:
    api, account = google
    stats = {"startTime": "1", "endTime": "2", "extract": {"destinationUriFileCounts": ["3"]}}
    api.on("POST", JOBS, (200, job("DONE", statistics=stats)))
    extracted, _ = await run(
        {
            "type": P + "ExtractToGcs",
            "sourceTable": "other.ds.events",
            "destinationUris": ["gs://b/events-*.avro"],
            "format": "AVRO",
            "compression": "SNAPPY",
            "useAvroLogicalTypes": True,
        },
        account,
    )
    assert extracted.outputs == {
        "jobId": "job_1",
        "sourceTable": "events",
        "destinationUris": ["gs://b/events-*.avro"],
        "fileCounts": [3],
    }
    assert extracted.metrics == {"duration": 0.001, "output.file_counts": 3}
    extract = api.last.json["configuration"]["extract"]
    assert extract == {
        "sourceTable": {"projectId": "other", "datasetId": "ds", "tableId": "events"},
        "destinationUris": ["gs://b/events-*.avro"],
        "compression": "SNAPPY",
        "destinationFormat": "AVRO",
        "useAvroLogicalTypes": True,
    }

    api.on("POST", JOBS, (200, job("RUNNING")))
    api.on("POST", f"{JOBS}/job_1/cancel", (200, {"job": job("DONE")}))
    killed, _ = await run({"type": P + "Query", "sql": "SELECT 1"}, account, cancelled=True)
    assert killed.state == "KILLED"
    [cancel] = api.sent("POST", f"{JOBS}/job_1/cancel")
    assert cancel.query["location"] == ["EU"]


async def test_a_refused_key_and_a_missing_project(
    google: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    api, _ = google
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with token_endpoint() as (token_uri, _key, _):
        wrong = service_account(token_uri, other)
        refused, _ = await run({"type": P + "Query", "sql": "SELECT 1"}, wrong)
    assert refused.state == "FAILED"
    assert "Google OAuth token request failed" in (refused.error or "")
    assert "PRIVATE KEY" not in (refused.error or "")
    assert api.requests == []
    plain = {"id": "q", "type": P + "Query", "sql": "SELECT 1"}
    # An emulator needs no credentials, but a project all the same.
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", api.url)
    outcome = await add_plugins(Registry()).run(plain, context(plain, variables=VARIABLES))
    assert outcome.error == "BigQuery: no project: set 'projectId' (or a 'serviceAccount' key)"


async def test_a_poll_meeting_a_transient_answer_is_tried_again(
    google: tuple[Receiver, str],
) -> None:
    api, account = google
    api.on("POST", JOBS, (200, job("RUNNING")))
    busy = {"error": {"code": 503, "message": "Service unavailable", "status": "UNAVAILABLE"}}
    api.on("GET", f"{JOBS}/job_1", [(503, busy), (200, job("DONE"))])
    time = FakeTime()
    outcome, ctx = await run({"type": P + "Query", "sql": "SELECT 1"}, account, time)
    assert outcome.state == "SUCCESS", outcome.error
    assert len(api.sent("GET", f"{JOBS}/job_1")) == 2
    assert time.slept == [0.5, 1.0]
    assert any("HTTP 503" in line.message for line in ctx.logs if line.level == "WARN")
