"""MariaDB from Debian's package (``mariadb-server``), run as a plain foreground process.

The SQL plugin (``io.kestra.plugin.jdbc.mysql.*``) is tested against it. Everything lives under
``$HEADWATER_LOCAL_DIR/mariadb``: the data directory (``mariadb-install-db`` on first start),
the socket, the log. ``--no-defaults`` keeps Debian's ``/etc/mysql`` configuration (and its
systemd-era paths) out of it. As root, ``--user=root`` is what mariadbd needs to run as root.

After start-up it has the database ``headwater`` and the user ``headwater`` (password
:data:`USER_PASSWORD`) allowed from 127.0.0.1 with every privilege: the tests connect as that
user over TCP, as a flow would. ``root`` keeps Debian's unix-socket authentication.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

from . import probes
from .base import Component, Say, Server, wait_ready
from .config import PortSpec, ServiceError
from .install import is_root

MARIADBD = pathlib.Path("/usr/sbin/mariadbd")
DATABASE = "headwater"
USER = "headwater"
# Loopback-only test server: this password guards nothing real.
USER_PASSWORD = "headwater-local-only"  # noqa: S105 - loopback-only dev server, not a secret
# A fresh server answers in ~1 s; crash recovery of an unclean stop can take longer.
MARIADB_READY_TIMEOUT_S = 60.0
# mariadb-install-db writes the system tables (~1-3 s here).
INSTALL_DB_TIMEOUT_S = 180.0
# One admin statement through the `mariadb` client over the socket.
CLIENT_TIMEOUT_S = 30.0

_SETUP_SQL = f"""
CREATE DATABASE IF NOT EXISTS {DATABASE};
CREATE USER IF NOT EXISTS '{USER}'@'127.0.0.1' IDENTIFIED BY '{USER_PASSWORD}';
ALTER USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{USER_PASSWORD}';
GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1' WITH GRANT OPTION;
FLUSH PRIVILEGES;
"""


def mariadb_argv(binary: str, data: pathlib.Path, run: pathlib.Path, port: int) -> list[str]:
    """The server's command line: loopback only, everything under our directory."""
    argv = [
        binary,
        "--no-defaults",
        f"--datadir={data}",
        f"--socket={run / 'mysqld.sock'}",
        f"--pid-file={run / 'mariadbd.pid'}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        "--skip-name-resolve",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_general_ci",
        # Small buffers: it shares two cores and little memory with the other servers.
        "--innodb-buffer-pool-size=64M",
    ]
    if is_root():
        argv.append("--user=root")
    return argv


class MariaDB(Server):
    name = "mariadb"
    port_key = "mariadb"
    ready_timeout = MARIADB_READY_TIMEOUT_S

    @property
    def data(self) -> pathlib.Path:
        return self.dir / "data"

    @property
    def run_dir(self) -> pathlib.Path:
        return self.dir / "run"

    def _server(self) -> Component:
        return Component(
            "mariadbd",
            self.dir / "mariadb.pid",
            self.dir / "mariadb.log",
            ("mariadbd", str(self.data)),
            self.tag,
        )

    def components(self) -> list[Component]:
        return [self._server()]

    def ports(self) -> list[tuple[Component, PortSpec]]:
        return [(self._server(), self.cfg.port("mariadb"))]

    def ready(self) -> bool:
        return probes.mysql_ready(self.cfg.ports["mariadb"])

    def apt_packages(self) -> list[str]:
        return [] if MARIADBD.exists() else ["mariadb-server", "mariadb-client"]

    def _tool(self, name: str) -> str:
        found = shutil.which(name) or f"/usr/bin/{name}"
        if not os.access(found, os.X_OK):
            raise ServiceError(f"{name} is missing: reinstall mariadb-server / mariadb-client")
        return found

    def _run(self, argv: list[str], timeout: float, label: str, stdin: str | None = None) -> None:
        try:
            done = subprocess.run(
                argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise ServiceError(f"{label} did not finish within {timeout:.0f} s") from None
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            raise ServiceError(f"{label} failed (exit {done.returncode}):\n{tail}")

    def start(self, say: Say) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(exist_ok=True)
        if not (self.data / "mysql").is_dir():
            say(f"mariadb-install-db {self.data}")
            argv = [
                self._tool("mariadb-install-db"),
                "--no-defaults",
                f"--datadir={self.data}",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ]
            argv.append("--user=root" if is_root() else f"--user={os.getlogin()}")
            self._run(argv, INSTALL_DB_TIMEOUT_S, "mariadb-install-db")
        port = self.cfg.ports["mariadb"]
        say(f"starting MariaDB on 127.0.0.1:{port}")
        comp = self._server()
        process = self.spawn(
            comp,
            mariadb_argv(str(MARIADBD), self.data, self.run_dir, port),
            dict(os.environ),
            self.dir,
        )
        wait_ready("MariaDB", self.ready, MARIADB_READY_TIMEOUT_S, comp.log, process)
        self._run(
            [
                self._tool("mariadb"),
                "--no-defaults",
                f"--socket={self.run_dir / 'mysqld.sock'}",
                "-u",
                "root",
            ],
            CLIENT_TIMEOUT_S,
            "creating the headwater database and user",
            stdin=_SETUP_SQL,
        )
