"""Redis list realtime trigger: one execution per element pushed onto a Redis list.

Config (Kestra's ``io.kestra.plugin.redis.list.RealtimeTrigger``): ``url``
(``redis://[:password@]host:port/db``), ``key`` (the list), ``serdeType`` STRING (default) or
JSON. Parser: an element -> ``trigger.value`` (its text, or its JSON value), as Kestra.

Source: Kestra pops the head of the list with LPOP every 100 ms, so an element popped by a
process that dies before its execution is created is lost. Here a Lua script (atomic in Redis)
pops up to ``max_in_flight`` elements and, in the same step, numbers each from a per-trigger
counter and parks it in a per-trigger hash (``headwater:trigger:<namespace/flow/trigger>:
pending``); an element leaves that hash only once its StartExecution is durable. A restarted
source first fires what is still parked, with the same number, hence the same execution id,
so nothing is lost and nothing runs twice. An empty list is polled again after
``poll_timeout_s`` (Kestra: 100 ms).

Identity: (list key, the element's number, a digest of the element). The counter is a Redis
key of the trigger's own (``...:seq``); deleting it by hand could reuse numbers, which the
digest keeps from matching a different element.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from engine.errors import ConfigError, ServiceError
from schemas.flow.triggers import RedisListTrigger
from triggers.ids import redis_list_coordinates
from triggers.model import SourceContext, settle
from triggers.payloads import MalformedPayload, loads_json

log = logging.getLogger(__name__)

JSON = dict[str, Any]

# Connecting, and each command: a live server answers in milliseconds.
COMMAND_TIMEOUT_S = 10.0
# Elements taken at once (further bounded by the runtime's in-flight limit).
BATCH = 100

# KEYS: the list, the pending hash, the counter. ARGV: how many to take. Returns
# [number, element, number, element, ...] of what moved from the list to the pending hash.
_TAKE = """
local items = redis.call('LPOP', KEYS[1], ARGV[1])
if not items then return {} end
local out = {}
for _, item in ipairs(items) do
  local n = redis.call('INCR', KEYS[3])
  redis.call('HSET', KEYS[2], n, item)
  table.insert(out, n)
  table.insert(out, item)
end
return out
"""


def parse(element: bytes, serde: str) -> JSON:
    """The trigger variables of one element; MalformedPayload when it is not ``serde``."""
    try:
        text = element.decode("utf-8")
        value = loads_json(text, f"{len(element)} bytes of JSON") if serde == "JSON" else text
    except (UnicodeDecodeError, orjson.JSONDecodeError) as exc:
        raise MalformedPayload(f"cannot read {len(element)} bytes as {serde}: {exc}") from None
    return {"value": value}


class RedisListSource:
    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        model: RedisListTrigger = ctx.config
        self.url = str(model.url)
        self.key = str(model.key)
        if not self.key:
            raise ConfigError("Redis list trigger needs a `key`")
        self.serde = str(model.serdeType or "STRING").upper()
        if self.serde not in ("STRING", "JSON"):
            raise ConfigError(f"serdeType {self.serde!r}: use STRING or JSON")
        prefix = f"headwater:trigger:{ctx.ref.key}"
        self.pending = f"{prefix}:pending"
        self.counter = f"{prefix}:seq"

    async def run(self) -> None:
        client = aioredis.from_url(
            self.url, socket_timeout=COMMAND_TIMEOUT_S, socket_connect_timeout=COMMAND_TIMEOUT_S
        )
        try:
            take = client.register_script(_TAKE)
            parked: dict[Any, Any] = await client.hgetall(self.pending)  # a previous run's
            await self._fire(client, sorted((int(n), bytes(v)) for n, v in parked.items()))
            while True:
                limit = max(1, min(BATCH, self.ctx.max_in_flight))
                moved = await take(keys=[self.key, self.pending, self.counter], args=[limit])
                if not moved:
                    await asyncio.sleep(self.ctx.poll_timeout_s)
                    continue
                pairs = list(zip(moved[::2], moved[1::2], strict=True))
                await self._fire(client, [(int(n), v) for n, v in pairs])
        except RedisError as exc:
            raise ServiceError(f"Redis unreachable for trigger {self.ctx.ref}: {exc!r}") from exc
        finally:
            await client.aclose()

    async def _fire(self, client: Any, elements: list[tuple[int, bytes]]) -> None:
        """Fire each element; remove it from the pending hash once its command is durable."""
        futures = []
        for number, element in elements:
            coordinates = redis_list_coordinates(self.key, number, element)
            try:
                future: asyncio.Future[Any] | None = await self.ctx.fire(
                    coordinates, parse(element, self.serde)
                )
            except MalformedPayload as exc:
                raw = {"value": element.decode("utf-8", "replace")}
                future = await self.ctx.malformed(coordinates, raw, f"{self.key}: {exc}")
            futures.append((number, future))
        # Settled in order; a failure leaves the rest parked for the next run.
        await settle([f for _, f in futures if f is not None])
        if futures:
            await client.hdel(self.pending, *[n for n, _ in futures])
