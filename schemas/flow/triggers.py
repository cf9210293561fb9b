"""Flow triggers (``triggers:``), tagged by canonical ``type``: the built-in ones below and the
plugins' polling triggers (:mod:`schemas.plugins`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import Field, PlainValidator, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from schemas.flow.common import (
    BoolOrExpr,
    Cron,
    Duration,
    FlowModel,
    IntOrExpr,
    Labels,
    State,
    Str,
    TimeZone,
)
from schemas.flow.conditions import Condition
from schemas.flow.trigger_base import TriggerBase
from schemas.plugins import trigger_classes

_TriggerBase = TriggerBase


class Backfill(FlowModel):
    """Replay the schedules between ``start`` and ``end``."""

    start: Str
    end: Str | None = None
    labels: Labels | None = None
    inputs: dict[str, Any] | None = None


class ScheduleTrigger(_TriggerBase):
    """Start an execution at each tick of a cron expression."""

    type: Literal["io.kestra.plugin.core.trigger.Schedule"]
    cron: Cron
    withSeconds: BoolOrExpr | None = None
    timezone: TimeZone | None = None
    backfill: Backfill | None = None
    inputs: dict[str, Any] | None = None
    labels: Labels | None = None
    scheduleConditions: list[Condition] | None = None
    lateMaximumDelay: Duration | None = None
    recoverMissedSchedules: Literal["ALL", "LAST", "NONE"] | None = None
    interval: Duration | None = Field(default=None, description="deprecated, ignored")


class ScheduleOnDatesTrigger(_TriggerBase):
    """Start an execution at each of a list of dates (Kestra's ScheduleOnDates)."""

    type: Literal["io.kestra.plugin.core.trigger.ScheduleOnDates"]
    dates: list[Str] | Str
    timezone: TimeZone | None = None
    inputs: dict[str, Any] | None = None
    labels: Labels | None = None
    recoverMissedSchedules: Literal["ALL", "LAST", "NONE"] | None = None
    interval: None = Field(default=None, description="not allowed (Kestra: must be null)")


_TIME_OF_DAY = re.compile(r"\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?")


def _time_of_day(value: Any) -> str:
    if isinstance(value, str) and _TIME_OF_DAY.fullmatch(value.strip()):
        return value
    raise PydanticCustomError(
        "time_of_day", "expected a time of day such as 09:00:00 (optionally with an offset)"
    )


TimeOfDay = Annotated[
    str,
    PlainValidator(_time_of_day),
    WithJsonSchema({"type": "string", "examples": ["09:00:00", "09:00:00+01:00"]}),
]


class Dependency(FlowModel):
    """Kestra 2.0: one upstream flow a Flow trigger depends on (``dependsOn`` entry)."""

    namespace: Str | None = Field(default=None, description="exact namespace (any when unset)")
    flowId: Str | None = Field(default=None, description="exact flow id (any when unset)")
    states: list[State] | None = Field(default=None, description="default SUCCESS, WARNING")
    labels: dict[str, Any] | None = Field(default=None, description="labels that must all match")
    when: Str | None = Field(default=None, description="a further expression that must hold")


class Window(FlowModel):
    """Kestra 2.0: the time window in which ``dependsOn`` must be met; one group of
    ``deadline`` | ``from`` + ``to`` | ``every`` (+ ``offset``) | ``lookback``."""

    deadline: TimeOfDay | None = None
    from_: TimeOfDay | None = Field(default=None, alias="from")
    to: TimeOfDay | None = None
    every: Duration | None = None
    offset: Duration | None = None
    lookback: Duration | None = None
    fireOnce: BoolOrExpr | None = Field(
        default=None, description="fire once per window (default false: each time it is met)"
    )

    @model_validator(mode="after")
    def _one_group(self) -> Window:
        groups = [
            name
            for name, present in (
                ("deadline", self.deadline is not None),
                ("from/to", self.from_ is not None or self.to is not None),
                ("every/offset", self.every is not None or self.offset is not None),
                ("lookback", self.lookback is not None),
            )
            if present
        ]
        if len(groups) > 1:
            raise ValueError(f"a window sets one of its groups, not {' and '.join(groups)}")
        if (self.from_ is None) != (self.to is None):
            raise ValueError("a daily window needs both `from` and `to`")
        return self


class OnMiss(FlowModel):
    """Kestra 2.0: what happens when a window's deadline passes with ``dependsOn`` unmet."""

    behavior: Literal["FAIL", "NONE"] | None = None
    labels: Labels | None = None


class FlowTrigger(_TriggerBase):
    """Start an execution when another execution ends and the conditions hold."""

    type: Literal["io.kestra.plugin.core.trigger.Flow"]
    inputs: dict[str, Any] | None = None
    states: list[State] | None = None
    preconditions: dict[str, Any] | None = Field(
        default=None, description="Kestra 1.x; Kestra 2.0 uses `dependsOn` and `window`"
    )
    dependsOn: list[Dependency] | None = Field(
        default=None, description="Kestra 2.0: the upstream flows this trigger waits for"
    )
    window: Window | None = None
    mode: Literal["ALL", "ANY", "AT_LEAST"] | None = None
    minSatisfied: IntOrExpr | None = None
    onMiss: OnMiss | None = None

    @model_validator(mode="after")
    def _mode(self) -> FlowTrigger:
        count = len(self.dependsOn or [])
        if self.mode == "AT_LEAST" and self.minSatisfied is None:
            raise ValueError("mode AT_LEAST needs `minSatisfied`")
        if isinstance(self.minSatisfied, int) and not 1 <= self.minSatisfied <= max(count, 1):
            raise ValueError(f"minSatisfied must be between 1 and {count} (the dependsOn entries)")
        return self


class WebhookTrigger(_TriggerBase):
    """Start an execution on an HTTP call to ``/webhook/<namespace>/<flow>/<key>``."""

    type: Literal["io.kestra.plugin.core.trigger.Webhook"]
    key: Str
    wait: BoolOrExpr | None = Field(
        default=None, description="answer once the execution ended (200, or 500 if it FAILED)"
    )
    returnOutputs: BoolOrExpr | None = Field(
        default=None, description="with wait: answer with the flow's outputs, not the execution"
    )
    responseContentType: Str | None = Field(
        default=None,
        description="with wait and returnOutputs: application/json (default) or text/plain",
    )
    responseCode: IntOrExpr | None = Field(
        default=None, description="with wait: this HTTP status instead of 200/500"
    )
    inputs: dict[str, Any] | None = None


class _MessageTriggerBase(_TriggerBase):
    serdeType: Str | None = None
    maxRecords: IntOrExpr | None = None
    maxDuration: Duration | None = None
    interval: Duration | None = None


class KafkaTrigger(_MessageTriggerBase):
    """Start one execution per record of a Kafka topic."""

    type: Literal["io.kestra.plugin.kafka.RealtimeTrigger"]
    topic: Str | list[Str] | None = None
    topicPattern: Str | None = None
    properties: dict[str, Any]
    groupId: Str | None = None
    groupType: Str | None = None
    keyDeserializer: Str | None = None
    valueDeserializer: Str | None = None
    serdeProperties: dict[str, Any] | None = None
    partitions: list[IntOrExpr] | None = None
    since: Str | None = None
    pollDuration: Duration | None = None
    onSerdeError: dict[str, Any] | None = None


class MqttTrigger(_MessageTriggerBase):
    """Start one execution per MQTT message."""

    type: Literal["io.kestra.plugin.mqtt.RealtimeTrigger"]
    server: Str
    topic: Str | list[Str]
    qos: IntOrExpr | None = None
    clientId: Str | None = None
    username: Str | None = None
    password: Str | None = None
    version: Literal["V3", "V5"] | None = None
    mqttVersion: Literal["V3", "V5"] | None = None  # Kestra's current name of `version`
    connectionTimeout: Duration | None = None
    crt: Str | None = None
    authMethod: Str | None = None
    httpsHostnameVerificationEnabled: BoolOrExpr | None = None


class AmqpTrigger(_MessageTriggerBase):
    """Start one execution per AMQP (RabbitMQ) message of a queue."""

    type: Literal["io.kestra.plugin.amqp.RealtimeTrigger"]
    queue: Str
    url: Str | None = None
    host: Str | None = None
    port: IntOrExpr | None = None
    username: Str | None = None
    password: Str | None = None
    virtualHost: Str | None = None
    consumerTag: Str | None = None
    autoAccept: BoolOrExpr | None = None


class RedisListTrigger(_TriggerBase):
    """Start one execution per element pushed onto a Redis list."""

    type: Literal["io.kestra.plugin.redis.list.RealtimeTrigger"]
    url: Str
    key: Str
    serdeType: Literal["STRING", "JSON"] | None = None


class FileTrigger(_TriggerBase):
    """Start one execution per file appearing in a local directory."""

    type: Literal["io.kestra.plugin.fs.local.Trigger"]
    from_: Str = Field(alias="from")
    recursive: BoolOrExpr | None = None
    regExp: Str | None = None
    interval: Duration | None = None
    action: Literal["MOVE", "DELETE", "NONE"] | None = None
    moveDirectory: Str | None = None
    maxFiles: IntOrExpr | None = None


BUILTIN_TRIGGER_MODELS: tuple[type[TriggerBase], ...] = (
    ScheduleTrigger,
    ScheduleOnDatesTrigger,
    FlowTrigger,
    WebhookTrigger,
    KafkaTrigger,
    MqttTrigger,
    AmqpTrigger,
    RedisListTrigger,
    FileTrigger,
)

# The built-in triggers and the plugins' (executors.polling.PollingTrigger subclasses).
TRIGGER_MODELS: dict[str, type[Any]] = {
    m.model_fields["type"].annotation.__args__[0]: m  # type: ignore[union-attr]
    for m in (*BUILTIN_TRIGGER_MODELS, *trigger_classes())
}

if TYPE_CHECKING:
    Trigger = TriggerBase
else:
    Trigger = Annotated[
        Union[tuple(TRIGGER_MODELS.values())],  # noqa: UP007 - a runtime-built union
        Field(discriminator="type"),
    ]
