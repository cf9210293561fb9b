"""A wrong setting is one clear line naming the variable, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from engine.errors import ConfigError
from engine.settings import load_settings


def test_a_wrong_value_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_KAFKA__PARTITIONS", "many")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "HEADWATER_KAFKA__PARTITIONS" in caught.value.message
    assert "valid integer" in caught.value.message


def test_a_broken_combination_keeps_its_own_message_and_hides_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HEADWATER_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("HEADWATER_KAFKA__SASL_PASSWORD", "hunter2-secret")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = caught.value.message
    assert "HEADWATER_KAFKA__SASL_USERNAME" in message
    assert not message.startswith("invalid settings: Value error")
    assert "hunter2-secret" not in message


def test_the_cli_prints_one_line_and_exits_2() -> None:
    env = {**os.environ, "HEADWATER_KAFKA__SECURITY_PROTOCOL": "bogus"}
    done = subprocess.run(
        [sys.executable, "-c", "from engine.cli import main; main()", "executor"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: invalid settings: HEADWATER_KAFKA__SECURITY_PROTOCOL")
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
