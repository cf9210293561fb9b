"""Redis from Debian's package (``redis-server``), run as a plain foreground process.

The redis plugin (``io.kestra.plugin.redis.*``) is tested against it. Everything is given on
the command line (Debian's ``/etc/redis/redis.conf`` is not read): loopback only, our port,
the data directory ``$HEADWATER_LOCAL_DIR/redis/data`` (an append-only file, so keys survive
a restart as a real server's would), logs to stdout (our log file).
"""

from __future__ import annotations

import os
import pathlib

from . import probes
from .base import Component, Say, Server, wait_ready
from .config import PortSpec

REDIS_SERVER = pathlib.Path("/usr/bin/redis-server")
# Redis answers PING within milliseconds of starting (an AOF replay of test data is tiny).
REDIS_READY_TIMEOUT_S = 20.0


def redis_argv(binary: str, data: pathlib.Path, port: int) -> list[str]:
    return [
        binary,
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--protected-mode", "yes",
        "--dir", str(data),
        "--daemonize", "no",
        "--appendonly", "yes",
        "--save", "",
        "--logfile", "",
        # Keep the command line and environment (our tag) that tell this process is ours:
        # Redis's process title would overwrite both.
        "--set-proc-title", "no",
        # Small: it shares two cores and little memory with the other servers.
        "--maxmemory", "128mb",
    ]  # fmt: skip


class Redis(Server):
    name = "redis"
    port_key = "redis"
    ready_timeout = REDIS_READY_TIMEOUT_S

    def _server(self) -> Component:
        return Component(
            "redis-server",
            self.dir / "redis.pid",
            self.dir / "redis.log",
            ("redis-server",),
            self.tag,
        )

    def components(self) -> list[Component]:
        return [self._server()]

    def ports(self) -> list[tuple[Component, PortSpec]]:
        return [(self._server(), self.cfg.port("redis"))]

    def ready(self) -> bool:
        return probes.redis_ready(self.cfg.ports["redis"])

    def apt_packages(self) -> list[str]:
        return [] if REDIS_SERVER.exists() else ["redis-server"]

    def start(self, say: Say) -> None:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        port = self.cfg.ports["redis"]
        say(f"starting Redis on 127.0.0.1:{port}")
        comp = self._server()
        process = self.spawn(
            comp, redis_argv(str(REDIS_SERVER), data, port), dict(os.environ), self.dir
        )
        wait_ready("Redis", self.ready, REDIS_READY_TIMEOUT_S, comp.log, process)
