"""An AWS emulator for the AWS service plugins' tests (Athena, Lambda, SNS, SQS, DynamoDB...): moto.

moto (getmoto/moto, Apache-2.0) in server mode, from PyPI: ``moto[server]==<pin>`` installed
into its own virtualenv ``$HEADWATER_LOCAL_DIR/moto/venv`` (~320 MB, ~30 s; moto's
dependencies never enter the project's). It runs as a plain process on 127.0.0.1 with its own
port (5055, not moto's 5000), in memory: a restart forgets every resource.

It starts through :mod:`moto_launch` (run with ``-P`` so this folder's modules never shadow
moto's imports), which turns moto's IAM authentication on: requests must be signed with the
access key written to ``$HEADWATER_LOCAL_DIR/moto/credentials.json`` (read it with
:func:`credentials`); another key or a wrong secret is refused as AWS refuses it. Lambda runs
without Docker: an invocation answers without running code (moto's "simple" Lambda).

What moto does not do, so our tests cannot show it: Athena does not run SQL (queries move
QUEUED -> RUNNING -> SUCCEEDED as they are polled and return the results queued through
``/moto-api/static/athena/query-results``); Lambda functions do not execute. The
``/moto-api/reset`` endpoint would also erase the IAM user: tests must not call it.
"""

from __future__ import annotations

import json
import os
import pathlib

from . import probes
from .base import Component, Say, Server, wait_ready
from .config import Config, PortSpec, ServiceError
from .install import install_venv

MOTO_SPEC = "moto[server]==5.2.5"
# Bootstrapping the IAM user takes ~1 s after moto's ~3 s import on our shared cores.
MOTO_READY_TIMEOUT_S = 90.0
# ~60 packages, ~30 s here; a slow index may take several minutes.
MOTO_INSTALL_TIMEOUT_S = 900.0
LAUNCHER = pathlib.Path(__file__).with_name("moto_launch.py")


def credentials_file(cfg: Config) -> pathlib.Path:
    return cfg.server_dir("moto") / "credentials.json"


def credentials(cfg: Config) -> dict[str, str]:
    """``accessKeyId``, ``secretKeyId``, ``region``, ``endpoint`` of the running server."""
    path = credentials_file(cfg)
    try:
        data: dict[str, str] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ServiceError(
            f"no moto credentials at {path} ({exc}): start it with `services.py up moto`"
        ) from None
    return data


def moto_argv(python: pathlib.Path, port: int, creds: pathlib.Path) -> list[str]:
    return [str(python), "-P", str(LAUNCHER), str(port), str(creds)]


class Moto(Server):
    name = "moto"
    port_key = "moto"
    ready_timeout = MOTO_READY_TIMEOUT_S

    @property
    def venv(self) -> pathlib.Path:
        return self.dir / "venv"

    @property
    def python(self) -> pathlib.Path:
        return self.venv / "bin" / "python"

    def _server(self) -> Component:
        return Component(
            "moto",
            self.dir / "moto.pid",
            self.dir / "moto.log",
            (LAUNCHER.name, str(self.cfg.ports["moto"])),
            self.tag,
        )

    def components(self) -> list[Component]:
        return [self._server()]

    def ports(self) -> list[tuple[Component, PortSpec]]:
        return [(self._server(), self.cfg.port("moto"))]

    def ready(self) -> bool:
        # The credentials file appears once the IAM user exists and authentication is on.
        return credentials_file(self.cfg).exists() and probes.http_answers(self.cfg.ports["moto"])

    def _install(self, say: Say) -> None:
        install_venv(self.venv, (MOTO_SPEC,), say, MOTO_INSTALL_TIMEOUT_S, "~30 s the first time")

    def start(self, say: Say) -> None:
        self._install(say)
        self.dir.mkdir(parents=True, exist_ok=True)
        port = self.cfg.ports["moto"]
        creds = credentials_file(self.cfg)
        creds.unlink(missing_ok=True)
        say(f"starting moto on 127.0.0.1:{port} (in memory, IAM authentication on)")
        comp = self._server()
        env = dict(os.environ)
        # moto's own settings from the caller's environment must not change the server.
        for var in ("INITIAL_NO_AUTH_ACTION_COUNT", "MOTO_ACCOUNT_ID", "TEST_SERVER_MODE"):
            env.pop(var, None)
        process = self.spawn(comp, moto_argv(self.python, port, creds), env, self.dir)
        wait_ready("moto", self.ready, MOTO_READY_TIMEOUT_S, comp.log, process)
