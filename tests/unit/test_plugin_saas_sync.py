"""The sync types (Hightouch, Airbyte, Airbyte Cloud, Fivetran) against a real local HTTP receiver
playing each API: the exact calls, the job's status moving until it ends, failure states,
retries of transient answers, timeouts and kills. Time is a fake clock advanced by the sleeps."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from executors.api_client import BASE_URLS
from executors.base import TaskContext, TaskOutcome
from executors.registry import Registry, add_plugins
from tests.unit.api_receiver import FakeTime, Receiver, context, run_plugin, serve

P = "io.kestra.plugin."
TOKEN = "T0KEN-secret-value"


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    with serve() as receiver:
        monkeypatch.setitem(BASE_URLS, "hightouch", receiver.url)
        monkeypatch.setitem(BASE_URLS, "airbyte_cloud", receiver.url + "/v1")
        yield receiver


async def run(
    task: dict[str, Any], time: FakeTime | None = None
) -> tuple[TaskOutcome, TaskContext]:
    task = {"id": "sync", **task}
    return await run_plugin(task, time=time)


def messages(ctx: TaskContext, level: str | None = None) -> list[str]:
    return [line.message for line in ctx.logs if level is None or line.level == level]


def no_secret(outcome: TaskOutcome, ctx: TaskContext, *secrets: str) -> None:
    for text in [outcome.error or "", repr(outcome.outputs), *messages(ctx)]:
        assert not any(s in text for s in secrets)


# --------------------------------------------------------------------------------------------
# Hightouch

HIGHTOUCH = {"type": P + "hightouch.Sync", "token": TOKEN, "syncId": 1127166}


def hightouch_run(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "data": [
            {"id": 41, "status": "success"},
            {
                "id": 42,
                "status": status,
                "createdAt": "2025-01-02T03:04:05Z",
                "finishedAt": "2025-01-02T03:05:06.5Z",
                "completionRatio": 1,
                "successfulRows": {"addedCount": 5, "changedCount": 2, "removedCount": 1},
                "failedRows": {"addedCount": 0, "changedCount": 1, "removedCount": 0},
                **extra,
            },
        ]
    }


async def test_hightouch_triggers_and_waits_for_the_run(api: Receiver) -> None:
    api.on("GET", "/api/v1/syncs/1127166", (200, {"id": 1127166, "slug": "orders"}))
    api.on("POST", "/api/v1/syncs/1127166/trigger", (200, {"id": 42}))
    api.on(
        "GET",
        "/api/v1/syncs/1127166/runs?runId=42",
        [(200, {"data": []}), (200, hightouch_run("querying")), (200, hightouch_run("completed"))],
    )
    time = FakeTime()
    outcome, ctx = await run({**HIGHTOUCH, "fullResynchronization": True}, time)
    assert outcome.state == "SUCCESS", outcome.error
    assert [r.target for r in api.requests] == [
        "GET /api/v1/syncs/1127166",
        "POST /api/v1/syncs/1127166/trigger",
        *["GET /api/v1/syncs/1127166/runs"] * 3,
    ]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in api.requests)
    assert api.requests[1].json == {"fullResync": True}
    assert api.requests[2].query == {"runId": ["42"]}
    assert time.slept == [1.0, 1.0]
    assert outcome.outputs["runId"] == 42
    assert outcome.outputs["metadata"]["status"] == "success"  # "completed" is Kestra's alias
    assert outcome.metrics == {
        "completion.ratio": 1,
        "rows.successfully.added": 5,
        "rows.successfully.removed": 1,
        "rows.successfully.changed": 2,
        "rows.failed.added": 0,
        "rows.failed.removed": 0,
        "rows.failed.changed": 1,
    }
    assert "[syncId=1127166] orders: Job triggered with runId 42" in messages(ctx)
    assert "[syncId=1127166] orders: [runId=42] is now querying" in messages(ctx)


async def test_hightouch_failures_warnings_timeouts(api: Receiver) -> None:
    api.on("GET", "/api/v1/syncs/1127166", (200, {"id": 1127166, "slug": "orders"}))
    api.on("POST", "/api/v1/syncs/1127166/trigger", (200, {"id": 42}))
    runs = "/api/v1/syncs/1127166/runs?runId=42"
    api.on("GET", runs, (200, hightouch_run("failed")))
    outcome, _ = await run(HIGHTOUCH)
    assert outcome.error == "Failed run with status 'failed' after 0:01:01.500: failed"
    api.on("GET", f"{runs}", (200, hightouch_run("completed_with_errors")))
    outcome, ctx = await run(HIGHTOUCH)
    assert outcome.state == "SUCCESS"
    assert any("Run completed with errors (runId=42)" in m for m in messages(ctx, "WARN"))
    api.on("GET", f"{runs}", (200, hightouch_run("processing")))
    outcome, _ = await run({**HIGHTOUCH, "maxDuration": "PT3S"})
    assert outcome.error == "Hightouch sync: Await failed to terminate within PT3S"
    outcome, _ = await run({**HIGHTOUCH, "wait": False})
    assert (outcome.state, outcome.outputs) == ("SUCCESS", {"runId": 42})
    api.on("POST", "/api/v1/syncs/1127166/trigger", (401, {"message": "Invalid token"}))
    outcome, ctx = await run(HIGHTOUCH)
    assert outcome.error == (
        'Hightouch: POST /api/v1/syncs/1127166/trigger failed with HTTP 401: {"message": '
        '"Invalid token"}'
    )
    no_secret(outcome, ctx, TOKEN)


# --------------------------------------------------------------------------------------------
# Airbyte (self-hosted)


def airbyte_job(status: str, *lines: str, attempts: int = 1) -> dict[str, Any]:
    attempt = {
        "attempt": {
            "id": 0,
            "status": status,
            "streamStats": [
                {"streamName": "users", "stats": {"recordsEmitted": 10, "recordsCommitted": 9}},
                {"streamName": "orders", "stats": {"recordsEmitted": 5, "bytesEmitted": 700}},
            ],
        },
        "logs": {"logLines": list(lines)},
    }
    failed = {**attempt, "attempt": {"id": 1, "failureSummary": {"failures": ["boom"]}}}
    return {
        "job": {"id": 970, "status": status},
        "attempts": [attempt] + [failed] * (attempts - 1),
    }


async def test_airbyte_sync_waits_streams_logs_and_sums_metrics() -> None:
    with serve() as api:
        api.on(
            "POST", "/api/v1/connections/sync/", (200, {"job": {"id": 970, "status": "running"}})
        )
        api.on(
            "POST",
            "/api/v1/jobs/get/",
            [
                (503, "busy"),
                (200, airbyte_job("running", "INFO[1] start")),
                (200, airbyte_job("succeeded", "INFO[1] start", "ERROR[2] oops", "done")),
            ],
        )
        time = FakeTime()
        task = {
            "type": P + "airbyte.connections.Sync",
            "url": api.url + "/",
            "connectionId": "e3b1ce92",
            "token": TOKEN,
            "pollFrequency": "PT2S",
        }
        outcome, ctx = await run(task, time)
        assert outcome.state == "SUCCESS", outcome.error
        sync, *polls = api.requests
        assert sync.target == "POST /api/v1/connections/sync/"
        assert sync.json == {"connectionId": "e3b1ce92"}
        assert sync.headers["authorization"] == f"Bearer {TOKEN}"
        assert sync.headers["accept-encoding"] == "identity"
        assert [p.json for p in polls] == [{"id": 970}] * 3
        assert time.slept == [1.0, 2.0]  # the 503 retried after 1 s, then one poll interval
        assert outcome.outputs == {"jobId": 970, "alreadyRunning": False}
        assert outcome.metrics == {
            "attempts.count": 1,
            "records.emitted": 15,
            "records.committed": 9,
            "bytes.emitted": 700,
        }
        logs = [(line.level, line.message) for line in ctx.logs]
        assert ("INFO", "INFO[1] start") in logs
        assert ("ERROR", "ERROR[2] oops") in logs
        assert ("INFO", "done") in logs
        assert [m for _, m in logs].count("INFO[1] start") == 1
        assert any("HTTP 503: busy; retrying in PT1S" in m for m in messages(ctx, "WARN"))


async def test_airbyte_already_running_failed_jobs_and_credentials() -> None:
    with serve() as api:
        sync = {"type": P + "airbyte.connections.Sync", "url": api.url, "connectionId": "c1"}
        api.on("POST", "/api/v1/connections/sync/", (409, {"message": "A sync is already running"}))
        outcome, _ = await run({**sync, "username": "u", "password": "pw-secret"})
        assert (outcome.error or "").startswith("A sync is already running: Airbyte: POST")
        expected = "Basic " + base64.b64encode(b"u:pw-secret").decode()
        assert api.last.headers["authorization"] == expected
        outcome, _ = await run({**sync, "failOnActiveSync": False})
        assert outcome.outputs == {"jobId": None, "alreadyRunning": True}

        api.on("POST", "/api/v1/connections/sync/", (200, {"job": {"id": 970}}))
        api.on("POST", "/api/v1/applications/token", (200, {"access_token": "app-token"}))
        api.on("POST", "/api/v1/jobs/get/", (200, airbyte_job("failed", attempts=2)))
        creds = {"clientId": "cid", "clientSecret": "csecret"}
        outcome, ctx = await run({**sync, "applicationCredentials": creds})
        assert outcome.error == "Failed run with status 'failed' after 2 attempt(s)"
        token_call = api.sent("POST", "/api/v1/applications/token")[-1]
        assert token_call.json == {
            "client_id": "cid",
            "client_secret": "csecret",
            "grant-type": "client_credentials",
        }
        assert api.last.headers["authorization"] == "Bearer app-token"
        assert "Failure with reason {'failures': ['boom']}" in messages(ctx, "WARN")
        no_secret(outcome, ctx, "csecret", "app-token")

        check = {"type": P + "airbyte.connections.CheckStatus", "url": api.url, "jobId": "970"}
        api.on("POST", "/api/v1/jobs/get/", (200, airbyte_job("succeeded")))
        outcome, _ = await run(check)
        assert outcome.outputs == {"finalJobStatus": "succeeded"}
        api.on("POST", "/api/v1/jobs/get/", (400, {"message": "Job 970 not found"}))
        outcome, _ = await run(check)
        assert outcome.error == (
            'Airbyte: POST /api/v1/jobs/get/ failed with HTTP 400: {"message": "Job 970 not found"}'
        )


# --------------------------------------------------------------------------------------------
# Airbyte Cloud

CLOUD_JOB = {
    "jobId": 7,
    "status": "running",
    "jobType": "sync",
    "startTime": "2025-01-02T03:04:05Z",
}


async def test_airbyte_cloud_sync_and_reset(api: Receiver) -> None:
    done = {
        **CLOUD_JOB,
        "status": "succeeded",
        "duration": "PT1M30S",
        "bytesSynced": 10,
        "rowsSynced": 2,
    }
    api.on("POST", "/v1/jobs", (200, CLOUD_JOB))
    api.on("GET", "/v1/jobs/7", [(200, CLOUD_JOB), (200, done)])
    task = {"type": P + "airbyte.cloud.jobs.Sync", "token": TOKEN, "connectionId": "c1"}
    outcome, _ = await run(task)
    assert outcome.state == "SUCCESS", outcome.error
    assert api.requests[0].json == {"connectionId": "c1", "jobType": "sync"}
    assert api.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert [r.target for r in api.requests[1:]] == ["GET /v1/jobs/7"] * 2
    assert outcome.outputs["job"] == {
        "jobId": 7,
        "startTime": "2025-01-02T03:04:05Z",
        "lastUpdatedAt": None,
        "jobType": "sync",
        "status": "succeeded",
        "duration": "PT1M30S",
        "bytesSynced": 10,
        "rowsSynced": 2,
    }
    assert outcome.metrics == {"bytes_synced": 10, "rows_synced": 2, "duration": 90.0}

    api.on("POST", "/token", (200, {"access_token": "exchanged"}))
    api.on("GET", "/v1/jobs/7", (200, {**CLOUD_JOB, "status": "incomplete"}))
    reset = {
        "type": P + "airbyte.cloud.jobs.Reset",
        "clientId": "cid",
        "clientSecret": "csecret",
        "tokenURL": api.url + "/token",
        "connectionId": "c1",
    }
    outcome, ctx = await run(reset)
    assert outcome.error == "Airbyte Cloud job 7 ended with status 'incomplete'"
    assert api.sent("POST", "/token")[0].json["client_secret"] == "csecret"
    assert api.sent("POST", "/v1/jobs")[-1].json == {"connectionId": "c1", "jobType": "reset"}
    assert api.last.headers["authorization"] == "Bearer exchanged"
    no_secret(outcome, ctx, "csecret", "exchanged")
    outcome, _ = await run({**task, "wait": False})
    assert outcome.outputs["job"]["status"] == "running"


# --------------------------------------------------------------------------------------------
# Fivetran


def connector(succeeded: str | None, failed: str | None = None) -> dict[str, Any]:
    return {
        "code": "Success",
        "data": {"id": "c 1", "succeeded_at": succeeded, "failed_at": failed},
    }


async def test_fivetran_sync_waits_for_a_newer_completion() -> None:
    with serve() as api:
        path = "/v2/connectors/c%201"
        before = connector("2025-01-01T00:00:00Z", "2024-12-01T00:00:00Z")
        after = connector("2025-01-02T00:00:00Z", "2024-12-01T00:00:00Z")
        api.on("GET", path, [(200, before), (200, before), (503, "unavailable"), (200, after)])
        api.on("POST", path + "/sync", (200, {"code": "Success", "message": "Sync triggered"}))
        task = {
            "type": P + "fivetran.connectors.Sync",
            "apiKey": "key",
            "apiSecret": "SECRET-api",
            "baseUrl": api.url,
            "connectorId": "c 1",
            "force": True,
            "maxAttempts": 2,
        }
        time = FakeTime()
        outcome, ctx = await run(task, time)
        assert outcome.state == "SUCCESS", outcome.error
        assert outcome.outputs == {}
        basic = "Basic " + base64.b64encode(b"key:SECRET-api").decode()
        assert all(r.headers["authorization"] == basic for r in api.requests)
        assert all(r.headers["accept"] == "application/json;version=2" for r in api.requests)
        assert api.sent("POST", path + "/sync")[0].json == {"force": True}
        assert time.slept == [5.0, 1.0]  # one poll interval, then the 503 retried after 1 s
        no_secret(outcome, ctx, "SECRET-api")


async def test_fivetran_failure_post_not_retried_and_validation() -> None:
    with serve() as api:
        path = "/v2/connectors/c1"
        task = {
            "type": P + "fivetran.connectors.Sync",
            "apiKey": "key",
            "apiSecret": "ft-SECRET",
            "baseUrl": api.url,
            "connectorId": "c1",
        }
        api.on(
            "GET", path, [(200, connector(None)), (200, connector(None, "2025-01-02T00:00:00Z"))]
        )
        api.on("POST", path + "/sync", (200, {"code": "Success"}))
        outcome, _ = await run(task)
        assert (outcome.error or "").startswith("Connector 'c1' failed: {")
        api.on("POST", f"{path}/sync", (503, {"code": "ServiceUnavailable"}))
        before = len(api.sent("POST", path + "/sync"))
        outcome, _ = await run(task)
        assert "POST /v2/connectors/c1/sync failed with HTTP 503" in (outcome.error or "")
        assert len(api.sent("POST", path + "/sync")) == before + 1
        outcome, _ = await run({**task, "maxAttempts": 0})
        assert outcome.error == "maxAttempts must be at least 1, but was 0"
        api.on("GET", f"{path}", [(200, connector(None)), (503, "down")])
        api.on("POST", f"{path}/sync", (200, {}))
        outcome, _ = await run({**task, "maxDuration": "PT12S", "maxAttempts": 1})
        assert (outcome.error or "").startswith(
            "Connector 'c1' did not complete within PT12S, last error while polling: Fivetran: "
            "GET /v2/connectors/c1 failed with HTTP 503: down"
        )


async def test_a_kill_while_waiting_ends_the_task_killed(api: Receiver) -> None:
    api.on("GET", "/api/v1/syncs/1127166", (200, {"id": 1127166, "slug": "orders"}))
    api.on("POST", "/api/v1/syncs/1127166/trigger", (200, {"id": 42}))
    api.on("GET", "/api/v1/syncs/1127166/runs?runId=42", (200, hightouch_run("processing")))
    task = {"id": "sync", **HIGHTOUCH}
    ctx = context(task)
    ctx.cancelled.set()
    outcome = await add_plugins(Registry()).run(task, ctx)
    assert outcome.state == "KILLED"
    assert len(api.sent("GET", "/api/v1/syncs/1127166/runs")) == 1
