"""Kestra's redis plugin (kestra-io/plugin-redis): string, list and pub/sub tasks, with redis-py.

Every type takes ``url`` (required): ``redis://[[user]:password@]host[:port][/db]``, or
``rediss://`` for TLS (Lettuce's URI, which Kestra uses, reads the same). ``serdeType`` (STRING
by default; JSON) turns values into Redis strings: JSON writes a JSON string given as text
unchanged once it parses (Kestra's check) and any other value as JSON text; STRING writes the
value's text (a map or list as JSON, where Java would print ``{a=1}``).

- ``string.Get``: ``key``, ``serdeType``, ``failedOnMissing`` (false: a missing key gives
  ``data`` null). Outputs ``data``, ``key``.
- ``string.Set``: ``key``, ``value``, ``serdeType``, ``get`` (false; true: SET ... GET, and
  the previous value is the output ``oldValue`` when there was one), ``options``:
  ``expirationDuration`` (PX), ``expirationDate`` (PXAT), ``mustNotExist`` (NX), ``mustExist``
  (XX), ``keepTtl`` (KEEPTTL; not with an expiration, Kestra's message). A SET that NX/XX
  refuses changes nothing and is not an error, as in Kestra.
- ``string.Delete``: ``keys`` (a list), ``failedOnMissing`` (false). Output ``count``; metric
  ``deleted.records.count``.
- ``string.Increment``: ``key``, ``amount`` (none: INCR; an integer: INCRBY; a decimal:
  INCRBYFLOAT), ``options`` (``expirationDuration``: EXPIRE in whole seconds when positive,
  ``expirationDate``: EXPIREAT; not both). Outputs ``value``, ``key``.
- ``string.Ttl``: ``key``. Outputs ``ttl`` (seconds; -1 no expiry, -2 no key), ``key``.
- ``list.ListPush``: ``key``, ``from`` (a list of values, a JSON array text, or a ``kestra://``
  ION file), ``serdeType``, ``batchSize`` (500 values per variadic LPUSH, so the head of the
  list ends with the last value). Output ``count``; metric ``inserted.records.count``.
- ``list.ListPop``: ``key``, ``serdeType``, ``count`` (100 per LPOP), ``maxRecords``,
  ``maxDuration`` (at least one); pops until the list is empty or a limit is reached, writes
  the values to an ION file. Outputs ``count``, ``uri``; metric ``popped.records.count``.
- ``pubsub.Publish``: ``channel``, ``from`` (as ListPush), ``serdeType``: one PUBLISH per
  value. Output ``count``; metric ``published.records.count``.

Older names (``io.kestra.plugin.redis.Get`` ...) are aliases. What differs: ``maxRecords`` of
ListPop is exact (Kestra pops whole ``count`` batches, and may pass it); an integer
``amount`` uses INCRBY (Kestra's Java reads a YAML integer as an Integer, not a Long, and so
uses INCRBYFLOAT). As in Kestra, popped values are gone from Redis even if the run fails after
popping them (a Redis list has no acknowledgement). ``list.RealtimeTrigger`` is a trigger
source (:mod:`triggers.redis`). Not provided: ``json.*`` (needs the RedisJSON module, which
Debian's Redis lacks), ``vector.*`` (Redis Stack), ``cli.RedisCLI`` (redis-cli in a
container), ``list.Trigger`` (a polling trigger whose execution gets an ION file: the trigger
runtime has no internal storage to write it to).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import unquote, urlparse

import orjson
import redis.asyncio as aioredis
from pydantic import Field
from redis.exceptions import RedisError, ResponseError

from executors.base import TaskContext, TaskError, TaskOutcome, to_text
from executors.data import IonSink, read_from
from executors.plugin import TaskPlugin, render_bool, render_int, render_seconds, render_str
from schemas.flow.common import BoolOrExpr, Duration, FlowModel, IntOrExpr, NumberOrExpr, Str

# Connecting to (and each command of) a live server takes milliseconds.
COMMAND_TIMEOUT_S = 30.0
_OLD = "io.kestra.plugin.redis"


class _Redis(TaskPlugin):
    family: ClassVar[str] = "redis"

    url: Str

    @contextlib.asynccontextmanager
    async def client(self, ctx: TaskContext) -> AsyncIterator[aioredis.Redis]:
        url = render_str(ctx, self.url, "url", required=True) or ""
        parsed = urlparse(url)
        if parsed.scheme not in ("redis", "rediss", "unix"):
            raise TaskError(f"url {_masked(url)!r}: expected redis://[:password@]host:port/db")
        if parsed.password:
            ctx.secrets = ctx.secrets | {parsed.password, unquote(parsed.password)}
        where = _masked(url)
        try:
            client = aioredis.from_url(
                url,
                socket_timeout=COMMAND_TIMEOUT_S,
                socket_connect_timeout=COMMAND_TIMEOUT_S,
                decode_responses=False,
            )
        except ValueError as exc:
            raise TaskError(f"url {where!r}: {exc}") from None
        try:
            yield client
        except ResponseError as exc:
            raise TaskError(f"Redis {where} refused the command: {exc}") from None
        except (RedisError, OSError) as exc:
            raise TaskError(f"Redis {where} failed: {type(exc).__name__}: {exc}") from None
        finally:
            await client.aclose()


def _masked(url: str) -> str:
    parsed = urlparse(url)
    if not parsed.password:
        return url
    return url.replace(f":{parsed.password}@", ":********@", 1)


def _serde(ctx: TaskContext, value: Any) -> str:
    kind = (render_str(ctx, value, "serdeType") or "STRING").upper()
    if kind not in ("STRING", "JSON"):
        raise TaskError(f"serdeType {kind!r}: use STRING or JSON")
    return kind


def serialize(value: Any, kind: str) -> str:
    if kind == "JSON":
        if isinstance(value, str):
            try:
                orjson.loads(value)
            except orjson.JSONDecodeError as exc:
                raise TaskError(f"value is not valid JSON for serdeType JSON: {exc}") from None
            return value
        return orjson.dumps(value).decode()
    return to_text(value) if value is not None else "null"


def deserialize(data: bytes | str | None, kind: str) -> Any:
    if data is None:
        return None
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    if kind == "JSON":
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise TaskError(f"a stored value is not JSON ({exc}): {text[:80]!r}") from None
    return text


def _date_ms(ctx: TaskContext, value: Any, name: str) -> int | None:
    text = render_str(ctx, value, name)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise TaskError(f"{name}: {text!r} is not an ISO-8601 date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


class SetOptions(FlowModel):
    expirationDuration: Duration | None = None
    expirationDate: Str | None = None
    mustNotExist: BoolOrExpr = False
    mustExist: BoolOrExpr = False
    keepTtl: BoolOrExpr = False


class ExpirationOptions(FlowModel):
    expirationDuration: Duration | None = None
    expirationDate: Str | None = None


class Get(_Redis):
    """Get the value of a Redis string key."""

    short: ClassVar[str | None] = "redis_get"

    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.Get",)
    type: Literal["io.kestra.plugin.redis.string.Get"]
    key: Str
    serdeType: Literal["STRING", "JSON"] | Str = "STRING"
    failedOnMissing: BoolOrExpr = False

    async def run(self, ctx: TaskContext) -> Mapping[str, Any]:
        key = render_str(ctx, self.key, "key", required=True) or ""
        kind = _serde(ctx, self.serdeType)
        async with self.client(ctx) as client:
            data = await client.get(key)
        if data is None and render_bool(ctx, self.failedOnMissing, "failedOnMissing"):
            raise TaskError(f"Missing keys '{key}'")
        return {"data": deserialize(data, kind), "key": key}


class Set(_Redis):
    """Set a Redis string key."""

    short: ClassVar[str | None] = "redis_set"

    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.Set",)
    type: Literal["io.kestra.plugin.redis.string.Set"]
    key: Str
    value: Any
    options: SetOptions = SetOptions()
    get: BoolOrExpr = False
    serdeType: Literal["STRING", "JSON"] | Str = "STRING"

    async def run(self, ctx: TaskContext) -> Mapping[str, Any]:
        key = render_str(ctx, self.key, "key", required=True) or ""
        if self.value is None:
            raise TaskError("property 'value' is required")
        value = serialize(ctx.render(self.value), _serde(ctx, self.serdeType))
        o = self.options
        duration = render_seconds(ctx, o.expirationDuration, "options.expirationDuration")
        date_ms = _date_ms(ctx, o.expirationDate, "options.expirationDate")
        keep = render_bool(ctx, o.keepTtl, "options.keepTtl")
        if keep and (duration is not None or date_ms is not None):
            raise TaskError(
                "Invalid Redis options: you can't use 'keepTtl' with 'expirationDuration' or "
                "'expirationDate'. Use either keepTtl to keep existing TTL, or set a new "
                "expiration."
            )
        args: dict[str, Any] = {
            "px": None if duration is None else round(duration * 1000),
            "pxat": date_ms,
            "nx": render_bool(ctx, o.mustNotExist, "options.mustNotExist"),
            "xx": render_bool(ctx, o.mustExist, "options.mustExist"),
            "keepttl": keep,
            "get": render_bool(ctx, self.get, "get"),
        }
        async with self.client(ctx) as client:
            old = await client.set(key, value, **args)
        if args["get"] and isinstance(old, bytes):
            return {"oldValue": old.decode("utf-8", "replace")}
        return {}


class Delete(_Redis):
    """Delete Redis keys."""

    short: ClassVar[str | None] = "redis_delete"

    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.Delete",)
    type: Literal["io.kestra.plugin.redis.string.Delete"]
    keys: list[Str] | Str
    failedOnMissing: BoolOrExpr = False

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        rendered = ctx.render(self.keys)
        keys = [to_text(k) for k in (rendered if isinstance(rendered, list) else [rendered])]
        if not keys:
            raise TaskError("property 'keys' is empty")
        async with self.client(ctx) as client:
            count = int(await client.delete(*keys))
        if count != len(keys) and render_bool(ctx, self.failedOnMissing, "failedOnMissing"):
            raise TaskError(f"Missing keys, only {count} key deleted")
        return TaskOutcome(
            state="SUCCESS", outputs={"count": count}, metrics={"deleted.records.count": count}
        )


class Increment(_Redis):
    """Increment the number stored at a Redis key."""

    short: ClassVar[str | None] = "redis_increment"

    type: Literal["io.kestra.plugin.redis.string.Increment"]
    key: Str
    amount: NumberOrExpr | None = None
    options: ExpirationOptions | None = None

    async def run(self, ctx: TaskContext) -> Mapping[str, Any]:
        key = render_str(ctx, self.key, "key", required=True) or ""
        amount = self._amount(ctx)
        duration = date_ms = None
        if self.options is not None:
            o = self.options
            duration = render_seconds(ctx, o.expirationDuration, "options.expirationDuration")
            date_ms = _date_ms(ctx, o.expirationDate, "options.expirationDate")
            if duration is not None and date_ms is not None:
                raise TaskError(
                    "Invalid Redis options: you can't use both 'expirationDuration' and "
                    "'expirationDate'."
                )
        async with self.client(ctx) as client:
            value: int | float
            if amount is None:
                value = await client.incr(key)
            elif isinstance(amount, int):
                value = await client.incrby(key, amount)
            else:
                value = await client.incrbyfloat(key, amount)
            if duration is not None and int(duration) > 0:
                await client.expire(key, int(duration))
            if date_ms is not None:
                await client.expireat(key, date_ms // 1000)
        return {"value": value, "key": key}

    def _amount(self, ctx: TaskContext) -> int | float | None:
        if self.amount is None:
            return None
        text = to_text(ctx.render(self.amount)).strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return float(text)
        except ValueError:
            raise TaskError(f"property 'amount': {text!r} is not a number") from None


class Ttl(_Redis):
    """Get the time to live of a Redis key."""

    short: ClassVar[str | None] = "redis_ttl"

    type: Literal["io.kestra.plugin.redis.string.Ttl"]
    key: Str

    async def run(self, ctx: TaskContext) -> Mapping[str, Any]:
        key = render_str(ctx, self.key, "key", required=True) or ""
        async with self.client(ctx) as client:
            ttl = await client.ttl(key)
        return {"ttl": int(ttl), "key": key}


async def _values(ctx: TaskContext, value: Any, kind: str) -> list[str]:
    """``from`` of ListPush and Publish as Redis strings."""
    rows = await read_from(ctx, value, lenient=True)
    return [serialize(row, kind) for row in await asyncio.to_thread(rows.as_list)]


class ListPush(_Redis):
    """Push values to the head of a Redis list."""

    short: ClassVar[str | None] = "redis_list_push"

    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.ListPush",)
    type: Literal["io.kestra.plugin.redis.list.ListPush"]
    key: Str
    from_: Any = Field(default=None, alias="from")
    serdeType: Literal["STRING", "JSON"] | Str = "STRING"
    batchSize: IntOrExpr = 500

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        key = render_str(ctx, self.key, "key", required=True) or ""
        batch = render_int(ctx, self.batchSize, "batchSize", 500) or 500
        if batch < 1:
            raise TaskError("property 'batchSize' must be at least 1")
        values = await _values(ctx, self.from_, _serde(ctx, self.serdeType))
        async with self.client(ctx) as client:
            for start in range(0, len(values), batch):
                await client.lpush(key, *values[start : start + batch])
        count = len(values)
        return TaskOutcome(
            state="SUCCESS", outputs={"count": count}, metrics={"inserted.records.count": count}
        )


class ListPop(_Redis):
    """Pop values from the head of a Redis list into an internal storage ION file."""

    short: ClassVar[str | None] = "redis_list_pop"

    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.ListPop",)
    type: Literal["io.kestra.plugin.redis.list.ListPop"]
    key: Str
    serdeType: Literal["STRING", "JSON"] | Str = "STRING"
    maxRecords: IntOrExpr | None = None
    maxDuration: Duration | None = None
    count: IntOrExpr = 100

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        key = render_str(ctx, self.key, "key", required=True) or ""
        kind = _serde(ctx, self.serdeType)
        max_records = render_int(ctx, self.maxRecords, "maxRecords")
        max_duration = render_seconds(ctx, self.maxDuration, "maxDuration")
        if max_records is None and max_duration is None:
            raise TaskError("maxDuration or maxRecords must be set to avoid infinite loop")
        batch = render_int(ctx, self.count, "count", 100) or 100
        sink = await IonSink.create(ctx)
        try:
            started = time.monotonic()
            async with self.client(ctx) as client:
                while not ctx.cancelled.is_set():
                    want = batch if max_records is None else min(batch, max_records - sink.count)
                    popped = await client.lpop(key, want) if want > 0 else None
                    if not popped:
                        break
                    for item in popped if isinstance(popped, list) else [popped]:
                        sink.write(deserialize(item, kind))
                    if max_records is not None and sink.count >= max_records:
                        break
                    if max_duration is not None and time.monotonic() - started > max_duration:
                        break
            uri = await sink.store(ctx, "list-pop.ion")
        finally:
            await sink.discard()
        return TaskOutcome(
            state="SUCCESS",
            outputs={"count": sink.count, "uri": uri},
            metrics={"popped.records.count": sink.count},
        )


class Publish(_Redis):
    """Publish values to a Redis pub/sub channel."""

    short: ClassVar[str | None] = "redis_publish"

    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.Publish",)
    type: Literal["io.kestra.plugin.redis.pubsub.Publish"]
    channel: Str
    from_: Any = Field(default=None, alias="from")
    serdeType: Literal["STRING", "JSON"] | Str = "STRING"

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        channel = render_str(ctx, self.channel, "channel", required=True) or ""
        values = await _values(ctx, self.from_, _serde(ctx, self.serdeType))
        async with self.client(ctx) as client:
            for value in values:
                await client.publish(channel, value)
        count = len(values)
        return TaskOutcome(
            state="SUCCESS", outputs={"count": count}, metrics={"published.records.count": count}
        )


PLUGINS = [Get, Set, Delete, Increment, Ttl, ListPush, ListPop, Publish]
