"""Kestra's nats plugin (kestra-io/plugin-nats) with nats-py: core ``Produce`` and ``Request``,
JetStream ``Consume``, and the key/value store (``kv.CreateBucket``, ``kv.Put``, ``kv.Get``,
``kv.Delete``).

Connection (``NatsConnection``): ``url`` (``nats://host:port``, or ``nats://token@host:port``),
``username`` + ``password`` (used when both are set), ``token``, ``creds`` (the content of a
``.creds`` file: JWT and NKey seed). With ``creds`` Kestra also requires TLS (``secure()``);
here the scheme of ``url`` decides (``tls://`` for TLS).

- ``core.Produce``: ``subject``, ``from`` (Kestra's ``Data.from``: ``{headers, data}`` maps, a
  list, an ION file; a bare value is taken as ``data``). ``headers`` values are text or lists
  of text; ``data`` text (anything else is sent as JSON, where Kestra fails on a cast). The
  connection is flushed (PING/PONG) before it closes, so the server has every message.
  Output ``messagesCount``.
- ``core.Request``: ``subject``, ``from`` (its first row), ``requestTimeout`` (PT5S). Output
  ``response``: the reply as UTF-8 text, null when nobody answered in time.
- ``core.Consume``: JetStream pull consumer with explicit acks on the stream of ``subject``:
  ``durableId`` (resume between runs), ``deliverPolicy`` (All; Last, New, ByStartSequence,
  ByStartTime, LastPerSubject), ``since`` (ISO-8601: the start time), ``batchSize`` (10),
  ``pollDuration`` (PT2S per fetch), ``maxRecords``, ``maxDuration``. It fetches until a fetch
  returns nothing or a limit is reached, writes each message as Kestra's row ``{headers, data,
  subject, timestamp}`` (``headers`` name -> list of values, ``data`` the payload as text,
  ``timestamp`` the JetStream time) into an ION file. Outputs ``messagesCount``, ``uri``.
- ``kv.CreateBucket``: ``name``, ``description``, ``historyPerKey`` (1), ``bucketSize``,
  ``valueSize``. Outputs ``bucket``, ``description``, ``history``, ``entryCount``,
  ``bucketSize``, ``valueSize``, ``metadata``.
- ``kv.Put``: ``bucketName``, ``values`` (key -> value, stored as JSON). Output ``revisions``.
- ``kv.Get``: ``bucketName``, ``keys``, or ``keyRevisions`` (key -> revision, instead). Output
  ``output``: key -> the JSON value; missing and deleted keys are left out.
- ``kv.Delete``: ``bucketName``, ``keys`` (each leaves a tombstone). Output ``deletedCount``.

Older names (``io.kestra.plugin.nats.Produce``, ``.Consume``, ``.Request``) are aliases.

What differs: Consume acknowledges the messages once the file is in internal storage (Kestra
acknowledges each as it writes it to its temporary file), so a failed run loses nothing;
``maxDuration`` stops the run once it has passed (Kestra's check is inverted and stops after
the first batch while the duration has *not* passed); ``since`` with the default policy
selects ByStartTime (JetStream refuses a start time with policy All). ``kv.CreateBucket``'s
``metadata`` needs NATS server 2.10, newer than Debian's 2.9: given, it fails the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import nats
import orjson
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import api
from nats.js.errors import BucketNotFoundError, KeyDeletedError, KeyNotFoundError, NotFoundError
from pydantic import Field

from executors.base import TaskContext, TaskError, TaskOutcome, to_text
from executors.data import IonSink, read_from
from executors.plugin import TaskPlugin, render_int, render_map, render_seconds, render_str
from schemas.flow.common import Duration, IntOrExpr, Str

# Connecting to a live server takes milliseconds; past this it is not there.
CONNECT_TIMEOUT_S = 10.0
# jnats' flush(Duration.ofSeconds(5)) in Kestra's Produce.
FLUSH_TIMEOUT_S = 5.0
_OLD = "io.kestra.plugin.nats"
_POLICIES = {
    "ALL": api.DeliverPolicy.ALL,
    "LAST": api.DeliverPolicy.LAST,
    "NEW": api.DeliverPolicy.NEW,
    "BYSTARTSEQUENCE": api.DeliverPolicy.BY_START_SEQUENCE,
    "BYSTARTTIME": api.DeliverPolicy.BY_START_TIME,
    "LASTPERSUBJECT": api.DeliverPolicy.LAST_PER_SUBJECT,
}


class _Nats(TaskPlugin):
    family: ClassVar[str] = "nats"

    url: Str
    username: Str | None = None
    password: Str | None = None
    token: Str | None = None
    creds: Str | None = None

    @contextlib.asynccontextmanager
    async def connection(self, ctx: TaskContext) -> AsyncIterator[Any]:
        url = render_str(ctx, self.url, "url", required=True) or ""
        options: dict[str, Any] = {
            "connect_timeout": CONNECT_TIMEOUT_S,
            "allow_reconnect": False,
            # A dead server fails the task: one attempt (0 would mean "no limit" to nats-py).
            "max_reconnect_attempts": 1,
            "reconnect_time_wait": 0.1,
        }
        username = render_str(ctx, self.username, "username")
        password = render_str(ctx, self.password, "password")
        token = render_str(ctx, self.token, "token")
        creds = render_str(ctx, self.creds, "creds")
        ctx.secrets = ctx.secrets | {s for s in (password, token, creds) if s}
        if username is not None and password is not None:
            options.update(user=username, password=password)
        if token:
            options["token"] = token
        creds_file = None
        if creds:
            fd, creds_file = tempfile.mkstemp(suffix=".creds", dir=ctx.working_dir)
            with os.fdopen(fd, "w") as out:
                out.write(creds)
            options["user_credentials"] = creds_file
        errors: list[str] = []

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc) or type(exc).__name__)

        options["error_cb"] = on_error
        try:
            try:
                client = await nats.connect(url, **options)
            except (NatsError, OSError, TimeoutError) as exc:
                why = errors[-1] if errors else (str(exc) or type(exc).__name__)
                raise TaskError(f"NATS connection to {url} failed: {why}") from None
            try:
                yield client
            except (NatsError, OSError, TimeoutError) as exc:
                raise TaskError(
                    f"NATS {url} failed: {type(exc).__name__}: {exc or errors[-1:]}"
                ) from None
            finally:
                with contextlib.suppress(NatsError, OSError, TimeoutError):
                    await client.close()
        finally:
            if creds_file:
                os.unlink(creds_file)


def _headers(value: Any) -> dict[str, str] | None:
    """NATS headers of a message (a name may carry a list: nats-py sends its first value
    per name, so lists are refused rather than silently shortened)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TaskError(f"message headers must be a map, got {value!r}")
    out: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, list):
            if len(item) != 1:
                raise TaskError(f"header {key!r}: one value per header name is supported")
            item = item[0]
        out[str(key)] = to_text(item)
    return out or None


def _data(value: Any) -> bytes:
    if value is None:
        return b""
    return value.encode() if isinstance(value, str) else orjson.dumps(value)


def _message(row: Any) -> tuple[dict[str, str] | None, bytes]:
    fields = row if isinstance(row, Mapping) and ("data" in row or "headers" in row) else None
    if fields is None:
        return None, _data(row)
    return _headers(fields.get("headers")), _data(fields.get("data"))


class Produce(_Nats):
    """Publish messages to a NATS subject."""

    short: ClassVar[str | None] = "nats_produce"

    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.Produce",)
    type: Literal["io.kestra.plugin.nats.core.Produce"]
    subject: Str
    from_: Any = Field(alias="from")

    async def run(self, ctx: TaskContext) -> Mapping[str, Any]:
        subject = render_str(ctx, self.subject, "subject", required=True) or ""
        rows = await read_from(ctx, self.from_, lenient=True)
        messages = [_message(row) for row in await asyncio.to_thread(rows.as_list)]
        async with self.connection(ctx) as client:
            for headers, data in messages:
                await client.publish(subject, data, headers=headers)
            await client.flush(timeout=FLUSH_TIMEOUT_S)
        return {"messagesCount": len(messages)}


class Request(_Nats):
    """Send a request to a NATS subject and wait for the reply."""

    short: ClassVar[str | None] = "nats_request"

    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.Request",)
    type: Literal["io.kestra.plugin.nats.core.Request"]
    subject: Str
    from_: Any = Field(alias="from")
    requestTimeout: Duration = "PT5S"

    async def run(self, ctx: TaskContext) -> Mapping[str, Any]:
        subject = render_str(ctx, self.subject, "subject", required=True) or ""
        rows = (await read_from(ctx, self.from_, lenient=True)).as_list()
        if not rows:
            raise TaskError("property 'from' holds no message")
        headers, data = _message(rows[0])
        timeout = render_seconds(ctx, self.requestTimeout, "requestTimeout", 5.0) or 5.0
        async with self.connection(ctx) as client:
            try:
                reply = await client.request(subject, data, timeout=timeout, headers=headers)
            except (NatsTimeout, NoRespondersError):
                ctx.log("WARN", f"No reply on {subject} within {timeout:g} s")
                return {"response": None}
        return {"response": reply.data.decode("utf-8", "replace")}


class Consume(_Nats):
    """Consume messages of a NATS JetStream subject into an internal storage ION file."""

    short: ClassVar[str | None] = "nats_consume"

    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.Consume",)
    type: Literal["io.kestra.plugin.nats.core.Consume"]
    subject: Str
    durableId: Str | None = None
    since: Str | None = None
    pollDuration: Duration = "PT2S"
    batchSize: IntOrExpr = 10
    maxRecords: IntOrExpr | None = None
    maxDuration: Duration | None = None
    deliverPolicy: (
        Literal["All", "Last", "New", "ByStartSequence", "ByStartTime", "LastPerSubject"] | Str
    ) = "All"

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        subject = render_str(ctx, self.subject, "subject", required=True) or ""
        config = self._config(ctx)
        batch = render_int(ctx, self.batchSize, "batchSize", 10) or 10
        if batch < 1:
            raise TaskError("property 'batchSize' must be at least 1")
        poll = render_seconds(ctx, self.pollDuration, "pollDuration", 2.0) or 2.0
        max_records = render_int(ctx, self.maxRecords, "maxRecords")
        max_duration = render_seconds(ctx, self.maxDuration, "maxDuration")
        durable = render_str(ctx, self.durableId, "durableId")
        sink = await IonSink.create(ctx)
        try:
            async with self.connection(ctx) as client:
                try:
                    sub = await client.jetstream().pull_subscribe(
                        subject, durable=durable, config=config
                    )
                except NotFoundError:
                    raise TaskError(f"no JetStream stream holds the subject {subject!r}") from None
                written: list[Any] = []
                try:
                    await _fetch(ctx, sub, sink, written, batch, poll, max_records, max_duration)
                    killed = ctx.cancelled.is_set()
                    uri = "" if killed else await sink.store(ctx, "consume.ion")
                except BaseException:
                    await _give_back(client, written)
                    raise
                if killed:
                    await _give_back(client, written)
                    return TaskOutcome(state="KILLED")
                for message in written:  # only now: the messages are stored
                    await message.ack()
                await client.flush(timeout=FLUSH_TIMEOUT_S)
                with contextlib.suppress(NatsError):
                    await sub.unsubscribe()
        finally:
            await sink.discard()
        return TaskOutcome(
            state="SUCCESS",
            outputs={"messagesCount": len(written), "uri": uri},
            metrics={"records": len(written)},
        )

    def _config(self, ctx: TaskContext) -> api.ConsumerConfig:
        name = (render_str(ctx, self.deliverPolicy, "deliverPolicy") or "All").upper()
        policy = _POLICIES.get(name.replace("_", ""))
        if policy is None:
            raise TaskError(
                f"deliverPolicy {name!r}: use All, Last, New, ByStartSequence, ByStartTime or "
                "LastPerSubject"
            )
        since = render_str(ctx, self.since, "since")
        start: datetime | None = None
        if since:
            try:
                start_time = datetime.fromisoformat(since.strip().replace("Z", "+00:00"))
            except ValueError:
                raise TaskError(f"property 'since': {since!r} is not an ISO-8601 date") from None
            if start_time.tzinfo is None:
                start_time = start_time.replace(tzinfo=UTC)
            start = start_time.astimezone(UTC)
            if policy == api.DeliverPolicy.ALL:
                policy = api.DeliverPolicy.BY_START_TIME
        return api.ConsumerConfig(
            ack_policy=api.AckPolicy.EXPLICIT, deliver_policy=policy, opt_start_time=start
        )


async def _give_back(client: Any, messages: list[Any]) -> None:
    """NAK what was not stored: redelivered at once (JetStream would wait ack_wait, 30 s)."""
    for message in messages:
        with contextlib.suppress(NatsError):
            await message.nak()
    with contextlib.suppress(NatsError, TimeoutError):
        await client.flush(timeout=FLUSH_TIMEOUT_S)


async def _fetch(
    ctx: TaskContext,
    sub: Any,
    sink: IonSink,
    written: list[Any],
    batch: int,
    poll: float,
    max_records: int | None,
    max_duration: float | None,
) -> None:
    """Fetch and write messages until a fetch is empty or a limit is reached."""
    started = time.monotonic()
    while not ctx.cancelled.is_set():
        want = batch if max_records is None else min(batch, max_records - len(written))
        if want <= 0:
            return
        try:
            messages = await sub.fetch(want, timeout=poll)
        except TimeoutError:  # nothing came within pollDuration
            return
        for message in messages:
            sink.write(_row(message))
            written.append(message)
        if max_duration is not None and time.monotonic() - started >= max_duration:
            return


def _row(message: Any) -> dict[str, Any]:
    headers: dict[str, list[str]] = {}
    raw = message.headers or {}
    for key, value in raw.items():
        headers.setdefault(str(key), []).extend(value if isinstance(value, list) else [value])
    stamp = message.metadata.timestamp
    return {
        "headers": headers,
        "data": message.data.decode("utf-8", "replace"),
        "subject": message.subject,
        "timestamp": stamp.astimezone(UTC) if isinstance(stamp, datetime) else stamp,
    }


class _Bucket(_Nats):
    bucketName: Str

    async def bucket(self, ctx: TaskContext, client: Any) -> Any:
        name = render_str(ctx, self.bucketName, "bucketName", required=True) or ""
        try:
            return await client.jetstream().key_value(name)
        except (NotFoundError, BucketNotFoundError):
            raise TaskError(f"NATS key/value bucket {name!r} does not exist") from None


class CreateBucket(_Nats):
    """Create a NATS key/value bucket."""

    short: ClassVar[str | None] = "nats_kv_create_bucket"

    type: Literal["io.kestra.plugin.nats.kv.CreateBucket"]
    name: Str
    description: Str | None = None
    metadata: dict[str, Any] | Str | None = None
    historyPerKey: IntOrExpr = 1
    bucketSize: IntOrExpr | None = None
    valueSize: IntOrExpr | None = None

    async def run(self, ctx: TaskContext) -> Mapping[str, Any]:
        name = render_str(ctx, self.name, "name", required=True) or ""
        if self.metadata is not None:
            raise TaskError(
                "property 'metadata': bucket metadata needs NATS server 2.10, which this "
                "worker's client does not send; remove it"
            )
        config = api.KeyValueConfig(
            bucket=name,
            description=render_str(ctx, self.description, "description"),
            history=render_int(ctx, self.historyPerKey, "historyPerKey", 1) or 1,
            max_bytes=render_int(ctx, self.bucketSize, "bucketSize"),
            max_value_size=render_int(ctx, self.valueSize, "valueSize"),
        )
        async with self.connection(ctx) as client:
            bucket = await client.jetstream().create_key_value(config)
            status = await bucket.status()
        info = status.stream_info
        stream = info.config
        return {
            "bucket": status.bucket,
            "description": stream.description,
            "history": status.history,
            "entryCount": status.values,
            "bucketSize": stream.max_bytes,
            "valueSize": stream.max_msg_size,
            "metadata": None,
        }


class Put(_Bucket):
    """Put values into a NATS key/value bucket."""

    short: ClassVar[str | None] = "nats_kv_put"

    type: Literal["io.kestra.plugin.nats.kv.Put"]
    values: dict[str, Any] | Str

    async def run(self, ctx: TaskContext) -> Mapping[str, Any]:
        values = render_map(ctx, self.values, "values")
        revisions: dict[str, int] = {}
        async with self.connection(ctx) as client:
            bucket = await self.bucket(ctx, client)
            for key, value in values.items():
                revisions[str(key)] = await bucket.put(str(key), orjson.dumps(value))
        return {"revisions": revisions}


class Get(_Bucket):
    """Get values from a NATS key/value bucket."""

    short: ClassVar[str | None] = "nats_kv_get"

    type: Literal["io.kestra.plugin.nats.kv.Get"]
    keys: list[Str] | Str | None = None
    keyRevisions: dict[str, Any] | Str | None = None

    async def run(self, ctx: TaskContext) -> Mapping[str, Any]:
        wanted: list[tuple[str, int | None]]
        if self.keyRevisions is not None:
            wanted = [
                (str(k), int(v))
                for k, v in render_map(ctx, self.keyRevisions, "keyRevisions").items()
            ]
        else:
            wanted = [(key, None) for key in _keys(ctx, self.keys)]
        output: dict[str, Any] = {}
        async with self.connection(ctx) as client:
            bucket = await self.bucket(ctx, client)
            for key, revision in wanted:
                try:
                    entry = await bucket.get(key, revision=revision)
                except (KeyNotFoundError, KeyDeletedError):
                    continue
                if entry.value is not None:
                    output[key] = orjson.loads(entry.value)
        return {"output": output}


class Delete(_Bucket):
    """Delete keys of a NATS key/value bucket."""

    short: ClassVar[str | None] = "nats_kv_delete"

    type: Literal["io.kestra.plugin.nats.kv.Delete"]
    keys: list[Str] | Str

    async def run(self, ctx: TaskContext) -> Mapping[str, Any]:
        keys = _keys(ctx, self.keys)
        async with self.connection(ctx) as client:
            bucket = await self.bucket(ctx, client)
            for key in keys:
                await bucket.delete(key)
        return {"deletedCount": len(keys)}


def _keys(ctx: TaskContext, value: Any) -> list[str]:
    if value is None:
        raise TaskError("property 'keys' is required")
    rendered = ctx.render(value)
    if isinstance(rendered, str) and rendered.strip().startswith("["):
        rendered = orjson.loads(rendered)
    return [to_text(k) for k in (rendered if isinstance(rendered, list) else [rendered])]


PLUGINS = [Produce, Request, Consume, CreateBucket, Put, Get, Delete]
