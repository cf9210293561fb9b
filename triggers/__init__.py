"""Trigger sources: what happens outside becomes a StartExecution on hw.commands.

Every source has the same shape (STYLE.md):

- a **config**: the trigger's properties, validated with the flow models of
  :mod:`schemas.flow.triggers`;
- a pure **parser**: the source's payload -> the ``trigger.*`` variables and the source
  coordinates the execution id is derived from (:mod:`triggers.ids`);
- a **source**: the I/O loop, which hands each parsed event to its
  :class:`~triggers.model.SourceContext` and acknowledges its input (Kafka offset commit, MQTT
  PUBACK, AMQP basic_ack, Redis pending-hash removal, file move/delete) only once the command
  is durably in Kafka.

:class:`triggers.runtime.TriggerRuntime` wires the sources to the bus: it follows the deployed
flows, starts and stops sources as flows and trigger toggles change, and keeps the trigger
state (:mod:`triggers.state`) on hw.trigger-state. Because execution ids are derived from the
source coordinates, a redelivered input produces the same StartExecution, which the reducer
ignores: none lost, none run twice.

Modules: ``ids``, ``model``, ``start`` (building the command), ``state``, ``cron``,
``schedule``, ``conditions``, ``flow_trigger``, ``webhook``, ``kafka``, ``mqtt``, ``amqp``,
``redis``, ``files``, ``runtime``.
"""
