"""A whole Headwater in one process: the embedded servers, every component, the flow folder.

``headwater dev`` and ``headwater run --embedded`` both use :func:`dev_session`:

    async with dev_session(DevOptions(flows=Path("flows")), stop, say=print) as session:
        print(session.url)          # the API (and dashboard) answers there
        await session.wait()        # until `stop` is set; raises if a component failed

Order of start: servers (Tansu and PostgreSQL side by side), topics, the components (App) and
the flow folder's first deployment side by side, then "ready" once the API listens. Order of
stop: the flow sync and the components (they leave their consumer groups and commit), then
the servers. A failure anywhere stops everything that started and is re-raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import pathlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from engine.app import App, listen
from engine.bus.admin import BusAdmin
from engine.bus.topics import ensure_topics, topics_for
from engine.devstack.broker import DEFAULT_KAFKA_PORT, DURABLE_FETCH_WAIT_MS
from engine.devstack.flowsync import FlowSync, ensure_folder
from engine.devstack.postgres import DEFAULT_PORT as DEFAULT_PG_PORT
from engine.devstack.procs import HOST, pick_port
from engine.devstack.stack import DEFAULT_DATA_DIR, DevStack
from engine.errors import ConfigError
from engine.settings import KafkaSettings, Settings

log = logging.getLogger(__name__)

Say = Callable[[str], None]
DEFAULT_API_PORT = 8080
# Consumer session timeout of the dev stack (unless set): joins take ~1.5 s instead of ~3 s.
DEV_SESSION_TIMEOUT_MS = 3000
# Every producer of Headwater's own topics runs in the dev process and wakes their dozing
# consumers as it writes (engine.bus.nudge), so those listen this seldom when idle; records
# from elsewhere (`headwater triggers toggle` in another shell) wait up to this long.
DEV_NUDGED_DOZE_PERIOD_MS = 5000
# ... and they doze this soon after their last record: between two records of a running
# flow they do not fetch at all (measured: the stack's fetching slowed a Python task's own
# computation by up to 2x on 2 cores), and the next record's writer wakes them.
DEV_NUDGED_DOZE_AFTER_S = 0.5
# Partitions of the topics the dev stack creates (unless set). One process reads them all, so
# more buy no parallelism, and the embedded broker pays for each: Tansu lists every batch a
# partition ever stored on each fetch that finds records there, and one batch of the executor
# lands in every partition its executions hash to. At 500 executions/s for 60 s, 8 -> 1
# partition (one run each): mean latency 0.37 -> 0.17 s, projection lag p99 1.6 -> 0.67 s
# (RESULTS.md).
DEV_PARTITIONS = 1


@dataclass(frozen=True, slots=True)
class DevOptions:
    flows: pathlib.Path | None = pathlib.Path("flows")
    data_dir: pathlib.Path = DEFAULT_DATA_DIR
    durable: bool = False
    api_port: int = DEFAULT_API_PORT
    # A port given on purpose must be used or fail; the default moves aside when taken.
    api_port_strict: bool = False
    kafka_port: int = DEFAULT_KAFKA_PORT
    postgres_port: int = DEFAULT_PG_PORT


@dataclass(slots=True)
class DevSession:
    url: str
    settings: Settings
    stack: DevStack
    app: App
    ready_s: float
    _app_task: asyncio.Task[None]
    _sync_task: asyncio.Task[None] | None

    async def wait(self) -> None:
        """Until the session's ``stop`` is set; re-raises a component's failure."""
        tasks = [t for t in (self._app_task, self._sync_task) if t is not None]
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()


def dev_settings(base: Settings, stack: DevStack) -> Settings:
    """``base`` pointed at the embedded servers, with the worker's files in the data dir."""
    settings = stack.settings(base)
    if settings.kafka.session_timeout_ms == KafkaSettings().session_timeout_ms:
        # One process on one machine: nobody is slow to heartbeat, and a group join takes
        # about half the session timeout on Tansu (SERVICES.md), which delays the first run.
        kafka = settings.kafka.model_copy(
            update={"session_timeout_ms": DEV_SESSION_TIMEOUT_MS, "heartbeat_interval_ms": 1000}
        )
        settings = settings.model_copy(update={"kafka": kafka})
    if settings.kafka.nudged_doze_period_ms == KafkaSettings().nudged_doze_period_ms:
        kafka = settings.kafka.model_copy(
            update={
                "nudged_doze_period_ms": DEV_NUDGED_DOZE_PERIOD_MS,
                "nudged_doze_after_s": DEV_NUDGED_DOZE_AFTER_S,
            }
        )
        settings = settings.model_copy(update={"kafka": kafka})
    # A durable Tansu serves batches it reads back from S3 only to patient fetches.
    if (
        stack.broker.durable
        and settings.kafka.fetch_wait_max_ms == KafkaSettings().fetch_wait_max_ms
    ):
        kafka = settings.kafka.model_copy(update={"fetch_wait_max_ms": DURABLE_FETCH_WAIT_MS})
        settings = settings.model_copy(update={"kafka": kafka})
    worker = settings.worker.model_copy(
        update={
            "work_dir": settings.worker.work_dir or str(stack.data_dir / "work"),
            "storage_dir": settings.worker.storage_dir or str(stack.data_dir / "storage"),
        }
    )
    return settings.model_copy(update={"worker": worker})


@contextlib.asynccontextmanager
async def dev_session(
    options: DevOptions, stop: asyncio.Event, *, base: Settings, say: Say
) -> AsyncIterator[DevSession]:
    started = time.monotonic()
    if options.flows is not None:
        ensure_folder(options.flows, say)
    stack = DevStack(
        options.data_dir,
        durable=options.durable,
        kafka_port=options.kafka_port,
        postgres_port=options.postgres_port,
        say=say,
    )
    async with stack:
        settings = dev_settings(base, stack)
        admin = BusAdmin(settings.kafka)  # connection settings only: partitions do not matter
        settings = await _with_partitions(settings, admin)
        await ensure_topics(admin, settings.kafka)
        sock = _api_socket(options, stack.taken, say)
        app = App(settings, api_socket=sock)
        settings = settings.model_copy(
            update={"api": settings.api.model_copy(update={"port": sock.getsockname()[1]})}
        )
        app_task = asyncio.create_task(app.run(stop), name="headwater-app")
        sync: FlowSync | None = None
        sync_task: asyncio.Task[None] | None = None
        try:
            if options.flows is not None:
                sync = FlowSync(settings.kafka, options.flows, say)
                await sync.start()
                sync_task = asyncio.create_task(sync.run(stop), name="flow-sync")
            ready = asyncio.create_task(app.ready.wait())
            await asyncio.wait([ready, app_task], return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            if app_task.done():
                app_task.result()  # raises the component's failure
                raise ConfigError("the components stopped before the API was ready")
            yield DevSession(
                url=app.api_url,
                settings=settings,
                stack=stack,
                app=app,
                ready_s=time.monotonic() - started,
                _app_task=app_task,
                _sync_task=sync_task,
            )
        finally:
            stop.set()
            failure = await _finish(app_task, sync_task, sync)
        # Reached only when the body ended normally: a failure while it ran is not lost.
        if failure is not None:
            raise failure


async def _with_partitions(settings: Settings, admin: BusAdmin) -> Settings:
    """:data:`DEV_PARTITIONS` unless set, or the count of the topics a durable data dir kept
    (a count cannot change: ensure_topics refuses a mismatch)."""
    if "partitions" in settings.kafka.model_fields_set:
        return settings
    kept = await admin.list_topics()
    count = kept.get(topics_for(settings.kafka).commands.name, DEV_PARTITIONS)
    kafka = settings.kafka.model_copy(update={"partitions": count})
    return settings.model_copy(update={"kafka": kafka})


async def _finish(
    app_task: asyncio.Task[None], sync_task: asyncio.Task[None] | None, sync: FlowSync | None
) -> BaseException | None:
    """Wait for the components to stop (shielded: a second Ctrl-C must not orphan them);
    return the first failure among them."""

    async def finish() -> BaseException | None:
        tasks = [t for t in (app_task, sync_task) if t is not None]
        await asyncio.wait(tasks)
        if sync is not None:
            await sync.close()
        failures = [t.exception() for t in tasks if not t.cancelled()]
        # Release the stopped components' Kafka clients before the broker stops (see App).
        gc.collect()
        return next((f for f in failures if f is not None), None)

    job = asyncio.ensure_future(finish())
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        await job
        raise


def _api_socket(options: DevOptions, taken: set[int], say: Say) -> socket.socket:
    try:
        return listen(HOST, options.api_port)
    except ConfigError:
        if options.api_port_strict:
            raise
    port = pick_port(0, taken)
    say(f"port {options.api_port} is taken; the API listens on {port} instead")
    return listen(HOST, port)
