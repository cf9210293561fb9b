"""DevStack: the embedded broker and database of ``headwater dev`` for one data directory.

``async with DevStack(data_dir) as stack:`` starts Tansu and PostgreSQL side by side, and
``stack.settings(base)`` returns the base settings pointed at them. Leaving the block stops
both, also on an exception or a cancellation (Ctrl-C). A pid file in the data directory
lets the next start end servers that a killed run left behind, and a lock file keeps two dev
stacks off the same data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import pathlib
from collections.abc import Callable
from types import TracebackType
from typing import IO, Any

from pydantic import SecretStr

from engine.devstack.broker import DEFAULT_KAFKA_PORT, Broker
from engine.devstack.postgres import DEFAULT_PORT as DEFAULT_PG_PORT
from engine.devstack.postgres import Postgres
from engine.devstack.procs import Child, reap_leftovers, write_pids
from engine.errors import ConfigError
from engine.settings import Settings

log = logging.getLogger(__name__)

Say = Callable[[str], None]
DEFAULT_DATA_DIR = pathlib.Path(".headwater")


def _quiet(_: str) -> None:
    return None


class DevStack:
    """Tansu + PostgreSQL under ``data_dir`` (logs in ``data_dir/logs``)."""

    def __init__(
        self,
        data_dir: pathlib.Path = DEFAULT_DATA_DIR,
        *,
        durable: bool = False,
        kafka_port: int = DEFAULT_KAFKA_PORT,
        postgres_port: int = DEFAULT_PG_PORT,
        say: Say = _quiet,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.say = say
        self.broker = Broker(self.data_dir / "kafka", durable=durable, preferred_port=kafka_port)
        self.postgres = Postgres(self.data_dir, preferred_port=postgres_port)
        self.taken: set[int] = set()
        self._lock: IO[str] | None = None

    @property
    def pid_file(self) -> pathlib.Path:
        return self.data_dir / "servers.pid"

    @property
    def children(self) -> list[Child]:
        return [*self.broker.children, *self.postgres.children]

    def settings(self, base: Settings) -> Settings:
        """``base`` with the broker and database of this stack."""
        kafka = base.kafka.model_copy(update={"bootstrap_servers": self.broker.bootstrap})
        postgres = base.postgres.model_copy(update={"dsn": SecretStr(self.postgres.dsn)})
        return base.model_copy(update={"kafka": kafka, "postgres": postgres})

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        reaped = reap_leftovers(self.pid_file)
        if reaped:
            self.say(f"stopped servers a previous run left behind (pids {reaped})")
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.broker.start(self.taken))
                # A memory broker starts with an empty log: a read model kept from an earlier
                # run would list flows and executions that no longer exist (and accept
                # commands for them that the executor would drop).
                fresh = not self.broker.durable
                group.create_task(self.postgres.start(self.taken, self.say, fresh=fresh))
        except BaseException as exc:
            await self.stop()
            if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
                raise exc.exceptions[0] from None
            raise
        write_pids(self.pid_file, self.children)

    async def stop(self) -> None:
        """Stop both servers (in threads: it blocks for up to the stop grace)."""
        try:
            await asyncio.gather(
                asyncio.to_thread(self.broker.stop), asyncio.to_thread(self.postgres.stop)
            )
        finally:
            if not any(c.alive() for c in self.children):
                self.pid_file.unlink(missing_ok=True)
            self._release_lock()

    def stop_now(self) -> None:
        """Blocking stop for paths with no event loop left (atexit, a second Ctrl-C)."""
        for child in self.children:
            child.stop(grace_s=0.5)
        self._release_lock()

    def _take_lock(self) -> None:
        handle = (self.data_dir / "dev.lock").open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.close()
            raise ConfigError(
                f"another `headwater dev` is using {self.data_dir}; stop it, or pass another "
                "--data-dir"
            ) from exc
        self._lock = handle

    def _release_lock(self) -> None:
        handle, self._lock = self._lock, None
        if handle is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    async def __aenter__(self) -> DevStack:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Shielded: a second cancellation (Ctrl-C again) must not leave servers running.
        task = asyncio.ensure_future(self.stop())
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            await task
            raise

    def describe(self) -> dict[str, Any]:
        return {
            "kafka": self.broker.bootstrap,
            "postgres": self.postgres.dsn,
            "s3_port": self.broker.s3_port or None,
            "data_dir": str(self.data_dir),
            "durable": self.broker.durable,
        }
