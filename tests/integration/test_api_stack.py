"""The REST API against the real stack: Tansu, PostgreSQL and an in-process projector.

Each test gets its own topic prefix (and namespace); the module gets its own database.
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
from engine.bus import AsyncConsumer, BusAdmin, Topics, ensure_topics
from engine.errors import BusError
from engine.projector import Projector
from engine.projector.databases import create_database, drop_database
from engine.settings import (
    ApiSettings,
    KafkaSettings,
    PostgresSettings,
    ProjectorSettings,
    Settings,
)
from schemas.envelope import decode
from triggers.state import set_enabled

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

# Waits for something to cross the bus or the projection (a group join is ~half the session
# timeout on Tansu); generous for a loaded machine, never hit when things work.
ARRIVAL_S = 30.0


@pytest.fixture(scope="module")
def db(settings: Settings) -> Iterator[str]:
    admin = settings.postgres.dsn.get_secret_value()
    name = f"headwater_test_{uuid.uuid4().hex[:12]}"
    try:
        dsn = asyncio.run(create_database(admin, name))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL not reachable ({exc}); start it with `make services-up`")
    yield dsn
    asyncio.run(drop_database(admin, name))


def make_settings(base: Settings, dsn: str, **api: Any) -> Settings:
    kafka = base.kafka.model_copy(
        update={
            "topic_prefix": f"t{uuid.uuid4().hex[:10]}.",
            "partitions": 2,
            "session_timeout_ms": 3000,
            "heartbeat_interval_ms": 500,
            "request_timeout_s": 5.0,
        }
    )
    return Settings(
        kafka=kafka,
        postgres=PostgresSettings(dsn=SecretStr(dsn)),
        projector=ProjectorSettings(group_id=f"p-{uuid.uuid4().hex[:8]}", poll_timeout_s=0.2),
        api=ApiSettings(**api),
    )


@dataclass
class Stack:
    client: httpx.AsyncClient
    services: ApiServices
    settings: Settings
    topics: Topics
    dsn: str
    ns: str

    async def until(self, sql: str, *args: Any) -> Any:
        """Poll the read model until ``sql`` returns a true first value."""
        conn = await asyncpg.connect(self.dsn)
        try:
            async with asyncio.timeout(ARRIVAL_S):
                while True:
                    value = await conn.fetchval(sql, *args)
                    if value:
                        return value
                    await asyncio.sleep(0.1)
        finally:
            await conn.close()

    async def sql(self, sql: str, *args: Any) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute(sql, *args)
        finally:
            await conn.close()


async def start_stack(settings: Settings, dsn: str, *, projector: bool) -> AsyncIterator[Stack]:
    admin = BusAdmin(settings.kafka)
    try:
        await admin.wait_ready()
    except BusError as exc:
        pytest.fail(f"Kafka broker not reachable ({exc}); start it with `make services-up`")
    topics = await ensure_topics(admin, settings.kafka)
    services = ApiServices(settings)
    await services.start()
    async with asyncio.timeout(ARRIVAL_S):
        while True:
            if services.bus_ready:
                break
            await asyncio.sleep(0.05)
    proj = stop = task = None
    if projector:
        proj = Projector(settings.kafka, settings.projector, dsn, name=uuid.uuid4().hex[:8])
        await proj.start()
        stop = asyncio.Event()
        task = asyncio.create_task(proj.run(stop))
    app = create_app(settings, services)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield Stack(client, services, settings, topics, dsn, f"ns{uuid.uuid4().hex[:8]}")
    finally:
        if proj is not None and stop is not None and task is not None:
            stop.set()
            await task
            await proj.close()
        await services.close()
        await admin.delete_topics(t.name for t in topics.all())


@pytest.fixture
async def stack(settings: Settings, db: str) -> AsyncIterator[Stack]:
    async for s in start_stack(make_settings(settings, db), db, projector=True):
        yield s


async def read_commands(
    kafka: KafkaSettings, topics: Topics, count: int, *, settle_s: float = 0.0
) -> list[dict[str, Any]]:
    """Every record on hw.commands, read from the start until ``count`` arrived (then
    ``settle_s`` more, to catch records that should NOT be there)."""
    got: list[dict[str, Any]] = []
    async with AsyncConsumer(kafka, f"r-{uuid.uuid4().hex[:8]}") as consumer:
        await consumer.assign({(topics.commands.name, p): 0 for p in range(kafka.partitions)})
        async with asyncio.timeout(ARRIVAL_S):
            while len(got) < count:
                got += [
                    {"type": (env := decode(r.value)).type, **env.payload}
                    for r in await consumer.consume(100, 0.2)
                    if r.value is not None
                ]
        loop = asyncio.get_running_loop()
        end = loop.time() + settle_s
        while loop.time() < end:
            got += [
                {"type": (env := decode(r.value)).type, **env.payload}
                for r in await consumer.consume(100, 0.2)
                if r.value is not None
            ]
    return got


def flow_yaml(ns: str, flow_id: str = "hello", message: str = "hi") -> str:
    return f"""id: {flow_id}
namespace: {ns}
labels:
  team: data
inputs:
  - id: count
    type: INT
    defaults: 3
  - id: mode
    type: ENUM
    values: [fast, slow]
  - id: token
    type: SECRET
    required: false
tasks:
  - id: say
    type: io.kestra.plugin.core.log.Log
    message: "{message} {{{{ inputs.count }}}}"
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: s3cr3t-key
    inputs:
      mode: slow
"""


YAML = {"content-type": "application/x-yaml"}

# ------------------------------------------------------------------------------- flows


async def test_flow_crud_revisions_search_and_yaml_errors(stack: Stack) -> None:
    c, ns = stack.client, stack.ns
    r = await c.post("/api/v1/flows", content=flow_yaml(ns), headers=YAML)
    assert r.status_code == 200, r.text
    assert r.json()["revision"] == 1
    same = await c.post("/api/v1/flows", content=flow_yaml(ns), headers=YAML)
    assert same.json()["revision"] == 1  # unchanged source: no new revision
    r = await c.put(f"/api/v1/flows/{ns}/hello", content=flow_yaml(ns, message="bye"), headers=YAML)
    assert r.json()["revision"] == 2

    bad = (
        "id: broken\nnamespace: x\ntasks:\n  - id: a\n"
        "    type: io.kestra.plugin.core.log.Log\n    message: [oops\n"
    )
    r = await c.post("/api/v1/flows", content=bad, headers=YAML)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()["errors"][0]
    assert (problem["line"], problem["column"]) == (7, 1)  # where the unclosed [ gives out
    assert "invalid YAML" in problem["message"]
    no_tasks = "id: x\nnamespace: y\ntasks:\n  - id: a\n    type: no.such.Task\n"
    r = await c.post("/api/v1/flows", content=no_tasks, headers=YAML)
    assert r.status_code == 422
    assert r.json()["errors"][0]["line"] == 5
    r = await c.post("/api/v1/flows/validate", content=no_tasks, headers=YAML)
    assert r.status_code == 200
    assert r.json()["valid"] is False
    assert r.json()["problems"][0]["path"].startswith("tasks[0]")
    r = await c.post("/api/v1/flows/validate", content=flow_yaml(ns), headers=YAML)
    assert r.json() == {"valid": True, "namespace": ns, "id": "hello", "problems": []}
    r = await c.put(f"/api/v1/flows/{ns}/other", content=flow_yaml(ns), headers=YAML)
    assert r.status_code == 422

    await stack.until("SELECT revision = 2 FROM flows WHERE namespace = $1", ns)
    r = await c.get(f"/api/v1/flows/{ns}/hello")
    assert r.status_code == 200
    assert "bye" in r.json()["source"]
    assert r.json()["labels"] == {"team": "data"}
    r = await c.get(f"/api/v1/flows/{ns}/hello/revisions")
    assert [x["revision"] for x in r.json()] == [1, 2]
    assert "hi {{ inputs.count }}" in r.json()[0]["source"]
    r = await c.get("/api/v1/flows/search", params={"namespace": ns, "q": "ELL"})
    assert [f["id"] for f in r.json()["results"]] == ["hello"]

    r = await c.delete(f"/api/v1/flows/{ns}/hello")
    assert r.status_code == 204
    assert (await c.delete(f"/api/v1/flows/{ns}/hello")).status_code == 404
    await stack.until("SELECT deleted FROM flows WHERE namespace = $1", ns)
    assert (await c.get(f"/api/v1/flows/{ns}/hello")).status_code == 404
    r = await c.post(f"/api/v1/executions/{ns}/hello", json={})
    assert r.status_code == 404


# -------------------------------------------------------------------------- executions


async def test_create_execution_sends_a_typed_start_command(stack: Stack) -> None:
    c, ns = stack.client, stack.ns
    assert (await c.post("/api/v1/flows", content=flow_yaml(ns), headers=YAML)).status_code == 200
    r = await c.post(
        f"/api/v1/executions/{ns}/hello",
        json={"inputs": {"mode": "fast", "token": "hunter2", "extra": 1}, "labels": []},
    )
    assert r.status_code == 200, r.text
    created = r.json()
    assert created["state"] == "CREATED"
    assert created["inputs"] == {"count": 3, "mode": "fast", "token": "******"}

    bad = await c.post(f"/api/v1/executions/{ns}/hello", json={"inputs": {"count": "x"}})
    assert bad.status_code == 422
    assert {e["input"] for e in bad.json()["errors"]} == {"count", "mode"}
    assert (await c.post(f"/api/v1/executions/{ns}/nope", json={})).status_code == 404

    commands = await read_commands(stack.settings.kafka, stack.topics, 1, settle_s=0.5)
    assert len(commands) == 1  # the invalid request wrote nothing
    (start,) = commands
    assert start["type"] == "StartExecution"
    assert start["execution_id"] == created["id"]
    assert start["inputs"] == {"count": 3, "mode": "fast", "token": "hunter2"}
    assert start["flow"]["revision"] == 1
    assert start["flow"]["tasks"][0]["id"] == "say"


async def insert_execution(
    stack: Stack, ex: str, state: str, start: datetime, *, flow: str = "f", **labels: str
) -> None:
    await stack.sql(
        "INSERT INTO executions (id, namespace, flow_id, flow_revision, state, labels, inputs,"
        " start_date, state_history, last_seq, updated)"
        " VALUES ($1, $2, $3, 1, $4, $5::jsonb, '{}', $6, '[]', 1, now())",
        ex,
        stack.ns,
        flow,
        state,
        orjson.dumps(labels).decode(),
        start,
    )


async def test_list_filters_and_cursor_pagination(stack: Stack) -> None:
    c, ns = stack.client, stack.ns
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    for i in range(25):
        state = "SUCCESS" if i % 2 else "FAILED"
        flow = "a" if i < 20 else "b"
        await insert_execution(
            stack,
            f"{ns}-{i:02d}",
            state,
            t0 + timedelta(minutes=i),
            flow=flow,
            env="prod" if i % 5 == 0 else "dev",
        )

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"namespace": ns, "size": 10}
        if cursor:
            params["cursor"] = cursor
        r = await c.get("/api/v1/executions/search", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [e["id"] for e in body["results"]]
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [f"{ns}-{i:02d}" for i in reversed(range(25))]

    r = await c.get(
        "/api/v1/executions", params={"namespace": ns, "flowId": "b", "state": "FAILED"}
    )
    assert [e["id"] for e in r.json()["results"]] == [f"{ns}-24", f"{ns}-22", f"{ns}-20"]
    r = await c.get("/api/v1/executions", params={"namespace": ns, "labels": "env:prod"})
    assert len(r.json()["results"]) == 5
    assert r.json()["results"][0]["labels"] == [{"key": "env", "value": "prod"}]
    r = await c.get(
        "/api/v1/executions",
        params={
            "namespace": ns,
            "startDate": (t0 + timedelta(minutes=3)).isoformat(),
            "endDate": (t0 + timedelta(minutes=6)).isoformat(),
        },
    )
    assert [e["id"] for e in r.json()["results"]] == [f"{ns}-05", f"{ns}-04", f"{ns}-03"]
    r = await c.get("/api/v1/executions", params={"cursor": "garbage!"})
    assert r.status_code == 400
    r = await c.get("/api/v1/executions", params={"state": "NOT_A_STATE"})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"


async def test_commands_check_the_state_and_reach_the_bus(stack: Stack) -> None:
    c, ns = stack.client, stack.ns
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    await insert_execution(stack, f"{ns}-run", "RUNNING", t0)
    await insert_execution(stack, f"{ns}-paused", "PAUSED", t0)
    await insert_execution(stack, f"{ns}-failed", "FAILED", t0)

    r = await c.post(f"/api/v1/executions/{ns}-run/resume", json={"inputs": {}})
    assert r.status_code == 409
    assert "RUNNING" in r.json()["detail"]
    assert (await c.post(f"/api/v1/executions/{ns}-failed/resume")).status_code == 409
    assert (await c.delete(f"/api/v1/executions/{ns}-failed/kill")).status_code == 409
    assert (await c.post(f"/api/v1/executions/{ns}-run/restart")).status_code == 409
    assert (await c.post(f"/api/v1/executions/{ns}-missing/restart")).status_code == 404

    ok = [
        await c.post(f"/api/v1/executions/{ns}-paused/resume", json={"inputs": {"ok": True}}),
        await c.delete(f"/api/v1/executions/{ns}-run/kill"),
        await c.post(f"/api/v1/executions/{ns}-failed/restart"),
        await c.post(f"/api/v1/executions/{ns}-failed/replay"),
        await c.post(f"/api/v1/executions/{ns}-run/labels", json=[{"key": "k", "value": "v"}]),
    ]
    assert [r.status_code for r in ok] == [200] * 5, [r.text for r in ok]
    replay = ok[3].json()
    commands = await read_commands(stack.settings.kafka, stack.topics, 5)
    by_type = {cmd["type"]: cmd for cmd in commands}
    assert set(by_type) == {"Resume", "Kill", "Restart", "Replay", "SetLabels"}
    assert by_type["Resume"]["inputs"] == {"ok": True}
    assert by_type["Replay"]["new_execution_id"] == replay["newExecutionId"]
    assert by_type["SetLabels"]["labels"] == {"k": "v"}
    assert by_type["Kill"]["execution_id"] == f"{ns}-run"


async def test_get_logs_and_follow(stack: Stack) -> None:
    c, ns = stack.client, stack.ns
    ex = f"{ns}-done"
    await insert_execution(stack, ex, "SUCCESS", datetime(2024, 5, 1, tzinfo=UTC))
    for n, level in enumerate(["DEBUG", "INFO", "ERROR"]):
        await stack.sql(
            "INSERT INTO logs (log_id, execution_id, task_id, level, message, ts)"
            " VALUES ($1, $2, 't', $3, $4, $5)",
            f"{ex}:{n}",
            ex,
            level,
            f"line {n}",
            datetime(2024, 5, 1, 0, 0, n, tzinfo=UTC),
        )
    r = await c.get(f"/api/v1/executions/{ex}")
    assert r.json()["state"]["current"] == "SUCCESS"
    assert r.json()["taskRunList"] == []
    r = await c.get(f"/api/v1/executions/{ex}/logs", params={"minLevel": "INFO"})
    assert [x["message"] for x in r.json()] == ["line 1", "line 2"]
    r = await c.get(f"/api/v1/executions/{ex}/logs", params={"tail": 1})
    assert [x["message"] for x in r.json()] == ["line 2"]

    events: list[str] = []
    async with c.stream("GET", f"/api/v1/executions/{ex}/follow") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                events.append(line.removeprefix("event: "))
    assert events == ["execution", "log", "log", "log", "end"]


async def insert_log(stack: Stack, ex: str, log_id: str, message: str, second: int) -> None:
    await stack.sql(
        "INSERT INTO logs (log_id, execution_id, task_id, level, message, ts)"
        " VALUES ($1, $2, 't', 'INFO', $3, $4)",
        log_id,
        ex,
        message,
        datetime(2024, 5, 1, 0, 0, second, tzinfo=UTC),
    )


async def test_follow_waits_for_the_log_lines_an_ended_attempt_sent(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hw.logs is projected beside hw.events: an execution can show as ended before its last
    lines are in. The stream ends once every line the attempts say they sent is shown, or
    after a grace period when one never comes."""
    c = stack.client
    ex = f"{stack.ns}-late"
    await insert_execution(stack, ex, "SUCCESS", datetime(2024, 5, 1, tzinfo=UTC))
    attempts = [{"state": "FAILED", "log_lines": 1}, {"state": "SUCCESS", "log_lines": 2}]
    await stack.sql(
        "INSERT INTO task_runs (id, execution_id, task_id, type, state, attempts, last_seq)"
        " VALUES ($1, $2, 't', 'io.kestra.plugin.core.log.Log', 'SUCCESS', $3::jsonb, 1)",
        f"{ex}-tr",
        ex,
        orjson.dumps(attempts).decode(),
    )
    await insert_log(stack, ex, f"{ex}-tr:1:0", "first try", 0)
    await insert_log(stack, ex, f"{ex}-tr:2:0", "second try, line 0", 1)

    async def late_line() -> None:
        await asyncio.sleep(1.5)
        await insert_log(stack, ex, f"{ex}-tr:2:1", "second try, line 1", 2)

    late = asyncio.create_task(late_line())
    messages: list[str] = []
    events: list[str] = []
    async with c.stream("GET", f"/api/v1/executions/{ex}/follow") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                events.append(line.removeprefix("event: "))
            elif line.startswith("data: ") and events[-1] == "log":
                messages.append(orjson.loads(line.removeprefix("data: "))["message"])
    await late
    assert events[-1] == "end"
    assert messages == ["first try", "second try, line 0", "second try, line 1"]

    # A line that never comes: the stream still ends, after the grace period.
    monkeypatch.setattr("engine.api.routes_executions.FOLLOW_LOGS_GRACE_S", 1.0)
    await stack.sql(
        "UPDATE task_runs SET attempts = $2::jsonb WHERE id = $1",
        f"{ex}-tr",
        orjson.dumps([{"state": "SUCCESS", "log_lines": 5}]).decode(),
    )
    events.clear()
    async with c.stream("GET", f"/api/v1/executions/{ex}/follow") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                events.append(line.removeprefix("event: "))
    assert events == ["execution", "log", "log", "log", "end"]


# ----------------------------------------------------------------------------- webhooks


async def test_webhook_good_and_bad_keys(stack: Stack) -> None:
    c, ns = stack.client, stack.ns
    assert (await c.post("/api/v1/flows", content=flow_yaml(ns), headers=YAML)).status_code == 200
    base = f"/api/v1/executions/webhook/{ns}/hello"
    secret = {"X-Thing": "yes", "Authorization": "Bearer not-for-the-flow"}
    r = await c.post(f"{base}/s3cr3t-key?a=1&a=2", json={"order": 7}, headers=secret)
    assert r.status_code == 200, r.text
    assert r.json()["inputs"]["mode"] == "slow"  # from the trigger's inputs
    assert (await c.post(f"{base}/wrong-key", json={})).status_code == 404
    assert (await c.get(f"/api/v1/executions/webhook/{ns}/nope/s3cr3t-key")).status_code == 404
    r = await c.get(f"{base}/s3cr3t-key", params={"q": "x"})
    assert r.status_code == 200

    commands = await read_commands(stack.settings.kafka, stack.topics, 2)
    # Kestra's ExecutionTrigger: {id, type, variables}; header names canonical.
    variables = [cmd["trigger"]["variables"] for cmd in commands]
    body_of = {str(v["body"]): v for v in variables}
    posted = body_of["{'order': 7}"]
    assert posted["parameters"] == {"a": ["1", "2"]}
    assert posted["headers"]["X-Thing"] == ["yes"]
    assert "Authorization" not in posted["headers"]  # credentials stay out of the state
    assert body_of["None"]["parameters"] == {"q": ["x"]}
    # The triggers page shows when the webhook last fired (the API records it).
    fired = await stack.until(
        "SELECT last_fired FROM triggers WHERE namespace = $1 AND flow_id = 'hello'"
        " AND trigger_id = 'hook'",
        ns,
    )
    listed = (await c.get("/api/v1/triggers/search", params={"namespace": ns})).json()
    assert [(t["triggerId"], t["lastFired"] is not None) for t in listed["results"]] == [
        ("hook", True)
    ]
    assert fired is not None


def gate_yaml(ns: str) -> str:
    return f"""id: gate
namespace: {ns}
tasks:
  - id: out
    type: io.kestra.plugin.core.debug.Return
    format: "{{{{ trigger.body.hello }}}}"
triggers:
  - id: cond
    type: io.kestra.plugin.core.trigger.Webhook
    key: "{{{{ flow.id }}}}-key"
    conditions:
      - type: io.kestra.plugin.core.condition.ExpressionCondition
        expression: "{{{{ trigger.body.hello == 'world' }}}}"
"""


async def test_webhook_conditions_rendered_key_idempotency_and_toggle(stack: Stack) -> None:
    c, ns = stack.client, stack.ns
    assert (await c.post("/api/v1/flows", content=gate_yaml(ns), headers=YAML)).status_code == 200
    url = f"/api/v1/executions/webhook/{ns}/gate/gate-key"
    # Kestra's answer to a call whose conditions do not hold: 204, no execution.
    r = await c.post(url, json={"hello": "webhook"})
    assert (r.status_code, r.content) == (204, b"")
    once = {"Idempotency-Key": "order-7"}
    first = await c.post(url, json={"hello": "world"}, headers=once)
    assert first.status_code == 200, first.text
    again = await c.put(url, json={"hello": "world"}, headers=once)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]  # a retried call starts nothing new
    # The key is the rendered template, never its text.
    raw_key = f"/api/v1/executions/webhook/{ns}/gate/%7B%7B%20flow.id%20%7D%7D-key"
    assert (await c.post(raw_key, json={"hello": "world"})).status_code == 404

    # Disabled through hw.trigger-state (as the API's toggle and the Toggle task do): the
    # webhook then answers like an unknown key.
    row = "FROM triggers WHERE namespace = $1 AND flow_id = 'gate' AND trigger_id = 'cond'"
    await stack.until(f"SELECT enabled {row}", ns)
    producer = stack.services.require_bus()
    await set_enabled(producer, stack.topics.trigger_state.name, ns, "gate", "cond", False)
    await stack.until(f"SELECT NOT enabled {row}", ns)
    r = await c.post(url, json={"hello": "world"})
    assert (r.status_code, r.json()["title"]) == (404, "Webhook not found")

    commands = await read_commands(stack.settings.kafka, stack.topics, 2, settle_s=0.5)
    starts = [cmd for cmd in commands if cmd["type"] == "StartExecution"]
    assert [cmd["execution_id"] for cmd in starts] == [first.json()["id"]] * 2
    assert starts[0]["trigger"]["variables"]["body"] == {"hello": "world"}
