"""Cloudflare types against a real local HTTP receiver playing Cloudflare's v4 API: exact requests,
the envelope's result as outputs, and failures (a 4xx, an unsuccessful envelope, bad values)."""

from __future__ import annotations

from typing import Any

from executors.base import TaskContext, TaskOutcome
from tests.unit.api_receiver import Receiver, run_plugin, serve

P = "io.kestra.plugin.cloudflare."
TOKEN = "cf-T0KEN-secret"


async def run(task: dict[str, Any]) -> tuple[TaskOutcome, TaskContext]:
    task = {"id": "t", **task}
    return await run_plugin(task)


def ok(result: Any) -> tuple[int, Any]:
    return 200, {"success": True, "errors": [], "messages": [], "result": result}


def base(api: Receiver) -> dict[str, Any]:
    return {"apiToken": TOKEN, "baseUrl": api.url + "/client/v4"}


async def test_cache_purge() -> None:
    with serve() as api:
        api.on("POST", "/client/v4/zones/z1/purge_cache", ok({"id": "purge-1"}))
        task = {"type": P + "cache.Purge", **base(api), "zoneId": "z1"}
        outcome, _ = await run({**task, "purgeAll": True, "files": ["https://a.io/x.js"]})
        assert outcome.outputs == {"requestId": "purge-1"}
        assert api.last.json == {"purge_everything": True}
        assert api.last.headers["authorization"] == f"Bearer {TOKEN}"
        assert api.last.headers["accept"] == "application/json"
        outcome, _ = await run({**task, "files": ["https://{{ flow.id }}.io/"]})
        assert api.last.json == {"files": ["https://f.io/"]}
        outcome, _ = await run({**task, "tags": ["v1"]})
        assert api.last.json == {"tags": ["v1"]}
        outcome, _ = await run(task)
        assert (outcome.error or "").startswith("Invalid purge configuration.")
        api.on(
            "POST",
            "/client/v4/zones/z1/purge_cache",
            (
                403,
                {"success": False, "errors": [{"code": 10000, "message": "Authentication error"}]},
            ),
        )
        outcome, ctx = await run({**task, "purgeAll": True})
        assert outcome.error == (
            "Cloudflare: POST /client/v4/zones/z1/purge_cache failed with HTTP 403: "
            '{"success": false, "errors": [{"code": 10000, "message": "Authentication error"}]}'
        )
        assert not any(TOKEN in line.message for line in ctx.logs)


async def test_dns_upsert_creates_then_updates() -> None:
    with serve() as api:
        record = {
            "id": "r1",
            "name": "app.x.io",
            "type": "A",
            "content": "1.2.3.4",
            "ttl": 1,
            "proxied": False,
        }
        api.on("GET", "/client/v4/zones/z1/dns_records?name=app.x.io&type=A", ok([]))
        api.on("POST", "/client/v4/zones/z1/dns_records", ok(record))
        task = {
            "type": P + "dns.records.Upsert",
            **base(api),
            "zoneId": "z1",
            "recordType": "A",
            "name": "app.x.io",
            "content": "1.2.3.4",
        }
        outcome, _ = await run(task)
        assert outcome.outputs == {
            "recordId": "r1",
            "name": "app.x.io",
            "type": "A",
            "content": "1.2.3.4",
            "ttl": 1,
            "proxied": False,
            "action": "created",
        }
        assert api.last.json == {
            "type": "A",
            "name": "app.x.io",
            "content": "1.2.3.4",
            "ttl": 1,
            "proxied": False,
        }
        api.on("GET", "/client/v4/zones/z1/dns_records?name=app.x.io&type=A", ok([record]))
        api.on("PATCH", "/client/v4/zones/z1/dns_records/r1", ok({**record, "content": "5.6.7.8"}))
        outcome, _ = await run({**task, "content": "5.6.7.8", "proxied": True, "ttl": 300})
        assert outcome.outputs["action"] == "updated"
        assert api.last.target == "PATCH /client/v4/zones/z1/dns_records/r1"
        assert api.last.json["proxied"] is True
        assert api.last.json["ttl"] == 300
        api.on(
            "PATCH",
            "/client/v4/zones/z1/dns_records/r1",
            (200, {"success": False, "errors": [{"message": "bad"}]}),
        )
        outcome, _ = await run(task)
        assert outcome.error == "Upsert failed: [{'message': 'bad'}]"


async def test_access_rules() -> None:
    with serve() as api:
        rule = {
            "id": "rule9",
            "mode": "whitelist",
            "configuration": {"target": "ip", "value": "9.9.9.9"},
        }
        api.on("POST", "/client/v4/zones/z1/firewall/access_rules/rules", ok(rule))
        task = {
            "type": P + "waf.accessrules.Create",
            **base(api),
            "zoneId": "z1",
            "mode": "whitelist",
            "target": "IP",
            "value": "9.9.9.9",
            "notes": "canary",
        }
        outcome, _ = await run(task)
        assert outcome.outputs == {
            "ruleId": "rule9",
            "mode": "whitelist",
            "target": "ip",
            "value": "9.9.9.9",
        }
        assert api.last.json == {
            "mode": "whitelist",
            "configuration": {"target": "ip", "value": "9.9.9.9"},
            "notes": "canary",
        }
        outcome, _ = await run({**task, "mode": "allow"})
        assert (outcome.error or "").startswith("property 'mode': expected one of BLOCK, CHALLENGE")
        api.on(
            "DELETE",
            "/client/v4/accounts/a1/firewall/access_rules/rules/rule9",
            ok({"id": "rule9"}),
        )
        delete = {
            "type": P + "waf.accessrules.Delete",
            **base(api),
            "accountId": "a1",
            "ruleId": "rule9",
        }
        outcome, _ = await run(delete)
        assert outcome.outputs == {"ruleId": "rule9", "deleted": True}
        assert api.last.target == "DELETE /client/v4/accounts/a1/firewall/access_rules/rules/rule9"
        outcome, _ = await run({k: v for k, v in delete.items() if k != "accountId"})
        assert outcome.error == "Either zoneId or accountId must be provided (but not both)."
