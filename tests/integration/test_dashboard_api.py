"""The dashboard's routes against Tansu and PostgreSQL: static pages, counts, throughput,
system status, topology, and the trigger list and toggle (a record on hw.trigger-state).

Read-model rows are inserted directly (the projector's job is tested elsewhere); the module
gets its own database, each test its own topic prefix and namespace.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from pydantic import SecretStr

from engine.api import ApiServices, create_app
from engine.bus import AsyncConsumer, AsyncProducer, BusAdmin, Topics, ensure_topics
from engine.errors import BusError
from engine.projector.databases import create_database, drop_database
from engine.settings import ApiSettings, PostgresSettings, Settings
from engine.stores.kv import ensure_kv_topic, kv_topic
from triggers.state import decode_state

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

# Waits for the API's bus connection and for a record to cross the broker.
ARRIVAL_S = 30.0
YAML = {"content-type": "application/x-yaml"}


@pytest.fixture(scope="module")
def db(settings: Settings) -> Iterator[str]:
    admin = settings.postgres.dsn.get_secret_value()
    name = f"headwater_dash_{uuid.uuid4().hex[:12]}"
    try:
        dsn = asyncio.run(create_database(admin, name))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL not reachable ({exc}); start it with `make services-up`")
    yield dsn
    asyncio.run(drop_database(admin, name))


@dataclass
class Dash:
    client: httpx.AsyncClient
    settings: Settings
    topics: Topics
    dsn: str
    ns: str

    async def sql(self, sql: str, *args: Any) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute(sql, *args)
        finally:
            await conn.close()

    async def executions(self, rows: list[tuple[str, str, str, datetime]]) -> None:
        """Insert (id, flow id, state, start) rows in this test's namespace."""
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.executemany(
                "INSERT INTO executions (id, namespace, flow_id, state, start_date, last_seq,"
                " updated) VALUES ($1, $2, $3, $4, $5, 1, $5)",
                [(i, self.ns, f, s, t) for i, f, s, t in rows],
            )
        finally:
            await conn.close()

    async def flow(self, flow_id: str, flow: dict[str, Any], *, deleted: bool = False) -> None:
        await self.sql(
            "INSERT INTO flows (namespace, id, revision, source, flow, deleted, updated)"
            " VALUES ($1, $2, 1, '', $3::jsonb, $4, now())",
            self.ns,
            flow_id,
            orjson.dumps(flow).decode(),
            deleted,
        )


async def start(settings: Settings, dsn: str) -> AsyncIterator[Dash]:
    admin = BusAdmin(settings.kafka)
    try:
        await admin.wait_ready()
    except BusError as exc:
        pytest.fail(f"Kafka broker not reachable ({exc}); start it with `make services-up`")
    topics = await ensure_topics(admin, settings.kafka)
    services = ApiServices(settings)
    await services.start()
    try:
        async with asyncio.timeout(ARRIVAL_S):
            while True:
                if services.bus_ready:
                    break
                await asyncio.sleep(0.05)
        await services.pool()  # migrates the fresh database
        app = create_app(settings, services)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield Dash(client, settings, topics, dsn, f"dash{uuid.uuid4().hex[:8]}")
    finally:
        await services.close()
        await admin.delete_topics(t.name for t in topics.all())


def make_settings(base: Settings, dsn: str, **api: Any) -> Settings:
    kafka = base.kafka.model_copy(
        update={"topic_prefix": f"td{uuid.uuid4().hex[:10]}.", "partitions": 2}
    )
    return Settings(
        kafka=kafka, postgres=PostgresSettings(dsn=SecretStr(dsn)), api=ApiSettings(**api)
    )


@pytest.fixture
async def dash(settings: Settings, db: str) -> AsyncIterator[Dash]:
    async for d in start(make_settings(settings, db), db):
        yield d


# --------------------------------------------------------------------------- pages


async def test_pages_are_served_with_a_csp_and_nothing_else(dash: Dash) -> None:
    c = dash.client
    r = await c.get("/")
    assert (r.status_code, r.headers["location"]) == (307, "/ui/")
    r = await c.get("/ui/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert '<script type="module" src="/ui/js/app.js">' in r.text
    for module in ("app", "api", "dom", "flows", "topology", "executions", "execution", "gantt"):
        js = await c.get(f"/ui/js/{module}.js")
        assert js.status_code == 200, module
        assert js.headers["content-type"].startswith("text/javascript")
    for missing in (
        "/ui/nope.js",
        "/ui/../pages.py",
        "/ui/%2e%2e/pages.py",
        "/ui/js/../../routes.py",
    ):
        assert (await c.get(missing)).status_code == 404, missing


async def test_openapi_documents_the_dashboard_routes(dash: Dash) -> None:
    doc = (await dash.client.get("/openapi.json")).json()
    paths = doc["paths"]
    for path in (
        "/api/v1/dashboard/executions/counts",
        "/api/v1/dashboard/executions/throughput",
        "/api/v1/dashboard/system",
        "/api/v1/dashboard/flows/{namespace}/{flow_id}/graph",
        "/api/v1/triggers/search",
    ):
        schema = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema.get("$ref"), path
    assert "put" in paths["/api/v1/triggers/{namespace}/{flow_id}/{trigger_id}/enabled"]
    assert not any(p.startswith("/ui") for p in paths)


# ----------------------------------------------------------------------- executions


async def test_counts_by_state_with_window_and_filters(dash: Dash) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=3)
    await dash.executions(
        [
            ("c1", "a", "SUCCESS", now),
            ("c2", "a", "SUCCESS", now - timedelta(minutes=5)),
            ("c3", "a", "FAILED", now - timedelta(minutes=1)),
            ("c4", "b", "RUNNING", now),
            ("c5", "a", "SUCCESS", old),
        ]
    )
    c, ns = dash.client, dash.ns
    r = await c.get("/api/v1/dashboard/executions/counts", params={"namespace": ns})
    assert r.json()["counts"] == {"SUCCESS": 3, "FAILED": 1, "RUNNING": 1}
    assert r.json()["total"] == 5
    since = (now - timedelta(hours=1)).isoformat()
    r = await c.get("/api/v1/dashboard/executions/counts", params={"namespace": ns, "since": since})
    assert r.json()["counts"] == {"SUCCESS": 2, "FAILED": 1, "RUNNING": 1}
    r = await c.get(
        "/api/v1/dashboard/executions/counts",
        params={"namespace": ns, "flowId": "a", "since": since},
    )
    assert r.json() == {
        "since": r.json()["since"],
        "total": 3,
        "counts": {"SUCCESS": 2, "FAILED": 1},
    }
    # A parent namespace counts its children; another namespace counts nothing of ours.
    parent = ns.rsplit(".", 1)[0] if "." in ns else ns
    assert (
        await c.get("/api/v1/dashboard/executions/counts", params={"namespace": parent})
    ).json()["total"] >= 5
    other = await c.get("/api/v1/dashboard/executions/counts", params={"namespace": ns + "x"})
    assert other.json()["total"] == 0
    bad = await c.get("/api/v1/dashboard/executions/counts", params={"since": "yesterday"})
    assert bad.status_code == 422


async def test_throughput_buckets_by_minute_and_state(dash: Dash) -> None:
    now = datetime.now(UTC).replace(second=30, microsecond=0)
    await dash.executions(
        [
            ("t1", "f", "SUCCESS", now),
            ("t2", "f", "FAILED", now),
            ("t3", "f", "SUCCESS", now - timedelta(minutes=2)),
            ("t4", "f", "SUCCESS", now - timedelta(hours=3)),
        ]
    )
    r = await dash.client.get("/api/v1/dashboard/executions/throughput", params={"minutes": 30})
    assert r.status_code == 200
    body = r.json()
    assert body["minutes"] == 30
    mine = {datetime.fromisoformat(b["minute"]): b["counts"] for b in body["buckets"]}
    minute = now.replace(second=0)
    assert mine[minute]["SUCCESS"] >= 1
    assert mine[minute]["FAILED"] >= 1
    assert mine[minute - timedelta(minutes=2)]["SUCCESS"] >= 1
    assert all(m >= now - timedelta(minutes=31) for m in mine)  # t4 is outside the window
    assert list(mine) == sorted(mine)
    too_long = await dash.client.get("/api/v1/dashboard/executions/throughput?minutes=99999")
    assert too_long.status_code == 422


async def test_system_reports_components_projectors_and_backlog(dash: Dash) -> None:
    now = datetime.now(UTC)
    await dash.executions(
        [
            ("s1", "f", "CREATED", now - timedelta(seconds=90)),
            ("s2", "f", "RUNNING", now),
            ("s3", "f", "QUEUED", now),
        ]
    )
    await dash.sql(
        "INSERT INTO projector_status (name, group_id, last_batch_at, lag_ms, records_total)"
        " VALUES ($1, 'g-1', now(), 42, 7) ON CONFLICT (name) DO NOTHING",
        f"p-{dash.ns}",
    )
    r = await dash.client.get("/api/v1/dashboard/system")
    assert r.status_code == 200
    body = r.json()
    assert body["health"]["components"]["broker"]["status"] == "UP"
    assert body["health"]["components"]["database"]["status"] == "UP"
    mine = [p for p in body["projectors"] if p["name"] == f"p-{dash.ns}"]
    assert mine[0]["lagMs"] == 42
    assert mine[0]["recordsTotal"] == 7
    backlog = body["backlog"]
    assert backlog["created"] >= 1
    assert backlog["running"] >= 1
    assert backlog["queued"] >= 1
    assert backlog["oldestCreatedAgeS"] >= 89


# ------------------------------------------------------------------------- topology

FLOW_DICT: dict[str, Any] = {
    "id": "g",
    "tasks": [
        {"id": "one", "type": "io.kestra.plugin.core.log.Log", "message": "x"},
        {
            "id": "fan",
            "type": "io.kestra.core.tasks.flows.Parallel",  # a legacy alias
            "tasks": [
                {"id": "l", "type": "log", "message": "x"},
                {"id": "r", "type": "io.kestra.plugin.core.debug.Return", "format": "x"},
            ],
        },
        {
            "id": "sw",
            "type": "io.kestra.plugin.core.flow.Switch",
            "value": "{{ inputs.x }}",
            "cases": {"A": [{"id": "ca", "type": "log", "message": "a"}]},
            "defaults": [{"id": "cd", "type": "log", "message": "d"}],
        },
        {
            "id": "each",
            "type": "io.kestra.plugin.core.flow.ForEach",
            "values": [1, 2, 3],
            "tasks": [{"id": "inner", "type": "log", "message": "x"}],
            "errors": [{"id": "oops", "type": "log", "message": "x"}],
        },
        {
            "id": "d",
            "type": "io.kestra.plugin.core.flow.Dag",
            "tasks": [
                {"task": {"id": "d1", "type": "log", "message": "1"}},
                {"task": {"id": "d2", "type": "log", "message": "2"}, "dependsOn": ["d1"]},
            ],
        },
        {
            "id": "sub",
            "type": "io.kestra.plugin.core.flow.Subflow",
            "namespace": "n",
            "flowId": "c",
        },
    ],
    "finally": [{"id": "fin", "type": "log", "message": "x", "disabled": True}],
    "triggers": [{"id": "hook", "type": "io.kestra.plugin.core.trigger.Webhook", "key": "k"}],
}


async def test_graph_of_a_deployed_flow(dash: Dash) -> None:
    await dash.flow("g", {**FLOW_DICT, "namespace": dash.ns})
    r = await dash.client.get(f"/api/v1/dashboard/flows/{dash.ns}/g/graph")
    assert r.status_code == 200, r.text
    g = r.json()
    assert (g["namespace"], g["id"]) == (dash.ns, "g")
    one, fan, sw, each, dag, sub = g["tasks"]
    assert (one["kind"], one["short"], one["branches"]) == ("task", "log", [])
    assert (fan["kind"], fan["short"], fan["layout"]) == ("flowable", "parallel", "parallel")
    assert [[n["id"] for n in b["nodes"]] for b in fan["branches"]] == [["l"], ["r"]]
    assert [b["label"] for b in sw["branches"]] == ["case A", "defaults"]
    assert sw["detail"] == "{{ inputs.x }}"
    assert each["layout"] == "sequence"
    assert [b["label"] for b in each["branches"]] == ["", "errors"]
    assert each["detail"] == "[1, 2, 3]"
    assert dag["layout"] == "dag"
    assert [(n["id"], n["dependsOn"]) for n in dag["branches"][0]["nodes"]] == [
        ("d1", []),
        ("d2", ["d1"]),
    ]
    assert (sub["kind"], sub["detail"]) == ("flowable", "→ n/c")
    assert g["finallyTasks"][0]["disabled"] is True
    assert g["triggers"] == [
        {"id": "hook", "type": "io.kestra.plugin.core.trigger.Webhook", "short": "webhook"}
    ]
    await dash.flow("gone", {"id": "gone", "tasks": []}, deleted=True)
    assert (
        await dash.client.get(f"/api/v1/dashboard/flows/{dash.ns}/gone/graph")
    ).status_code == 404


async def test_graph_preview_of_yaml(dash: Dash) -> None:
    good = (
        f"id: p\nnamespace: {dash.ns}\ntasks:\n"
        "  - id: a\n    type: io.kestra.plugin.core.flow.If\n"
        '    condition: "{{ true }}"\n'
        "    then:\n      - id: t\n        type: log\n        message: x\n"
    )
    r = await dash.client.post("/api/v1/dashboard/flows/graph", content=good, headers=YAML)
    assert r.status_code == 200
    body = r.json()
    assert body["valid"] is True
    branch = body["graph"]["tasks"][0]["branches"]
    assert [(b["label"], [n["id"] for n in b["nodes"]]) for b in branch] == [("then", ["t"])]
    r = await dash.client.post("/api/v1/dashboard/flows/graph", content="id: [", headers=YAML)
    assert r.json() == {"valid": False, "graph": None}
    r = await dash.client.post("/api/v1/dashboard/flows/graph", content=b"\xff\xfe", headers=YAML)
    assert r.status_code == 400


async def test_graph_of_a_past_revision(dash: Dash) -> None:
    """An execution's topology is drawn from the revision it ran, not the current one."""
    old = {"id": "r", "namespace": dash.ns, "tasks": [{"id": "old_task", "type": "log"}]}
    await dash.flow("r", {**old, "tasks": [{"id": "new_task", "type": "log"}]})
    await dash.sql(
        "INSERT INTO flow_revisions (namespace, id, revision, source, flow, deployed_at)"
        " VALUES ($1, 'r', 1, '', $2::jsonb, now())",
        dash.ns,
        orjson.dumps(old).decode(),
    )
    base = f"/api/v1/dashboard/flows/{dash.ns}/r/graph"
    assert [n["id"] for n in (await dash.client.get(base)).json()["tasks"]] == ["new_task"]
    past = await dash.client.get(base, params={"revision": 1})
    assert [n["id"] for n in past.json()["tasks"]] == ["old_task"]
    missing = await dash.client.get(base, params={"revision": 7})
    assert missing.status_code == 404
    assert "revision 7" in missing.json()["detail"]
    assert (await dash.client.get(base, params={"revision": 0})).status_code == 422


# --------------------------------------------------------------------------- editor


async def test_inputs_of_a_deployed_flow_for_the_execute_form(dash: Dash) -> None:
    inputs = [
        {"id": "n", "type": "INT", "defaults": 3},
        {"id": "pick", "type": "SELECT", "values": ["a", "b"], "required": False},
    ]
    await dash.flow("in", {"id": "in", "namespace": dash.ns, "inputs": inputs, "tasks": []})
    r = await dash.client.get(f"/api/v1/dashboard/flows/{dash.ns}/in/inputs")
    assert r.status_code == 200, r.text
    # Uploads are offered exactly when execution creation takes multipart bodies.
    doc = (await dash.client.get("/openapi.json")).json()["paths"]
    create = doc["/api/v1/executions/{namespace}/{flow_id}"]["post"]
    multipart = "multipart/form-data" in create.get("requestBody", {}).get("content", {})
    assert r.json() == {
        "namespace": dash.ns,
        "id": "in",
        "revision": 1,
        "inputs": inputs,
        "fileUploads": multipart,
    }
    await dash.flow("none", {"id": "none", "tasks": []})
    assert (await dash.client.get(f"/api/v1/dashboard/flows/{dash.ns}/none/inputs")).json()[
        "inputs"
    ] == []
    await dash.flow("gone2", {"id": "gone2", "tasks": []}, deleted=True)
    for flow in ("gone2", "nope"):
        r = await dash.client.get(f"/api/v1/dashboard/flows/{dash.ns}/{flow}/inputs")
        assert r.status_code == 404, flow


async def test_revisions_are_listed_without_sources_then_read_one_by_one(dash: Dash) -> None:
    sources = {1: "id: v\nnamespace: x\n", 2: "id: v\nnamespace: x\ntasks: []\n# two\n"}
    for revision, source in sources.items():
        await dash.sql(
            "INSERT INTO flow_revisions (namespace, id, revision, source, flow, deployed_at)"
            " VALUES ($1, 'v', $2, $3, '{}'::jsonb, now() - make_interval(mins => 10 - $2))",
            dash.ns,
            revision,
            source,
        )
    await dash.sql(
        "INSERT INTO flows (namespace, id, revision, source, flow, deleted, updated)"
        " VALUES ($1, 'v', 2, $2, '{}'::jsonb, false, now())",
        dash.ns,
        sources[2],
    )
    base = f"/api/v1/dashboard/flows/{dash.ns}/v/revisions"
    listed = (await dash.client.get(base)).json()
    assert listed["current"] == 2
    assert [(r["revision"], r["lines"]) for r in listed["revisions"]] == [(2, 5), (1, 3)]
    assert "source" not in listed["revisions"][0]
    one = (await dash.client.get(f"{base}/1")).json()
    assert (one["revision"], one["source"]) == (1, sources[1])
    missing = await dash.client.get(f"{base}/3")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert (await dash.client.get(f"{base}/0")).status_code == 422
    assert (
        await dash.client.get(f"/api/v1/dashboard/flows/{dash.ns}/nope/revisions")
    ).status_code == 404
    # A deleted flow keeps its revisions; none is current.
    await dash.sql("UPDATE flows SET deleted = true WHERE namespace = $1 AND id = 'v'", dash.ns)
    assert (await dash.client.get(base)).json()["current"] is None
    doc = (await dash.client.get("/openapi.json")).json()["paths"]
    for path in (
        "/api/v1/dashboard/flows/{namespace}/{flow_id}/revisions",
        "/api/v1/dashboard/flows/{namespace}/{flow_id}/inputs",
    ):
        schema = doc[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema.get("$ref"), path


# ----------------------------------------------------------------------- namespaces


async def test_namespaces_of_deployed_flows(dash: Dash) -> None:
    await dash.flow("a", {"id": "a", "tasks": []})
    await dash.flow("b", {"id": "b", "tasks": []})
    await dash.flow("gone3", {"id": "gone3", "tasks": []}, deleted=True)
    await dash.sql(
        "INSERT INTO flows (namespace, id, revision, source, flow, deleted, updated)"
        " VALUES ($1 || '.sub', 'c', 1, '', '{}'::jsonb, false, now())",
        dash.ns,
    )
    out = (await dash.client.get("/api/v1/dashboard/namespaces")).json()
    mine = {
        n["namespace"]: n["flows"] for n in out["namespaces"] if n["namespace"].startswith(dash.ns)
    }
    assert mine == {dash.ns: 2, f"{dash.ns}.sub": 1}
    paths = (await dash.client.get("/openapi.json")).json()["paths"]
    assert out["files"] == ("/api/v1/namespaces/{namespace}/files/directory" in paths)


async def test_kv_pairs_are_read_from_the_topic(dash: Dash) -> None:
    kafka = dash.settings.kafka
    url = f"/api/v1/dashboard/namespaces/{dash.ns}/kv"
    # No worker ever created hw.kv: no pairs, and the topic is not created from here.
    assert (await dash.client.get(url)).json() == {"namespace": dash.ns, "entries": []}
    assert kv_topic(kafka) not in await BusAdmin(kafka).list_topics()
    await ensure_kv_topic(BusAdmin(kafka), kafka)

    def entry(value: Any, expires: str | None = None) -> bytes:
        return orjson.dumps({"v": 1, "value": value, "expiresAt": expires})

    async with AsyncProducer(kafka) as producer:
        topic = kv_topic(kafka)
        for key, value in (
            (f"{dash.ns}/count", entry(1)),
            (f"{dash.ns}/count", entry(3)),  # the last write wins
            (f"{dash.ns}/doc", entry({"hello": ["world"]})),
            (f"{dash.ns}/gone", entry("x")),
            (f"{dash.ns}/gone", None),  # deleted
            (f"{dash.ns}/old", entry("y", "2001-01-01T00:00:00Z")),  # expired
            (f"{dash.ns}.other/count", entry(9)),  # another namespace
        ):
            await producer.produce(topic, key.encode(), value)
    r = await dash.client.get(url)
    assert r.status_code == 200, r.text
    assert r.json()["entries"] == [
        {"key": "count", "value": 3},
        {"key": "doc", "value": {"hello": ["world"]}},
    ]


# ------------------------------------------------------------------------- triggers


async def test_trigger_search_pages_and_hides_deleted_flows(dash: Dash) -> None:
    await dash.flow("live", {"id": "live"})
    await dash.flow("dead", {"id": "dead"}, deleted=True)
    for flow, trig in (("live", "t1"), ("live", "t2"), ("live", "t3"), ("dead", "t1")):
        await dash.sql(
            "INSERT INTO triggers (namespace, flow_id, trigger_id, type, enabled, next_date,"
            " updated) VALUES ($1, $2, $3, 'io.kestra.plugin.core.trigger.Schedule', true,"
            " now(), now())",
            dash.ns,
            flow,
            trig,
        )
    c = dash.client
    first = (
        await c.get("/api/v1/triggers/search", params={"namespace": dash.ns, "size": 2})
    ).json()
    assert [t["triggerId"] for t in first["results"]] == ["t1", "t2"]
    assert first["results"][0]["flowId"] == "live"
    assert first["results"][0]["nextDate"] is not None
    rest = (
        await c.get(
            "/api/v1/triggers/search",
            params={"namespace": dash.ns, "size": 2, "cursor": first["nextCursor"]},
        )
    ).json()
    assert [t["triggerId"] for t in rest["results"]] == ["t3"]
    assert rest["nextCursor"] is None
    bad = await c.get("/api/v1/triggers/search", params={"cursor": "garbage"})
    assert bad.status_code == 400


async def test_toggle_sends_a_trigger_state_record_and_writes_no_row(dash: Dash) -> None:
    await dash.flow("sched", {"id": "sched"})
    await dash.sql(
        "INSERT INTO triggers (namespace, flow_id, trigger_id, type, enabled, updated)"
        " VALUES ($1, 'sched', 'cron', 'io.kestra.plugin.core.trigger.Schedule', true, now())",
        dash.ns,
    )
    path = f"/api/v1/triggers/{dash.ns}/sched/cron/enabled"
    r = await dash.client.put(path, json={"enabled": False})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "namespace": dash.ns,
        "flowId": "sched",
        "triggerId": "cron",
        "enabled": False,
    }
    # The API did not touch Postgres: only the projector (not running here) would.
    conn = await asyncpg.connect(dash.dsn)
    try:
        enabled = await conn.fetchval(
            "SELECT enabled FROM triggers WHERE namespace = $1 AND flow_id = 'sched'", dash.ns
        )
    finally:
        await conn.close()
    assert enabled is True
    kafka = dash.settings.kafka
    topic = dash.topics.trigger_state.name
    async with AsyncConsumer(kafka, f"r-{uuid.uuid4().hex[:8]}") as consumer:
        await consumer.assign({(topic, p): 0 for p in range(kafka.partitions)})
        records: list[Any] = []
        async with asyncio.timeout(ARRIVAL_S):
            while not records:
                records += [r for r in await consumer.consume(10, 0.2) if r.value is not None]
    assert records[0].key == f"{dash.ns}/sched/cron".encode()
    state = decode_state(records[0].value)
    assert (state.enabled, state.type) == (False, "io.kestra.plugin.core.trigger.Schedule")
    assert state.toggled_at is not None
    missing = await dash.client.put(
        f"/api/v1/triggers/{dash.ns}/sched/nope/enabled", json={"enabled": True}
    )
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    invalid = await dash.client.put(path, json={"enabled": "maybe", "extra": 1})
    assert invalid.status_code == 422


async def test_dashboard_json_needs_credentials_but_pages_do_not(
    settings: Settings, db: str
) -> None:
    async for d in start(make_settings(settings, db, api_keys=[SecretStr("k3y")]), db):
        assert (await d.client.get("/ui/")).status_code == 200
        assert (await d.client.get("/ui/js/api.js")).status_code == 200
        for path in ("/api/v1/dashboard/system", "/api/v1/triggers/search"):
            denied = await d.client.get(path)
            assert denied.status_code == 401, path
            assert "Bearer" in denied.headers["www-authenticate"]
            ok = await d.client.get(path, headers={"Authorization": "Bearer k3y"})
            assert ok.status_code == 200, path
        put = await d.client.put(f"/api/v1/triggers/{d.ns}/f/t/enabled", json={"enabled": False})
        assert put.status_code == 401
