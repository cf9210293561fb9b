"""Client settings around the one builder, ``KafkaSettings.client_config()``.

The builder lives on :class:`engine.settings.KafkaSettings` (every confluent-kafka client of
Headwater's own bus starts from it: AsyncProducer, AsyncConsumer, BusAdmin, the gap probe,
log.Fetch, and the worker's Kafka Produce task when it writes to the bus). This module holds
what surrounds it:

- :func:`foreign_cluster`: settings for a cluster a user names (a Kafka trigger's
  ``properties.bootstrap.servers``). It keeps the bus's client tuning and drops the bus's
  credentials: a flow author must not be able to send Headwater's SASL password to a server
  of their choosing. The user's own ``security.protocol`` / ``sasl.*`` / ``ssl.*`` properties
  apply there instead.
- :func:`from_java_properties`: the security properties Kestra users copy from Java clients
  (``sasl.jaas.config``, ``ssl.truststore.*``), which librdkafka does not know, turned into
  librdkafka's own or refused with a message that says what to write instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from engine.errors import ConfigError
from engine.settings import KafkaSettings

# The KafkaSettings fields that say how to authenticate to the bus (and nothing else).
SECURITY_FIELDS = (
    "security_protocol",
    "sasl_mechanism",
    "sasl_username",
    "sasl_password",
    "ssl_ca_location",
    "ssl_certificate_location",
    "ssl_key_location",
    "ssl_key_password",
    "ssl_endpoint_identification",
)
# Java's JAAS login modules for SASL/PLAIN and SCRAM, and the librdkafka mechanism each means.
_JAAS_MODULES = {
    "org.apache.kafka.common.security.plain.PlainLoginModule": "PLAIN",
    "org.apache.kafka.common.security.scram.ScramLoginModule": None,  # sasl.mechanism says which
}
_JAAS = re.compile(r"^\s*(?P<module>[\w.$]+)\s+required\b(?P<options>.*?);?\s*$", re.DOTALL)
_JAAS_OPTION = re.compile(r'(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"')


def foreign_cluster(settings: KafkaSettings, bootstrap: str) -> KafkaSettings:
    """``settings`` pointed at ``bootstrap``, with the bus's security settings back at their
    defaults (PLAINTEXT, no credentials): see the module docstring."""
    fields = KafkaSettings.model_fields
    reset = {name: fields[name].get_default(call_default_factory=True) for name in SECURITY_FIELDS}
    return settings.model_copy(update={"bootstrap_servers": bootstrap, **reset})


def from_java_properties(props: Mapping[str, str]) -> dict[str, str]:
    """Kafka client ``properties`` as librdkafka takes them: ``sasl.jaas.config`` with the
    PLAIN or SCRAM login module becomes ``sasl.username`` / ``sasl.password`` (and
    ``sasl.mechanism=PLAIN`` for the PLAIN module when none is given); a PEM truststore
    becomes ``ssl.ca.location``. Other keys are returned unchanged. ConfigError for the Java
    keystore formats librdkafka cannot read (JKS), naming the replacement."""
    out = dict(props)
    jaas = out.pop("sasl.jaas.config", None)
    if jaas is not None:
        username, password, mechanism = _parse_jaas(jaas)
        out.setdefault("sasl.username", username)
        out.setdefault("sasl.password", password)
        if mechanism:
            out.setdefault("sasl.mechanism", mechanism)
    store = out.pop("ssl.truststore.location", None)
    store_type = out.pop("ssl.truststore.type", "JKS" if store else None)
    out.pop("ssl.truststore.password", None)  # a PEM file has none; JKS is refused below
    if store is not None:
        if str(store_type).upper() != "PEM":
            raise ConfigError(
                f"ssl.truststore.location is a {store_type} truststore, which librdkafka "
                "cannot read: give the CA certificate(s) as a PEM file in ssl.ca.location "
                "(`keytool -exportcert -rfc` converts one)"
            )
        out.setdefault("ssl.ca.location", store)
    return out


def _parse_jaas(text: str) -> tuple[str, str, str | None]:
    match = _JAAS.match(text)
    module = match.group("module") if match else ""
    if not match or module not in _JAAS_MODULES:
        shown = module or "(unreadable)"
        raise ConfigError(
            f"sasl.jaas.config: login module {shown} is not supported; use "
            f"{' or '.join(_JAAS_MODULES)} (or give sasl.username and sasl.password)"
        )
    options = {k: v.replace('\\"', '"') for k, v in _JAAS_OPTION.findall(match.group("options"))}
    if "username" not in options or "password" not in options:
        raise ConfigError('sasl.jaas.config needs username="..." and password="..."')
    return options["username"], options["password"], _JAAS_MODULES[module]
