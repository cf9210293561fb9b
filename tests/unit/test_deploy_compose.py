"""deploy/compose checked structurally (no Docker engine here): the YAML parses after Compose's
variable interpolation; every Headwater service runs a real `headwater <component>` command with
settings that load and point at the servers of the same file; topics, ports and files agree."""

from __future__ import annotations

import re
import shlex
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from engine.app import COMPONENTS, SHUTDOWN_MARGIN_S
from engine.bus.topics import topics_for
from engine.settings import KafkaSettings, Settings
from tests.unit.test_deploy_settings import (
    COMMANDS,
    DEPLOY,
    REPO,
    settings_from_env,
    unknown_settings,
)

COMPOSE_DIR = DEPLOY / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
SERVERS = ("kafka", "postgres", "mosquitto", "rabbitmq")

# Compose's interpolation: $$, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}.
_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})"
)


# libyaml's safe loader when present: the file is parsed once per variable below.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class MissingVariable(KeyError):
    pass


def interpolate(text: str, variables: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
        value = variables.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-"):
            return arg if unset else str(value)
        if unset:
            # Compose fails on ${VAR:?..}; for a bare ${VAR} it warns and uses "" - we are stricter.
            raise MissingVariable(f"{name}: {arg or 'not set'}")
        return str(value)

    return _VAR.sub(substitute, text)


def env_example() -> dict[str, str]:
    values = {}
    for line in (COMPOSE_DIR / "env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def load_compose(variables: dict[str, str] | None = None) -> dict[str, Any]:
    text = interpolate(COMPOSE_FILE.read_text(), env_example() if variables is None else variables)
    data: dict[str, Any] = yaml.load(text, Loader=_LOADER)  # a safe loader
    return data


COMPOSE = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
HEADWATER = {n: s for n, s in SERVICES.items() if str(s.get("image", "")).startswith("headwater:")}


def env_of(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment", {})
    assert isinstance(env, dict), f"{service}: use the mapping form of environment"
    return {k: str(v) for k, v in env.items()}


def component_settings(monkeypatch: pytest.MonkeyPatch, service: str) -> Settings:
    return settings_from_env(monkeypatch, env_of(service))


def command_of(service: str) -> list[str]:
    command = SERVICES[service]["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


# --- the file -----------------------------------------------------------------------------


def test_every_server_and_every_component_is_a_service() -> None:
    assert set(SERVERS) <= set(SERVICES)
    run = {command_of(name)[0] for name in HEADWATER}
    assert run == set(COMPONENTS), "each component runs as its own service"


def test_kafka_is_apache_kafka_in_kraft_mode() -> None:
    kafka = SERVICES["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "zookeeper" not in COMPOSE_FILE.read_text().lower()
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    assert voters.startswith(f"{env['KAFKA_NODE_ID']}@kafka:")
    assert str(env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]) == "false"
    # A KRaft cluster id is a base64url UUID: 22 characters.
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"])


def test_required_variables_are_all_in_env_example() -> None:
    example = env_example()
    load_compose(example)  # raises MissingVariable otherwise
    for name in example:
        with pytest.raises(MissingVariable) if _required(name) else _nothing():
            load_compose({k: v for k, v in example.items() if k != name})


def _required(name: str) -> bool:
    return re.search(r"\$\{" + name + r":?\?", COMPOSE_FILE.read_text()) is not None


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_env_example_has_no_stale_variables() -> None:
    text = COMPOSE_FILE.read_text()
    stale = [n for n in env_example() if "${" + n not in text]
    assert not stale, f"env.example sets variables docker-compose.yml never reads: {stale}"


def test_interpolation_follows_compose_rules() -> None:
    variables = {"A": "1", "EMPTY": ""}
    assert interpolate("${A} ${B:-x} ${EMPTY:-d} ${EMPTY-d} ${N:--1} $$A", variables) == (
        "1 x d  -1 $A"
    )
    with pytest.raises(MissingVariable, match="set B"):
        interpolate("${B:?set B}", variables)


# --- Headwater services -------------------------------------------------------------------


def test_commands_exist_in_the_cli() -> None:
    for name in HEADWATER:
        assert command_of(name)[0] in COMMANDS, f"{name}: `headwater {command_of(name)[0]}`"


def test_image_is_built_from_the_dockerfile() -> None:
    for name, service in HEADWATER.items():
        build = service["build"]
        context = (COMPOSE_DIR / build["context"]).resolve()
        assert context == REPO, f"{name}: build context is the repository root"
        assert (context / build["dockerfile"]).is_file()


def test_every_headwater_variable_is_a_setting() -> None:
    names = {k for s in SERVICES.values() for k in (s.get("environment") or {})}
    assert not unknown_settings(names)
    # Servers' own containers do not get Headwater names that would look like settings.
    for server in (*SERVERS, "prometheus", "grafana"):
        assert not {n for n in env_of(server) if n.startswith("HEADWATER_")}


def test_every_component_reaches_kafka_with_the_topic_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    advertised = SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    broker = urlsplit(advertised.split(",")[0]).netloc
    topics_env = SERVICES["kafka-topics"]["environment"]
    for name in HEADWATER:
        settings = component_settings(monkeypatch, name)
        assert settings.kafka.bootstrap_servers == broker, name
        assert settings.kafka.partitions == int(topics_env["PARTITIONS"]), name
        assert settings.kafka.replication_factor == int(topics_env["REPLICATION_FACTOR"]), name
        assert settings.kafka.topic_prefix == topics_env["TOPIC_PREFIX"], name
        # Apache Kafka refuses session timeouts under group.min.session.timeout.ms (6 s).
        assert settings.kafka.session_timeout_ms >= 6000


def test_database_components_reach_the_postgres_service(monkeypatch: pytest.MonkeyPatch) -> None:
    pg = SERVICES["postgres"]["environment"]
    for name in ("projector", "api"):
        dsn = urlsplit(component_settings(monkeypatch, name).postgres.dsn.get_secret_value())
        assert (dsn.hostname, dsn.port, dsn.path) == ("postgres", 5432, f"/{pg['POSTGRES_DB']}")
        assert (dsn.username, dsn.password) == (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"])
    # Least privilege: the database password reaches only what reads or writes the read model.
    others = set(HEADWATER) - {"projector", "api"}
    assert all("HEADWATER_POSTGRES__DSN" not in env_of(n) for n in others)


def test_brokers_of_tasks_and_triggers(monkeypatch: pytest.MonkeyPatch) -> None:
    rabbit = SERVICES["rabbitmq"]["environment"]
    mqtt_port = re.search(r"^listener (\d+)", (COMPOSE_DIR / "mosquitto.conf").read_text(), re.M)
    assert mqtt_port is not None
    for name in ("worker", "worker-etl", "triggers"):
        settings = component_settings(monkeypatch, name)
        amqp = urlsplit(settings.amqp.url.get_secret_value())
        assert (amqp.hostname, amqp.port) == ("rabbitmq", 5672), name
        assert (amqp.username, amqp.password) == (
            rabbit["RABBITMQ_DEFAULT_USER"],
            rabbit["RABBITMQ_DEFAULT_PASS"],
        )
        assert (settings.mqtt.host, settings.mqtt.port) == ("mosquitto", int(mqtt_port.group(1)))


def test_api_listens_where_it_is_published_and_probed(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = component_settings(monkeypatch, "api")
    assert settings.api.host == "0.0.0.0"  # inside a container, on purpose
    published = [str(p).rsplit(":", 1)[1] for p in SERVICES["api"]["ports"]]
    assert published == [str(settings.api.port)]
    probe = " ".join(SERVICES["api"]["healthcheck"]["test"])
    assert f"127.0.0.1:{settings.api.port}/health" in probe
    # Authentication is on: two keys (people/CLI and Prometheus), neither empty.
    keys = [k.get_secret_value() for k in settings.api.api_keys]
    assert len(keys) == 2
    assert all(keys)


def test_workers_share_storage_and_stop_gracefully(monkeypatch: pytest.MonkeyPatch) -> None:
    groups = []
    for name in ("worker", "worker-etl"):
        settings = component_settings(monkeypatch, name)
        mounts = {str(v).split(":")[1] for v in SERVICES[name]["volumes"]}
        assert settings.worker.storage_dir in mounts, f"{name}: storage on a shared volume"
        grace = int(str(SERVICES[name]["stop_grace_period"]).rstrip("s"))
        assert grace > settings.worker.shutdown_grace_s + SHUTDOWN_MARGIN_S, name
        groups.append(settings.worker.worker_group)
    assert groups == ["", "etl"], "one default worker service and one worker group"
    volumes = {str(v).split(":")[0] for v in SERVICES["worker"]["volumes"]}
    assert volumes <= set(COMPOSE["volumes"])


def test_triggers_run_once() -> None:
    replicas = SERVICES["triggers"].get("deploy", {}).get("replicas", 1)
    assert replicas == 1


def test_dependencies_name_real_services() -> None:
    for name, service in SERVICES.items():
        for dependency in service.get("depends_on") or {}:
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"


def test_mounted_host_files_exist() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), f"{name}: {source}"
        for env_file in service.get("env_file", []):
            assert env_file.get("required") is False, f"{name}: optional task secrets only"
            assert (COMPOSE_DIR / f"{env_file['path']}.example").is_file(), "an example to copy"


# --- topics and monitoring ----------------------------------------------------------------


def test_topic_script_creates_the_catalogue() -> None:
    script = (COMPOSE_DIR / "kafka-topics.sh").read_text()
    table = re.search(r'TOPICS="\n(.*?)\n"', script, re.S)
    assert table is not None
    rows = [line.split() for line in table.group(1).splitlines() if line.strip()]
    created = {suffix: policy for suffix, policy, _ in rows}
    catalogue = topics_for(KafkaSettings(topic_prefix=""))
    assert created == {t.name: t.cleanup_policy for t in catalogue.all()}
    # Compacted topics keep the latest record per key: no time retention may delete them.
    assert all(retention == "-" for _, policy, retention in rows if policy == "compact")
    events = next(r for r in rows if r[0] == catalogue.events.name)
    assert events[2] == "$EVENTS_RETENTION_MS"
    assert "EVENTS_RETENTION_MS:--1" in script, "hw.events kept forever unless told otherwise"
    entrypoint = SERVICES["kafka-topics"]["entrypoint"]
    volumes = [str(v).split(":") for v in SERVICES["kafka-topics"]["volumes"]]
    mounted = {target: source for source, target, *_ in volumes}
    assert mounted[entrypoint[-1]] == "./kafka-topics.sh"
    for name in HEADWATER:
        waits = SERVICES[name]["depends_on"]["kafka-topics"]["condition"]
        assert waits == "service_completed_successfully", name


def test_prometheus_scrapes_every_api_with_the_metrics_key(monkeypatch: pytest.MonkeyPatch) -> None:
    config = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
    job, components = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    (sd,) = job["dns_sd_configs"]
    port = component_settings(monkeypatch, "api").api.port
    assert sd["names"] == ["api"]
    assert sd["port"] == port
    key_file = job["authorization"]["credentials_file"]
    prometheus = SERVICES["prometheus"]
    assert f"> {key_file}" in prometheus["entrypoint"][-1]
    api_keys = [k.get_secret_value() for k in component_settings(monkeypatch, "api").api.api_keys]
    assert prometheus["environment"]["METRICS_KEY"] in api_keys
    # The other components: every one of them, on the health port its settings serve.
    (sd,) = components["dns_sd_configs"]
    served = set(HEADWATER) - {"api"}
    assert set(sd["names"]) == served
    for name in served:
        health = component_settings(monkeypatch, name).health
        assert (health.host, health.port) == ("0.0.0.0", sd["port"])
        probe = SERVICES[name]["healthcheck"]["test"][-1]
        assert f"127.0.0.1:{health.port}/health/ready" in probe
