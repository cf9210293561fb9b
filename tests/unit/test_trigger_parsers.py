"""Pure parsers, derived ids, trigger state merging and the StartExecution builder."""

from __future__ import annotations

import os
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.bus.consumer import Record
from triggers import ids
from triggers.files import FileConfig, scan, stable
from triggers.files import parse as parse_file
from triggers.kafka import MalformedPayload
from triggers.kafka import parse as parse_kafka
from triggers.kafka import raw as raw_kafka
from triggers.model import TriggerRef
from triggers.mqtt import Message, decode_payload, filter_problem
from triggers.mqtt import parse as parse_mqtt
from triggers.start import build_start
from triggers.state import TriggerState, decode_state, merge, state_record, toggle_record

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def record(key: bytes | None, value: bytes | None) -> Record:
    return Record("in", 2, 41, key, value, [("h", b"v")], 1735689600000)


def test_kafka_parser_gives_kestra_variables() -> None:
    v = parse_kafka(record(b"k", b'{"n": 1}'), "STRING", "JSON")
    assert v == {
        "key": "k",
        "value": {"n": 1},
        "topic": "in",
        "partition": 2,
        "offset": 41,
        "timestamp": "2025-01-01T00:00:00Z",
        "headers": [{"key": "h", "value": "v"}],
    }
    assert parse_kafka(record(b"\x00\x01", b"x"), "BYTES", "STRING")["key"] == "AAE="
    assert parse_kafka(record(struct.pack(">i", 7), None), "INTEGER", "STRING")["key"] == 7


def test_kafka_malformed_json_is_reported_and_raw_keeps_the_bytes() -> None:
    with pytest.raises(MalformedPayload, match="JSON"):
        parse_kafka(record(None, b"{nope"), "STRING", "JSON")
    assert raw_kafka(record(None, b"{nope"))["value"] == "{nope"


def test_mqtt_parser_and_filters() -> None:
    m = Message("a/b", b'{"t": 20}', 1, False, 5, {"p": "1"})
    assert parse_mqtt(m, "JSON") == {
        "id": 5,
        "topic": "a/b",
        "payload": {"t": 20},
        "qos": 1,
        "retain": False,
        "properties": {"p": "1"},
    }
    assert decode_payload(b"hi", "STRING") == "hi"
    assert filter_problem("a/+/c") is None
    assert filter_problem("a/#") is None
    assert filter_problem("a/b+") is not None
    assert filter_problem("a/#/c") is not None


def test_ids_are_stable_and_never_change_format() -> None:
    # Pinned: an id that changed would let a redelivered input start a second execution.
    coordinates = ids.kafka_coordinates("in", 0, "g", 5)
    assert coordinates == "kafka-unique-id-in-0-g-5"
    assert ids.execution_id("ns", "f", "t", coordinates) == "f29f8393-9be9-55b8-a879-f0c5850ec197"


def test_file_stable_size_check(tmp_path: Path) -> None:
    config = FileConfig(tmp_path, False, None, 0.1, "NONE", None, None)
    (tmp_path / "a.csv").write_text("1")
    first = scan(config)
    (tmp_path / "b.csv").write_text("half")
    second = scan(config)
    assert stable(first, second) == [str(tmp_path / "a.csv")]  # b is new: not yet stable
    with (tmp_path / "a.csv").open("a") as f:
        f.write("more")  # still being written
    os.utime(tmp_path / "a.csv", ns=(1, 2))
    third = scan(config)
    assert stable(second, third) == [str(tmp_path / "b.csv")]
    v = parse_file(str(tmp_path / "b.csv"), third[str(tmp_path / "b.csv")])
    assert v["uri"].startswith("file://")
    assert v["size"] == 4
    assert v["name"] == "b.csv"


def test_state_merge_toggle_wins_and_last_fired_is_the_latest() -> None:
    fired = TriggerState("ns", "f", "t", last_fired="2025-01-01T00:00:02.000Z", extra={"a": 1})
    toggle = decode_state(toggle_record("ns", "f", "t", False, now=NOW)[1])
    merged = merge(fired, toggle)
    assert merged.enabled is False
    assert merged.last_fired == "2025-01-01T00:00:02.000Z"
    # A runtime snapshot written before it saw the toggle does not undo it.
    stale = TriggerState("ns", "f", "t", enabled=True, last_fired="2025-01-01T00:00:03.000Z")
    merged = merge(merged, stale)
    assert merged.enabled is False
    assert merged.last_fired == "2025-01-01T00:00:03.000Z"
    assert merged.extra == {"a": 1}
    assert merged.effective_enabled(yaml_disabled=False) is False
    assert TriggerState("ns", "f", "t").effective_enabled(yaml_disabled=True) is False
    key, value = state_record(merged)
    assert key == b"ns/f/t"
    assert decode_state(value) == merged


def test_build_start_renders_inputs_and_derives_the_id() -> None:
    flow = {"id": "f", "namespace": "ns", "labels": {"team": "a"}, "tasks": []}
    trigger = {
        "id": "t",
        "type": "io.kestra.plugin.kafka.RealtimeTrigger",
        "inputs": {"n": "{{ trigger.value.n }}", "bad": "{{ nope }}"},
        "labels": [{"key": "src", "value": "kafka"}],
    }
    ref = TriggerRef("ns", "f", "t")
    cmd, problem = build_start(ref, flow, trigger, "c1", {"value": {"n": 3}}, NOW)
    assert cmd.execution_id == ids.execution_id("ns", "f", "t", "c1")
    assert cmd.inputs == {"n": "3", "bad": "{{ nope }}"}
    assert problem is not None
    assert "bad" in problem
    assert cmd.labels == {"src": "kafka"}
    # Kestra's ExecutionTrigger: the trigger's id and type, its output as variables.
    assert cmd.trigger == {
        "id": "t",
        "type": "io.kestra.plugin.kafka.RealtimeTrigger",
        "variables": {"value": {"n": 3}},
    }
