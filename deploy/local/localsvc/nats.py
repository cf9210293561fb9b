"""NATS from Debian's package (``nats-server``), with JetStream, run as a plain process.

The nats plugin (``io.kestra.plugin.nats.*``) is tested against it: core publish and
request/reply, JetStream pull consumers and the key/value store. JetStream keeps its streams
under ``$HEADWATER_LOCAL_DIR/nats/jetstream``; no monitoring port, loopback only.
"""

from __future__ import annotations

import os
import pathlib

from . import probes
from .base import Component, Say, Server, wait_ready
from .config import PortSpec

NATS_SERVER = pathlib.Path("/usr/sbin/nats-server")
# nats-server answers within milliseconds; JetStream recovers a small store as quickly.
NATS_READY_TIMEOUT_S = 20.0


def nats_argv(binary: str, store: pathlib.Path, port: int) -> list[str]:
    return [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)]


class Nats(Server):
    name = "nats"
    port_key = "nats"
    ready_timeout = NATS_READY_TIMEOUT_S

    def _server(self) -> Component:
        return Component(
            "nats-server",
            self.dir / "nats.pid",
            self.dir / "nats.log",
            ("nats-server", str(self.dir / "jetstream")),
            self.tag,
        )

    def components(self) -> list[Component]:
        return [self._server()]

    def ports(self) -> list[tuple[Component, PortSpec]]:
        return [(self._server(), self.cfg.port("nats"))]

    def ready(self) -> bool:
        return probes.nats_ready(self.cfg.ports["nats"])

    def apt_packages(self) -> list[str]:
        return [] if NATS_SERVER.exists() else ["nats-server"]

    def start(self, say: Say) -> None:
        store = self.dir / "jetstream"
        store.mkdir(parents=True, exist_ok=True)
        port = self.cfg.ports["nats"]
        say(f"starting NATS (JetStream) on 127.0.0.1:{port}")
        comp = self._server()
        process = self.spawn(
            comp, nats_argv(str(NATS_SERVER), store, port), dict(os.environ), self.dir
        )
        wait_ready("NATS", self.ready, NATS_READY_TIMEOUT_S, comp.log, process)
