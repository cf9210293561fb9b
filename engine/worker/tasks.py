"""The executors a worker offers: the core tasks, scripts, HTTP, publishing and every
plugin type (SQL among them) (schemas.plugins)."""

from __future__ import annotations

from pathlib import Path

from engine.settings import Settings
from executors.http import HttpRequestTask
from executors.publish import AmqpPublishTask, KafkaProduceTask, MqttPublishTask
from executors.python import PythonCommandsTask, PythonEnvironments, PythonScriptTask
from executors.registry import Registry, add_plugins, core_registry
from executors.shell import ShellCommandsTask, ShellScriptTask


def build_registry(settings: Settings, venv_dir: Path) -> Registry:
    """Every executor of this worker, wired from the settings (no globals)."""
    registry = core_registry()
    pythons = PythonEnvironments(settings.worker.python, venv_dir)
    registry.register("io.kestra.plugin.scripts.shell.Commands", ShellCommandsTask())
    registry.register("io.kestra.plugin.scripts.shell.Script", ShellScriptTask())
    registry.register("io.kestra.plugin.scripts.python.Script", PythonScriptTask(pythons))
    registry.register("io.kestra.plugin.scripts.python.Commands", PythonCommandsTask(pythons))
    registry.register("io.kestra.plugin.core.http.Request", HttpRequestTask())
    registry.register(
        "io.kestra.plugin.kafka.Produce", KafkaProduceTask(settings.kafka.client_config())
    )
    mqtt_server = f"tcp://{settings.mqtt.host}:{settings.mqtt.port}"
    registry.register("io.kestra.plugin.mqtt.Publish", MqttPublishTask(mqtt_server))
    registry.register(
        "io.kestra.plugin.amqp.Publish", AmqpPublishTask(settings.amqp.url.get_secret_value())
    )
    return add_plugins(registry)
