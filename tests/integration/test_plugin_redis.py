"""The redis plugin's types against the real server (Redis, deploy/local)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from executors import ion
from tests.integration.messaging import make_ctx, run, stored_rows, unique

pytestmark = pytest.mark.redis

# A subscriber's SUBSCRIBE is acknowledged before this; messages arrive within it.
PUBSUB_S = 10.0


def task(redis_url: str, kind: str, **props: Any) -> dict[str, Any]:
    return {"id": kind.split(".")[-1].lower(), "type": f"io.kestra.plugin.redis.{kind}",
            "url": redis_url, **props}  # fmt: skip


async def test_set_get_ttl_increment_delete(redis_url: str, tmp_path: Path) -> None:
    key, counter = unique("hw-key"), unique("hw-counter")
    client = aioredis.from_url(redis_url)
    try:
        value = {"name": "{{ inputs.name }}", "n": [1, 2]}
        done = await run(tmp_path, task(redis_url, "string.Set", key=key, value=value,
                                        serdeType="JSON"), inputs={"name": "Ada"})  # fmt: skip
        assert (done.state, done.outputs) == ("SUCCESS", {}), done.error
        assert await client.get(key) == b'{"name":"Ada","n":[1,2]}'
        got = await run(tmp_path, task(redis_url, "string.Get", key=key, serdeType="JSON"))
        assert got.outputs == {"data": {"name": "Ada", "n": [1, 2]}, "key": key}
        text = await run(tmp_path, task(redis_url, "string.Get", key=key))
        assert text.outputs["data"] == '{"name":"Ada","n":[1,2]}'

        again = await run(tmp_path, task(redis_url, "string.Set", key=key, value="v2", get=True,
                                         options={"expirationDuration": "PT1H"}))  # fmt: skip
        assert again.outputs == {"oldValue": '{"name":"Ada","n":[1,2]}'}
        ttl = await run(tmp_path, task(redis_url, "string.Ttl", key=key))
        assert 3500 < ttl.outputs["ttl"] <= 3600
        kept = await run(tmp_path, task(redis_url, "string.Set", key=key, value="v3",
                                         options={"keepTtl": True, "mustExist": True}))  # fmt: skip
        assert kept.state == "SUCCESS", kept.error
        assert (await client.get(key), await client.ttl(key) > 3500) == (b"v3", True)
        refused = await run(tmp_path, task(redis_url, "string.Set", key=key, value="v4",
                                           options={"mustNotExist": True}))  # fmt: skip
        assert refused.state == "SUCCESS"  # NX refused: nothing changes, not an error
        assert await client.get(key) == b"v3"
        at = await run(
            tmp_path,
            task(
                redis_url,
                "string.Set",
                key=key,
                value="v5",
                options={"expirationDate": "2999-01-01T00:00:00Z"},
            ),
        )
        assert at.state == "SUCCESS", at.error
        assert await client.pexpiretime(key) == 32472144000000

        assert (await run(tmp_path, task(redis_url, "string.Increment", key=counter))).outputs == {
            "value": 1, "key": counter}  # fmt: skip
        by = await run(tmp_path, task(redis_url, "string.Increment", key=counter, amount=5,
                                      options={"expirationDuration": "PT10M"}))  # fmt: skip
        assert by.outputs["value"] == 6
        assert 0 < await client.ttl(counter) <= 600
        half = await run(tmp_path, task(redis_url, "string.Increment", key=counter, amount=0.5))
        assert half.outputs["value"] == 6.5

        deleted = await run(tmp_path, task(redis_url, "string.Delete",
                                           keys=[key, counter, unique("none")]))  # fmt: skip
        assert deleted.outputs == {"count": 2}
        missing = await run(tmp_path, task(redis_url, "string.Delete", keys=[key],
                                           failedOnMissing=True))  # fmt: skip
        assert (missing.state, missing.error) == ("FAILED", "Missing keys, only 0 key deleted")
        absent = await run(tmp_path, task(redis_url, "string.Get", key=key))
        assert absent.outputs == {"data": None, "key": key}
        strict = await run(tmp_path, task(redis_url, "string.Get", key=key, failedOnMissing=True))
        assert (strict.state, strict.error) == ("FAILED", f"Missing keys '{key}'")
        gone = await run(tmp_path, task(redis_url, "string.Ttl", key=key))
        assert gone.outputs["ttl"] == -2
    finally:
        await client.delete(key, counter)
        await client.aclose()


async def test_list_push_and_pop(redis_url: str, tmp_path: Path) -> None:
    key = unique("hw-list")
    client = aioredis.from_url(redis_url)
    try:
        pushed = await run(tmp_path, task(redis_url, "list.ListPush", key=key, batchSize=2,
                                          **{"from": ["a", "b", "c"]}))  # fmt: skip
        assert pushed.outputs == {"count": 3}, pushed.error
        assert await client.lrange(key, 0, -1) == [b"c", b"b", b"a"]  # LPUSH: last at the head
        json_rows = await run(tmp_path, task(redis_url, "list.ListPush", key=key, serdeType="JSON",
                                             **{"from": '[{"id": 1}, {"id": 2}]'}))  # fmt: skip
        assert json_rows.outputs == {"count": 2}, json_rows.error

        popped = await run(tmp_path, task(redis_url, "list.ListPop", key=key, serdeType="JSON",
                                          maxRecords=2, count=1))  # fmt: skip
        assert popped.state == "SUCCESS", popped.error
        assert popped.outputs["count"] == 2
        assert stored_rows(tmp_path, popped.outputs["uri"]) == [{"id": 2}, {"id": 1}]
        rest = await run(tmp_path, task(redis_url, "list.ListPop", key=key, maxDuration="PT5S"))
        assert stored_rows(tmp_path, rest.outputs["uri"]) == ["c", "b", "a"]
        assert await client.exists(key) == 0

        # The popped file pushed back: rows of an ION file are values.
        back = await run(tmp_path, task(redis_url, "list.ListPush", key=key,
                                        **{"from": rest.outputs["uri"]}))  # fmt: skip
        assert back.outputs == {"count": 3}, back.error
        assert await client.lrange(key, 0, -1) == [b"a", b"b", b"c"]
        endless = await run(tmp_path, task(redis_url, "list.ListPop", key=key))
        assert endless.state == "FAILED"
        assert "maxDuration or maxRecords must be set" in (endless.error or "")
    finally:
        await client.delete(key)
        await client.aclose()


async def test_publish_to_a_channel(redis_url: str, tmp_path: Path) -> None:
    channel = unique("hw-channel")
    client = aioredis.from_url(redis_url)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(channel)
        assert (await pubsub.get_message(timeout=PUBSUB_S))["type"] == "subscribe"  # type: ignore[index]
        ctx_file = make_ctx(tmp_path, {"id": "file"})
        assert ctx_file.storage is not None
        path = tmp_path / "rows.ion"
        with path.open("wb") as out:
            ion.IonWriter(out).write_all([{"k": 1}, [2, "x"]])
        uri = await ctx_file.storage.put_file("rows.ion", path)
        done = await run(tmp_path, task(redis_url, "pubsub.Publish", channel=channel,
                                        serdeType="JSON", **{"from": uri}))  # fmt: skip
        assert done.outputs == {"count": 2}, done.error
        got = []
        deadline = time.monotonic() + PUBSUB_S
        while len(got) < 2 and time.monotonic() < deadline:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                got.append(message["data"])
        assert got == [b'{"k":1}', b'[2,"x"]']
    finally:
        await pubsub.aclose()
        await client.aclose()


async def test_connection_and_property_mistakes(redis_url: str, tmp_path: Path) -> None:
    cases = [
        (task("redis://:s3cret@127.0.0.1:1/0", "string.Get", key="k"),
         "Redis redis://:********@127.0.0.1:1/0 failed"),
        (task("http://127.0.0.1", "string.Get", key="k"), "expected redis://"),
        (task(redis_url, "string.Set", key="k", value="{oops", serdeType="JSON"),
         "value is not valid JSON"),
        (task(redis_url, "string.Set", key="k", value="v",
              options={"keepTtl": True, "expirationDuration": "PT1S"}), "you can't use 'keepTtl'"),
        (task(redis_url, "string.Increment", key="k", amount="{{ 'x' }}"), "is not a number"),
    ]  # fmt: skip
    for spec, message in cases:
        outcome = await run(tmp_path, spec)
        assert outcome.state == "FAILED", spec
        assert message in (outcome.error or ""), outcome.error
        assert "s3cret" not in (outcome.error or "")
