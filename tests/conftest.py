"""Shared fixtures: where the real servers started by deploy/local answer.

Integration tests never skip when a server is down: they fail, naming the server and the
command that starts it (`make services-up`).
"""

from __future__ import annotations

import os
import pathlib

import pytest

from engine.settings import Settings, load_settings

REPO = pathlib.Path(__file__).resolve().parent.parent
CONFORMANCE = REPO.parent / "shared" / "conformance" / "kestra"


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings as the environment gives them (the same defaults as deploy/local)."""
    return load_settings()


@pytest.fixture(scope="session")
def kafka_bootstrap(settings: Settings) -> str:
    return settings.kafka.bootstrap_servers


@pytest.fixture(scope="session")
def postgres_dsn(settings: Settings) -> str:
    return settings.postgres.dsn.get_secret_value()


@pytest.fixture(scope="session")
def mqtt_address(settings: Settings) -> tuple[str, int]:
    return settings.mqtt.host, settings.mqtt.port


@pytest.fixture(scope="session")
def amqp_url(settings: Settings) -> str:
    return settings.amqp.url.get_secret_value()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis of deploy/local (its port: HEADWATER_LOCAL_REDIS_PORT, as services.py)."""
    return f"redis://127.0.0.1:{os.environ.get('HEADWATER_LOCAL_REDIS_PORT', '6379')}/0"


@pytest.fixture(scope="session")
def nats_url() -> str:
    """The NATS of deploy/local (its port: HEADWATER_LOCAL_NATS_PORT, as services.py)."""
    return f"nats://127.0.0.1:{os.environ.get('HEADWATER_LOCAL_NATS_PORT', '4222')}"


@pytest.fixture(scope="session")
def conformance_dir() -> pathlib.Path:
    if not CONFORMANCE.is_dir():
        pytest.fail(f"the Kestra conformance corpus is missing at {CONFORMANCE}")
    return CONFORMANCE
