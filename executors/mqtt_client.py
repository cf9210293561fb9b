"""The MQTT connection of Kestra's mqtt tasks (``AbstractMqttConnection``), with paho.

Properties: ``server`` (``tcp://host:port``, or ``ssl://host:port`` for TLS; default ports
1883 and 8883), ``clientId``, ``mqttVersion`` V5 (Kestra's default) or V3 (MQTT 3.1.1; the
older spelling ``version`` and the values ``V_5`` / ``V_3_1_1`` are understood),
``username`` / ``password``, ``connectionTimeout`` (Kestra: 30 s), ``crt`` (the CA
certificate of a TLS server: PEM text, a ``kestra://`` file or a path on the worker; without
it the system's CAs), ``httpsHostnameVerificationEnabled`` (true: the certificate must name
the host), ``authMethod`` (MQTT 5 only: sent as the CONNECT's Authentication Method; a broker
that does not know it refuses the connection, and an AUTH challenge is not answered).

A session is clean, as Kestra's (paho Java's default with memory persistence). :func:`connect`
waits for the broker's CONNACK, so a refused connection fails at once with its reason.
:func:`filter_problem` checks a topic filter (Subscribe's and the MQTT trigger's).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from paho.mqtt import client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from executors.base import TaskContext, TaskError, as_bool, parse_duration

# paho Java's default connection timeout, which Kestra keeps when the property is not set.
DEFAULT_CONNECT_TIMEOUT_S = 30.0
_VERSIONS = {"V5": True, "V_5": True, "5": True, "V3": False, "V_3_1_1": False, "3": False}


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str
    port: int
    tls: ssl.SSLContext | None
    client_id: str
    v5: bool
    username: str | None
    password: str | None
    timeout_s: float
    auth_method: str | None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


async def mqtt_settings(
    ctx: TaskContext,
    props: Mapping[str, Any],
    *,
    default_server: str | None = None,
    default_version: str = "V5",
) -> MqttSettings:
    """The rendered connection properties of a task (``props``: its unrendered values)."""
    server = ctx.render_str(props.get("server")) or default_server
    if not server:
        raise TaskError("property 'server' is required (tcp://host:1883 or ssl://host:8883)")
    url = urlparse(server if "://" in server else f"tcp://{server}")
    scheme = url.scheme.lower()
    if scheme not in ("tcp", "ssl", "mqtt", "mqtts"):
        raise TaskError(f"server {server!r}: use tcp://host:port or ssl://host:port")
    secure = scheme in ("ssl", "mqtts")
    version = ctx.render_str(props.get("mqttVersion") or props.get("version")) or default_version
    if version.upper() not in _VERSIONS:
        raise TaskError(f"mqttVersion {version!r}: use V5 or V3")
    timeout = ctx.render(props.get("connectionTimeout"))
    try:
        timeout_s = DEFAULT_CONNECT_TIMEOUT_S if timeout is None else parse_duration(timeout)
    except TaskError as exc:
        raise TaskError(f"property 'connectionTimeout': {exc}") from None
    password = ctx.render_str(props.get("password"))
    if password:
        ctx.secrets = ctx.secrets | {password}
    tls = None
    if secure:
        verify_host = props.get("httpsHostnameVerificationEnabled")
        tls = await _tls_context(ctx, ctx.render_str(props.get("crt")))
        tls.check_hostname = as_bool(ctx.render(verify_host)) if verify_host is not None else True
    return MqttSettings(
        host=url.hostname or "127.0.0.1",
        port=url.port or (8883 if secure else 1883),
        tls=tls,
        client_id=ctx.render_str(props.get("clientId")) or f"headwater-{ctx.task_run_id}",
        v5=_VERSIONS[version.upper()],
        username=ctx.render_str(props.get("username")),
        password=password,
        timeout_s=timeout_s if timeout_s > 0 else DEFAULT_CONNECT_TIMEOUT_S,
        auth_method=ctx.render_str(props.get("authMethod")),
    )


async def _tls_context(ctx: TaskContext, crt: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not crt or not crt.strip():
        return context
    crt = crt.strip()
    try:
        if crt.startswith("kestra://"):
            if ctx.storage is None:
                raise TaskError("property 'crt': this worker has no internal storage")
            context.load_verify_locations(cadata=(await ctx.storage.read(crt)).decode())
        elif crt.startswith("-----BEGIN "):
            context.load_verify_locations(cadata=crt)
        elif await asyncio.to_thread(Path(crt).is_file):
            context.load_verify_locations(cafile=crt)
        else:
            raise TaskError(
                "Cannot resolve CA certificate: the value is not a valid Kestra internal storage "
                "URI, an existing file path, or PEM-encoded certificate content."
            )
    except (ssl.SSLError, ValueError) as exc:
        raise TaskError(
            "Failed to load CA certificate: the provided certificate content is invalid. "
            f"Ensure it is a valid PEM-encoded X.509 certificate ({exc})"
        ) from None
    return context


def connect(s: MqttSettings) -> mqtt.Client:
    """A connected client whose network loop runs (call it in a thread); TaskError if refused."""
    protocol = mqtt.MQTTv5 if s.v5 else mqtt.MQTTv311
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=s.client_id, protocol=protocol)
    client.connect_timeout = s.timeout_s
    if s.username is not None:
        client.username_pw_set(s.username, s.password)
    if s.tls is not None:
        client.tls_set_context(s.tls)
    answered = threading.Event()
    reason: list[Any] = []

    def on_connect(_c: Any, _u: Any, _flags: Any, code: Any, _props: Any) -> None:
        reason.append(code)
        answered.set()

    client.on_connect = on_connect
    properties = None
    if s.v5 and s.auth_method:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.AuthenticationMethod = s.auth_method
    try:
        if s.v5:
            client.connect(s.host, s.port, clean_start=True, properties=properties)
        else:
            client.connect(s.host, s.port)
    except (OSError, ValueError) as exc:
        raise TaskError(f"MQTT connection to {s.where} failed: {exc}") from None
    client.loop_start()
    if not answered.wait(s.timeout_s) or reason[0].is_failure:
        client.loop_stop()
        client.disconnect()
        why = f"refused: {reason[0]}" if reason else f"no answer within {s.timeout_s:g} s"
        raise TaskError(f"MQTT connection to {s.where} as {s.client_id!r} {why}")
    return client


def close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def decode_correlation(value: str, name: str = "correlationData") -> bytes:
    """Correlation data travels base64-encoded in flows (Kestra's choice: it is binary)."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TaskError(
            f"The '{name}' property must be Base64-encoded, as it is binary on the wire: {exc}"
        ) from None


def filter_problem(topic_filter: str) -> str | None:
    """Why an MQTT topic filter is invalid (None if valid): ``+`` and ``#`` take a whole
    level, ``#`` only the last one."""
    if not topic_filter:
        return "empty topic filter"
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "+" in level and level != "+":
            return f"'+' must be a whole level in {topic_filter!r}"
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return f"'#' must be the whole last level in {topic_filter!r}"
    return None
