"""An Azure Blob Storage server for the azure.storage.blob plugin's tests: Azurite's blob service.

Azurite (Microsoft's emulator, MIT) comes from the npm registry: ``npm install azurite@<pin>``
into ``$HEADWATER_LOCAL_DIR/azurite/npm`` with the machine's node and npm (Debian's ``nodejs``
and ``npm`` when missing). 3.35.0 is the last release that runs on node 20 (3.36 wants 21+,
3.37 wants 22+). Only the blob service runs (``azurite-blob``), as a plain node process on
127.0.0.1 with its own port (10100, not Azurite's 10000) and its data under
``$HEADWATER_LOCAL_DIR/azurite/data``; telemetry is off.

Clients: account :data:`ACCOUNT`, key :data:`ACCOUNT_KEY` (Azurite's well-known development
key, published in Microsoft's documentation), endpoint ``http://127.0.0.1:<port>/devstoreaccount1``
(path-style), or the connection string :func:`connection_string`. Requests signed with another
key are refused (403 ``AuthorizationFailure``). No container exists at first.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

from . import probes
from .base import Component, Say, Server, wait_ready
from .config import PortSpec, ServiceError

AZURITE_NPM = "azurite@3.35.0"
ACCOUNT = "devstoreaccount1"
# Azurite's fixed development key: public, the same in every Azurite; it guards nothing.
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
# Node loads Azurite's modules in ~3-5 s on our shared cores.
AZURITE_READY_TIMEOUT_S = 60.0
# 373 npm packages: ~2.5 min on our machines; a slow registry may take longer.
NPM_INSTALL_TIMEOUT_S = 900.0


def endpoint(port: int) -> str:
    return f"http://127.0.0.1:{port}/{ACCOUNT}"


def connection_string(port: int, key: str = ACCOUNT_KEY) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};"
        f"BlobEndpoint={endpoint(port)};"
    )


def azurite_argv(binary: pathlib.Path, data: pathlib.Path, port: int) -> list[str]:
    return [
        str(binary),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        str(data),
        "--skipApiVersionCheck",
        "--loose",
        "--disableTelemetry",
    ]


class Azurite(Server):
    name = "azurite"
    port_key = "azurite"
    ready_timeout = AZURITE_READY_TIMEOUT_S

    @property
    def npm_dir(self) -> pathlib.Path:
        return self.dir / "npm"

    @property
    def binary(self) -> pathlib.Path:
        return self.npm_dir / "node_modules" / ".bin" / "azurite-blob"

    def _node(self) -> Component:
        return Component(
            "azurite",
            self.dir / "azurite.pid",
            self.dir / "azurite.log",
            ("azurite-blob", f"--blobPort {self.cfg.ports['azurite']}"),
            self.tag,
        )

    def components(self) -> list[Component]:
        return [self._node()]

    def ports(self) -> list[tuple[Component, PortSpec]]:
        return [(self._node(), self.cfg.port("azurite"))]

    def ready(self) -> bool:
        return probes.http_answers(self.cfg.ports["azurite"])

    def apt_packages(self) -> list[str]:
        if shutil.which("node") is None:
            return ["nodejs", "npm"]
        return ["npm"] if shutil.which("npm") is None else []

    def _npm_install(self, say: Say) -> None:
        if self.binary.exists():
            return
        npm = shutil.which("npm")
        if npm is None:
            raise ServiceError("npm is not installed: apt-get install -y nodejs npm")
        self.npm_dir.mkdir(parents=True, exist_ok=True)
        say(f"$ npm install --prefix {self.npm_dir} {AZURITE_NPM} (a few minutes the first time)")
        try:
            done = subprocess.run(
                [
                    npm,
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--prefix",
                    str(self.npm_dir),
                    AZURITE_NPM,
                ],
                capture_output=True,
                text=True,
                timeout=NPM_INSTALL_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ServiceError(
                f"npm install {AZURITE_NPM} did not finish within {NPM_INSTALL_TIMEOUT_S:.0f} s; "
                "check access to the npm registry"
            ) from None
        if done.returncode != 0 or not self.binary.exists():
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            raise ServiceError(
                f"npm install {AZURITE_NPM} failed (exit {done.returncode}):\n{tail}"
            )

    def start(self, say: Say) -> None:
        self._npm_install(say)
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        port = self.cfg.ports["azurite"]
        say(f"starting Azurite (blob service) on 127.0.0.1:{port} (data {data})")
        comp = self._node()
        argv = azurite_argv(self.binary, data, port)
        process = self.spawn(comp, argv, dict(os.environ), self.dir)
        wait_ready("Azurite", self.ready, AZURITE_READY_TIMEOUT_S, comp.log, process)
