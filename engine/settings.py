"""Headwater's settings: one frozen object, a nested class per subsystem.

Read from the environment with the prefix ``HEADWATER_`` and ``__`` between levels, e.g.
``HEADWATER_KAFKA__BOOTSTRAP_SERVERS=127.0.0.1:9092`` or ``HEADWATER_POSTGRES__DSN=...``.
Core modules never import this module's loader: the component that wires things builds one
:class:`Settings` and passes the parts each module needs.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Section):
    # A validation error must not print the input: it holds the SASL and key passwords.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated host:port."
    )
    topic_prefix: str = Field(
        "hw.", description="Prefix of every Headwater topic (hw.commands, hw.events, ...)."
    )
    partitions: int = Field(
        8, ge=1, description="Partitions of the keyed topics (commands, events, jobs, state)."
    )
    replication_factor: int = Field(
        1, ge=1, description="Replication factor of created topics (1 for a single broker)."
    )
    session_timeout_ms: int = Field(
        6000,
        ge=1000,
        description="Consumer session timeout; group joins take about half of it (SERVICES.md).",
    )
    heartbeat_interval_ms: int = Field(
        1000, ge=100, description="Consumer heartbeat interval; well under the session timeout."
    )
    fetch_wait_max_ms: int = Field(
        5,
        ge=0,
        description="Max wait of a fetch; on Tansu this is the latency of one hop (SERVICES.md).",
    )
    doze_after_s: float = Field(
        10.0,
        ge=0,
        description="A consumer that received nothing this long stops fetching between short "
        "listening windows (Tansu answers empty fetches only after fetch_wait_max_ms: idle "
        "fetching costs the broker CPU); 0 = never doze.",
    )
    doze_period_ms: int = Field(
        100,
        ge=10,
        description="While dozing, one listening window per period: the extra latency of the "
        "first record after a quiet spell is at most this.",
    )
    nudged_doze_period_ms: int = Field(
        0,
        ge=0,
        description="Where every producer of Headwater's own topics runs in this process "
        "(headwater dev), those producers wake a dozing consumer as they write, and its "
        "consumers of those topics listen only this often (0 = doze_period_ms).",
    )
    nudged_doze_after_s: float = Field(
        0.0,
        ge=0,
        description="With nudged_doze_period_ms, consumers of Headwater's own topics doze "
        "after this long without a record (0 = doze_after_s): their writers wake them, so "
        "they need not fetch between records at all (headwater dev).",
    )
    linger_ms: float = Field(1.0, ge=0, description="Producer batching delay in milliseconds.")
    request_timeout_s: float = Field(
        10.0, gt=0, description="How long admin and metadata calls wait before giving up."
    )
    client_id: str = Field("headwater", description="Client id reported to the broker.")
    delivery_timeout_ms: int = Field(
        30_000,
        ge=1000,
        description=(
            "How long the producer retries a record before failing it with DeliveryError; "
            "librdkafka's 5 min default would hide a dead broker from callers for too long."
        ),
    )
    idempotent_producer: bool = Field(
        False,
        description=(
            "Idempotent producers (enable.idempotence). Off by default: Tansu in S3 mode "
            "answers a retried batch lost in its crash as a duplicate, and the client then "
            "drops it as delivered (tests/chaos/probe_durable.py). Safe to enable on Kafka."
        ),
    )
    # Security of the bus connection; client_config() maps these to librdkafka and
    # deploy/OPERATIONS.md ("Connecting to a TLS/SASL cluster") shows examples.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="How clients talk to the brokers: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or "
        "SASL_SSL (SASL over TLS: Confluent Cloud, MSK, Aiven, ...).",
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism of SASL_PLAINTEXT / SASL_SSL."
    )
    sasl_username: str = Field("", description="SASL user name (SASL_* protocols only).")
    sasl_password: SecretStr = Field(
        SecretStr(""), description="SASL password (SASL_* protocols only); never printed."
    )
    ssl_ca_location: str = Field(
        "",
        description="PEM file of the CA(s) that signed the brokers' certificates; empty = the "
        "system's trust store (SSL / SASL_SSL only).",
    )
    ssl_certificate_location: str = Field(
        "", description="PEM client certificate for mutual TLS (with ssl_key_location)."
    )
    ssl_key_location: str = Field(
        "", description="PEM private key of the client certificate for mutual TLS."
    )
    ssl_key_password: SecretStr = Field(
        SecretStr(""), description="Password of an encrypted ssl_key_location; never printed."
    )
    ssl_endpoint_identification: bool = Field(
        True,
        description="Check that a broker's certificate names the host connected to (hostname "
        "verification); turn off only for brokers whose certificates do not.",
    )

    @field_validator("security_protocol", "sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        # librdkafka takes "sasl_ssl" as well: so do we.
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _security_is_coherent(self) -> KafkaSettings:
        problem = kafka_security_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    def client_config(self, role: str = "") -> dict[str, str]:
        """The librdkafka settings every client of this cluster shares: bootstrap.servers,
        client.id (``{client_id}-{role}`` with a role) and the security keys; nothing for
        security under PLAINTEXT. The one builder: every confluent-kafka client of the bus
        starts from it. Holds the SASL and key passwords in clear: never log it."""
        config = {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": f"{self.client_id}-{role}" if role else self.client_id,
        }
        return config | self.security_config()

    def security_config(self) -> dict[str, str]:
        """Only the security keys of :meth:`client_config`."""
        protocol = self.security_protocol
        if protocol == "PLAINTEXT":
            return {}
        config: dict[str, str] = {"security.protocol": protocol}
        if protocol.startswith("SASL_"):
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.sasl_username
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if protocol.endswith("SSL"):
            optional = {
                "ssl.ca.location": self.ssl_ca_location,
                "ssl.certificate.location": self.ssl_certificate_location,
                "ssl.key.location": self.ssl_key_location,
                "ssl.key.password": self.ssl_key_password.get_secret_value(),
            }
            config |= {k: v for k, v in optional.items() if v}
            check = "https" if self.ssl_endpoint_identification else "none"
            config["ssl.endpoint.identification.algorithm"] = check
        return config


_SSL_FILES = ("ssl_ca_location", "ssl_certificate_location", "ssl_key_location")


def kafka_security_problem(kafka: KafkaSettings) -> str | None:
    """What is wrong with the security settings of ``kafka`` (a message naming the setting and
    the fix), or None. A setting that the protocol would silently ignore is an error: it is
    almost always a forgotten HEADWATER_KAFKA__SECURITY_PROTOCOL."""
    protocol = kafka.security_protocol
    sasl, tls = protocol.startswith("SASL_"), protocol.endswith("SSL")
    env = "HEADWATER_KAFKA__"
    if sasl and not (kafka.sasl_username and kafka.sasl_password.get_secret_value()):
        return (
            f"kafka.security_protocol {protocol} needs kafka.sasl_username and "
            f"kafka.sasl_password ({env}SASL_USERNAME, {env}SASL_PASSWORD)"
        )
    if not sasl and (kafka.sasl_username or kafka.sasl_password.get_secret_value()):
        return (
            f"kafka.sasl_username/sasl_password are set but kafka.security_protocol is "
            f"{protocol}, which does not authenticate: use SASL_SSL or SASL_PLAINTEXT "
            f"({env}SECURITY_PROTOCOL)"
        )
    names = [*_SSL_FILES, "ssl_key_password"]
    given = [n for n in names if _text(getattr(kafka, n))]
    if not tls and given:
        return (
            f"kafka.{given[0]} is set but kafka.security_protocol is {protocol}, which does "
            f"not use TLS: use SSL or SASL_SSL ({env}SECURITY_PROTOCOL)"
        )
    if bool(kafka.ssl_certificate_location) != bool(kafka.ssl_key_location):
        return (
            "kafka.ssl_certificate_location and kafka.ssl_key_location go together "
            "(mutual TLS needs the client certificate and its key)"
        )
    if kafka.ssl_key_password.get_secret_value() and not kafka.ssl_key_location:
        return "kafka.ssl_key_password is set but kafka.ssl_key_location is not"
    for name in _SSL_FILES:
        path = getattr(kafka, name)
        if path and not os.path.isfile(path):
            return f"kafka.{name} ({env}{name.upper()}): no such file: {path}"
    return None


def _text(value: str | SecretStr) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


class PostgresSettings(_Section):
    dsn: SecretStr = Field(
        SecretStr("postgresql://postgres@127.0.0.1:5432/headwater"),
        description="PostgreSQL connection string of the read model.",
    )


class MqttSettings(_Section):
    host: str = Field("127.0.0.1", description="MQTT broker host.")
    port: int = Field(1883, description="MQTT broker port.")


class AmqpSettings(_Section):
    url: SecretStr = Field(
        SecretStr("amqp://guest:guest@127.0.0.1:5672/"), description="AMQP (RabbitMQ) URL."
    )


class WorkerSettings(_Section):
    concurrency: int = Field(16, ge=1, description="Task runs one worker process runs at once.")
    worker_group: str = Field(
        "", description="Worker group served (jobs.{group} topic); empty = the default hw.jobs."
    )
    heartbeat_interval_s: float = Field(
        5.0, gt=0, description="Heartbeat period of a running task; well under the reducer's 30 s."
    )
    shutdown_grace_s: float = Field(
        20.0, ge=0, description="On SIGTERM, seconds running tasks get to finish before a stop."
    )
    work_dir: str = Field(
        "", description="Parent of the task runs' working directories; empty = system temp dir."
    )
    storage_dir: str = Field(
        "", description="Root of internal storage (kestra:// URIs); empty = system temp dir."
    )
    output_inline_limit_bytes: int = Field(
        65536, ge=0, description="Outputs larger than this (JSON bytes) go to storage as URIs."
    )
    python: str = Field("python3", description="Interpreter of Python Script/Commands tasks.")
    venv_cache_dir: str = Field(
        "", description="Cached virtualenvs of Python task dependencies; empty = system temp dir."
    )
    docker_host: str = Field(
        "",
        description="Docker Engine that runs script tasks asking for a container (taskRunner "
        "Docker, containerImage): unix:///var/run/docker.sock or tcp://HOST:PORT; empty = none.",
    )
    containers_on_host: bool = Field(
        False,
        description="Run script tasks that ask for a container on the worker's host when no "
        "Docker Engine is configured or reachable (logged as a WARN line on the task); "
        "false = such tasks fail.",
    )
    docker_volumes_enabled: bool = Field(
        False,
        description="Allow the Docker task runner's 'volumes' (bind mounts of host paths), as "
        "Kestra's volume-enabled plugin setting; false = a task that sets them fails.",
    )


class ExecutorSettings(_Section):
    group_id: str = Field(
        "headwater-executor", description="Consumer group of the executors on hw.commands."
    )
    max_batch: int = Field(
        2000, ge=1, description="Commands decided per poll: one produce and one commit each."
    )
    poll_timeout_s: float = Field(
        0.2, gt=0, description="How long one poll waits; bounds shutdown and purge latency."
    )
    purge_after_s: float = Field(
        3600.0,
        ge=0,
        description="Seconds a terminal execution stays in memory (restartable) before purge.",
    )
    max_lag_s: float = Field(
        60.0, gt=0, description="/health fails when the oldest command waits longer than this."
    )
    inline_tasks: bool = Field(
        True,
        description="Run I/O-free core tasks (Log, Return, OutputValues, Fail, Labels, Echo) "
        "in the executor instead of sending them to a worker.",
    )


class ProjectorSettings(_Section):
    group_id: str = Field(
        "headwater-projector",
        description="Prefix of the projector's consumer group (the database keeps the full id).",
    )
    batch_max_records: int = Field(
        5000, ge=1, description="Most records the projector writes in one database transaction."
    )
    poll_timeout_s: float = Field(
        0.5, gt=0, description="How long one poll waits for the first record of a batch."
    )
    fetch_wait_max_ms: int = Field(
        10,
        ge=0,
        description="The projector's fetch wait, when longer than kafka.fetch_wait_max_ms: "
        "Tansu answers every fetch after this wait and lists the partition's whole log for "
        "each, and the projector is off the executions' path, so it fetches less often "
        "(benchmarks/RESULTS.md; 25 ms cost throughput at 500/s). Kafka answers a fetch as "
        "soon as data arrives anyway.",
    )


class ApiSettings(_Section):
    host: str = Field("127.0.0.1", description="Address the API listens on.")
    port: int = Field(8080, ge=1, le=65535, description="Port the API listens on.")
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest request body accepted (413 problem above)."
    )
    api_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Bearer API keys; when any key or user is set, every call needs one.",
    )
    basic_auth: dict[str, SecretStr] = Field(
        default_factory=dict, description="Basic-auth users (name -> password); empty = off."
    )


class TriggerSettings(_Section):
    group_prefix: str = Field(
        "headwater-triggers",
        description="Prefix of the trigger runtime's consumer groups (Flow triggers on hw.events).",
    )
    max_in_flight: int = Field(
        1000,
        ge=1,
        description="Un-acknowledged StartExecution commands per source; the source pauses there.",
    )
    malformed: str = Field(
        "error",
        pattern="^(error|raw)$",
        description=(
            "A payload the trigger cannot decode: 'error' records a trigger error and skips it, "
            "'raw' starts an execution with the raw payload."
        ),
    )
    poll_timeout_s: float = Field(
        0.2, gt=0, description="How long a source's poll waits; bounds stop and reload latency."
    )
    file_poll_interval_s: float = Field(
        1.0, gt=0, description="Default poll period of file triggers without an `interval`."
    )


class ClientSettings(_Section):
    api_url: str = Field(
        "http://127.0.0.1:8080",
        description="Base URL of the Headwater API the CLI talks to (`headwater dev` serves it).",
    )
    api_token: SecretStr | None = Field(
        None, description="Bearer token the CLI sends to the API; unset = no Authorization header."
    )


class SecretsSettings(_Section):
    path: str = Field(
        "",
        description=(
            "Secret store: a directory of <namespace>.yml/.json files or one YAML/JSON file "
            "{namespace: {NAME: value}}; empty = environment SECRET_* variables only."
        ),
    )
    env_global: bool = Field(
        True,
        description="SECRET_<NAME> variables no env_scopes prefix matches are global (Kestra OSS).",
    )
    env_scopes: dict[str, str] = Field(
        default_factory=dict,
        description="Name prefix -> namespace: SECRET_<PREFIX><NAME> belongs to that namespace.",
    )


class VariablesSettings(_Section):
    """Kestra's ``kestra.variables``: the ``envs`` and ``globals`` expression variables."""

    env_vars_prefix: str = Field(
        "KESTRA_",
        description=(
            "Environment variables with this prefix are the `envs` variable of every flow, "
            "named without it and in lower case (KESTRA_MY_VAR -> envs.my_var), as in Kestra."
        ),
    )
    redacted_env_vars: list[str] = Field(
        default_factory=lambda: [
            "KESTRA_PLUGINS_PATH",
            "KESTRA_CONFIGURATION_PATH",
            "KESTRA_CONFIGURATION",
        ],
        description="Environment variables never exposed in `envs` (Kestra's default list).",
    )
    globals: dict[str, Any] = Field(
        default_factory=dict,
        description="The `globals` variable of every flow, a JSON object (kestra.variables).",
    )


class HealthSettings(_Section):
    host: str = Field("127.0.0.1", description="Address of a component's health/metrics server.")
    port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port of /health/live, /health/ready and /metrics of a component; 0 = off.",
    )


class Settings(BaseSettings):
    """Every setting of Headwater."""

    model_config = SettingsConfigDict(
        env_prefix="HEADWATER_",
        env_nested_delimiter="__",
        frozen=True,
        extra="ignore",
        hide_input_in_errors=True,  # errors must not print passwords (Kafka SASL, DSN, ...)
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings, description="The Kafka bus.")
    postgres: PostgresSettings = Field(
        default_factory=PostgresSettings, description="The read model database."
    )
    mqtt: MqttSettings = Field(default_factory=MqttSettings, description="MQTT broker.")
    amqp: AmqpSettings = Field(default_factory=AmqpSettings, description="RabbitMQ broker.")
    projector: ProjectorSettings = Field(
        default_factory=ProjectorSettings, description="The read-model projector."
    )
    api: ApiSettings = Field(default_factory=ApiSettings, description="The REST API.")
    worker: WorkerSettings = Field(
        default_factory=WorkerSettings, description="Workers (task executors)."
    )
    executor: ExecutorSettings = Field(
        default_factory=ExecutorSettings, description="The executor stream processor."
    )
    triggers: TriggerSettings = Field(
        default_factory=TriggerSettings, description="The trigger runtime (trigger sources)."
    )
    client: ClientSettings = Field(
        default_factory=ClientSettings, description="How the CLI reaches the API."
    )
    secrets: SecretsSettings = Field(
        default_factory=SecretsSettings, description="Where secret() values come from."
    )
    health: HealthSettings = Field(
        default_factory=HealthSettings, description="Health/metrics server of non-API components."
    )
    variables: VariablesSettings = Field(
        default_factory=VariablesSettings, description="The envs and globals flow variables."
    )


def load_settings() -> Settings:
    """Build the settings from the environment (the one place that reads it); a wrong value
    raises :class:`ConfigError` naming each variable and what it should be."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            if error["type"] == "value_error":  # our validators name the variables themselves
                problems.append(error["msg"].removeprefix("Value error, "))
                continue
            name = "HEADWATER_" + "__".join(str(part).upper() for part in error["loc"])
            problems.append(f"{name}: {error['msg']}")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None
