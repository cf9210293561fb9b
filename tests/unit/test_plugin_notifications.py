"""Notification tasks against a real HTTP receiver on 127.0.0.1: the exact request each service
gets (method, path, content type, body), the execution summaries, and the failures (an error
status, an unreachable URL, a secret URL that must stay out of logs and errors)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.flows import flow_to_dict, load_flow
from executors.base import TaskContext, TaskError
from executors.plugins.notifications import PLUGINS, human_duration, sentry_url, slack_mrkdwn
from executors.registry import Registry, add_plugins
from tests.unit.api_receiver import Webhooks as Receiver
from tests.unit.api_receiver import webhooks

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
START = "2025-01-02T03:03:00.500Z"
BY_TYPE = {cls.type_name(): cls for cls in PLUGINS}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhooks(ok=b"ok") as hooks:
        yield hooks


VARS: dict[str, Any] = {
    "flow": {"id": "etl", "namespace": "company.team"},
    "execution": {"id": "exec1", "startDate": START, "originalId": "exec1", "state": "RUNNING"},
}


def _ctx(task: dict[str, Any], variables: dict[str, Any] | None = None) -> TaskContext:
    return TaskContext.for_job(
        execution_id="exec1",
        task_run_id="tr1",
        attempt=0,
        task=task,
        variables=variables or VARS,
        clock=lambda: NOW,
        secrets=frozenset({"T0P-SECRET"}),
    )


async def _run(task: dict[str, Any], variables: dict[str, Any] | None = None) -> TaskContext:
    ctx = _ctx(task, variables)
    plugin = BY_TYPE[task["type"]].model_validate(task)
    assert await plugin.run(ctx) == {}
    return ctx


def _json(request: dict[str, Any]) -> Any:
    assert request["method"] == "POST"
    assert request["headers"]["Content-Type"] == "application/json"
    return json.loads(request["body"])


PAYLOAD = '{"text": "flow {{ flow.id }} failed", "n": 1}'
EXPECTED = {"text": "flow etl failed", "n": 1}


@pytest.mark.parametrize(
    "type_name",
    [
        "io.kestra.plugin.slack.notifications.SlackIncomingWebhook",
        "io.kestra.plugin.discord.DiscordIncomingWebhook",
        "io.kestra.plugin.microsoft365.teams.TeamsIncomingWebhook",
        "io.kestra.plugin.googleworkspace.chat.GoogleChatIncomingWebhook",
        "io.kestra.plugin.zulip.ZulipIncomingWebhook",
        "io.kestra.plugin.pagerduty.PagerDutyAlert",
        "io.kestra.plugin.zenduty.ZendutyAlert",
        "io.kestra.plugin.squadcast.SquadcastIncomingWebhook",
    ],
)
async def test_each_webhook_posts_the_rendered_payload(receiver: Receiver, type_name: str) -> None:
    task = {"id": "n", "type": type_name, "url": receiver.url + "/hook/{{ flow.id }}"}
    task |= {"payload": PAYLOAD, "options": {"headers": {"X-Team": "{{ flow.namespace }}"}}}
    ctx = await _run(task)
    assert receiver.last["path"] == "/hook/etl"
    assert receiver.last["headers"]["X-Team"] == "company.team"
    assert _json(receiver.last) == EXPECTED
    assert "Request succeeded" in [line.message for line in ctx.logs]


async def test_string_payloads_are_sent_as_written_json_ones_re_serialized(
    receiver: Receiver,
) -> None:
    raw = '{ "a" :  1 }'
    zulip = "io.kestra.plugin.zulip.ZulipIncomingWebhook"
    await _run({"id": "t", "type": zulip, "url": receiver.url, "payload": raw})
    assert receiver.last["body"] == raw
    await _run(
        {
            "id": "d",
            "type": "io.kestra.plugin.discord.DiscordIncomingWebhook",
            "url": receiver.url,
            "payload": raw,
        }
    )
    assert receiver.last["body"] == '{"a":1}'


async def test_slack_message_text_becomes_mrkdwn_or_is_sent_as_json(receiver: Receiver) -> None:
    slack = "io.kestra.plugin.slack.notifications.SlackIncomingWebhook"
    text = "**Done** __{{ flow.id }}__ see [docs](https://x.io)"
    await _run({"id": "s", "type": slack, "url": receiver.url, "messageText": text})
    assert _json(receiver.last) == {"text": "*Done* _etl_ see <https://x.io|docs>"}
    await _run({"id": "s", "type": slack, "url": receiver.url, "messageText": '{"blocks": []}'})
    assert _json(receiver.last) == {"blocks": []}
    assert slack_mrkdwn("[a](b) **c**") == "<b|a> *c*"
    with pytest.raises(TaskError, match="Either 'messageText' or 'payload' must be provided"):
        await _run({"id": "s", "type": slack, "url": receiver.url})


async def test_opsgenie_and_qq_send_their_tokens(receiver: Receiver) -> None:
    await _run(
        {
            "id": "o",
            "type": "io.kestra.plugin.opsgenie.OpsgenieAlert",
            "url": receiver.url,
            "payload": "{}",
            "authorizationToken": "GenieKey abc",
        }
    )
    assert receiver.last["headers"]["Authorization"] == "GenieKey abc"
    await _run(
        {
            "id": "q",
            "type": "io.kestra.plugin.tencent.qq.QQIncomingWebhook",
            "url": receiver.url + "/v4/openim/sendmsg",
            "token": "tk",
            "payload": '{"m": 1}',
        }
    )
    assert receiver.last["headers"]["Authorization"] == "Bearer tk"
    assert _json(receiver.last) == {"m": 1}


async def test_sentry_builds_the_envelope(receiver: Receiver) -> None:
    variables = {**VARS, "eventId": "e" * 32}
    task = {
        "id": "s",
        "type": "io.kestra.plugin.sentry.SentryAlert",
        "dsn": receiver.url + "/api/1/envelope/",
    }
    await _run(task, variables)
    header, item, payload = receiver.last["body"].split("\n", 2)
    assert json.loads(header) == {
        "event_id": "e" * 32,
        "dsn": receiver.url + "/api/1/envelope/",
        "sdk": {"name": "java", "version": "7"},
        "sent_at": "2025-01-02T03:04:05Z",
    }
    event = json.loads(payload)
    assert json.loads(item) == {
        "type": "event",
        "length": len(payload) - 1,  # the payload then its newline
        "content_type": "application/json",
        "filename": "application.log",
    }
    assert event["message"] == {"message": "Execution exec1 failed"}
    assert event["extra"] == {
        "Namespace": "company.team",
        "Flow ID": "etl",
        "Execution ID": "exec1",
    }
    assert payload.endswith("}\n")
    assert sentry_url("https://abc123@o42.ingest.sentry.io/7", "STORE") == (
        "https://o42.ingest.sentry.io/api/7/store/?sentry_version=7&sentry_client=java&sentry_key=abc123"
    )
    # As in Kestra, only 401/404 of the envelope endpoint fail a Sentry alert.
    await _run({**task, "dsn": receiver.url + "/status/500"})
    with pytest.raises(TaskError, match="'404'"):
        await _run({**task, "dsn": receiver.url + "/status/404"})


async def test_slack_execution_summary_of_the_current_execution(receiver: Receiver) -> None:
    variables = {**VARS, "kestra": {"url": "https://kestra.example/"}}
    await _run(
        {
            "id": "notify",
            "type": "io.kestra.plugin.slack.notifications.SlackExecution",
            "url": receiver.url,
            "customMessage": "hi {{ flow.id }}",
            "customFields": {"Env": "prod"},
            "channel": "#alerts",
        },
        variables,
    )
    link = "https://kestra.example/ui/executions/company.team/etl/exec1"
    title = f"*<{link}|[company.team] etl ➛ RUNNING>*\n> Succeeded after 0:01:04.500"
    assert _json(receiver.last) == {
        "text": title,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "hi etl"}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": title},
                "accessory": {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Details"},
                    "url": link,
                },
            },
        ],
        "attachments": [
            {
                "color": "danger",
                "fields": [
                    {"title": "Namespace", "value": "company.team", "short": True},
                    {"title": "Flow ID", "value": "etl", "short": True},
                    {"title": "Execution ID", "value": "exec1", "short": True},
                    {"title": "Execution Status", "value": "RUNNING", "short": True},
                    {"title": "Env", "value": "prod", "short": True},
                    {"title": "Final task ID", "value": "notify", "short": True},
                ],
                "ts": 1735786980,
            }
        ],
        "channel": "#alerts",
    }


FLOW_TRIGGER = {
    "flow": {"id": "alerts", "namespace": "system"},
    "execution": {"id": "mine", "startDate": START, "state": "RUNNING"},
    "trigger": {"executionId": "theirs", "namespace": "prod", "flowId": "load", "state": "FAILED"},
}


async def test_execution_summaries_of_a_flow_trigger_execution(receiver: Receiver) -> None:
    common = {"id": "n", "url": receiver.url, "executionId": "{{ trigger.executionId }}"}
    await _run(
        {
            **common,
            "type": "io.kestra.plugin.discord.DiscordExecution",
            "username": "bot",
            "embedList": [{"title": "T", "color": [255, 0, 1]}],
        },
        FLOW_TRIGGER,
    )
    assert _json(receiver.last) == {
        "embeds": [
            {
                "title": "T",
                "color": 0xFF0001,
                "description": "Namespace: prod\nFlow ID: load\nExecution ID: theirs\n"
                "Execution Status: FAILED \nFinal task ID:  ",
                "footer": {"text": "Failed after "},
            }
        ],
        "username": "bot",
        "tts": False,
    }
    await _run(
        {
            **common,
            "type": "io.kestra.plugin.microsoft365.teams.TeamsExecution",
            "activityTitle": "Alert",
        },
        FLOW_TRIGGER,
    )
    teams = _json(receiver.last)
    assert teams["themeColor"] == "0076D7"
    assert teams["summary"] == "*<|[prod] load ➛ FAILED>*\n> Failed after "
    assert teams["sections"][0]["activityTitle"] == "Alert"
    assert teams["sections"][0]["facts"][3] == {"name": "Execution Status", "value": "FAILED"}
    await _run(
        {**common, "type": "io.kestra.plugin.googleworkspace.chat.GoogleChatExecution"},
        FLOW_TRIGGER,
    )
    assert _json(receiver.last)["text"].startswith(
        "Kestra Google notification: Namespace prod, Flow ID load, Execution ID theirs, "
        "Execution Status FAILED, Final task ID . *<|[prod] load ➛ FAILED>*"
    )
    with pytest.raises(TaskError, match="Unable to find execution 'other'"):
        await _run(
            {**common, "type": "io.kestra.plugin.discord.DiscordExecution", "executionId": "other"},
            FLOW_TRIGGER,
        )


def test_human_duration_is_kestras_hms() -> None:
    assert human_duration(3723.0456) == "1:02:03.045"


async def test_an_error_status_fails_with_the_answer_and_no_secret(receiver: Receiver) -> None:
    task = {
        "id": "n",
        "type": "io.kestra.plugin.slack.notifications.SlackIncomingWebhook",
        "url": receiver.url + "/status/403/T0P-SECRET",
        "payload": "{}",
    }
    ctx = _ctx(task)
    with pytest.raises(TaskError) as caught:
        await BY_TYPE[task["type"]].model_validate(task).run(ctx)
    message = str(caught.value)
    assert "'403'" in message
    assert '{"error":"invalid_token"}' in message
    assert "T0P-SECRET" not in message
    assert all("T0P-SECRET" not in line.message for line in ctx.logs)


async def test_an_unreachable_url_fails_clearly_without_its_path(receiver: Receiver) -> None:
    port = receiver.server.server_port
    receiver.server.shutdown()
    receiver.server.server_close()
    task = {
        "id": "n",
        "type": "io.kestra.plugin.discord.DiscordIncomingWebhook",
        "url": f"http://127.0.0.1:{port}/api/webhooks/123/hidden-token",
        "payload": "{}",
    }
    with pytest.raises(TaskError) as caught:
        await _run(task)
    assert str(caught.value).startswith(
        f"Discord: request to http://127.0.0.1:{port} failed: Connect"
    )
    assert "hidden-token" not in str(caught.value)


async def test_an_old_name_loads_as_the_current_type_and_runs(receiver: Receiver) -> None:
    flow = flow_to_dict(
        load_flow(
            "id: f\nnamespace: company.team\ntasks:\n"
            "  - id: n\n    type: io.kestra.plugin.notifications.slack.SlackIncomingWebhook\n"
            f'    url: {receiver.url}/x\n    payload: \'{{"text": "hi"}}\'\n'
        )
    )
    task = flow["tasks"][0]
    assert task["type"] == "io.kestra.plugin.slack.notifications.SlackIncomingWebhook"
    outcome = await add_plugins(Registry()).run(task, _ctx(task))
    assert outcome.state == "SUCCESS", outcome.error
    assert _json(receiver.last) == {"text": "hi"}
