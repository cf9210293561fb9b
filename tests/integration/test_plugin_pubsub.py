"""io.kestra.plugin.gcp.pubsub.* against Google's Pub/Sub emulator from deploy/local (`up pubsub`),
reached as Google's clients reach it (PUBSUB_EMULATOR_HOST). Each test uses its own topics."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local.localsvc.pubsub import emulator_host
from executors import ion
from executors.plugins.gcp_pubsub import RealtimeTrigger, Trigger
from tests.remote_support import MemoryKV, poll_context, put, read, run
from triggers.model import TriggerRef
from triggers.polling import PollingSource

pytestmark = pytest.mark.pubsub

P = "io.kestra.plugin.gcp.pubsub."
PROJECT = "headwater"
HOST = emulator_host(int(os.environ.get("HEADWATER_LOCAL_PUBSUB_PORT", "8785")))


@pytest.fixture(autouse=True)
def emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", HOST)


def new_topic() -> str:
    name = f"hw-{uuid.uuid4().hex[:10]}"
    httpx.put(f"http://{HOST}/v1/projects/{PROJECT}/topics/{name}").raise_for_status()
    return name


async def ps(type_: str, task: dict[str, Any], tmp_path: Path) -> Any:
    return await run(P + type_, task, tmp_path, projectId=PROJECT)


async def test_publish_then_consume_json_and_string(tmp_path: Path) -> None:
    topic = new_topic()
    sub = {"topic": topic, "subscription": f"{topic}-sub"}
    # The first Consume creates the subscription (nothing published yet: nothing received).
    empty, _ = await ps("Consume", {**sub, "maxDuration": "PT0.5S"}, tmp_path)
    assert empty.state == "SUCCESS", empty.error
    assert empty.outputs["count"] == 0
    sent, _ = await ps(
        "Publish",
        {
            "topic": topic,
            "serdeType": "JSON",
            "from": [
                {"data": {"run": 1, "ok": True}, "attributes": {"source": "kestra"}},
                {"data": [1, 2], "orderingKey": ""},
            ],
        },
        tmp_path,
    )
    assert sent.state == "SUCCESS", sent.error
    assert sent.outputs == {"messagesCount": 2}
    assert sent.metrics == {"records": 2}
    got, _ = await ps("Consume", {**sub, "maxRecords": 2, "serdeType": "JSON"}, tmp_path)
    assert got.state == "SUCCESS", got.error
    assert got.outputs["count"] == 2
    rows = ion.loads(read(tmp_path, got.outputs["uri"]).decode())
    assert [r["data"] for r in rows] == [{"run": 1, "ok": True}, [1, 2]]
    assert rows[0]["attributes"] == {"source": "kestra"}
    assert rows[1]["attributes"] == {}
    assert all(r["messageId"] for r in rows)
    # Acknowledged: a second consumption receives nothing.
    again, _ = await ps("Consume", {**sub, "maxDuration": "PT0.5S"}, tmp_path)
    assert again.outputs["count"] == 0

    texts, _ = await ps(
        "Publish", {"topic": topic, "from": [{"data": "héllo"}, {"data": {"a": 1}}]}, tmp_path
    )
    assert texts.outputs == {"messagesCount": 2}
    raw, _ = await ps("Consume", {**sub, "maxRecords": 2}, tmp_path)
    rows = ion.loads(read(tmp_path, raw.outputs["uri"]).decode())
    # STRING reads the bytes back as bytes; a map was sent as Java prints it.
    assert [r["data"] for r in rows] == ["héllo".encode(), b"{a=1}"]

    # A Consume's file publishes again as it is (Kestra's Data.from of a kestra:// URI).
    other = new_topic()
    await ps("Consume", {"topic": other, "subscription": f"{other}-sub", "maxDuration": "PT0.1S"},
             tmp_path)  # fmt: skip
    again_sent, _ = await ps("Publish", {"topic": other, "from": raw.outputs["uri"]}, tmp_path)
    assert again_sent.outputs == {"messagesCount": 2}
    copied, _ = await ps(
        "Consume", {"topic": other, "subscription": f"{other}-sub", "maxRecords": 2}, tmp_path
    )
    rows = ion.loads(read(tmp_path, copied.outputs["uri"]).decode())
    assert sorted(r["data"] for r in rows) == sorted(["héllo".encode(), b"{a=1}"])


async def test_refusals_name_the_topic_or_subscription(tmp_path: Path) -> None:
    missing, _ = await ps("Publish", {"topic": "hw-no-such-topic", "from": {"data": "x"}}, tmp_path)
    assert missing.state == "FAILED"
    assert "Pub/Sub: POST /v1/projects/headwater/topics/hw-no-such-topic:publish" in (
        missing.error or ""
    )
    assert "HTTP 404: Topic not found (NOT_FOUND)" in (missing.error or "")
    topic = new_topic()
    absent, _ = await ps(
        "Consume",
        {"topic": topic, "subscription": "hw-nope", "autoCreateSubscription": False,
         "maxRecords": 1},
        tmp_path,
    )  # fmt: skip
    assert absent.state == "FAILED"
    assert "subscriptions/hw-nope:pull failed with HTTP 404" in (absent.error or "")
    endless, _ = await ps("Consume", {"topic": topic, "subscription": "x-sub"}, tmp_path)
    assert endless.error == "'maxDuration' or 'maxRecords' must be set to avoid an infinite loop"
    uri = await put(tmp_path, "bad.ion", b"{data:1}\n")
    wrong, _ = await ps(
        "Publish", {"topic": topic, "from": [{"data": "x", "key": "k"}, uri]}, tmp_path
    )
    assert "a message has unknown fields ['key']" in (wrong.error or "")


async def test_trigger_acknowledges_once_the_execution_is_durable(tmp_path: Path) -> None:
    topic = new_topic()
    trigger = Trigger.model_validate(
        {
            "id": "watch",
            "type": P + "Trigger",
            "projectId": PROJECT,
            "topic": topic,
            "subscription": f"{topic}-sub",
            "serdeType": "JSON",
            "maxRecords": 10,
        }
    )
    kv = MemoryKV()
    assert await trigger.poll(poll_context(tmp_path, kv)) is None  # creates the subscription
    await ps("Publish", {"topic": topic, "serdeType": "JSON",
                         "from": [{"data": {"n": n}} for n in range(3)]}, tmp_path)  # fmt: skip
    ctx = poll_context(tmp_path, kv)
    fired = await trigger.poll(ctx)
    assert fired is not None
    assert fired.variables["count"] == 3
    rows = ion.loads(read(tmp_path, fired.variables["uri"]).decode())
    assert [r["data"] for r in rows] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert f"/executions/{ctx.execution}/trigger/watch/" in fired.variables["uri"]
    # Not acknowledged yet, but held for the execution: another poll receives nothing...
    assert await trigger.poll(poll_context(tmp_path, kv)) is None
    assert fired.after is not None
    await fired.after()
    # ...and once acknowledged they never come back.
    assert await trigger.poll(poll_context(tmp_path, kv)) is None


class FakeSource:
    """What the trigger runtime gives a source: fire() records, and is durable at once."""

    def __init__(self, config: Any) -> None:
        self.ref = TriggerRef("company.team", "files", "live")
        self.config = config
        self.fired: list[tuple[str, dict[str, Any]]] = []
        self.records: list[dict[str, Any]] = []

    async def fire(self, coordinates: str, variables: dict[str, Any], **_: Any) -> Any:
        self.fired.append((coordinates, variables))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def record(self, **fields: Any) -> None:
        self.records.append(fields)


async def test_realtime_trigger_fires_one_execution_per_message(tmp_path: Path) -> None:
    topic = new_topic()
    trigger = RealtimeTrigger.model_validate(
        {
            "id": "live",
            "type": P + "RealtimeTrigger",
            "projectId": PROJECT,
            "topic": topic,
            "subscription": f"{topic}-live",
            "serdeType": "JSON",
        }
    )
    assert trigger.interval_seconds() == 1.0
    kv = MemoryKV()

    class Deps:
        async def context(self, _source: Any, _trigger: Any) -> Any:
            return poll_context(tmp_path, kv, "live")

    source = FakeSource(trigger)
    polling = PollingSource(source, Deps())  # type: ignore[arg-type]
    assert await polling.once() is False  # creates the subscription
    orders = [{"data": {"order": 1}, "attributes": {"k": "v"}}, {"data": {"order": 2}}]
    await ps("Publish", {"topic": topic, "serdeType": "JSON", "from": orders}, tmp_path)
    assert await polling.once() is True
    assert [v["data"] for _, v in source.fired] == [{"order": 1}, {"order": 2}]
    first = source.fired[0][1]
    assert first["attributes"] == {"k": "v"}
    assert (
        source.fired[0][0]
        == f"pubsub:projects/{PROJECT}/subscriptions/{topic}-live:" + (first["messageId"])
    )
    assert source.records == []
    # Acknowledged once fired: nothing comes again.
    assert await polling.once() is False
    assert len(source.fired) == 2

    # STRING data is bytes, shown as base64 text in the trigger variables.
    text = RealtimeTrigger.model_validate(
        {**trigger.model_dump(by_alias=True, exclude_none=True), "serdeType": "STRING"}
    )
    polling = PollingSource(FakeSource(text), Deps())  # type: ignore[arg-type]
    await ps("Publish", {"topic": topic, "from": {"data": "hello"}}, tmp_path)
    assert await polling.once() is True
    assert polling.ctx.fired[0][1]["data"] == "aGVsbG8="  # type: ignore[attr-defined]
