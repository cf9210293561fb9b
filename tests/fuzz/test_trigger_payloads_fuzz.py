"""Trigger payloads, fuzzed through the pure parsers into a StartExecution on the wire.

Each realtime trigger turns bytes it does not control into trigger variables, then into a
StartExecution that must travel on hw.commands. For any payload the contract is: either the
parser refuses it with its MalformedPayload (a clear, recorded trigger error), or the command
is built AND encodes (``engine.bus.wire.command_record``). Anything else (a TypeError from the
encoder, a RecursionError) would crash or wedge the trigger source on one bad message.

Payloads: arbitrary bytes, invalid UTF-8, JSON of every shape, deeply nested JSON (up to and
past the decoder's own limit), huge integers; AMQP header values of every AMQP field type.
"""

from __future__ import annotations

import datetime as dt
import decimal
import string
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.bus.consumer import Record
from engine.bus.wire import command_record
from triggers import amqp, kafka, mqtt
from triggers.model import TriggerRef
from triggers.payloads import MAX_JSON_DEPTH, MalformedPayload
from triggers.start import build_start
from triggers.webhook import parse_body, webhook_start

NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
REF = TriggerRef("fuzz", "f", "t")
FLOW: dict[str, Any] = {"id": "f", "namespace": "fuzz", "tasks": []}
TRIGGER: dict[str, Any] = {"id": "t", "type": "io.kestra.plugin.core.trigger.Webhook"}
# orjson decodes up to 1024 levels but encodes only 254: every parser refuses nesting past
# triggers.payloads.MAX_JSON_DEPTH (128) right after decoding, so what it accepts can travel.
DEPTHS = (1, 100, 128, 129, 200, 1025, 5000)
# The depths that once decoded and then could not be encoded (EnvelopeError, a webhook 500).
ENCODER_LIMIT_DEPTHS = (255, 300, 1000, 1024)
FUZZ = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


def nested(depth: int, kind: str = "list") -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
payloads = st.one_of(
    st.binary(max_size=512),
    json_values.map(orjson.dumps),
    st.sampled_from(DEPTHS).map(nested),
    st.sampled_from(DEPTHS).map(lambda d: nested(d, "object")),
    st.integers(min_value=-(10**30), max_value=10**30).map(lambda n: str(n).encode()),
    st.text(max_size=64).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


def travels(variables: dict[str, Any]) -> None:
    """The StartExecution of these trigger variables encodes for hw.commands."""
    command, _problem = build_start(REF, FLOW, TRIGGER, "coordinates", variables, NOW)
    key, value = command_record(command)
    assert key
    assert value


@FUZZ
@given(
    key=st.none() | payloads, value=st.none() | payloads, kind=st.sampled_from(kafka.DESERIALIZERS)
)
def test_kafka_records_are_refused_or_travel(
    key: bytes | None, value: bytes | None, kind: str
) -> None:
    record = Record("in", 0, 7, key, value, [("h", value)], 1735689600000)
    try:
        variables = kafka.parse(record, "STRING" if key is None else kind, kind)
    except kafka.MalformedPayload as exc:
        problem = str(exc)
        assert problem, "a refusal names what is wrong"
        variables = kafka.raw(record)  # the 'raw' policy must travel too
    travels(variables)


@FUZZ
@given(payload=payloads, serde=st.sampled_from(["STRING", "JSON", "BYTES"]))
def test_mqtt_messages_are_refused_or_travel(payload: bytes, serde: str) -> None:
    message = mqtt.Message("a/b", payload, 1, False, 3, {})
    try:
        variables = mqtt.parse(message, serde)
    except mqtt.MalformedPayload as exc:
        problem = str(exc)
        assert problem, "a refusal names what is wrong"
        variables = mqtt.raw(message)
    travels(variables)


amqp_field_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
    | st.binary(max_size=10)
    | st.decimals(places=None)
    | st.datetimes(timezones=st.just(dt.UTC))
    | st.datetimes(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)


def amqp_message(headers: dict[str, Any]) -> Any:
    """What aio-pika hands over, as far as :func:`triggers.amqp.properties` reads it."""
    return SimpleNamespace(
        headers=headers, content_type="application/json", content_encoding=None,
        correlation_id=None, message_id="m1", app_id=None, type=None, user_id=None,
        priority=0, delivery_mode=2, expiration=None, reply_to=None,
        timestamp=NOW, routing_key="rk", exchange="",
    )  # fmt: skip


@FUZZ
@given(
    body=payloads,
    serde=st.sampled_from(["STRING", "JSON", "BYTES"]),
    headers=st.dictionaries(
        st.text(string.ascii_letters, max_size=6), amqp_field_values, max_size=3
    ),
)
def test_amqp_messages_are_refused_or_travel(
    body: bytes, serde: str, headers: dict[str, Any]
) -> None:
    props = amqp.properties(amqp_message(headers))
    try:
        variables = amqp.parse(body, props, serde)
    except amqp.MalformedPayload as exc:
        problem = str(exc)
        assert problem, "a refusal names what is wrong"
        return
    travels(variables)


# The only bodies the strategies nest past the limit (json_values has at most 20 leaves).
TOO_DEEP = {nested(d, kind) for d in DEPTHS if d > MAX_JSON_DEPTH for kind in ("list", "object")}


@FUZZ
@given(body=payloads)
def test_webhook_bodies_become_variables_that_travel(body: bytes) -> None:
    result = webhook_start(
        "fuzz", "f", FLOW, TRIGGER, body=body, headers=[("x-h", "v")], parameters=[], now=NOW
    )
    if body in TOO_DEEP:
        assert result.status == 422, result
        assert result.command is None
        assert f"more than {MAX_JSON_DEPTH} levels" in (result.reason or "")
        return
    assert result.status == 200, result.reason
    assert result.command is not None
    _key, value = command_record(result.command)
    assert value


@pytest.mark.parametrize("kind", ["list", "object"])
@pytest.mark.parametrize("depth", DEPTHS)
def test_webhook_body_nesting_is_data_or_refused_never_unencodable(depth: int, kind: str) -> None:
    if depth > MAX_JSON_DEPTH:
        with pytest.raises(MalformedPayload, match="levels deep"):
            parse_body(nested(depth, kind))
        return
    value = parse_body(nested(depth, kind))
    assert isinstance(value, list | dict)
    orjson.dumps(value)  # whatever the body became must encode again


# ------------------------------------------------------- once bugs (issue 7/10), now fixed
# JSON nested 255..1024 deep decoded but could not be encoded; AMQP Decimal headers could not
# be encoded. Each was a strict xfail until fixed.


@pytest.mark.parametrize("depth", ENCODER_LIMIT_DEPTHS)
def test_webhook_body_nested_too_deep_is_not_unencodable_data(depth: int) -> None:
    try:
        value = parse_body(nested(depth))
    except MalformedPayload:
        return
    orjson.dumps(value)


@pytest.mark.parametrize("kind", ["list", "object"])
def test_kafka_json_nested_too_deep_is_malformed_not_unencodable(kind: str) -> None:
    record = Record("in", 0, 7, None, nested(300, kind), None, 1735689600000)
    try:
        variables = kafka.parse(record, "STRING", "JSON")
    except kafka.MalformedPayload:
        return
    travels(variables)


def test_mqtt_json_nested_too_deep_is_malformed_not_unencodable() -> None:
    try:
        variables = mqtt.parse(mqtt.Message("a", nested(300), 1, False, 1, {}), "JSON")
    except mqtt.MalformedPayload:
        return
    travels(variables)


def test_amqp_json_nested_too_deep_is_malformed_not_unencodable() -> None:
    try:
        variables = amqp.parse(nested(300), amqp.properties(amqp_message({})), "JSON")
    except amqp.MalformedPayload:
        return
    travels(variables)


def test_amqp_decimal_header_travels() -> None:
    props = amqp.properties(amqp_message({"price": decimal.Decimal("1.5")}))
    travels(amqp.parse(b"{}", props, "JSON"))
    assert props["headers"] == {"price": 1.5}


def test_amqp_header_field_types_become_json_data() -> None:
    naive = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC).replace(tzinfo=None)  # as pamqp gives
    headers = {
        "int_dec": decimal.Decimal("42"),
        "huge_dec": decimal.Decimal("1e30"),
        "nan": decimal.Decimal("NaN"),
        "when": naive,
        "raw": bytearray(b"ab"),
        "table": {"inner": [decimal.Decimal("0.25"), b"x", {"deep": decimal.Decimal("-3")}]},
    }
    props = amqp.properties(amqp_message(headers))
    assert props["headers"] == {
        "int_dec": 42,
        "huge_dec": 1e30,
        "nan": "NaN",
        "when": "2025-01-01T12:00:00+00:00",
        "raw": "ab",
        "table": {"inner": [0.25, "x", {"deep": -3}]},
    }
    travels(amqp.parse(b"{}", props, "JSON"))
