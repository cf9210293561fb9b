"""mqtt.Subscribe and mqtt.Publish against the real broker (Mosquitto, deploy/local)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from executors.base import TaskOutcome
from tests.integration.messaging import run, run_until_logged, stored_rows, unique

pytestmark = pytest.mark.mqtt

# A bound on a Subscribe that waits for messages; it stops at maxRecords long before it.
SUBSCRIBE_BUDGET = "PT20S"
FIELDS = ["id", "topic", "qos", "properties", "payload", "retain", "responseTopic",
          "correlationData"]  # fmt: skip


def server(mqtt_address: tuple[str, int]) -> str:
    return f"tcp://{mqtt_address[0]}:{mqtt_address[1]}"


def subscribe_task(mqtt_address: tuple[str, int], topic: Any, **props: Any) -> dict[str, Any]:
    return {
        "id": "sub", "type": "io.kestra.plugin.mqtt.Subscribe", "server": server(mqtt_address),
        "clientId": unique("hw-sub"), "topic": topic, "maxDuration": SUBSCRIBE_BUDGET, **props,
    }  # fmt: skip


def publish_task(mqtt_address: tuple[str, int], topic: str, **props: Any) -> dict[str, Any]:
    return {
        "id": "pub", "type": "io.kestra.plugin.mqtt.Publish", "server": server(mqtt_address),
        "topic": topic, **props,
    }  # fmt: skip


async def while_subscribed(
    tmp_path: Path, subscribe: dict[str, Any], *publishes: dict[str, Any]
) -> TaskOutcome:
    """Run Subscribe; once it is subscribed, run the Publish tasks; Subscribe's outcome."""
    receiving, subscribed = await run_until_logged(tmp_path, subscribe, "Subscribed to")
    await subscribed()
    for publish in publishes:
        published = await run(tmp_path, publish, inputs={"city": "Lyon"})
        assert published.state == "SUCCESS", published.error
    return await receiving


@pytest.mark.parametrize("version", ["V5", "V3"])
async def test_subscribe_stores_kestra_messages(
    mqtt_address: tuple[str, int], tmp_path: Path, version: str
) -> None:
    topic = f"hw/test/{unique('sub')}"
    correlation = base64.b64encode(b"c-1").decode()
    outcome = await while_subscribed(
        tmp_path,
        subscribe_task(mqtt_address, topic, mqttVersion=version, maxRecords=2),
        publish_task(
            mqtt_address, topic, mqttVersion=version,
            **{"from": [{"city": "{{ inputs.city }}"}, {"n": 2}]},
            responseTopic=f"{topic}/replies", correlationData=correlation,
        ),
    )  # fmt: skip
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs["messagesCount"] == 2
    rows = stored_rows(tmp_path, outcome.outputs["uri"])
    assert [list(r) for r in rows] == [FIELDS, FIELDS]
    assert [(r["topic"], r["payload"], r["qos"], r["retain"]) for r in rows] == [
        (topic, {"city": "Lyon"}, 1, False),
        (topic, {"n": 2}, 1, False),
    ]
    assert all(isinstance(r["id"], int) and r["id"] > 0 for r in rows)
    assert rows[0]["properties"] is None
    if version == "V5":
        assert (rows[0]["responseTopic"], rows[0]["correlationData"]) == (
            f"{topic}/replies",
            correlation,
        )
    else:  # MQTT 3.1.1 messages have no properties
        assert (rows[0]["responseTopic"], rows[0]["correlationData"]) == (None, None)


async def test_strings_bytes_wildcards_and_retained_messages(
    mqtt_address: tuple[str, int], tmp_path: Path
) -> None:
    base = f"hw/test/{unique('str')}"
    retained = publish_task(mqtt_address, f"{base}/kept", serdeType="STRING", retain=True,
                            **{"from": "kept {{ inputs.city }}"})  # fmt: skip
    published = await run(tmp_path, retained, inputs={"city": "Lyon"})
    assert published.outputs == {"messagesCount": 1}
    outcome = await while_subscribed(
        tmp_path,
        subscribe_task(mqtt_address, [f"{base}/+", f"{base}/x/#"], serdeType="STRING",
                       maxRecords=3, qos=0),
        publish_task(mqtt_address, f"{base}/x/y", serdeType="STRING", qos=0,
                     **{"from": ["a {{ inputs.city }}", "b"]}),
    )  # fmt: skip
    assert outcome.state == "SUCCESS", outcome.error
    rows = stored_rows(tmp_path, outcome.outputs["uri"])
    assert [(r["topic"], r["payload"], r["retain"], r["qos"]) for r in rows] == [
        (f"{base}/kept", "kept Lyon", True, 0),  # the retained message comes first
        (f"{base}/x/y", "a Lyon", False, 0),
        (f"{base}/x/y", "b", False, 0),
    ]
    assert rows[1]["id"] == 0  # QoS 0 messages have no packet id
    cleared = await run(tmp_path, {**retained, "from": ""})  # an empty retained one clears it
    assert cleared.state == "SUCCESS", cleared.error

    blob = base64.b64encode(b"\x00\xffbin").decode()
    outcome = await while_subscribed(
        tmp_path,
        subscribe_task(mqtt_address, f"{base}/bin", serdeType="BYTES", maxRecords=1),
        publish_task(mqtt_address, f"{base}/bin", serdeType="BYTES", **{"from": blob}),
    )  # fmt: skip
    assert stored_rows(tmp_path, outcome.outputs["uri"])[0]["payload"] == b"\x00\xffbin"


async def test_a_payload_that_is_not_json_fails_naming_the_topic(
    mqtt_address: tuple[str, int], tmp_path: Path
) -> None:
    topic = f"hw/test/{unique('bad')}"
    outcome = await while_subscribed(
        tmp_path,
        subscribe_task(mqtt_address, topic, maxRecords=1),
        publish_task(mqtt_address, topic, serdeType="STRING", **{"from": "{not json"}),
    )  # fmt: skip
    assert outcome.state == "FAILED"
    assert f"from topic '{topic}': cannot read 9 bytes as JSON" in (outcome.error or "")


async def test_stop_conditions_and_connection_failures(
    mqtt_address: tuple[str, int], tmp_path: Path
) -> None:
    topic = f"hw/test/{unique('quiet')}"
    quiet = await run(tmp_path, subscribe_task(mqtt_address, topic, maxDuration="PT0.5S"))
    assert quiet.state == "SUCCESS", quiet.error
    assert quiet.outputs["messagesCount"] == 0
    assert stored_rows(tmp_path, quiet.outputs["uri"]) == []

    endless = subscribe_task(mqtt_address, topic)
    del endless["maxDuration"]
    never = await run(tmp_path, endless)
    assert never.state == "FAILED"
    assert "maxRecords or maxDuration must be set" in (never.error or "")

    for task in (
        subscribe_task(mqtt_address, topic, server="tcp://127.0.0.1:1"),
        publish_task(mqtt_address, topic, server="tcp://127.0.0.1:1", **{"from": "x"}),
    ):
        outcome = await run(tmp_path, task)
        assert outcome.state == "FAILED"
        assert "MQTT connection to 127.0.0.1:1 failed" in (outcome.error or "")
    bad = await run(tmp_path, subscribe_task(mqtt_address, "a/#/b"))
    assert "'#' must be the whole last level" in (bad.error or "")
    wrong = await run(tmp_path, publish_task(
        mqtt_address, topic, correlationData="not base64!", **{"from": "x"}
    ))  # fmt: skip
    assert "must be Base64-encoded" in (wrong.error or "")
