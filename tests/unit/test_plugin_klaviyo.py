"""Klaviyo read types against a real local HTTP receiver: one GET per id after Kestra's delay, the
JSON:API headers, the fetch types and a refused id."""

from __future__ import annotations

from typing import Any

from executors.base import TaskContext, TaskOutcome
from tests.unit.api_receiver import FakeTime, run_plugin, serve


async def run(
    task: dict[str, Any], time: FakeTime | None = None
) -> tuple[TaskOutcome, TaskContext]:
    task = {"id": "k", **task}
    return await run_plugin(task, time=time)


async def test_recipient_counts_and_send_jobs() -> None:
    with serve() as api:
        for cid, count in (("c1", 120), ("c2", 7)):
            body = {
                "data": {
                    "type": "campaign-recipient-estimation",
                    "id": cid,
                    "attributes": {"estimated_recipient_count": count},
                }
            }
            api.on("GET", f"/api/campaign-recipient-estimations/{cid}", (200, body))
        time = FakeTime()
        task = {
            "type": "io.kestra.plugin.klaviyo.campaign.GetRecipientCount",
            "apiKey": "pk_SECRET",
            "baseUrl": api.url + "/api",
            "campaignIds": ["c1", "c2"],
        }
        outcome, ctx = await run(task, time)
        assert outcome.state == "SUCCESS", outcome.error
        assert outcome.outputs["size"] == 2
        assert [r["attributes"]["estimated_recipient_count"] for r in outcome.outputs["rows"]] == [
            120,
            7,
        ]
        assert time.slept == [1.0, 1.0]
        first = api.requests[0]
        assert first.headers["authorization"] == "Klaviyo-API-Key pk_SECRET"
        assert first.headers["revision"] == "2025-10-15"
        assert first.headers["accept"] == "application/vnd.api+json"
        assert "Successfully retrieved 2 recipient estimation(s)" in [m.message for m in ctx.logs]
        outcome, _ = await run({**task, "fetchType": "FETCH_ONE"})
        assert outcome.outputs["row"]["id"] == "c1"

        api.on("GET", "/api/campaign-send-jobs/j1", (404, {"errors": [{"detail": "Not found"}]}))
        jobs = {
            "type": "io.kestra.plugin.klaviyo.jobs.GetSendJob",
            "apiKey": "pk_SECRET",
            "baseUrl": api.url + "/api",
            "jobIds": ["j1"],
        }
        outcome, _ = await run(jobs)
        assert (
            outcome.error
            == 'Failed to retrieve send job j1: 404 - {"errors": [{"detail": "Not found"}]}'
        )
