"""Kestra's Klaviyo read types (kestra-io/plugin-klaviyo) that fetch one JSON:API resource per id.

Common properties: ``apiKey`` (header ``Authorization: Klaviyo-API-Key <key>``), ``baseUrl``
(https://a.klaviyo.com/api), ``fetchType`` (FETCH (default): ``rows``; FETCH_ONE: ``row``, the
first; STORE: ``uri``, an ION file of them; NONE). Every request carries ``revision:
2025-10-15`` and ``Accept: application/vnd.api+json``, and waits one second first
(:data:`REQUEST_DELAY_S`, Kestra's ``induceDelay`` for Klaviyo's rate limits; a kill during the
wait ends the task KILLED). Any answer but 200 fails ("Failed to retrieve ...: N - body"). Each
answer's ``data`` is one row; output ``size`` counts them.

- ``campaign.GetRecipientCount``: ``campaignIds`` -> GET
  ``/campaign-recipient-estimations/{id}`` each.
- ``jobs.GetSendJob``: ``jobIds`` -> GET ``/campaign-send-jobs/{id}`` each.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from executors import ion
from executors.api_client import ApiClient, ApiTask, Killed
from executors.base import TaskContext, TaskError, TaskOutcome
from executors.plugin import TaskPlugin, render_str, render_texts
from schemas.flow.common import Str

KLAVIYO_URL = "https://a.klaviyo.com/api"
API_REVISION = "2025-10-15"
# Kestra waits this long before each call, to stay under Klaviyo's rate limits.
REQUEST_DELAY_S = 1.0


class _KlaviyoRead(ApiTask):
    family: ClassVar[str] = "klaviyo"
    resource: ClassVar[str] = ""
    noun: ClassVar[str] = ""
    # "Failed to retrieve {what} {id}" (Kestra's words).
    what: ClassVar[str] = ""
    ids_property: ClassVar[str] = ""

    apiKey: Str
    baseUrl: Str | None = KLAVIYO_URL
    fetchType: Literal["STORE", "FETCH", "FETCH_ONE", "NONE"] | Str | None = "FETCH"

    def ids(self, ctx: TaskContext) -> list[str]:
        raise NotImplementedError

    async def execute(self, ctx: TaskContext) -> TaskOutcome | dict[str, Any]:
        key = render_str(ctx, self.apiKey, "apiKey", required=True) or ""
        url = ctx.render_str(self.baseUrl) or KLAVIYO_URL
        kind = (ctx.render_str(self.fetchType) or "FETCH").upper()
        if kind not in ("FETCH", "FETCH_ONE", "STORE", "NONE"):
            raise TaskError(f"property 'fetchType': unknown value {kind!r}")
        headers = {
            "Authorization": f"Klaviyo-API-Key {key}",
            "Accept": "application/vnd.api+json",
            "revision": API_REVISION,
        }
        rows: list[dict[str, Any]] = []
        async with ApiClient(ctx, "Klaviyo", url, headers=headers, secrets=[key]) as api:
            for item in self.ids(ctx):
                if not await ctx.sleep(REQUEST_DELAY_S):
                    raise Killed
                answer = await api.call(
                    "GET",
                    f"/{self.resource}/{item}",
                    headers={"Content-Type": "application/json"},
                    allow=lambda code: True,
                )
                if answer.status != 200:
                    raise TaskError(
                        f"Failed to retrieve {self.what} {item}: {answer.status} - "
                        f"{api.mask(answer.text[:2000])}"
                    )
                data = answer.object().get("data")
                if isinstance(data, dict):
                    rows.append(data)
        ctx.log("INFO", f"Successfully retrieved {len(rows)} {self.noun}(s)")
        out: dict[str, Any] = {"size": len(rows)}
        if kind == "FETCH":
            out["rows"] = rows
        elif kind == "FETCH_ONE":
            out["row"] = rows[0] if rows else None
        elif kind == "STORE":
            if ctx.storage is None:
                raise TaskError("Klaviyo: this worker has no internal storage for STORE")
            data_bytes = "".join(ion.dumps(row) + "\n" for row in rows).encode()
            out["uri"] = await ctx.storage.put(ctx.execution_id, "rows.ion", data_bytes)
        return out


class GetRecipientCount(_KlaviyoRead):
    """Estimate the recipients of Klaviyo campaigns."""

    short: ClassVar[str | None] = "klaviyo_campaign_getrecipientcount"
    resource: ClassVar[str] = "campaign-recipient-estimations"
    noun: ClassVar[str] = "recipient estimation"
    what: ClassVar[str] = "recipient estimation for campaign"

    type: Literal["io.kestra.plugin.klaviyo.campaign.GetRecipientCount"]
    campaignIds: list[Str] | Str

    def ids(self, ctx: TaskContext) -> list[str]:
        return render_texts(ctx, self.campaignIds, "campaignIds", required=True)


class GetSendJob(_KlaviyoRead):
    """Read Klaviyo campaign send jobs."""

    short: ClassVar[str | None] = "klaviyo_jobs_getsendjob"
    resource: ClassVar[str] = "campaign-send-jobs"
    noun: ClassVar[str] = "send job"
    what: ClassVar[str] = "send job"

    type: Literal["io.kestra.plugin.klaviyo.jobs.GetSendJob"]
    jobIds: list[Str] | Str

    def ids(self, ctx: TaskContext) -> list[str]:
        return render_texts(ctx, self.jobIds, "jobIds", required=True)


PLUGINS: list[type[TaskPlugin]] = [GetRecipientCount, GetSendJob]
