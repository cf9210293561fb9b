"""The source of every polling trigger plugin (:class:`executors.polling.PollingTrigger`).

Config: the trigger's own pydantic model (its ``interval``, default per type).

Parser: the plugin's ``poll`` itself: it lists the remote side, decides what fires, stores the
files in internal storage and returns the trigger variables and the coordinates the execution
id derives from.

Source: every ``interval``, one ``poll``; a :class:`~executors.polling.Poll` is fired and, once
its StartExecution is durable, its ``after`` (MOVE / DELETE, the state write) runs; when firing
fails (or the source is stopped meanwhile), its ``discard`` runs instead. A poll that
fails (the server refused the credentials, the bucket does not exist) is logged, recorded as the
trigger's last error (``headwater triggers list`` shows it) and polled again at the next
interval, as Kestra does; the source never crashes on one. Secrets are masked in both.

:class:`PollingDeps` is what the polls of one runtime share: internal storage (the workers'
directory, so that tasks read the files the trigger stored), the secret store, the KV store
(started on the first poll that needs it) and a scratch directory for downloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.bus.producer import AsyncProducer
from engine.bus.supervise import Supervised
from engine.errors import HeadwaterError
from engine.expressions import ExpressionHooks
from engine.reducer.ids import iso
from engine.settings import Settings
from engine.stores.kv import KafkaKV
from engine.stores.secrets import SecretStore
from engine.stores.storage import LocalStorage, TriggerLocation
from engine.worker.secrets import mask
from executors.base import LogLine, Storage, TaskContext, error_message
from executors.polling import Poll, PollContext, PollingTrigger
from triggers.model import SourceContext, settle

log = logging.getLogger(__name__)

_LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO}


def _dir(configured: str, name: str) -> Path:
    return Path(configured) if configured else Path(tempfile.gettempdir()) / name


class PollingDeps:
    """Storage, secrets, KV and scratch space of the polling triggers of one runtime."""

    def __init__(self, settings: Settings, producer: AsyncProducer) -> None:
        self.settings = settings
        worker = settings.worker
        self.storage = LocalStorage(_dir(worker.storage_dir, "headwater-storage"))
        self.work_dir = _dir(worker.work_dir, "headwater-worker") / "triggers"
        self.secrets = SecretStore.from_settings(settings.secrets)
        self._producer = producer
        self._kv: KafkaKV | None = None
        self._kv_task: Supervised | None = None
        self._kv_lock = asyncio.Lock()

    async def kv(self) -> KafkaKV:
        async with self._kv_lock:
            if self._kv is None:
                from engine.bus.admin import BusAdmin
                from engine.stores.kv import ensure_kv_topic

                kafka = self.settings.kafka
                await ensure_kv_topic(BusAdmin(kafka), kafka)
                kv = KafkaKV(
                    kafka,
                    self._producer,
                    group_id=f"{self.settings.triggers.group_prefix}-kv",
                )
                await kv.start()
                self._kv_task = Supervised("triggers-kv", kv.run())
                self._kv = kv
            return self._kv

    async def close(self) -> None:
        if self._kv_task is not None:
            await self._kv_task.stop()
        if self._kv is not None:
            await self._kv.close()
        self._kv = None
        self._kv_task = None

    async def context(self, source: SourceContext, trigger: PollingTrigger) -> PollContext:
        ref = source.ref
        scratch = self.work_dir / ref.namespace / ref.flow_id / ref.trigger_id
        scratch.mkdir(parents=True, exist_ok=True)
        kv = await self.kv()
        task = TaskContext(
            execution_id="",
            task_run_id=f"trigger-{ref.trigger_id}",
            attempt=0,
            variables={"flow": {"id": ref.flow_id, "namespace": ref.namespace}},
            task_id=ref.trigger_id,
            namespace=ref.namespace,
            flow_id=ref.flow_id,
            working_dir=str(scratch),
            retain_logs=False,
            kv=kv,
        )

        def reveal(value: str) -> None:
            task.secrets = task.secrets | {value}

        def on_log(line: LogLine) -> None:
            level = _LEVELS.get(line.level, logging.WARNING)
            log.log(level, "trigger %s: %s", ref, line.message)

        task.on_log = on_log
        task.expression_hooks = ExpressionHooks(
            secret=self.secrets.hook(reveal, ref.namespace),
            read=self.storage.read_text,
            kv=kv.lookup,
        )

        def storage_for(exec_id: str) -> Storage:
            location = TriggerLocation(ref.namespace, ref.flow_id, exec_id, ref.trigger_id)
            return self.storage.for_task(location)

        return PollContext(
            task=task,
            namespace=ref.namespace,
            flow_id=ref.flow_id,
            trigger_id=ref.trigger_id,
            kv=kv,
            storage_for=storage_for,
        )


class PollingSource:
    def __init__(self, ctx: SourceContext, deps: PollingDeps) -> None:
        self.ctx = ctx
        self.deps = deps
        self.trigger: PollingTrigger = ctx.config

    async def run(self) -> None:
        interval = self.trigger.interval_seconds()
        while True:
            await self.once()
            await asyncio.sleep(interval)

    async def once(self) -> bool:
        """One evaluation; whether it started an execution."""
        try:
            pctx = await self.deps.context(self.ctx, self.trigger)
        except HeadwaterError as exc:  # the KV store (Kafka) did not answer
            await self._failed(exc.message, frozenset())
            return False
        try:
            poll = await self.trigger.poll(pctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a poll's failure is the trigger's last error, not a crash
            await self._failed(error_message(exc), pctx.task.secrets)
            return False
        if not poll:
            return False
        polls = poll if isinstance(poll, list) else [poll]
        try:
            await self._fire(polls)
        except BaseException:
            for undone in polls:
                if undone.discard is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(undone.discard())
            raise
        for done in polls:
            if done.after is None:
                continue
            try:
                await done.after()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._failed(error_message(exc), pctx.task.secrets)
        return True

    async def _fire(self, polls: list[Poll]) -> None:
        futures = [await self.ctx.fire(p.coordinates, p.variables) for p in polls]
        await settle(futures)

    async def _failed(self, message: str, secrets: frozenset[str]) -> None:
        text = mask(message, secrets) or message
        log.warning("trigger %s: %s", self.ctx.ref, text)
        await self.ctx.record(last_error=text, last_error_at=iso(datetime.now(UTC)))


def polling_factory(deps: PollingDeps) -> Any:
    def factory(ctx: SourceContext) -> PollingSource:
        return PollingSource(ctx, deps)

    return factory
