"""gcp.vertexai.ChatCompletion against a local HTTP receiver answering as Vertex AI's
generateContent does: the chat turns each request carries, the generation config, the
predictions and token metrics, and a refusal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from executors.registry import Registry, add_plugins
from tests.gcp_support import TOKEN, service_account, token_endpoint
from tests.unit.api_receiver import Receiver, Request, context, serve

TYPE = "io.kestra.plugin.gcp.vertexai.ChatCompletion"
PATH = (
    "/v1/projects/proj/locations/us-central1/publishers/google/models/"
    "gemini-1.5-flash:generateContent"
)


@pytest.fixture
def google(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Receiver, str]]:
    with serve() as receiver, token_endpoint() as (token_uri, key, _grants):
        monkeypatch.setenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_AIPLATFORM", receiver.url)
        yield receiver, service_account(token_uri, key)


def answer(request: Request) -> tuple[int, Any]:
    said = request.json["contents"][-1]["parts"][0]["text"]
    return 200, {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": f"re: {said}"}]},
                "finishReason": "STOP",
                "safetyRatings": [
                    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE",
                     "severityScore": 0.1},
                    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
                ],
                "citationMetadata": {"citations": [{"title": "A source", "uri": "https://x"}]},
            }
        ],
        "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 2, "totalTokenCount": 9},
    }  # fmt: skip


async def test_chat_turns_config_predictions_and_metrics(google: tuple[Receiver, str]) -> None:
    api, account = google
    api.on("POST", PATH, answer)
    task = {
        "id": "classify",
        "type": TYPE,
        "projectId": "proj",
        "serviceAccount": account,
        "region": "us-central1",
        "modelId": "gemini-1.5-flash",
        "parameters": {"temperature": 0.5, "maxOutputTokens": 16},
        "history": [{"author": "model", "content": "Earlier"}],
        "messages": [
            {"author": "user", "content": "Classify {{ inputs.event }}"},
            {"author": "user", "content": "Again"},
        ],
    }
    ctx = context(
        task, variables={"flow": {"id": "f", "namespace": "n"}, "inputs": {"event": "e1"}}
    )
    outcome = await add_plugins(Registry()).run(task, ctx)
    assert outcome.state == "SUCCESS", outcome.error
    first = outcome.outputs["predictions"][0]
    assert first == {
        "safetyAttributes": {
            "scores": [0.1, 0.0],
            "categories": ["HARM_CATEGORY_HATE_SPEECH", "HARM_CATEGORY_HARASSMENT"],
            "blocked": False,
        },
        "citationMetadata": {"citations": [{"citations": ["A source"]}]},
        "content": "re: Classify e1",
    }
    assert outcome.outputs["predictions"][1]["content"] == "re: Again"
    assert outcome.metrics == {
        "candidate.token.count": 4,
        "prompt.token.count": 14,
        "total.token.count": 18,
    }
    one, two = api.sent("POST", PATH)
    assert one.headers["authorization"] == f"Bearer {TOKEN}"
    assert one.json == {
        "contents": [
            {"role": "user", "parts": [{"text": "Earlier"}]},
            {"role": "user", "parts": [{"text": "Classify e1"}]},
        ],
        "generationConfig": {"temperature": 0.5, "maxOutputTokens": 16, "topK": 40, "topP": 0.95},
    }
    assert [c["role"] for c in two.json["contents"]] == ["user", "user", "model", "user"]
    assert two.json["contents"][2]["parts"] == [{"text": "re: Classify e1"}]


async def test_a_refusal_names_the_model(google: tuple[Receiver, str]) -> None:
    api, account = google
    refusal = {"error": {"code": 404, "status": "NOT_FOUND",
                         "message": "Publisher Model gemini-1.5-flash was not found"}}  # fmt: skip
    api.on("POST", PATH, (404, refusal))
    task = {"id": "c", "type": TYPE, "projectId": "proj", "serviceAccount": account,
            "region": "us-central1", "modelId": "gemini-1.5-flash",
            "messages": [{"content": "hi"}]}  # fmt: skip
    outcome = await add_plugins(Registry()).run(task, context(task))
    assert outcome.state == "FAILED"
    assert outcome.error == (
        f"Vertex AI: POST {PATH} failed with HTTP 404: Publisher Model gemini-1.5-flash was "
        "not found (NOT_FOUND)"
    )
