"""The incident tools' ``*Execution`` types and the messaging services (Telegram, LINE,
Messenger, WhatsApp, Twilio, X) against a real HTTP receiver on 127.0.0.1: the exact request
each service gets, and a 4xx/5xx answer failing the task with that answer, secrets kept out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import pytest

from engine.flows import load_flow
from executors.base import TaskContext, TaskError
from executors.plugins import notifications_alerts, notifications_chat
from executors.plugins.notifications_chat import oauth1_header
from tests.unit.api_receiver import Webhooks as Receiver
from tests.unit.api_receiver import webhooks

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
BY_TYPE = {c.type_name(): c for c in notifications_alerts.PLUGINS + notifications_chat.PLUGINS}
VARS: dict[str, Any] = {
    "flow": {"id": "etl", "namespace": "company.team"},
    "execution": {"id": "exec1", "startDate": "2025-01-02T03:03:00.500Z", "state": "RUNNING"},
    "kestra": {"url": "https://kestra.example/"},
}
LINK = "https://kestra.example/ui/executions/company.team/etl/exec1"
TITLE = f"*<{LINK}|[company.team] etl ➛ RUNNING>*\n> Succeeded after 0:01:04.500"
SECRET = "T0K-SECRET"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhooks(ok=b'{"ok":true}') as hooks:
        yield hooks


async def _run(task: dict[str, Any]) -> TaskContext:
    ctx = TaskContext.for_job(
        execution_id="exec1",
        task_run_id="tr1",
        attempt=0,
        task=task,
        variables=VARS,
        clock=lambda: NOW,
        secrets=frozenset({SECRET}),
    )
    assert await BY_TYPE[task["type"]].model_validate(task).run(ctx) == {}
    return ctx


FACTS = {
    "Namespace": "company.team",
    "Flow ID": "etl",
    "Execution ID": "exec1",
    "Execution Status": "RUNNING",
    "Final task ID": "n",
}


async def test_incident_execution_summaries(receiver: Receiver) -> None:
    base = {"id": "n", "url": receiver.url}
    await _run(
        {
            **base,
            "type": "io.kestra.plugin.pagerduty.PagerDutyExecution",
            "routingKey": "rk",
            "payloadSummary": "{{ flow.id }} done",
        }
    )
    assert receiver.json() == {
        "event_action": "trigger",
        "routing_key": "rk",
        "payload": {
            "source": "company.team exec1",
            "severity": "info",
            "custom_details": [
                {"title": "Flow ID", "value": "etl"},
                {"title": "Execution Status", "value": "RUNNING"},
                {"title": "Final task ID", "value": "n"},
            ],
            "summary": "etl done",
            "timestamp": "2025-01-02T03:04:05",
        },
        "links": [
            {
                "href": f"*<{LINK}|[company.team] etl ➛ RUNNING>*\n>",
                "text": "Succeeded after 0:01:04.500",
            }
        ],
    }
    await _run(
        {
            **base,
            "type": "io.kestra.plugin.opsgenie.OpsgenieExecution",
            "authorizationToken": "GenieKey k",
            "message": "m",
            "responders": {"team-1": "team"},
            "tags": ["a", "{{ flow.id }}"],
            "priority": "P1",
        }
    )
    assert receiver.last["headers"]["Authorization"] == "GenieKey k"
    assert receiver.json() == {
        "description": f"*<{LINK}|[company.team] etl ➛ RUNNING - Final task ID n>*\n"
        "> Succeeded after 0:01:04.500",
        "message": "m",
        "responders": [{"id": "team-1", "type": "team"}],
        "tags": ["a", "etl"],
        "priority": "P1",
    }
    await _run(
        {**base, "type": "io.kestra.plugin.zenduty.ZendutyExecution", "alertType": "critical"}
    )
    assert receiver.json() == {
        "message": "Kestra workflow execution",
        "alert_type": "critical",
        "entity_id": "exec1",
        "urls": [{"link_url": LINK, "link_text": "Execution link"}],
        "payload": {**FACTS, "Duration": "0:01:04.500"},
        "summary": "Kestra workflow execution exec1 of a flow etl in the namespace company.team "
        "changed status to RUNNING",
    }
    await _run(
        {
            **base,
            "type": "io.kestra.plugin.squadcast.SquadcastExecution",
            "message": "Flow {{ flow.id }}",
            "tags": {"env": "prod"},
        }
    )
    assert receiver.json() == {
        "description": f"*<{LINK}|[company.team] etl &rarr; RUNNING>*\nFinal task ID: n\n"
        "Status: Succeeded\nDuration: 0:01:04.500",
        "message": "Flow etl",
        "tags": {"env": "prod"},
    }
    await _run({**base, "type": "io.kestra.plugin.zulip.ZulipExecution", "channel": "ops"})
    zulip = receiver.json()
    assert zulip["text"] == TITLE
    assert zulip["channel"] == "ops"
    assert zulip["attachments"][0]["ts"] == 1735786980


async def test_sentry_execution_event(receiver: Receiver) -> None:
    await _run(
        {
            "id": "n",
            "type": "io.kestra.plugin.sentry.SentryExecution",
            "dsn": receiver.url + "/api/1/store/",
            "endpointType": "STORE",
            "eventId": "a" * 32,
            "level": "warning",
            "extra": {"team": "data"},
        }
    )
    assert receiver.json() == {
        "exception": {
            "values": [
                {
                    "type": "etl ➛ RUNNING",
                    "value": "Failed on task `` after 0:01:04.500",
                    "module": "company.team",
                    "stacktrace": {},
                }
            ]
        },
        "extra": {**FACTS, "Link": LINK, "team": "data"},
        "event_id": "a" * 32,
        "timestamp": "2025-01-02T03:04:05Z",
        "platform": "java",
        "level": "warning",
    }
    await _run(
        {
            "id": "n",
            "type": "io.kestra.plugin.sentry.SentryExecution",
            "dsn": receiver.url + "/api/1/envelope/",
            "eventId": "b" * 32,
        }
    )
    header, _item, payload, _ = receiver.last["body"].split("\n")
    assert json.loads(header)["event_id"] == "b" * 32
    assert json.loads(payload)["event_id"] == "b" * 32


async def test_telegram_send_and_execution(receiver: Receiver) -> None:
    task = {
        "id": "n",
        "type": "io.kestra.plugin.telegram.TelegramSend",
        "endpointOverride": receiver.url,
        "token": SECRET,
        "channel": "2072728690",
        "payload": "Flow <b>{{ flow.id }}</b>",
        "parseMode": "HTML",
    }
    await _run(task)
    assert receiver.last["path"] == f"/bot{SECRET}/sendMessage"
    assert receiver.json() == {
        "chat_id": "2072728690",
        "text": "Flow <b>etl</b>",
        "parse_mode": "HTML",
    }
    await _run({**task, "type": "io.kestra.plugin.telegram.TelegramExecution", "payload": None})
    assert receiver.json() == {
        "chat_id": "2072728690",
        "text": '"<company.team etl exec1 ➛ RUNNING - Final task ID ➛ n> Succeeded after '
        f'0:01:04.500 ({LINK})"',
        "parse_mode": "HTML",
    }
    with pytest.raises(TaskError) as info:
        await _run({**task, "endpointOverride": receiver.url + "/status/401"})
    assert str(info.value) == 'Unable to send Telegram message: 401 {"error":"invalid_token"}'


async def test_line_and_messenger_texts(receiver: Receiver) -> None:
    await _run(
        {
            "id": "n",
            "type": "io.kestra.plugin.line.LineExecution",
            "url": receiver.url + "/v2/bot/message/broadcast",
            "channelAccessToken": "line-token",
            "customMessage": "Nightly",
            "customFields": {"env": "prod"},
        }
    )
    assert receiver.last["headers"]["Authorization"] == "Bearer line-token"
    text = (
        "Execution RUNNING\n\nDetails:\n- ID: exec1\n- Namespace: company.team\n- Flow: etl\n"
        "- Started: 2025-01-02T03:03:00.500Z\n- Duration: 0:01:04.500\n\nNightly\n\n"
        f"- env: prod\n\nView Execution: {LINK}"
    )
    assert receiver.json() == {"messages": [{"type": "text", "text": text}]}
    await _run(
        {
            "id": "n",
            "type": "io.kestra.plugin.line.LineExecution",
            "url": receiver.url,
            "channelAccessToken": "t",
            "textBody": "hello {{ flow.id }}",
        }
    )
    assert receiver.json() == {"messages": [{"type": "text", "text": "hello etl"}]}
    await _run(
        {
            "id": "n",
            "type": "io.kestra.plugin.meta.messenger.MessengerExecution",
            "url": receiver.url + "/page/messages",
            "pageId": "123",
            "accessToken": "fb",
            "recipientIds": ["u1", "u2"],
        }
    )
    first, second = receiver.json(-2), receiver.json(-1)
    assert first["recipient"] == {"id": "u1"}
    assert second["recipient"] == {"id": "u2"}
    assert first["messaging_type"] == "UPDATE"
    assert first["message"]["text"].startswith("Execution RUNNING\n\nDetails:\n- ID: exec1\n")
    assert receiver.last["headers"]["Authorization"] == "Bearer fb"


async def test_whatsapp_webhook_and_execution(receiver: Receiver) -> None:
    await _run(
        {
            "id": "n",
            "type": "io.kestra.plugin.meta.whatsapp.WhatsAppIncomingWebhook",
            "url": receiver.url,
            "payload": '{"messages": [{"text": {"body": "{{ flow.id }}"}}]}',
        }
    )
    assert receiver.last["body"] == '{"messages": [{"text": {"body": "etl"}}]}'
    task = {"id": "n", "type": "io.kestra.plugin.meta.whatsapp.WhatsAppExecution"}
    await _run({**task, "url": receiver.url})
    lines = [f"{k} {v}" for k, v in FACTS.items()] + [TITLE]
    summary = {"text": {"body": lines}, "type": "text"}
    assert receiver.json() == {"contacts": [], "messages": [summary]}
    await _run(
        {
            **task,
            "url": receiver.url,
            "profileName": "Ops",
            "whatsAppIds": ["111", "222"],
            "from": "333",
            "messageId": "m1",
            "recipientId": "r1",
        }
    )
    assert receiver.json() == {
        "contacts": [
            {"profile": {"name": "Ops"}, "wa_id": "111"},
            {"profile": {"name": "Ops"}, "wa_id": "222"},
        ],
        "messages": [{"from": "333", "id": "m1", **summary}],
        "recipient_id": "r1",
    }


async def test_twilio_alert_and_execution_are_form_encoded_with_basic_auth(
    receiver: Receiver,
) -> None:
    task = {
        "id": "n",
        "type": "io.kestra.plugin.twilio.notify.TwilioAlert",
        "url": receiver.url + "/v1/Services/IS1/Notifications",
        "accountSID": "AC1",
        "authToken": SECRET,
        "payload": '{"Body": "Flow {{ flow.id }} & co", "Identity": "u1"}',
    }
    await _run(task)
    request = receiver.last
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    basic = base64.b64encode(f"AC1:{SECRET}".encode()).decode()
    assert request["headers"]["Authorization"] == f"Basic {basic}"
    assert parse_qsl(request["body"]) == [("Body", "Flow etl & co"), ("Identity", "u1")]
    execution = {**task, "type": "io.kestra.plugin.twilio.notify.TwilioExecution"}
    del execution["payload"]
    await _run({**execution, "tag": "ops"})
    body = ", ".join(f"{k} {v}" for k, v in FACTS.items()) + ". " + TITLE
    assert parse_qsl(receiver.last["body"]) == [("body", body), ("Tag", "ops")]


async def test_x_execution_with_bearer_and_oauth1(receiver: Receiver) -> None:
    task = {
        "id": "n",
        "type": "io.kestra.plugin.x.XExecution",
        "url": receiver.url + "/2/tweets",
        "customMessage": "Nightly",
    }
    await _run({**task, "bearerToken": "bt"})
    assert receiver.last["headers"]["Authorization"] == "Bearer bt"
    assert receiver.json() == {"text": f"RUNNING: company.team/etl\nNightly\n🔗 {LINK}"}
    oauth = {"consumerKey": "ck", "consumerSecret": "cs", "accessToken": "at", "accessSecret": "as"}
    await _run({**task, **oauth})
    header = receiver.last["headers"]["Authorization"]
    nonce = re.search(r'oauth_nonce="([0-9a-f]{32})"', header)
    assert nonce is not None
    expected = oauth1_header(task["url"], ("ck", "cs"), ("at", "as"), nonce.group(1), 1735787045)
    assert header == expected
    assert 'oauth_timestamp="1735787045"' in header
    # The signature is HMAC-SHA1 of the base string under "cs&as", as OAuth 1.0a defines it.
    base = (
        "POST&https%3A%2F%2Fapi.x.com%2F2%2Ftweets&oauth_consumer_key%3Dk%26oauth_nonce%3Dn%26"
        "oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1%26oauth_token%3Dt%26"
        "oauth_version%3D1.0"
    )
    digest = hmac.new(b"s&u", base.encode(), hashlib.sha1).digest()
    signature = base64.b64encode(digest).decode().replace("+", "%2B").replace("/", "%2F")
    assert oauth1_header("https://api.x.com/2/tweets", ("k", "s"), ("t", "u"), "n", 1) == (
        'OAuth oauth_consumer_key="k", oauth_nonce="n", oauth_signature='
        f'"{signature.replace("=", "%3D")}", oauth_signature_method="HMAC-SHA1", '
        'oauth_timestamp="1", oauth_token="t", oauth_version="1.0"'
    )
    with pytest.raises(TaskError) as info:
        await _run({**task, "bearerToken": "bt", "customMessage": "x" * 300})
    assert str(info.value).startswith("Tweet message exceeds maximum length of 280 characters.")


@pytest.mark.parametrize(
    ("type_name", "extra"),
    [
        ("io.kestra.plugin.line.LineExecution", {"channelAccessToken": SECRET}),
        ("io.kestra.plugin.zenduty.ZendutyExecution", {}),
        ("io.kestra.plugin.meta.whatsapp.WhatsAppExecution", {}),
        ("io.kestra.plugin.x.XExecution", {"bearerToken": SECRET}),
    ],
)
async def test_an_error_status_fails_with_the_service_answer(
    receiver: Receiver, type_name: str, extra: dict[str, Any]
) -> None:
    task = {"id": "n", "type": type_name, "url": receiver.url + f"/status/403/{SECRET}", **extra}
    with pytest.raises(TaskError) as info:
        await _run(task)
    message = str(info.value)
    assert "'403' and body '{\"error\":\"invalid_token\"}'" in message
    assert SECRET not in message


FLOW = """
id: f
namespace: n
tasks:
  - {id: a, type: io.kestra.plugin.telegram.TelegramSend, token: t, channel: c, payload: p}
  - {id: b, type: io.kestra.plugin.notifications.telegram.TelegramExecution, token: t, channel: c}
  - {id: c, type: io.kestra.plugin.notifications.line.LineExecution, channelAccessToken: t}
  - type: io.kestra.plugin.notifications.twilio.TwilioExecution
    id: d
    url: https://x.io
    accountSID: a
    authToken: b
  - {id: e, type: io.kestra.plugin.notifications.whatsapp.WhatsAppExecution, url: https://x.io}
  - {id: f, type: io.kestra.plugin.notifications.sentry.SentryExecution, dsn: https://x.io}
  - {id: g, type: io.kestra.plugin.notifications.squadcast.SquadcastIncomingWebhook, url: u}
  - {id: h, type: io.kestra.plugin.notifications.x.XExecution, bearerToken: b}
  - type: io.kestra.plugin.meta.messenger.MessengerExecution
    id: i
    pageId: "1"
    accessToken: t
    recipientIds: [u1]
"""


def test_canonical_and_legacy_names_load() -> None:
    assert [t.type for t in load_flow(FLOW).tasks] == [
        "io.kestra.plugin.telegram.TelegramSend",
        "io.kestra.plugin.telegram.TelegramExecution",
        "io.kestra.plugin.line.LineExecution",
        "io.kestra.plugin.twilio.notify.TwilioExecution",
        "io.kestra.plugin.meta.whatsapp.WhatsAppExecution",
        "io.kestra.plugin.sentry.SentryExecution",
        "io.kestra.plugin.squadcast.SquadcastIncomingWebhook",
        "io.kestra.plugin.x.XExecution",
        "io.kestra.plugin.meta.messenger.MessengerExecution",
    ]
