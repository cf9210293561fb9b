"""Tasks of Kestra plugins outside the core that Headwater runs: scripts, Kafka, MQTT and
AMQP (SQL is a plugin family: executors.plugins.jdbc). Only the properties our workers
understand are modeled; anything else is an error rather than silently ignored."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from schemas.flow.common import BoolOrExpr, Duration, IntOrExpr, Str
from schemas.flow.task_base import TaskBase


class _ScriptBase(TaskBase):
    env: dict[str, Any] | None = None
    beforeCommands: list[Str] | None = None
    interpreter: list[Str] | None = None
    containerImage: Str | None = None
    taskRunner: dict[str, Any] | None = None
    docker: dict[str, Any] | None = None
    runner: Literal["PROCESS", "DOCKER"] | None = Field(default=None, description="deprecated")
    inputFiles: dict[str, Any] | Str | None = None
    outputFiles: list[Str] | None = None
    namespaceFiles: dict[str, Any] | None = None
    warningOnStdErr: BoolOrExpr | None = None
    failFast: BoolOrExpr | None = None
    targetOS: Literal["LINUX", "WINDOWS", "AUTO"] | None = None
    outputDirectory: BoolOrExpr | None = Field(
        default=None, description="deprecated: {{ outputDir }} is always available"
    )


class ShellCommandsTask(_ScriptBase):
    """Run shell commands."""

    type: Literal["io.kestra.plugin.scripts.shell.Commands"]
    commands: list[Str] | Str


class ShellScriptTask(_ScriptBase):
    """Run a multi-line shell script."""

    type: Literal["io.kestra.plugin.scripts.shell.Script"]
    script: Str


class PythonScriptTask(_ScriptBase):
    """Run a Python script."""

    type: Literal["io.kestra.plugin.scripts.python.Script"]
    script: Str
    dependencies: list[Str] | None = None


class PythonCommandsTask(_ScriptBase):
    """Run commands in a Python environment."""

    type: Literal["io.kestra.plugin.scripts.python.Commands"]
    commands: list[Str] | Str
    dependencies: list[Str] | None = None


class KafkaProduceTask(TaskBase):
    """Publish records to a Kafka topic."""

    type: Literal["io.kestra.plugin.kafka.Produce"]
    properties: dict[str, Any]
    topic: Str | None = None
    from_: Any = Field(default=None, alias="from")
    keySerializer: Str | None = None
    valueSerializer: Str | None = None
    serdeProperties: dict[str, Any] | None = None
    transactional: BoolOrExpr | None = None


class MqttPublishTask(TaskBase):
    """Publish messages to an MQTT topic."""

    type: Literal["io.kestra.plugin.mqtt.Publish"]
    server: Str
    topic: Str
    from_: Any = Field(alias="from")
    qos: IntOrExpr | None = None
    retain: BoolOrExpr | None = None
    serdeType: Str | None = None
    clientId: Str | None = None
    username: Str | None = None
    password: Str | None = None
    mqttVersion: Literal["V3", "V5"] | Str | None = None
    version: Literal["V3", "V5", "V_3_1_1", "V_5"] | None = Field(
        default=None, description="deprecated: use mqttVersion"
    )
    connectionTimeout: Duration | None = None
    crt: Str | None = None
    authMethod: Str | None = None
    httpsHostnameVerificationEnabled: BoolOrExpr | None = None
    responseTopic: Str | None = None
    correlationData: Str | None = None


class AmqpPublishTask(TaskBase):
    """Publish messages to an AMQP (RabbitMQ) exchange."""

    type: Literal["io.kestra.plugin.amqp.Publish"]
    exchange: Str
    from_: Any = Field(alias="from")
    routingKey: Str | None = None
    url: Str | None = None
    host: Str | None = None
    port: IntOrExpr | Str | None = None
    username: Str | None = None
    password: Str | None = None
    virtualHost: Str | None = None
    serdeType: Str | None = None
    queue: Str | None = Field(
        default=None, description="Headwater: publish to this queue through the default exchange"
    )


PLUGIN_MODELS: tuple[type[TaskBase], ...] = (
    ShellCommandsTask,
    ShellScriptTask,
    PythonScriptTask,
    PythonCommandsTask,
    KafkaProduceTask,
    MqttPublishTask,
    AmqpPublishTask,
)
