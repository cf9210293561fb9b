"""`headwater dev`'s settings: the embedded servers, a short session timeout, and a fetch wait
a durable (S3) Tansu answers; what the user set explicitly wins."""

from __future__ import annotations

import pathlib

from engine.devstack.broker import DURABLE_FETCH_WAIT_MS
from engine.devstack.session import dev_settings
from engine.devstack.stack import DevStack
from engine.settings import KafkaSettings, Settings


def _stack(tmp_path: pathlib.Path, *, durable: bool) -> DevStack:
    return DevStack(tmp_path, durable=durable)


def test_a_durable_broker_gets_patient_fetches_and_a_memory_one_keeps_the_default(
    tmp_path: pathlib.Path,
) -> None:
    base = Settings()
    durable = dev_settings(base, _stack(tmp_path / "d", durable=True))
    memory = dev_settings(base, _stack(tmp_path / "m", durable=False))
    assert durable.kafka.fetch_wait_max_ms == DURABLE_FETCH_WAIT_MS
    assert memory.kafka.fetch_wait_max_ms == KafkaSettings().fetch_wait_max_ms


def test_a_fetch_wait_the_user_set_is_kept(tmp_path: pathlib.Path) -> None:
    base = Settings(kafka=KafkaSettings(fetch_wait_max_ms=20))
    assert dev_settings(base, _stack(tmp_path, durable=True)).kafka.fetch_wait_max_ms == 20
