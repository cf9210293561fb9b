"""A BigQuery server for the gcp.bigquery plugin's tests: bqemulator.

bqemulator (jjviscomi/bqemulator, Apache-2.0, pure Python on DuckDB and SQLGlot) speaks
BigQuery's REST API: jobs (query, load, extract, copy), the resumable upload host, datasets,
tables, query results. It comes from PyPI, installed into its own virtual environment under
``$HEADWATER_LOCAL_DIR/bigquery/venv`` (its pins, FastAPI and gRPC among them, stay out of the
project's), and runs as a plain process on 127.0.0.1 with its own ports (REST 9750, gRPC 9760),
its DuckDB file under ``$HEADWATER_LOCAL_DIR/bigquery/data``.

Two things differ from a stock start, both because there is no network here:

- bqemulator loads DuckDB's ``spatial`` extension at start-up and refuses to start without it;
  the extension is downloaded from DuckDB's own site, which we cannot reach (PyPI carries it
  only for DuckDB 1.x, which bqemulator 1.4 does not run on). A small launcher turns that one
  load off: GEOGRAPHY functions are unavailable, everything else is the real emulator.
- ``gs://`` URIs (load and extract jobs) resolve under ``$HEADWATER_LOCAL_DIR/bigquery/gcs``
  (bqemulator's ``BQEMU_GCS_LOCAL_ROOT``): ``gs://bucket/path`` is ``<that>/bucket/path``.

Clients: ``BIGQUERY_EMULATOR_HOST=127.0.0.1:<port>`` (google-cloud-bigquery and the plugin read
it), any project id, no credentials checked.
"""

from __future__ import annotations

import os
import pathlib

from . import probes
from .base import Component, Say, Server, wait_ready
from .config import PortSpec
from .install import install_venv

BQEMULATOR = "bqemulator==1.4.0"
# bqemulator asks for duckdb>=1.0 but runs only on 2.x; pinned so that an upgrade is deliberate.
DUCKDB = "duckdb==2.0.1"
# DuckDB's Python functions (bqemulator registers dozens at start-up) need numpy, undeclared.
NUMPY = "numpy==2.4.6"
PROJECT = "headwater"
# Python starts, imports FastAPI, gRPC and DuckDB: ~5 s on our shared cores.
BIGQUERY_READY_TIMEOUT_S = 90.0
# ~60 packages (~440 MB): under a minute here; a slow registry may take longer.
PIP_INSTALL_TIMEOUT_S = 1200.0

LAUNCHER = '''"""bqemulator without DuckDB's spatial extension (see localsvc/bigquery.py)."""
import sys

from bqemulator.storage import engine

engine.DuckDBEngine._load_spatial = lambda self: None

from bqemulator.cli import main

sys.exit(main())
'''


def emulator_host(port: int) -> str:
    """The value of ``BIGQUERY_EMULATOR_HOST`` for clients."""
    return f"127.0.0.1:{port}"


def bigquery_argv(
    python: pathlib.Path, launcher: pathlib.Path, data: pathlib.Path, rest: int, grpc: int
) -> list[str]:
    return [
        str(python),
        str(launcher),
        "start",
        "--rest-host",
        "127.0.0.1",
        "--rest-port",
        str(rest),
        "--grpc-host",
        "127.0.0.1",
        "--grpc-port",
        str(grpc),
        "--persistent",
        "--data-dir",
        str(data),
        "--project",
        PROJECT,
        "--log-level",
        "warning",
    ]


class BigQuery(Server):
    name = "bigquery"
    port_key = "bigquery"
    ready_timeout = BIGQUERY_READY_TIMEOUT_S

    @property
    def venv(self) -> pathlib.Path:
        return self.dir / "venv"

    @property
    def python(self) -> pathlib.Path:
        return self.venv / "bin" / "python"

    @property
    def gcs_root(self) -> pathlib.Path:
        return self.dir / "gcs"

    def _server(self) -> Component:
        return Component(
            "bqemulator",
            self.dir / "bqemulator.pid",
            self.dir / "bqemulator.log",
            ("launch_bqemulator.py", f"--rest-port {self.cfg.ports['bigquery']}"),
            self.tag,
        )

    def components(self) -> list[Component]:
        return [self._server()]

    def ports(self) -> list[tuple[Component, PortSpec]]:
        comp = self._server()
        return [(comp, self.cfg.port("bigquery")), (comp, self.cfg.port("bigquery_grpc"))]

    def ready(self) -> bool:
        return probes.http_answers(self.cfg.ports["bigquery"])

    def _install(self, say: Say) -> None:
        install_venv(
            self.venv, (BQEMULATOR, DUCKDB, NUMPY), say, PIP_INSTALL_TIMEOUT_S, "a minute at first"
        )

    def start(self, say: Say) -> None:
        self._install(say)
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.gcs_root.mkdir(parents=True, exist_ok=True)
        launcher = self.dir / "launch_bqemulator.py"
        launcher.write_text(LAUNCHER)
        rest, grpc = self.cfg.ports["bigquery"], self.cfg.ports["bigquery_grpc"]
        say(f"starting bqemulator on 127.0.0.1:{rest} (gRPC {grpc}, data {data})")
        env = {
            **os.environ,
            "BQEMU_GCS_LOCAL_ROOT": str(self.gcs_root),
            # DuckDB keeps its extension cache under HOME: ours, not the user's.
            "HOME": str(self.dir),
        }
        comp = self._server()
        argv = bigquery_argv(self.python, launcher, data, rest, grpc)
        process = self.spawn(comp, argv, env, self.dir)
        wait_ready("bqemulator", self.ready, BIGQUERY_READY_TIMEOUT_S, comp.log, process)
