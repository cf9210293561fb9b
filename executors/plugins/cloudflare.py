"""Kestra's Cloudflare types (kestra-io/plugin-cloudflare): cache purge, DNS, IP access rules.

Common properties: ``apiToken`` (Bearer), ``baseUrl`` (https://api.cloudflare.com/client/v4),
``options``. Calls go through :class:`executors.api_client.ApiClient` with ``Content-Type`` and
``Accept: application/json``; a refused call fails with Cloudflare's answer, and an answer whose
envelope is not ``success`` fails the task too.

- ``cache.Purge``: ``zoneId``, ``purgeAll`` (false), ``files``, ``tags``: POST
  ``/zones/{zoneId}/purge_cache`` with ``{"purge_everything": true}``, else ``{"files"}``, else
  ``{"tags"}`` (none of them: an error). Output ``requestId``.
- ``dns.records.Upsert``: ``zoneId``, ``recordType``, ``name``, ``content``, ``ttl`` (1 =
  automatic), ``proxied`` (false). GET ``/zones/{zoneId}/dns_records?name=&type=``; the first
  match is PATCHed (``/dns_records/{id}``), else one is POSTed; body ``{type, name, content, ttl,
  proxied}``. Outputs ``recordId``, ``name``, ``type``, ``content``, ``ttl``, ``proxied``,
  ``action`` (created/updated).
- ``waf.accessrules.Create``: ``zoneId`` or ``accountId`` (the scope), ``mode`` (block,
  challenge, whitelist, js_challenge, managed_challenge; any case), ``target`` (ip, ip_range,
  asn, country), ``value``, ``notes``: POST ``/{zones|accounts}/{id}/firewall/access_rules/rules``
  ``{"mode", "configuration": {"target", "value"}, "notes"}``. Outputs ``ruleId``, ``mode``,
  ``target``, ``value``.
- ``waf.accessrules.Delete``: ``zoneId`` or ``accountId``, ``ruleId``: DELETE
  ``.../firewall/access_rules/rules/{ruleId}``. Outputs ``ruleId``, ``deleted``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from executors.api_client import ApiClient
from executors.base import TaskContext, TaskError
from executors.http_client import HttpOptions
from executors.plugin import (
    TaskPlugin,
    render_bool,
    render_int,
    render_str,
    render_texts,
)
from schemas.flow.common import BoolOrExpr, IntOrExpr, Str

CLOUDFLARE_URL = "https://api.cloudflare.com/client/v4"
MODES = ("BLOCK", "CHALLENGE", "WHITELIST", "JS_CHALLENGE", "MANAGED_CHALLENGE")
TARGETS = ("IP", "IP_RANGE", "ASN", "COUNTRY")


class _Cloudflare(TaskPlugin):
    family: ClassVar[str] = "cloudflare"

    apiToken: Str
    baseUrl: Str | None = CLOUDFLARE_URL
    options: HttpOptions | None = None

    def client(self, ctx: TaskContext) -> ApiClient:
        token = render_str(ctx, self.apiToken, "apiToken", required=True) or ""
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        url = ctx.render_str(self.baseUrl) or CLOUDFLARE_URL
        return ApiClient(
            ctx, "Cloudflare", url, headers=headers, secrets=[token], options=self.options
        )

    @staticmethod
    def envelope(answer: dict[str, Any], what: str) -> Any:
        if answer.get("success") is not True:
            raise TaskError(f"{what} failed: {answer.get('errors') or answer}")
        return answer.get("result")


class CachePurge(_Cloudflare):
    """Purge a Cloudflare zone's cache (everything, files or tags)."""

    short: ClassVar[str | None] = "cloudflare_cache_purge"
    type: Literal["io.kestra.plugin.cloudflare.cache.Purge"]
    zoneId: Str
    purgeAll: BoolOrExpr | None = False
    files: list[Str] | Str | None = None
    tags: list[Str] | Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        zone = render_str(ctx, self.zoneId, "zoneId", required=True)
        files, tags = render_texts(ctx, self.files, "files"), render_texts(ctx, self.tags, "tags")
        body: dict[str, Any]
        if render_bool(ctx, self.purgeAll, "purgeAll"):
            ctx.log("INFO", f"Purging entire cache for zone '{zone}'")
            body = {"purge_everything": True}
        elif files:
            ctx.log("INFO", f"Purging {len(files)} file(s) for zone '{zone}'")
            body = {"files": files}
        elif tags:
            ctx.log("INFO", f"Purging {len(tags)} tag(s) for zone '{zone}'")
            body = {"tags": tags}
        else:
            raise TaskError(
                "Invalid purge configuration. Provide either 'purgeAll: true', non-empty "
                "'files', or non-empty 'tags'."
            )
        async with self.client(ctx) as api:
            answer = await api.object("POST", f"/zones/{zone}/purge_cache", json=body)
        result = self.envelope(answer, "Cache purge")
        if not isinstance(result, dict):
            raise TaskError(f"Cache purge failed: {answer}")
        return {"requestId": result.get("id")}


class DnsRecordUpsert(_Cloudflare):
    """Create a DNS record, or update the existing one of that name and type."""

    short: ClassVar[str | None] = "cloudflare_dns_records_upsert"
    type: Literal["io.kestra.plugin.cloudflare.dns.records.Upsert"]
    zoneId: Str
    recordType: Str
    name: Str
    content: Str
    ttl: IntOrExpr | None = 1
    proxied: BoolOrExpr | None = False

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        zone = render_str(ctx, self.zoneId, "zoneId", required=True)
        kind = render_str(ctx, self.recordType, "recordType", required=True)
        name = render_str(ctx, self.name, "name", required=True)
        body = {
            "type": kind,
            "name": name,
            "content": render_str(ctx, self.content, "content", required=True),
            "ttl": render_int(ctx, self.ttl, "ttl", 1),
            "proxied": render_bool(ctx, self.proxied, "proxied"),
        }
        records = f"/zones/{zone}/dns_records"
        async with self.client(ctx) as api:
            found = await api.object("GET", records, params={"name": name, "type": kind})
            existing = found.get("result")
            if isinstance(existing, list) and existing:
                record_id = existing[0].get("id")
                ctx.log("INFO", f"Record exists (id={record_id}), updating...")
                answer = await api.object("PATCH", f"{records}/{record_id}", json=body)
                action = "updated"
            else:
                ctx.log("INFO", "Record does not exist, creating...")
                answer = await api.object("POST", records, json=body)
                action = "created"
        result = self.envelope(answer, "Upsert") or {}
        return {
            "recordId": result.get("id"),
            "name": result.get("name"),
            "type": result.get("type"),
            "content": result.get("content"),
            "ttl": result.get("ttl"),
            "proxied": result.get("proxied"),
            "action": action,
        }


class _AccessRule(_Cloudflare):
    zoneId: Str | None = None
    accountId: Str | None = None

    def scope(self, ctx: TaskContext) -> tuple[str, str]:
        if self.zoneId is not None:
            return "zone", f"/zones/{render_str(ctx, self.zoneId, 'zoneId', required=True)}"
        if self.accountId is None:
            raise TaskError("Either zoneId or accountId must be provided (but not both).")
        account = render_str(ctx, self.accountId, "accountId", required=True)
        return "account", f"/accounts/{account}"


def _upper(ctx: TaskContext, value: Any, name: str, allowed: tuple[str, ...]) -> str:
    text = (render_str(ctx, value, name, required=True) or "").upper()
    if text not in allowed:
        raise TaskError(f"property '{name}': expected one of {', '.join(allowed)}, got {text!r}")
    return text


class AccessRuleCreate(_AccessRule):
    """Create a Cloudflare IP access rule on a zone or an account."""

    short: ClassVar[str | None] = "cloudflare_waf_accessrules_create"
    type: Literal["io.kestra.plugin.cloudflare.waf.accessrules.Create"]
    mode: Str
    target: Str
    value: Str
    notes: Str | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        mode = _upper(ctx, self.mode, "mode", MODES).lower()
        target = _upper(ctx, self.target, "target", TARGETS).lower()
        value = render_str(ctx, self.value, "value", required=True)
        level, scope = self.scope(ctx)
        ctx.log(
            "INFO",
            f"Creating {level}-level access rule for target '{value}' with mode '{mode.upper()}'",
        )
        body: dict[str, Any] = {"mode": mode, "configuration": {"target": target, "value": value}}
        notes = ctx.render_str(self.notes)
        if notes and notes.strip():
            body["notes"] = notes
        async with self.client(ctx) as api:
            answer = await api.object("POST", f"{scope}/firewall/access_rules/rules", json=body)
        result = self.envelope(answer, "Access rule creation")
        if not isinstance(result, dict) or not result.get("id"):
            raise TaskError("Cloudflare API call failed: no rule id in the answer.")
        ctx.log("INFO", f"Access rule '{result['id']}' created successfully")
        configuration = result.get("configuration") or {}
        return {
            "ruleId": result["id"],
            "mode": result.get("mode"),
            "target": configuration.get("target"),
            "value": configuration.get("value"),
        }


class AccessRuleDelete(_AccessRule):
    """Delete a Cloudflare IP access rule."""

    short: ClassVar[str | None] = "cloudflare_waf_accessrules_delete"
    type: Literal["io.kestra.plugin.cloudflare.waf.accessrules.Delete"]
    ruleId: Str

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        rule = render_str(ctx, self.ruleId, "ruleId", required=True)
        level, scope = self.scope(ctx)
        ctx.log("INFO", f"Deleting {level}-level IP access rule '{rule}'")
        async with self.client(ctx) as api:
            answer = await api.object("DELETE", f"{scope}/firewall/access_rules/rules/{rule}")
        self.envelope(answer, "Access rule deletion")
        ctx.log("INFO", f"Access rule '{rule}' deleted successfully")
        return {"ruleId": rule, "deleted": True}


PLUGINS: list[type[TaskPlugin]] = [CachePurge, DnsRecordUpsert, AccessRuleCreate, AccessRuleDelete]
