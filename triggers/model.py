"""The shapes every trigger source shares: a trigger's identity, its context, the source loop.

A source is built from a :class:`SourceContext` (what it needs from the runtime) and runs
``await source.run()`` until cancelled. For each input it calls ``await ctx.fire(...)``, which
waits for a free in-flight slot (back-pressure: the source pauses while ``max_in_flight``
commands are unacknowledged) and returns a future that resolves once the StartExecution is
durably in Kafka; only then does the source acknowledge its input. An input it cannot decode
goes to ``ctx.malformed(...)``, which either fires with the raw payload or records a trigger
error, as configured; a source never crashes on a payload.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from engine.errors import ConfigError
from schemas.flow.triggers import TRIGGER_MODELS

JSON = dict[str, Any]

SCHEDULE = "io.kestra.plugin.core.trigger.Schedule"
SCHEDULE_ON_DATES = "io.kestra.plugin.core.trigger.ScheduleOnDates"
FLOW = "io.kestra.plugin.core.trigger.Flow"
WEBHOOK = "io.kestra.plugin.core.trigger.Webhook"
KAFKA = "io.kestra.plugin.kafka.RealtimeTrigger"
MQTT = "io.kestra.plugin.mqtt.RealtimeTrigger"
AMQP = "io.kestra.plugin.amqp.RealtimeTrigger"
REDIS_LIST = "io.kestra.plugin.redis.list.RealtimeTrigger"
FILE = "io.kestra.plugin.fs.local.Trigger"


@dataclass(frozen=True, slots=True)
class TriggerRef:
    """Which trigger of which flow."""

    namespace: str
    flow_id: str
    trigger_id: str

    @property
    def key(self) -> str:
        """The hw.trigger-state key (never change the format)."""
        return f"{self.namespace}/{self.flow_id}/{self.trigger_id}"

    def __str__(self) -> str:
        return self.key


def trigger_config(trigger: JSON) -> BaseModel:
    """The validated config of a normalized trigger dict; ConfigError naming the problem."""
    model = TRIGGER_MODELS.get(str(trigger.get("type")))
    if model is None:
        raise ConfigError(f"unknown trigger type {trigger.get('type')!r}")
    try:
        config: BaseModel = model.model_validate(trigger)
    except ValidationError as exc:
        raise ConfigError(f"trigger {trigger.get('id')!r} is invalid: {exc}") from None
    return config


class SourceContext(Protocol):
    """What a source gets from the runtime."""

    ref: TriggerRef
    trigger: JSON
    config: Any  # the pydantic model of the trigger's type
    poll_timeout_s: float
    max_in_flight: int

    async def fire(
        self,
        coordinates: str,
        variables: JSON,
        *,
        labels: JSON | None = None,
        inputs: JSON | None = None,
        render_scope: JSON | None = None,
        scheduled: str | None = None,
    ) -> asyncio.Future[Any]:
        """Emit one StartExecution; the future resolves when it is durably in Kafka.
        ``render_scope``: the variables the trigger's ``inputs`` render with (default: the
        trigger variables, the flow and its labels); ``scheduled``: the execution's
        scheduleDate.

        Raises triggers.payloads.MalformedPayload when the command cannot be encoded (the
        source then calls ``malformed``, as for a payload it cannot decode)."""
        ...

    async def malformed(
        self, coordinates: str, raw: JSON, problem: str
    ) -> asyncio.Future[Any] | None:
        """A payload that could not be decoded: fires with ``raw`` as the trigger variables
        (policy "raw") or records ``problem`` as the trigger's last error and returns None."""
        ...

    async def record(self, **fields: Any) -> None:
        """Update this trigger's state (last_fired, next_date, last_error, extra)."""
        ...

    def state(self) -> JSON:
        """This trigger's current state (see triggers.state.TriggerState.to_payload)."""
        ...


class Source(Protocol):
    """The I/O loop of one trigger (or, for Flow triggers, of all of them)."""

    async def run(self) -> None: ...


SourceFactory = Callable[[SourceContext], Source]
Ack = Callable[[], Awaitable[None]]


async def settle(futures: list[asyncio.Future[Any]]) -> None:
    """Wait for every durability future; the first failure is raised after all settled, so
    the caller never acknowledges a batch with a command missing."""
    first: BaseException | None = None
    for future in futures:
        try:
            await future
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            first = first or exc
    if first is not None:
        raise first
