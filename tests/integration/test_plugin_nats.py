"""The nats plugin's types against the real server (nats-server with JetStream, deploy/local)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import nats
import pytest

from executors.registry import Registry, add_plugins
from tests.integration.messaging import make_ctx, run, stored_rows, unique

pytestmark = pytest.mark.nats


def task(nats_url: str, kind: str, **props: Any) -> dict[str, Any]:
    return {"id": kind.split(".")[-1].lower(), "type": f"io.kestra.plugin.nats.{kind}",
            "url": nats_url, **props}  # fmt: skip


@pytest.fixture
async def stream(nats_url: str) -> AsyncIterator[str]:
    """A JetStream stream on ``<name>.>``; its subject prefix."""
    name = unique("hw").replace("-", "_")
    client = await nats.connect(nats_url)
    js = client.jetstream()
    await js.add_stream(name=name, subjects=[f"{name}.>"])
    try:
        yield name
    finally:
        await js.delete_stream(name)
        await client.close()


async def test_produce_then_consume_from_jetstream(
    nats_url: str, stream: str, tmp_path: Path
) -> None:
    produced = await run(tmp_path, task(nats_url, "core.Produce", subject=f"{stream}.orders", **{
        "from": [{"headers": {"h": "v", "multi": ["one"]}, "data": "hello {{ inputs.city }}"},
                 {"data": {"n": 1}}, "bare"],
    }), inputs={"city": "Lyon"})  # fmt: skip
    assert produced.outputs == {"messagesCount": 3}, produced.error
    consume = task(nats_url, "core.Consume", subject=f"{stream}.>", durableId=unique("d"),
                   pollDuration="PT0.5S", batchSize=2)  # fmt: skip
    ctx = make_ctx(tmp_path, consume)
    ctx.storage = None  # the file cannot be stored: nothing may be acknowledged
    lost = await add_plugins(Registry()).run(consume, ctx)
    assert lost.state == "FAILED"
    assert "internal storage" in (lost.error or "")

    first = await run(tmp_path, {**consume, "maxRecords": 2})
    assert first.state == "SUCCESS", first.error
    assert first.outputs["messagesCount"] == 2
    rows = stored_rows(tmp_path, first.outputs["uri"])
    assert [list(r) for r in rows] == [["headers", "data", "subject", "timestamp"]] * 2
    # The durable consumer resumes after what was acknowledged (the failed run acked nothing;
    # what it gave back is redelivered, not necessarily in the original order).
    second = await run(tmp_path, consume)
    assert second.outputs["messagesCount"] == 1, second.error
    rows += stored_rows(tmp_path, second.outputs["uri"])
    by_data = {r["data"]: r for r in rows}
    assert sorted(by_data) == sorted(['{"n":1}', "bare", "hello Lyon"])
    assert by_data["hello Lyon"]["headers"] == {"h": ["v"], "multi": ["one"]}
    assert by_data["bare"]["headers"] == {}
    assert {r["subject"] for r in rows} == {f"{stream}.orders"}
    assert all(isinstance(r["timestamp"], datetime) for r in rows)
    late = await run(tmp_path, {**consume, "durableId": unique("d"), "deliverPolicy": "New"})
    assert late.outputs["messagesCount"] == 0
    since = await run(
        tmp_path, {**consume, "durableId": unique("d"), "since": "2000-01-01T00:00:00Z"}
    )
    assert since.outputs["messagesCount"] == 3, since.error


async def test_request_reply(nats_url: str, tmp_path: Path) -> None:
    subject = unique("hw.greet")
    client = await nats.connect(nats_url)

    async def answer(msg: Any) -> None:
        await msg.respond(b"hi " + msg.data + b" " + (msg.headers or {}).get("x", "").encode())

    sub = await client.subscribe(subject, cb=answer)
    try:
        await client.flush()
        reply = await run(
            tmp_path,
            task(
                nats_url,
                "core.Request",
                subject=subject,
                **{"from": {"data": "bob", "headers": {"x": "1"}}},
            ),
        )
        assert reply.outputs == {"response": "hi bob 1"}, reply.error
    finally:
        await sub.unsubscribe()
        await client.close()
    nobody = await run(
        tmp_path,
        task(
            nats_url,
            "core.Request",
            subject=unique("hw.none"),
            requestTimeout="PT0.5S",
            **{"from": {"data": "x"}},
        ),
    )
    assert (nobody.state, nobody.outputs) == ("SUCCESS", {"response": None})


async def test_key_value_bucket(nats_url: str, tmp_path: Path) -> None:
    name = unique("hw_kv").replace("-", "_")
    try:
        created = await run(
            tmp_path,
            task(
                nats_url, "kv.CreateBucket", name=name, description="test bucket", historyPerKey=3
            ),
        )
        assert created.state == "SUCCESS", created.error
        assert (created.outputs["bucket"], created.outputs["history"]) == (name, 3)
        assert created.outputs["description"] == "test bucket"
        put = await run(
            tmp_path, task(nats_url, "kv.Put", bucketName=name, values={"a": {"n": 1}, "b": "text"})
        )
        assert put.outputs == {"revisions": {"a": 1, "b": 2}}, put.error
        again = await run(tmp_path, task(nats_url, "kv.Put", bucketName=name, values={"a": 2}))
        assert again.outputs == {"revisions": {"a": 3}}
        got = await run(
            tmp_path, task(nats_url, "kv.Get", bucketName=name, keys=["a", "b", "missing"])
        )
        assert got.outputs == {"output": {"a": 2, "b": "text"}}, got.error
        old = await run(
            tmp_path, task(nats_url, "kv.Get", bucketName=name, keys=[], keyRevisions={"a": 1})
        )
        assert old.outputs == {"output": {"a": {"n": 1}}}, old.error
        deleted = await run(tmp_path, task(nats_url, "kv.Delete", bucketName=name, keys=["b"]))
        assert deleted.outputs == {"deletedCount": 1}
        gone = await run(tmp_path, task(nats_url, "kv.Get", bucketName=name, keys=["b"]))
        assert gone.outputs == {"output": {}}
    finally:
        client = await nats.connect(nats_url)
        await client.jetstream().delete_key_value(name)
        await client.close()


async def test_mistakes_fail_with_a_clear_message(nats_url: str, tmp_path: Path) -> None:
    cases = [
        (task("nats://127.0.0.1:1", "core.Produce", subject="x", **{"from": "y"}),
         "NATS connection to nats://127.0.0.1:1 failed"),
        (task(nats_url, "core.Consume", subject=unique("nostream")),
         "no JetStream stream holds the subject"),
        (task(nats_url, "kv.Get", bucketName=unique("nobucket"), keys=["a"]), "does not exist"),
        (task(nats_url, "core.Consume", subject="x", deliverPolicy="Oldest"),
         "deliverPolicy 'OLDEST'"),
        (task(nats_url, "kv.CreateBucket", name="b", metadata={"a": "b"}),
         "bucket metadata needs NATS server 2.10"),
    ]  # fmt: skip
    for spec, message in cases:
        outcome = await run(tmp_path, spec)
        assert outcome.state == "FAILED", spec
        assert message in (outcome.error or ""), outcome.error
