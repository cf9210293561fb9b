"""The LLM chat types against a real local HTTP receiver playing each provider's API: the exact
request (path, auth headers, JSON body), the outputs and metrics taken from the answer, and the
failures (the provider's 4xx with the key masked, a bad role, a body that is not JSON)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.flows import load_flow
from engine.stores.storage import LocalStorage, TaskLocation
from executors.api_client import BASE_URLS
from executors.base import TaskContext, TaskOutcome
from executors.registry import Registry, add_plugins
from tests.unit.api_receiver import Receiver, Request, context, serve

KEY = "sk-T0P-SECRET-key"
P = "io.kestra.plugin."


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    with serve() as receiver:
        for name, path in (
            ("openai", "/v1"),
            ("anthropic", ""),
            ("gemini", ""),
            ("perplexity", ""),
        ):
            monkeypatch.setitem(BASE_URLS, name, receiver.url + path)
        yield receiver


async def run(
    task: dict[str, Any], ctx: TaskContext | None = None
) -> tuple[TaskOutcome, TaskContext]:
    task = {"id": "chat", **task}
    ctx = ctx or context(task)
    return await add_plugins(Registry()).run(task, ctx), ctx


def assert_no_key(outcome: TaskOutcome, ctx: TaskContext) -> None:
    shown = [outcome.error or "", repr(outcome.outputs), *(line.message for line in ctx.logs)]
    assert not any(KEY in text for text in shown)


COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-2024",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "respond", "arguments": '{"urgency":"later"}'},
                    }
                ],
            },
        }
    ],
    "usage": {
        "prompt_tokens": 11,
        "completion_tokens": 7,
        "total_tokens": 18,
        "prompt_tokens_details": {"cached_tokens": 3},
    },
}


async def test_openai_chat_completion_sends_kestras_body(api: Receiver) -> None:
    api.on("POST", "/v1/chat/completions", (200, COMPLETION))
    outcome, _ = await run(
        {
            "type": P + "openai.ChatCompletion",
            "apiKey": KEY,
            "model": "gpt-4o",
            "maxTokens": 100,
            "messages": [
                {"role": "system", "content": "Be short about {{ flow.id }}"},
                {"role": "developer", "content": "unknown roles are the user's"},
            ],
            "prompt": "Review: I love it",
            "functions": [
                {
                    "name": "respond",
                    "description": "Decide",
                    "parameters": [
                        {
                            "name": "urgency",
                            "type": "string",
                            "description": "How urgent",
                            "required": True,
                            "enumValues": ["now", "later"],
                        },
                        {"name": "text", "type": "string", "description": "Reply"},
                    ],
                },
                {"name": "no_parameters_is_dropped"},
            ],
            "functionCall": "respond",
            "stop": ["END"],
            "user": "u1",
        }
    )
    assert outcome.state == "SUCCESS", outcome.error
    request = api.last
    assert request.target == "POST /v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.json == {
        "messages": [
            {"role": "system", "content": "Be short about f"},
            {"role": "user", "content": "unknown roles are the user's"},
            {"role": "user", "content": "Review: I love it"},
        ],
        "model": "gpt-4o",
        "n": 1,
        "temperature": 1.0,
        "max_completion_tokens": 100,
        "user": "u1",
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "respond",
                    "description": "Decide",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "urgency": {
                                "type": "string",
                                "description": "How urgent",
                                "enum": ["now", "later"],
                            },
                            "text": {"type": "string", "description": "Reply"},
                        },
                        "required": ["urgency"],
                    },
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "respond"}},
        "stop": ["END"],
    }
    assert outcome.outputs == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-2024",
        "choices": COMPLETION["choices"],
        "usage": COMPLETION["usage"],
    }
    assert outcome.metrics == {
        "usage.prompt.tokens": 11,
        "usage.completion.tokens": 7,
        "usage.total.tokens": 18,
        "usage.prompt.cached_tokens": 3,
    }


async def test_openai_schema_caching_and_function_call_rules(api: Receiver) -> None:
    api.on("POST", "/v1/chat/completions", (200, COMPLETION))
    base = {"type": P + "openai.ChatCompletion", "apiKey": KEY, "model": "m", "prompt": "p"}
    outcome, _ = await run(
        {
            **base,
            "jsonResponseSchema": '{"type": "object", "properties": {"a": {"type": "string"}}}',
            "promptCaching": True,
            "temperature": "{{ 0.5 }}",
            "topP": 0.9,
            "functionCall": "none",
            "logitBias": {"50256": -100},
        }
    )
    assert outcome.state == "SUCCESS", outcome.error
    body = api.last.json
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "kestra_schema",
            "strict": True,
            "schema": {"type": "object", "properties": {"a": {"type": "string"}}},
        },
    }
    assert body["prompt_cache_retention"] == "24h"
    assert (body["temperature"], body["top_p"], body["tool_choice"]) == (0.5, 0.9, "none")
    assert body["logit_bias"] == {"50256": -100}
    sent = len(api.requests)
    outcome, _ = await run({**base, "functionCall": "respond"})
    assert outcome.state == "FAILED"
    assert "Cannot specify a function name for `functionCall` ('respond')" in (outcome.error or "")
    outcome, _ = await run({k: v for k, v in base.items() if k != "prompt"})
    assert outcome.error == "Either `messages` or `prompt` must be set"
    assert len(api.requests) == sent  # nothing was sent for a user's mistake


async def test_a_refused_call_fails_with_the_answer_and_no_key(api: Receiver) -> None:
    answer = {"error": {"message": f"Incorrect API key provided: {KEY}", "code": "invalid_api_key"}}
    api.on("POST", "/v1/chat/completions", (401, answer))
    outcome, ctx = await run(
        {"type": P + "openai.ChatCompletion", "apiKey": KEY, "model": "m", "prompt": "p"}
    )
    assert outcome.state == "FAILED"
    assert "OpenAI: POST /v1/chat/completions failed with HTTP 401" in (outcome.error or "")
    assert "Incorrect API key provided: ********" in (outcome.error or "")
    assert_no_key(outcome, ctx)


async def test_an_answer_that_is_not_json_or_unreachable_fails_clearly(
    api: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.on("POST", "/chat/completions", (200, "<html>gateway</html>"))
    task = {"type": P + "perplexity.ChatCompletion", "apiKey": KEY, "model": "sonar"}
    task["messages"] = [{"type": "USER", "content": "hi"}]
    outcome, _ = await run(task)
    assert outcome.state == "FAILED"
    assert "Perplexity: POST /chat/completions answered with a body that is not JSON" in (
        outcome.error or ""
    )
    monkeypatch.setitem(BASE_URLS, "perplexity", "http://127.0.0.1:9")
    outcome, ctx = await run(task)
    assert outcome.state == "FAILED"
    assert "Perplexity: POST /chat/completions to http://127.0.0.1:9 failed: Connect" in (
        outcome.error or ""
    )
    assert_no_key(outcome, ctx)


RESPONSE = {
    "id": "resp_1",
    "output": [
        {"type": "reasoning", "summary": []},
        {
            "type": "message",
            "role": "assistant",
            "content": [
                {
                    "type": "output_text",
                    "text": "Kestra orchestrates.",
                    "annotations": [
                        {"type": "url_citation", "url": "https://kestra.io", "title": "K"},
                        {"type": "file_citation", "file_id": "f1"},
                    ],
                },
                {"type": "output_text", "text": "Second.", "annotations": []},
            ],
        },
        {"type": "function_call", "name": "f", "arguments": '{"a":1}'},
    ],
    "usage": {
        "input_tokens": 5,
        "output_tokens": 6,
        "total_tokens": 11,
        "input_tokens_details": {"cached_tokens": 0},
    },
}


async def test_openai_responses_input_forms_and_outputs(api: Receiver, tmp_path: Path) -> None:
    api.on("POST", "/v1/responses", (200, RESPONSE))
    task = {
        "type": P + "openai.Responses",
        "apiKey": KEY,
        "model": "gpt-4.1-mini",
        "input": "Explain {{ flow.id }}",
        "previousResponseId": "",
        "toolChoice": "REQUIRED",
        "tools": [{"type": "web_search", "search_context_size": "low"}],
    }
    outcome, _ = await run(task)
    assert outcome.state == "SUCCESS", outcome.error
    assert api.last.target == "POST /v1/responses"
    assert api.last.headers["authorization"] == f"Bearer {KEY}"
    assert api.last.json == {
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Explain f"}]}],
        "model": "gpt-4.1-mini",
        "store": True,
        "temperature": 1.0,
        "tools": [{"type": "web_search", "search_context_size": "low"}],
        "tool_choice": "required",
    }
    assert outcome.outputs["responseId"] == "resp_1"
    # Kestra joins one text per output item: the reasoning item gives an empty line.
    assert outcome.outputs["outputText"] == '\nKestra orchestrates.\nSecond.\n{"a":1}'
    assert outcome.outputs["sources"] == ["https://kestra.io"]
    assert outcome.outputs["rawResponse"] == RESPONSE
    assert outcome.metrics["usage.total.tokens"] == 11

    storage = LocalStorage(tmp_path / "storage")
    location = TaskLocation("company.team", "f", "exec1", "chat", "tr1")
    image = storage.put_sync(location, "cat.png", b"\x89PNG-bytes")
    blob = storage.put_sync(location, "upload.upl", b"raw")
    listed = {
        **task,
        "input": [
            {"role": "system", "content": [{"type": "input_text", "text": "One sentence"}]},
            {
                "role": "user",
                "content": [
                    {"type": "input_image", "image_url": image},
                    {"type": "input_image", "image_url": "https://x.io/a.jpg", "detail": "low"},
                    {"type": "input_file", "file_id": "file-1"},
                ],
            },
        ],
        "previousResponseId": "resp_0",
        "store": False,
        "text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"}}},
        "reasoning": {"effort": "low"},
        "maxOutputTokens": 50,
        "parallelToolCalls": False,
        "promptId": "pmpt_1",
        "promptVariables": {"repo": "kestra"},
    }
    ctx = context(listed, storage=storage.for_task(location))
    outcome, _ = await run(listed, ctx)
    assert outcome.state == "SUCCESS", outcome.error
    body = api.last.json
    encoded = base64.b64encode(b"\x89PNG-bytes").decode()
    assert body["input"] == [
        {"role": "system", "content": [{"type": "input_text", "text": "One sentence"}]},
        {
            "role": "user",
            "content": [
                {
                    "type": "input_image",
                    "image_url": f"data:image/png;base64,{encoded}",
                    "detail": "auto",
                },
                {"type": "input_image", "image_url": "https://x.io/a.jpg", "detail": "low"},
                {"type": "input_file", "file_id": "file-1"},
            ],
        },
    ]
    assert body["previous_response_id"] == "resp_0"
    assert body["store"] is False
    assert body["prompt"] == {"id": "pmpt_1", "variables": {"repo": "kestra"}}
    assert (body["reasoning"], body["max_output_tokens"]) == ({"effort": "low"}, 50)
    assert body["parallel_tool_calls"] is False
    assert body["text"]["format"]["name"] == "n"
    listed["input"][1]["content"] = [{"type": "input_image", "image_url": blob}]
    outcome, _ = await run(listed, context(listed, storage=storage.for_task(location)))
    assert outcome.state == "FAILED"
    assert "Unsupported or unknown MIME type 'None' for file 'upload.upl'" in (outcome.error or "")


async def test_anthropic_messages(api: Receiver) -> None:
    answer = {
        "id": "msg_1",
        "content": [
            {"type": "text", "text": "Tokyo"},
            {"type": "tool_use", "id": "tu_1", "name": "extract", "input": {"name": "John"}},
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 9, "output_tokens": 4, "cache_read_input_tokens": 2},
    }
    api.on("POST", "/v1/messages", (200, answer))
    outcome, _ = await run(
        {
            "type": P + "anthropic.ChatCompletion",
            "apiKey": KEY,
            "model": "claude-sonnet-4-6",
            "system": "Be brief",
            "temperature": 0.3,
            "promptCaching": True,
            "messages": [
                {"type": "USER", "content": "Capital of Japan?"},
                {"type": "ASSISTANT", "content": "Tokyo."},
                {"type": "user", "content": "Sure?"},
            ],
            "tools": [
                {
                    "name": "extract",
                    "description": "Extract",
                    "input_schema": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}},
                        "required": ["name"],
                        "ignored": True,
                    },
                }
            ],
        }
    )
    assert outcome.state == "SUCCESS", outcome.error
    request = api.last
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.json == {
        "model": "claude-sonnet-4-6",
        "max_tokens": 1024,
        "system": "Be brief",
        "temperature": 0.3,
        "tools": [
            {
                "name": "extract",
                "input_schema": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}},
                    "required": ["name"],
                },
                "description": "Extract",
            }
        ],
        "messages": [
            {"role": "user", "content": "Capital of Japan?"},
            {"role": "assistant", "content": "Tokyo."},
            {"role": "user", "content": "Sure?"},
        ],
        "cache_control": {"type": "ephemeral"},
    }
    out = outcome.outputs
    assert out["outputText"] == "Tokyo"
    assert out["toolUses"] == [{"id": "tu_1", "name": "extract", "input": {"name": "John"}}]
    assert (out["stopReason"], out["cacheReadInputTokens"], out["cacheCreationInputTokens"]) == (
        "tool_use",
        2,
        None,
    )
    assert '"id":"msg_1"' in out["rawResponse"]
    assert outcome.metrics == {
        "usage.input.tokens": 9,
        "usage.output.tokens": 4,
        "usage.cache.read.tokens": 2,
    }
    outcome, _ = await run(
        {
            "type": P + "anthropic.ChatCompletion",
            "apiKey": KEY,
            "model": "m",
            "messages": [{"type": "SYSTEM", "content": "x"}],
        }
    )
    assert outcome.state == "FAILED"
    assert "property 'messages[0]': the role 'SYSTEM' is not one of USER, ASSISTANT" in (
        outcome.error or ""
    )


async def test_gemini_chat_sends_each_message_in_one_conversation(api: Receiver) -> None:
    def reply(request: Request) -> tuple[int, Any]:
        turns = len(request.json["contents"])
        return 200, {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": f"answer {turns}"}]},
                    "safetyRatings": [{"category": "HARM", "probability": "NEGLIGIBLE"}],
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 3,
                "candidatesTokenCount": 2,
                "totalTokenCount": 5,
            },
        }

    api.on("POST", "/v1beta/models/gemini-2.5-flash:generateContent", reply)
    outcome, _ = await run(
        {
            "type": P + "gemini.ChatCompletion",
            "apiKey": KEY,
            "model": "gemini-2.5-flash",
            "messages": [
                {"type": "SYSTEM", "content": "Be concise"},
                {"role": "user", "content": "Capital of France?"},
            ],
        }
    )
    assert outcome.state == "SUCCESS", outcome.error
    first, second = api.requests
    assert first.headers["x-goog-api-key"] == KEY
    assert first.json == {"contents": [{"role": "user", "parts": [{"text": "Be concise"}]}]}
    assert second.json == {
        "contents": [
            {"role": "user", "parts": [{"text": "Be concise"}]},
            {"role": "model", "parts": [{"text": "answer 1"}]},
            {"role": "user", "parts": [{"text": "Capital of France?"}]},
        ]
    }
    assert [p["content"] for p in outcome.outputs["predictions"]] == ["answer 1", "answer 3"]
    assert outcome.outputs["predictions"][0]["safetyRatings"][0]["category"] == "HARM"
    assert outcome.metrics == {
        "candidate.token.count": 4,
        "prompt.token.count": 6,
        "total.token.count": 10,
    }


async def test_gemini_structured_output(api: Receiver) -> None:
    answer = {"candidates": [{"content": {"parts": [{"text": '{"wind": 12}'}]}}]}
    api.on("POST", "/v1beta/models/gemini-2.5-flash-lite:generateContent", (200, answer))
    outcome, _ = await run(
        {
            "type": P + "gemini.StructuredOutputCompletion",
            "apiKey": KEY,
            "model": "gemini-2.5-flash-lite",
            "prompt": "Wind?",
            "jsonResponseSchema": '{"type": "object", "properties": {"wind": {"type": "number"}}}',
        }
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert api.last.json == {
        "contents": [{"role": "user", "parts": [{"text": "Wind?"}]}],
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseSchema": {"type": "object", "properties": {"wind": {"type": "number"}}},
        },
    }
    assert outcome.outputs == {"predictions": ['{"wind": 12}']}


async def test_deepseek_json_mode_and_array_repair() -> None:
    with serve() as api:
        raw = '{"choices": [{"message": {"role": "assistant", "content": "{\\"t\\": 1}"}}]}'
        api.on("POST", "/v1/chat/completions", (200, raw))
        schema = '{"type": "array", "items": {"type": "object"}}'
        outcome, _ = await run(
            {
                "type": P + "deepseek.ChatCompletion",
                "apiKey": KEY,
                "modelName": "deepseek-chat",
                "baseUrl": api.url + "/v1",
                "messages": [{"type": "USER", "content": "tasks"}],
                "jsonResponseSchema": schema,
            }
        )
        assert outcome.state == "SUCCESS", outcome.error
        assert api.last.headers["authorization"] == f"Bearer {KEY}"
        assert api.last.json == {
            "model": "deepseek-chat",
            "messages": [
                {
                    "role": "system",
                    "content": "You must output valid JSON only (no extra text). Follow this JSON "
                    "Schema strictly when formatting your response. If a field is unknown, output "
                    "a sensible empty value of the correct type. JSON Schema:\n" + schema,
                },
                {"role": "user", "content": "tasks"},
            ],
            "response_format": {"type": "json_object"},
        }
        # Kestra re-serializes the answer it parsed: compact JSON.
        compact = '{"choices":[{"message":{"role":"assistant","content":"{\\"t\\": 1}"}}]}'
        assert outcome.outputs == {"response": '[{"t": 1}]', "raw": compact}


async def test_mistral_json_schema() -> None:
    with serve() as api:
        api.on("POST", "/v1/chat/completions", (200, {"choices": [{"message": {"content": "ok"}}]}))
        outcome, _ = await run(
            {
                "type": P + "mistral.ChatCompletion",
                "apiKey": KEY,
                "modelName": "mistral-small",
                "baseUrl": api.url + "/v1",
                "messages": [{"type": "SYSTEM", "content": "x"}, {"type": "USER", "content": "y"}],
                "jsonResponseSchema": '{"type": "object"}',
            }
        )
        assert outcome.state == "SUCCESS", outcome.error
        assert api.last.json == {
            "model": "mistral-small",
            "messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "y"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "schema": {"type": "object"},
                    "name": "kestra_schema",
                    "strict": True,
                },
            },
        }
        assert outcome.outputs == {
            "response": "ok",
            "raw": '{"choices":[{"message":{"content":"ok"}}]}',
        }


async def test_perplexity_sends_every_default(api: Receiver) -> None:
    answer = {
        "choices": [{"message": {"content": "Summary"}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }
    api.on("POST", "/chat/completions", (200, answer))
    outcome, _ = await run(
        {
            "type": P + "perplexity.ChatCompletion",
            "apiKey": KEY,
            "model": "sonar",
            "messages": [
                {"type": "SYSTEM", "content": "Summarise"},
                {"type": "USER", "content": "Chapter 1"},
            ],
            "maxTokens": 10,
            "jsonResponseSchema": '{"type": "object"}',
        }
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert api.last.json == {
        "model": "sonar",
        "messages": [
            {"role": "system", "content": "Summarise"},
            {"role": "user", "content": "Chapter 1"},
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 0,
        "stream": False,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "max_tokens": 10,
        "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
    }
    assert outcome.outputs["outputText"] == "Summary"
    assert outcome.metrics["usage.total.tokens"] == 3


def test_blueprint_shapes_validate() -> None:
    flow = load_flow(
        """
id: router
namespace: company.team
tasks:
  - id: a
    type: io.kestra.plugin.gemini.ChatCompletion
    apiKey: "{{ secret('GEMINI_API_KEY') }}"
    model: gemini-2.5-flash
    messages:
      - role: user
        content: "{{ inputs.question }}"
  - id: b
    type: io.kestra.plugin.openai.ChatCompletion
    apiKey: k
    model: gpt-4o
    maxTokens: 1024
    clientTimeout: 60
    messages:
      - role: user
        content: hi
pluginDefaults:
  - type: io.kestra.plugin.perplexity.ChatCompletion
    values:
      apiKey: k
      model: sonar
"""
    )
    assert [t.id for t in flow.tasks] == ["a", "b"]


async def test_openai_create_image_stores_base64_images(api: Receiver, tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n-image"
    data = [{"b64_json": base64.b64encode(png).decode()}, {"url": "https://cdn.openai.com/x.png"}]
    api.on("POST", "/v1/images/generations", (200, {"created": 1, "data": data}))
    storage = LocalStorage(tmp_path / "storage")
    location = TaskLocation("company.team", "f", "exec1", "chat", "tr1")
    task = {
        "id": "chat",
        "type": P + "openai.CreateImage",
        "apiKey": KEY,
        "prompt": "a happy puppy",
        "n": 2,
        "download": True,
        "quality": "high",
    }
    outcome, _ = await run(task, context(task, storage=storage.for_task(location)))
    assert outcome.state == "SUCCESS", outcome.error
    assert api.last.json == {
        "model": "gpt-image-1",
        "prompt": "a happy puppy",
        "size": "1024x1024",
        "n": 2,
        "quality": "high",
    }
    stored, url = outcome.outputs["images"]
    assert storage.read_sync(stored) == png
    assert url == "https://cdn.openai.com/x.png"
    outcome, _ = await run({**task, "size": "HUGE"})
    assert outcome.error == "property 'size': expected SMALL, MEDIUM or LARGE, got 'HUGE'"


async def test_huggingface_inference() -> None:
    with serve() as api:
        answer = {"sequence": "help me", "labels": ["support", "upsell"], "scores": [0.9, 0.1]}
        api.on("POST", "/models/facebook/bart-large-mnli", (200, answer))
        task = {
            "type": P + "huggingface.Inference",
            "apiKey": KEY,
            "model": "facebook/bart-large-mnli",
            "inputs": "help me",
            "parameters": {"candidate_labels": ["support", "upsell"]},
            "endpoint": api.url + "/models/",
            "waitForModel": True,
        }
        outcome, ctx = await run(task)
        assert outcome.state == "SUCCESS", outcome.error
        assert outcome.outputs == {"output": answer}
        assert api.last.headers["authorization"] == f"Bearer {KEY}"
        assert (api.last.headers["x-use-cache"], api.last.headers["x-wait-for-model"]) == (
            "true",
            "true",
        )
        assert api.last.json == {
            "inputs": "help me",
            "parameters": {"candidate_labels": ["support", "upsell"]},
        }
        api.on("POST", "/models/facebook/bart-large-mnli", (503, {"error": "Model is loading"}))
        outcome, ctx = await run(task)
        assert outcome.error == (
            "Hugging Face: POST /models/facebook/bart-large-mnli failed with HTTP 503: "
            '{"error": "Model is loading"}'
        )
        assert_no_key(outcome, ctx)
