"""The ``*Execution`` types of the incident tools: Sentry, PagerDuty, Opsgenie, Zenduty,
Squadcast and Zulip. Each posts the execution summary through its ``*Alert``/``*IncomingWebhook``
type of :mod:`executors.plugins.notifications` (same URL, options, error handling).

Kestra builds each body in two steps: its ``<service>-template.peb`` rendered with the
execution map only (so the template's ``{% if alias is defined %}``-style blocks never apply),
then the task's own properties put into the JSON map. Ours is that, as data:

- ``SentryExecution``: ``exception.values[0]`` (type ``flow ➛ STATE``, value "Failed on task
  `t` after D", module namespace, empty stacktrace) and ``extra`` (namespace, flow, execution,
  status, final task id, link); then ``event_id`` (``eventId``: a random 32-hex id), ``timestamp``
  (now), ``platform`` (``java``), ``level`` (``error``), ``transaction``, ``server_name``,
  ``extra`` merged with the ``extra`` property, ``errors``. Sent as SentryAlert sends a payload
  (the envelope carries the same event id).
- ``PagerDutyExecution``: ``event_action`` (``trigger``), ``payload`` (source
  ``namespace id``, severity ``info``/``error``, custom details flow/status/final task) and
  ``links`` (title and outcome); then ``routing_key``, ``dedup_key``, ``event_action``,
  ``payload.summary`` (``payloadSummary``) and ``payload.timestamp`` (now, local ISO time).
- ``OpsgenieExecution``: ``description`` (title with the final task and outcome); then
  ``message``, ``alias``, ``responders`` and ``visibleTo`` (``{id: type}`` maps become
  ``[{id, type}]``), ``tags``, ``priority``; ``authorizationToken`` as in OpsgenieAlert.
- ``ZendutyExecution``: ``message`` ("Kestra workflow execution"), ``alert_type``
  (``resolved``/``error``), ``entity_id`` (the execution id), ``urls`` (the execution link),
  ``payload`` (namespace, flow, execution, status, final task, duration), ``summary``; then
  ``message``, ``summary``, ``alertType`` (lower case), ``entityId``, ``urls``.
- ``SquadcastExecution``: ``description`` (title with ``&rarr;``, final task, status, duration);
  then ``message`` (required), ``priority``, ``event_id``, ``status``, ``tags``.
- ``ZulipExecution``: the Slack summary (Kestra's Zulip template is Slack's), then ``channel``,
  ``username``, ``icon_url``, ``icon_emoji``.

Where Kestra's templates print a missing link or task id, ours prints an empty string. The
summary itself and its limits are :func:`executors.plugins.notifications.execution_summary`'s.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from executors.base import TaskContext, TaskError, to_text
from executors.plugin import TaskPlugin, render_list, render_map, render_str
from executors.plugins.notifications import (
    OpsgenieAlert,
    PagerDutyAlert,
    SentryAlert,
    SquadcastIncomingWebhook,
    ZendutyAlert,
    ZulipIncomingWebhook,
    _dumps,
    _Execution,
    _outcome,
    _t,
    slack_execution_payload,
)
from schemas.flow.common import Str

_OLD = "io.kestra.plugin.notifications"


def _failed(s: Mapping[str, Any]) -> bool:
    return s["firstFailed"] is not False or bool(s["failed"])


def _link_title(s: Mapping[str, Any], arrow: str = "➛") -> str:
    e = s["execution"]
    title = f"[{_t(e['namespace'])}] {_t(e['flowId'])} {arrow} {e['state']['current']}"
    return f"*<{s['link']}|{title}>*" if "link" in s else f"*{title}*"


def _put(ctx: TaskContext, body: dict[str, Any], pairs: list[tuple[str, Any]]) -> None:
    """Kestra's ``if (property present) map.put(key, rendered)`` for string properties."""
    for key, prop in pairs:
        value = ctx.render_str(prop)
        if value is not None:
            body[key] = value


_SENTRY_PLATFORMS = (
    "AS3 C CFML COCOA CSHARP ELIXIR HASKELL GO GROOVY JAVA JAVASCRIPT NATIVE NODE OBJC OTHER PERL "
    "PHP PYTHON RUBY"
).split()
_SENTRY_LEVELS = ("FATAL", "ERROR", "WARNING", "INFO", "DEBUG")


def _enum(ctx: TaskContext, value: Any, name: str, allowed: tuple[str, ...] | list[str]) -> str:
    text = (render_str(ctx, value, name) or "").upper()
    if text not in allowed:
        raise TaskError(f"property '{name}': expected one of {', '.join(allowed)}, got {text!r}")
    return text


class SentryExecution(_Execution, SentryAlert):
    """Send a Sentry event with the execution's summary."""

    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.sentry.SentryExecution",)
    type: Literal["io.kestra.plugin.sentry.SentryExecution"]  # type: ignore[assignment]
    eventId: Str | None = None
    platform: Str = "JAVA"
    level: Str | None = "ERROR"
    transaction: Str | None = None
    serverName: Str | None = None
    extra: dict[str, Any] | Str | None = None
    errors: dict[str, Any] | Str | None = None

    def _event(self, ctx: TaskContext) -> tuple[str, str]:
        s = self._summary(ctx)
        e = s["execution"]
        failed = s["firstFailed"]
        task = _t(failed["taskId"]) if failed is not False else ""
        body: dict[str, Any] = {
            "exception": {
                "values": [
                    {
                        "type": f"{_t(e['flowId'])} ➛ {e['state']['current']}",
                        "value": f"Failed on task `{task}` after {s['duration']}",
                        "module": _t(e["namespace"]),
                        "stacktrace": {},
                    }
                ]
            },
            "extra": {
                "Namespace": _t(e["namespace"]),
                "Flow ID": _t(e["flowId"]),
                "Execution ID": e["id"],
                "Execution Status": e["state"]["current"],
                "Final task ID": _t(s["lastTask"]["taskId"]),
                "Link": _t(s.get("link")),
            },
        }
        event_id = ctx.render_str(self.eventId) or uuid.uuid4().hex
        body["event_id"] = event_id
        body["timestamp"] = ctx.clock().isoformat().replace("+00:00", "Z")
        body["platform"] = _enum(ctx, self.platform, "platform", _SENTRY_PLATFORMS).lower()
        if self.level is not None:
            body["level"] = _enum(ctx, self.level, "level", _SENTRY_LEVELS).lower()
        _put(ctx, body, [("transaction", self.transaction), ("server_name", self.serverName)])
        extra = render_map(ctx, self.extra, "extra")
        if extra:
            body["extra"].update(extra)
        errors = render_map(ctx, self.errors, "errors")
        if errors:
            body["errors"] = errors
        return _dumps(body), event_id


class PagerDutyExecution(_Execution, PagerDutyAlert):
    """Send a PagerDuty event (Events API v2) with the execution's summary."""

    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.pagerduty.PagerDutyExecution",)
    type: Literal["io.kestra.plugin.pagerduty.PagerDutyExecution"]  # type: ignore[assignment]
    routingKey: Str | None = None
    deduplicationKey: Str | None = None
    eventAction: Str | None = None
    payloadSummary: Str | None = None

    def _payload(self, ctx: TaskContext) -> str:
        s = self._summary(ctx)
        e = s["execution"]
        payload: dict[str, Any] = {
            "source": f"{_t(e['namespace'])} {e['id']}",
            "severity": "error" if _failed(s) else "info",
            "custom_details": [
                {"title": "Flow ID", "value": e["flowId"]},
                {"title": "Execution Status", "value": e["state"]["current"]},
                {"title": "Final task ID", "value": s["lastTask"]["taskId"]},
            ],
        }
        body: dict[str, Any] = {
            "event_action": "trigger",
            "payload": payload,
            "links": [{"href": f"{_link_title(s)}\n>", "text": _outcome(s)}],
        }
        _put(
            ctx,
            body,
            [
                ("routing_key", self.routingKey),
                ("dedup_key", self.deduplicationKey),
                ("event_action", self.eventAction),
            ],
        )
        if self.payloadSummary is not None:
            payload["summary"] = ctx.render_str(self.payloadSummary)
        payload["timestamp"] = ctx.clock().replace(tzinfo=None).isoformat()
        return _dumps(body)


def _id_types(ctx: TaskContext, value: Any, name: str) -> list[dict[str, str]]:
    return [{"id": str(k), "type": to_text(v)} for k, v in render_map(ctx, value, name).items()]


class OpsgenieExecution(_Execution, OpsgenieAlert):
    """Create an Opsgenie alert with the execution's summary."""

    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.opsgenie.OpsgenieExecution",)
    type: Literal["io.kestra.plugin.opsgenie.OpsgenieExecution"]  # type: ignore[assignment]
    message: Str | None = None
    alias: Str | None = None
    responders: dict[str, Any] | Str | None = None
    visibleTo: dict[str, Any] | Str | None = None
    tags: list[Str] | Str | None = None
    priority: Str | None = None

    def _payload(self, ctx: TaskContext) -> str:
        s = self._summary(ctx)
        e = s["execution"]
        title = f"[{_t(e['namespace'])}] {_t(e['flowId'])} ➛ {e['state']['current']}"
        body: dict[str, Any] = {
            "description": f"*<{_t(s.get('link'))}|{title} - Final task ID "
            f"{_t(s['lastTask']['taskId'])}>*\n> {_outcome(s)}"
        }
        _put(ctx, body, [("message", self.message), ("alias", self.alias)])
        for key, prop in (("responders", self.responders), ("visibleTo", self.visibleTo)):
            pairs = _id_types(ctx, prop, key)
            if pairs:
                body[key] = pairs
        tags = render_list(ctx, self.tags, "tags")
        if tags:
            body["tags"] = tags
        _put(ctx, body, [("priority", self.priority)])
        return _dumps(body)


_ZENDUTY_TYPES = ("CRITICAL", "ACKNOWLEDGED", "RESOLVED", "ERROR", "WARNING", "INFO")


class ZendutyExecution(_Execution, ZendutyAlert):
    """Send a Zenduty alert with the execution's summary."""

    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.zenduty.ZendutyExecution",)
    type: Literal["io.kestra.plugin.zenduty.ZendutyExecution"]  # type: ignore[assignment]
    message: Str | None = None
    # ``summary`` would hide TaskPlugin.summary(): the field keeps Kestra's name as its alias.
    summary_: Str | None = Field(default=None, alias="summary")
    alertType: Str | None = None
    entityId: Str | None = None
    urls: list[Str] | Str | None = None

    def _payload(self, ctx: TaskContext) -> str:
        s = self._summary(ctx)
        e = s["execution"]
        state = e["state"]["current"]
        body: dict[str, Any] = {
            "message": "Kestra workflow execution",
            "alert_type": "error" if _failed(s) else "resolved",
            "entity_id": e["id"],
            "urls": [{"link_url": _t(s.get("link")), "link_text": "Execution link"}],
            "payload": {
                "Namespace": _t(e["namespace"]),
                "Flow ID": _t(e["flowId"]),
                "Execution ID": e["id"],
                "Execution Status": state,
                "Final task ID": _t(s["lastTask"]["taskId"]),
                "Duration": s["duration"],
            },
            "summary": f"Kestra workflow execution {e['id']} of a flow {_t(e['flowId'])} in the "
            f"namespace {_t(e['namespace'])} changed status to {state}",
        }
        _put(ctx, body, [("message", self.message), ("summary", self.summary_)])
        if self.alertType is not None:
            body["alert_type"] = _enum(ctx, self.alertType, "alertType", _ZENDUTY_TYPES).lower()
        _put(ctx, body, [("entity_id", self.entityId)])
        urls = render_list(ctx, self.urls, "urls")
        if urls:
            body["urls"] = urls
        return _dumps(body)


class SquadcastExecution(_Execution, SquadcastIncomingWebhook):
    """Send a Squadcast incident with the execution's summary."""

    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.squadcast.SquadcastExecution",)
    type: Literal["io.kestra.plugin.squadcast.SquadcastExecution"]  # type: ignore[assignment]
    message: Str
    priority: Str | None = None
    eventId: Str | None = None
    status: Str | None = None
    tags: dict[str, Any] | Str | None = None

    def _payload(self, ctx: TaskContext) -> str:
        s = self._summary(ctx)
        failed = s["firstFailed"]
        if failed is not False:
            status = f"Failed on task `{_t(failed['taskId'])}`"
        else:
            status = "Failed" if s["failed"] else "Succeeded"
        body: dict[str, Any] = {
            "description": f"{_link_title(s, '&rarr;')}\nFinal task ID: "
            f"{_t(s['lastTask']['taskId'])}\nStatus: {status}\nDuration: {s['duration']}"
        }
        _put(
            ctx,
            body,
            [
                ("message", self.message),
                ("priority", self.priority),
                ("event_id", self.eventId),
                ("status", self.status),
            ],
        )
        tags = {str(k): to_text(v) for k, v in render_map(ctx, self.tags, "tags").items()}
        if tags:
            body["tags"] = tags
        return _dumps(body)


class ZulipExecution(_Execution, ZulipIncomingWebhook):
    """Send a Zulip message with the execution's summary."""

    aliases: ClassVar[tuple[str, ...]] = (f"{_OLD}.zulip.ZulipExecution",)
    type: Literal["io.kestra.plugin.zulip.ZulipExecution"]  # type: ignore[assignment]
    channel: Str | None = None
    username: Str | None = None
    iconUrl: Str | None = None
    iconEmoji: Str | None = None

    def _payload(self, ctx: TaskContext) -> str:
        body = slack_execution_payload(self._summary(ctx))
        _put(
            ctx,
            body,
            [
                ("channel", self.channel),
                ("username", self.username),
                ("icon_url", self.iconUrl),
                ("icon_emoji", self.iconEmoji),
            ],
        )
        return _dumps(body)


PLUGINS: list[type[TaskPlugin]] = [
    SentryExecution,
    PagerDutyExecution,
    OpsgenieExecution,
    ZendutyExecution,
    SquadcastExecution,
    ZulipExecution,
]
