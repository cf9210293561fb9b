"""Kafka TLS/SASL settings: the librdkafka config built from them, their validation, that
librdkafka accepts what is built, and that the passwords never show in output or logs.

No broker is needed: clients are created against 127.0.0.1:1 (nothing listens there) and
closed; librdkafka checks every key, and loads the CA and client certificate, at creation.
"""

from __future__ import annotations

import logging
import pathlib
import shutil
import subprocess
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from pydantic import ValidationError

from engine.bus import gaps
from engine.bus.config import foreign_cluster, from_java_properties
from engine.bus.consumer import AsyncConsumer
from engine.bus.producer import AsyncProducer
from engine.errors import BusError, ConfigError, DeliveryError
from engine.settings import KafkaSettings, Settings
from executors.base import TaskContext, run_task
from executors.publish import KafkaProduceTask
from triggers.kafka import KafkaConfig

PASSWORD = "sasl-pw-7f3a"
KEY_PASSWORD = "key-pw-91c2"
NOWHERE = "127.0.0.1:1"  # nothing listens on port 1: creation works, connecting fails fast
# A produce to NOWHERE fails after this (the smallest delivery timeout the settings allow).
DELIVERY_TIMEOUT_MS = 1000


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    """A CA and a client certificate signed by it, with an encrypted key (openssl CLI)."""
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command is needed to generate test certificates"
    d = tmp_path_factory.mktemp("pki")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=headwater-test-ca")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-passout", f"pass:{KEY_PASSWORD}", "-keyout",
        "client.key", "-out", "client.csr", "-subj", "/CN=headwater")  # fmt: skip
    run("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "client.pem", "-days", "2")  # fmt: skip
    return {"ca": d / "ca.pem", "cert": d / "client.pem", "key": d / "client.key"}


def sasl_ssl(pki: dict[str, pathlib.Path], **extra: Any) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=NOWHERE,
        client_id="hw-test",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="svc-headwater",
        sasl_password=PASSWORD,
        ssl_ca_location=str(pki["ca"]),
        ssl_certificate_location=str(pki["cert"]),
        ssl_key_location=str(pki["key"]),
        ssl_key_password=KEY_PASSWORD,
        **extra,
    )


# ------------------------------------------------------------------------- the builder


def test_plaintext_adds_nothing() -> None:
    kafka = KafkaSettings(bootstrap_servers="k1:9092,k2:9092", client_id="me")
    assert kafka.client_config() == {"bootstrap.servers": "k1:9092,k2:9092", "client.id": "me"}
    assert kafka.client_config("admin")["client.id"] == "me-admin"


def test_every_setting_is_mapped(pki: dict[str, pathlib.Path]) -> None:
    assert sasl_ssl(pki).client_config("logfetch") == {
        "bootstrap.servers": NOWHERE,
        "client.id": "hw-test-logfetch",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc-headwater",
        "sasl.password": PASSWORD,
        "ssl.ca.location": str(pki["ca"]),
        "ssl.certificate.location": str(pki["cert"]),
        "ssl.key.location": str(pki["key"]),
        "ssl.key.password": KEY_PASSWORD,
        "ssl.endpoint.identification.algorithm": "https",
    }


def test_protocols_carry_only_their_keys() -> None:
    tls = KafkaSettings(security_protocol="SSL", ssl_endpoint_identification=False)
    assert tls.security_config() == {
        "security.protocol": "SSL",
        "ssl.endpoint.identification.algorithm": "none",
    }  # no CA file: librdkafka's own trust store
    sasl = KafkaSettings(security_protocol="sasl_plaintext", sasl_username="u", sasl_password="p")
    assert sasl.security_config() == {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "u",
        "sasl.password": "p",
    }


def test_environment_variables_reach_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "SECURITY_PROTOCOL": "SASL_SSL",
        "SASL_MECHANISM": "SCRAM-SHA-256",
        "SASL_USERNAME": "svc",
        "SASL_PASSWORD": PASSWORD,
        "SSL_ENDPOINT_IDENTIFICATION": "false",
    }.items():
        monkeypatch.setenv(f"HEADWATER_KAFKA__{name}", value)
    config = Settings().kafka.client_config()
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "SCRAM-SHA-256"
    assert (config["sasl.username"], config["sasl.password"]) == ("svc", PASSWORD)
    assert config["ssl.endpoint.identification.algorithm"] == "none"


# ------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"security_protocol": "SASL_SSL"}, "needs kafka.sasl_username and kafka.sasl_password"),
        ({"security_protocol": "SASL_PLAINTEXT", "sasl_username": "u"}, "sasl_password"),
        ({"sasl_username": "u", "sasl_password": "p"}, "is PLAINTEXT, which does not auth"),
        ({"security_protocol": "SSL", "sasl_username": "u"}, "use SASL_SSL or SASL_PLAINTEXT"),
        ({"ssl_ca_location": "/etc/hostname"}, "kafka.ssl_ca_location is set but"),
        ({"security_protocol": "SSL", "ssl_key_location": "/etc/hostname"}, "go together"),
        ({"security_protocol": "SSL", "ssl_key_password": "x"}, "ssl_key_location is not"),
        ({"security_protocol": "KERBEROS"}, "security_protocol"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"}, "sasl_mechanism"),
    ],
)
def test_incoherent_settings_are_refused_clearly(settings: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        KafkaSettings(**settings)


def test_a_missing_file_is_named_with_its_setting() -> None:
    with pytest.raises(ValidationError) as caught:
        KafkaSettings(security_protocol="SSL", ssl_ca_location="/no/such/ca.pem")
    message = str(caught.value)
    assert "kafka.ssl_ca_location (HEADWATER_KAFKA__SSL_CA_LOCATION)" in message
    assert "no such file: /no/such/ca.pem" in message


# ------------------------------------------------------------------ librdkafka accepts it


def test_librdkafka_accepts_the_config(pki: dict[str, pathlib.Path]) -> None:
    config = sasl_ssl(pki).client_config()
    Producer(config).flush(0)
    consumer = Consumer({**config, "group.id": "g"})
    consumer.close()
    AdminClient(config)  # no close(): dropped with its reference


def test_librdkafka_checks_what_it_is_given(pki: dict[str, pathlib.Path]) -> None:
    # The control of the test above: creation really validates keys and loads the files.
    config = sasl_ssl(pki).client_config()
    with pytest.raises(KafkaException):
        Producer({**config, "ssl.key.password": "wrong"})
    with pytest.raises(KafkaException):
        Producer({**config, "ssl.ca.location": str(pki["key"])})  # not a certificate


async def test_bus_clients_start_with_security(pki: dict[str, pathlib.Path]) -> None:
    kafka = sasl_ssl(pki)
    producer = AsyncProducer(kafka)
    await producer.start()
    await producer.close()
    consumer = AsyncConsumer(kafka, "g")
    await consumer.start()
    await consumer.close()


# ------------------------------------------------------------------------- no secret shown


def test_settings_never_print_passwords(
    pki: dict[str, pathlib.Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka = sasl_ssl(pki)
    monkeypatch.setenv("HEADWATER_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("HEADWATER_KAFKA__SASL_USERNAME", "svc")
    monkeypatch.setenv("HEADWATER_KAFKA__SASL_PASSWORD", PASSWORD)
    settings = Settings()
    shown = [repr(kafka), str(kafka), kafka.model_dump_json(), repr(settings), str(settings)]
    shown.append(settings.model_dump_json())
    for text in shown:
        assert PASSWORD not in text
        assert KEY_PASSWORD not in text


def test_validation_errors_do_not_echo_the_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("HEADWATER_KAFKA__SASL_PASSWORD", PASSWORD)  # but no user name
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert "sasl_username" in str(caught.value)
    assert PASSWORD not in str(caught.value)


async def test_a_failing_secured_producer_logs_no_password(
    pki: dict[str, pathlib.Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    kafka = sasl_ssl(pki, delivery_timeout_ms=DELIVERY_TIMEOUT_MS)
    async with AsyncProducer(kafka) as producer:
        with pytest.raises(DeliveryError) as caught:
            await producer.produce("t", b"k", b"v")
    assert caplog.records, "the failed connection should have been logged"
    for text in [caught.value.message, *(r.getMessage() for r in caplog.records)]:
        assert PASSWORD not in text
        assert KEY_PASSWORD not in text


# --------------------------------------------------------------------- the other clients


def test_gap_probe_connects_like_the_consumer(pki: dict[str, pathlib.Path]) -> None:
    consumer = AsyncConsumer(sasl_ssl(pki), "g", on_revoke=None)
    probe = gaps.probe_config(consumer._config)
    assert probe == sasl_ssl(pki).client_config()  # no group, callbacks or tuning
    assert gaps.probe_config("b:9092") == {"bootstrap.servers": "b:9092"}


class _Refused:
    def error(self) -> KafkaError:
        return KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "not authorized")


def test_a_refused_gap_probe_raises_instead_of_skipping(monkeypatch: pytest.MonkeyPatch) -> None:
    class _Probe:
        def __init__(self, _config: dict[str, Any]) -> None: ...
        def assign(self, _tps: list[Any]) -> None: ...
        def poll(self, _timeout: float) -> _Refused:
            return _Refused()

        def close(self) -> None: ...

    monkeypatch.setattr(gaps, "Consumer", _Probe)
    with pytest.raises(BusError, match="refused by the broker") as caught:
        gaps.next_served({"bootstrap.servers": "b"}, 5, "t", 0, 10, 20, "g")
    assert not caught.value.retriable


def _trigger(properties: dict[str, str]) -> KafkaConfig:
    model = SimpleNamespace(
        properties=properties, topic="in", topicPattern=None, groupId=None,
        keyDeserializer=None, valueDeserializer=None,
    )  # fmt: skip
    ctx = SimpleNamespace(ref=SimpleNamespace(namespace="n", flow_id="f", trigger_id="t"))
    return KafkaConfig(model, ctx, sasl_ssl_bus())  # type: ignore[arg-type]


def sasl_ssl_bus() -> KafkaSettings:
    return KafkaSettings(
        security_protocol="SASL_SSL", sasl_username="bus-user", sasl_password=PASSWORD
    )


def test_a_kafka_trigger_never_gets_the_bus_credentials() -> None:
    config = _trigger({"bootstrap.servers": "theirs:9092"})
    consumer = AsyncConsumer(config.settings, config.group_id, **config.overrides)
    assert consumer._config["bootstrap.servers"] == "theirs:9092"
    assert not {k for k in consumer._config if k.startswith(("security.", "sasl.", "ssl."))}
    assert foreign_cluster(sasl_ssl_bus(), "x:1").security_protocol == "PLAINTEXT"


def test_a_kafka_trigger_passes_its_own_security_properties() -> None:
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="alice" password="a\\"b";'
    )
    config = _trigger({
        "bootstrap.servers": "theirs:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.jaas.config": jaas,
        "ssl.endpoint.identification.algorithm": "none",
    })  # fmt: skip
    consumer = AsyncConsumer(config.settings, config.group_id, **config.overrides)
    assert {k: consumer._config[k] for k in config.overrides} == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "alice",
        "sasl.password": 'a"b',
        "ssl.endpoint.identification.algorithm": "none",
    }


def test_java_properties() -> None:
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule required username='x';"
    with pytest.raises(ConfigError, match="username"):
        from_java_properties({"sasl.jaas.config": plain})  # single quotes: not JAAS syntax
    with pytest.raises(ConfigError, match="not supported"):
        from_java_properties({"sasl.jaas.config": "com.example.Kerberos required;"})
    with pytest.raises(ConfigError, match=r"PEM file in ssl\.ca\.location"):
        from_java_properties({"ssl.truststore.location": "/x.jks"})
    pem = from_java_properties({"ssl.truststore.location": "/ca.pem", "ssl.truststore.type": "PEM"})
    assert pem == {"ssl.ca.location": "/ca.pem"}
    good = plain.replace("username='x'", 'username="x" password="y"')
    assert from_java_properties({"sasl.jaas.config": good}) == {
        "sasl.username": "x",
        "sasl.password": "y",
        "sasl.mechanism": "PLAIN",
    }


async def test_produce_task_uses_the_bus_security_only_for_the_bus(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[dict[str, str]] = []

    def capture(config: dict[str, str], records: list[dict[str, Any]]) -> int:
        seen.append(config)
        return len(records)

    monkeypatch.setattr("executors.publish._produce_all", capture)
    task = KafkaProduceTask(sasl_ssl_bus().client_config())
    ctx = TaskContext.for_job(execution_id="e", task_run_id="r", attempt=1, task={}, variables={})
    bus = {"type": "io.kestra.plugin.kafka.Produce", "topic": "t", "from": "v"}
    theirs = {**bus, "properties": {"bootstrap.servers": "theirs:9092"}}
    for spec in (bus, theirs):
        outcome = await run_task(task, spec, ctx)
        assert outcome.state == "SUCCESS", outcome.error
    assert seen[0]["sasl.password"] == PASSWORD
    assert seen[0]["bootstrap.servers"] == "127.0.0.1:9092"
    assert seen[1]["bootstrap.servers"] == "theirs:9092"
    assert "sasl.password" not in seen[1]
