"""Kestra's LLM chat types: one request to a provider's completion API, its answer as outputs.

Ported from kestra-io/plugin-anthropic (``ChatCompletion``), plugin-gemini (``ChatCompletion``,
``StructuredOutputCompletion``), plugin-deepseek, plugin-mistral and plugin-perplexity
(``ChatCompletion``) and plugin-huggingface (``Inference``). Every type calls its REST API over
:class:`executors.api_client.ApiClient` (a status of 400 or more fails the task with the
provider's answer; the API key is masked wherever it could appear). Messages are rendered, then
each provider's roles are checked: a bad role fails the task naming ``messages[i]``. OpenAI's
types (:mod:`executors.plugins.ai_openai`) build on the helpers here.

- ``anthropic.ChatCompletion``: ``apiKey``, ``model``, ``messages`` (``type`` USER/ASSISTANT),
  ``system``, ``maxTokens`` (1024), ``temperature``, ``topP``, ``topK``, ``tools`` (``name``,
  ``description``, ``inputSchema``: only its ``properties`` and ``required`` are sent, under
  ``type: object``), ``promptCaching`` (``cache_control`` ephemeral). POST ``/v1/messages`` with
  ``x-api-key`` and ``anthropic-version: 2023-06-01``. Outputs ``rawResponse`` (JSON text),
  ``outputText`` (the text blocks), ``toolUses`` (``id``, ``name``, ``input``; null when none),
  ``stopReason``, ``cacheCreationInputTokens``, ``cacheReadInputTokens``; metrics
  ``usage.input.tokens``, ``usage.output.tokens``, ``usage.cache.creation.tokens``,
  ``usage.cache.read.tokens``.
- ``gemini.ChatCompletion``: ``apiKey``, ``model``, ``messages``: Kestra opens a chat and sends
  each message's ``content`` in turn as the user (the role is not used), so each message is one
  POST ``/v1beta/models/{model}:generateContent`` (header ``x-goog-api-key``) whose ``contents``
  hold the conversation so far (each message, then the model's first candidate). Output
  ``predictions``: every candidate of every answer as ``safetyRatings``, ``citationMetadata``,
  ``content`` (its text parts). ``gemini.StructuredOutputCompletion``: ``prompt``,
  ``jsonResponseSchema`` -> one call with ``generationConfig`` ``responseMimeType:
  application/json`` and ``responseSchema``; ``predictions``: the first candidate's text parts.
  Metrics ``candidate.token.count``, ``prompt.token.count``, ``total.token.count`` (summed).
- ``deepseek.ChatCompletion``: ``apiKey``, ``modelName``, ``baseUrl``
  (``https://api.deepseek.com/v1``), ``messages`` (``type`` SYSTEM/ASSISTANT/USER),
  ``jsonResponseSchema`` (JSON mode: a system message with the schema goes first and
  ``response_format`` is ``json_object``; when the schema expects an array the answer is
  repaired into one, Kestra's ``DeepseekResponseNormalizer``). POST ``{baseUrl}/chat/completions``.
  Outputs ``response`` (the first choice's content), ``raw`` (the answer, as compact JSON).
- ``mistral.ChatCompletion``: the same properties and outputs (``baseUrl``
  https://api.mistral.ai/v1); ``jsonResponseSchema`` becomes ``response_format`` ``json_schema``
  ``{"schema", "name": "kestra_schema", "strict": true}``.
- ``perplexity.ChatCompletion``: ``apiKey``, ``model``, ``messages`` (as DeepSeek),
  ``temperature`` (0.2), ``topP`` (0.9), ``topK`` (0), ``stream`` (false), ``presencePenalty``
  and ``frequencyPenalty`` (0.0), all sent; ``maxTokens``; ``jsonResponseSchema``
  (``response_format`` ``json_schema``). POST ``/chat/completions``. Outputs ``outputText``,
  ``rawResponse``; the usage metrics of OpenAI's type.

- ``huggingface.Inference``: ``apiKey``, ``model``, ``inputs``, ``parameters``, ``endpoint``
  (https://api-inference.huggingface.co/models), ``useCache`` (true, header ``x-use-cache``),
  ``waitForModel`` (false, header ``x-wait-for-model``), ``options`` (``readIdleTimeout``, PT5M).
  POST ``{endpoint}/{model}`` ``{"inputs", "parameters"}``; output ``output``, the answer's JSON.

What differs from Kestra: a message may give its role as ``role`` or ``type`` (Kestra reads only
one of them and fails on the other; blueprints use both). The read timeout is
:data:`AI_TIMEOUT_S` (the SDKs' 10 minutes); the SDKs' automatic retries are not reproduced (use
the task's ``retry``). Anthropic's ``inputSchema`` may also be spelled ``input_schema``, the
API's own name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import orjson

from executors.api_client import ApiClient, base_url, dig
from executors.base import TaskContext, TaskError, TaskOutcome, to_text
from executors.plugin import (
    TaskPlugin,
    render_bool,
    render_float,
    render_int,
    render_json,
    render_seconds,
    render_str,
)
from executors.plugins.notifications import RequestOptions
from schemas.flow.common import BoolOrExpr, FlowModel, IntOrExpr, NumberOrExpr, Str

# The providers' SDKs wait up to 10 minutes for a completion.
AI_TIMEOUT_S = 600.0


class ChatMessage(FlowModel):
    """One chat turn; the role is ``role`` (OpenAI) or ``type`` (the other providers)."""

    role: Str | None = None
    type: Str | None = None
    content: Any = None
    name: Str | None = None


def parse_json_text(text: str, name: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise TaskError(f"property '{name}' is not valid JSON: {exc}") from None


def render_messages(
    ctx: TaskContext, value: Any, roles: Mapping[str, str] | None, default: str | None = None
) -> list[dict[str, Any]]:
    """``messages`` as ``{"role", "content"}`` in the provider's role names.

    ``roles`` maps the accepted (upper-case) names to the API's; None keeps every role (Gemini).
    ``default`` is the role of an unknown name (OpenAI: user); without it, one is an error.
    """
    rendered = render_json(ctx, value, "messages")
    if rendered is None:
        return []
    if not isinstance(rendered, list):
        raise TaskError(f"property 'messages': expected a list of messages, got {rendered!r}")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(rendered):
        if not isinstance(item, Mapping):
            raise TaskError(f"property 'messages[{i}]': expected a map, got {item!r}")
        given = item.get("role") if item.get("role") is not None else item.get("type")
        content = item.get("content")
        text = content if isinstance(content, str) else to_text(content)
        if roles is None:
            out.append({"role": "user", "content": text})
            continue
        role = roles.get(to_text(given).strip().upper()) if given is not None else None
        if role is None:
            if default is None:
                raise TaskError(
                    f"property 'messages[{i}]': the role {given!r} is not one of "
                    f"{', '.join(roles)} (set 'type' or 'role')"
                )
            role = default
        out.append({"role": role, "content": text})
    return out


def api_key(ctx: TaskContext, value: Any) -> str:
    return render_str(ctx, value, "apiKey", required=True) or ""


def usage_metrics(usage: Any, names: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for metric, path in names.items():
        number = dig(usage, *path)
        if isinstance(number, int | float):
            out[metric] = number
    return out


# The OpenAI-style usage block (OpenAI, Perplexity) -> Kestra's metric names.
CHAT_USAGE = {
    "usage.prompt.tokens": ("prompt_tokens",),
    "usage.completion.tokens": ("completion_tokens",),
    "usage.total.tokens": ("total_tokens",),
    "usage.prompt.cached_tokens": ("prompt_tokens_details", "cached_tokens"),
}


class ChatTask(TaskPlugin):
    """Base of the chat types: the API key and a client of the provider's API."""

    family: ClassVar[str] = "ai"
    service: ClassVar[str] = "AI"
    api: ClassVar[str] = ""

    apiKey: Str

    def client(
        self, ctx: TaskContext, key: str, headers: dict[str, str], url: str | None = None
    ) -> ApiClient:
        return ApiClient(
            ctx,
            self.service,
            url or base_url(self.api),
            headers=headers,
            secrets=[key],
            timeout=AI_TIMEOUT_S,
        )


# --------------------------------------------------------------------------------------------
# Anthropic


class AnthropicTool(FlowModel):
    name: Str
    description: Str | None = None
    inputSchema: dict[str, Any] | None = None
    input_schema: dict[str, Any] | None = None


ANTHROPIC_ROLES = {"USER": "user", "ASSISTANT": "assistant"}
ANTHROPIC_VERSION = "2023-06-01"


def anthropic_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    given = tool.get("inputSchema") or tool.get("input_schema") or {}
    schema: dict[str, Any] = {"type": "object"}
    if isinstance(given, Mapping) and "properties" in given:
        schema["properties"] = given["properties"]
        if "required" in given:
            schema["required"] = given["required"]
    out: dict[str, Any] = {"name": to_text(tool.get("name")), "input_schema": schema}
    if tool.get("description"):
        out["description"] = to_text(tool["description"])
    return out


class AnthropicChatCompletion(ChatTask):
    """Send chat messages to Anthropic's Claude (Messages API)."""

    service: ClassVar[str] = "Anthropic"
    api: ClassVar[str] = "anthropic"
    short: ClassVar[str | None] = "anthropic_chatcompletion"

    type: Literal["io.kestra.plugin.anthropic.ChatCompletion"]
    model: Str
    messages: list[ChatMessage] | Str
    system: Str | None = None
    maxTokens: IntOrExpr | None = 1024
    temperature: NumberOrExpr | None = None
    topP: NumberOrExpr | None = None
    topK: IntOrExpr | None = None
    tools: list[AnthropicTool] | Str | None = None
    promptCaching: BoolOrExpr | None = False

    def body(self, ctx: TaskContext) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": render_str(ctx, self.model, "model", required=True),
            "max_tokens": render_int(ctx, self.maxTokens, "maxTokens", 1024),
        }
        optional = {
            "system": ctx.render_str(self.system),
            "temperature": render_float(ctx, self.temperature, "temperature"),
            "top_p": render_float(ctx, self.topP, "topP"),
            "top_k": render_int(ctx, self.topK, "topK"),
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        tools = render_json(ctx, self.tools, "tools") or []
        if tools:
            body["tools"] = [anthropic_tool(t) for t in tools if isinstance(t, Mapping)]
        body["messages"] = render_messages(ctx, self.messages, ANTHROPIC_ROLES)
        if render_bool(ctx, self.promptCaching, "promptCaching"):
            body["cache_control"] = {"type": "ephemeral"}
        return body

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        key = api_key(ctx, self.apiKey)
        body = self.body(ctx)
        headers = {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}
        async with self.client(ctx, key, headers) as api:
            answer = await api.object("POST", "/v1/messages", json=body)
        text: list[str] = []
        uses: list[dict[str, Any]] = []
        for block in answer.get("content") or []:
            if not isinstance(block, Mapping):
                continue
            if block.get("type") == "text":
                text.append(to_text(block.get("text")))
            elif block.get("type") == "tool_use":
                given = block.get("input")
                uses.append(
                    {
                        "id": block.get("id"),
                        "name": block.get("name"),
                        "input": given if isinstance(given, Mapping) else None,
                    }
                )
        usage = answer.get("usage") or {}
        return TaskOutcome(
            state="SUCCESS",
            outputs={
                "rawResponse": orjson.dumps(answer).decode(),
                "outputText": "".join(text),
                "toolUses": uses or None,
                "stopReason": answer.get("stop_reason"),
                "cacheCreationInputTokens": usage.get("cache_creation_input_tokens"),
                "cacheReadInputTokens": usage.get("cache_read_input_tokens"),
            },
            metrics=usage_metrics(
                usage,
                {
                    "usage.input.tokens": ("input_tokens",),
                    "usage.output.tokens": ("output_tokens",),
                    "usage.cache.creation.tokens": ("cache_creation_input_tokens",),
                    "usage.cache.read.tokens": ("cache_read_input_tokens",),
                },
            ),
        )


# --------------------------------------------------------------------------------------------
# Gemini

GEMINI_USAGE = {
    "candidate.token.count": "candidatesTokenCount",
    "prompt.token.count": "promptTokenCount",
    "total.token.count": "totalTokenCount",
}


def gemini_text(content: Any) -> str:
    """The google-genai ``Content.text()``: its text parts (not the thoughts) concatenated."""
    parts = content.get("parts") if isinstance(content, Mapping) else None
    return "".join(
        to_text(p.get("text"))
        for p in parts or []
        if isinstance(p, Mapping) and p.get("text") is not None and not p.get("thought")
    )


def gemini_metrics(answers: list[dict[str, Any]]) -> dict[str, Any]:
    totals = dict.fromkeys(GEMINI_USAGE, 0)
    for answer in answers:
        usage = answer.get("usageMetadata") or {}
        for metric, key in GEMINI_USAGE.items():
            number = usage.get(key)
            totals[metric] += number if isinstance(number, int) else 0
    return totals


class _Gemini(ChatTask):
    service: ClassVar[str] = "Gemini"
    api: ClassVar[str] = "gemini"

    model: Str

    async def generate(
        self, ctx: TaskContext, answers: list[dict[str, Any]], body: dict[str, Any]
    ) -> dict[str, Any]:
        key = api_key(ctx, self.apiKey)
        model = render_str(ctx, self.model, "model", required=True) or ""
        name = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
        async with self.client(ctx, key, {"x-goog-api-key": key}) as api:
            answer = await api.object("POST", f"/v1beta/{name}:generateContent", json=body)
        answers.append(answer)
        return answer


class GeminiChatCompletion(_Gemini):
    """Run chat turns with a Gemini model (each message sent in turn to one chat)."""

    short: ClassVar[str | None] = "gemini_chatcompletion"

    type: Literal["io.kestra.plugin.gemini.ChatCompletion"]
    messages: list[ChatMessage] | Str

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        history: list[dict[str, Any]] = []
        answers: list[dict[str, Any]] = []
        predictions: list[dict[str, Any]] = []
        for message in render_messages(ctx, self.messages, None):
            turn = {"role": "user", "parts": [{"text": message["content"]}]}
            answer = await self.generate(ctx, answers, {"contents": [*history, turn]})
            candidates = [c for c in answer.get("candidates") or [] if isinstance(c, Mapping)]
            predictions.extend(
                {
                    "safetyRatings": candidate.get("safetyRatings"),
                    "citationMetadata": candidate.get("citationMetadata"),
                    "content": gemini_text(candidate.get("content")),
                }
                for candidate in candidates
            )
            history.append(turn)
            first = candidates[0].get("content") if candidates else None
            if isinstance(first, Mapping):
                history.append({"role": "model", **{k: v for k, v in first.items() if k != "role"}})
        return TaskOutcome(
            state="SUCCESS", outputs={"predictions": predictions}, metrics=gemini_metrics(answers)
        )


class GeminiStructuredOutputCompletion(_Gemini):
    """Generate JSON shaped by a JSON Schema with a Gemini model."""

    short: ClassVar[str | None] = "gemini_structuredoutputcompletion"

    type: Literal["io.kestra.plugin.gemini.StructuredOutputCompletion"]
    prompt: Str
    jsonResponseSchema: Str

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        prompt = render_str(ctx, self.prompt, "prompt", required=True)
        schema = parse_json_text(
            render_str(ctx, self.jsonResponseSchema, "jsonResponseSchema", required=True) or "",
            "jsonResponseSchema",
        )
        body = {
            "contents": [{"role": "user", "parts": [{"text": prompt}]}],
            "generationConfig": {"responseMimeType": "application/json", "responseSchema": schema},
        }
        answers: list[dict[str, Any]] = []
        answer = await self.generate(ctx, answers, body)
        parts = dig(answer, "candidates", 0, "content", "parts") or []
        texts = [to_text(p["text"]) for p in parts if isinstance(p, Mapping) and "text" in p]
        return TaskOutcome(
            state="SUCCESS", outputs={"predictions": texts}, metrics=gemini_metrics(answers)
        )


# --------------------------------------------------------------------------------------------
# DeepSeek, Mistral and Perplexity (OpenAI-like chat completions over Kestra's HTTP client)

CHAT_ROLES = {"SYSTEM": "system", "ASSISTANT": "assistant", "USER": "user"}
DEEPSEEK_URL = "https://api.deepseek.com/v1"
MISTRAL_URL = "https://api.mistral.ai/v1"
DEEPSEEK_JSON_MODE = (
    "You must output valid JSON only (no extra text). "
    "Follow this JSON Schema strictly when formatting your response. "
    "If a field is unknown, output a sensible empty value of the correct type. "
    "JSON Schema:\n"
)


def first_content(answer: Mapping[str, Any], service: str) -> Any:
    content = dig(answer, "choices", 0, "message", "content")
    if dig(answer, "choices", 0, "message") is None:
        raise TaskError(f"{service}: the answer has no choices[0].message")
    return content


def deepseek_normalize(content: str | None, schema: str | None) -> str | None:
    """Kestra's ``DeepseekResponseNormalizer``: make an array answer when one was asked for."""
    if content is None:
        return None
    expects_array = schema is not None and '"type":"array"' in "".join(schema.split()).lower()
    if not expects_array:
        return content
    trimmed = content.strip()
    if trimmed.startswith("["):
        return content
    if trimmed.startswith("{") and trimmed.endswith("}"):
        return f"[{content}]"
    if trimmed.endswith("]"):
        return f"[{content}"
    return f"[{content}]"


class _ModelNameChat(ChatTask):
    """DeepSeek and Mistral: ``modelName``, ``baseUrl``, typed messages, a JSON schema option."""

    default_url: ClassVar[str] = ""

    modelName: Str
    baseUrl: Str | None = None
    messages: list[ChatMessage] | Str
    jsonResponseSchema: Str | None = None

    def apply_schema(self, body: dict[str, Any], schema: str) -> None:
        raise NotImplementedError

    def normalize(self, text: str, schema: str | None) -> str | None:
        return text

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        key = api_key(ctx, self.apiKey)
        url = ctx.render_str(self.baseUrl) or self.default_url
        schema = ctx.render_str(self.jsonResponseSchema)
        body: dict[str, Any] = {
            "model": render_str(ctx, self.modelName, "modelName", required=True),
            "messages": render_messages(ctx, self.messages, CHAT_ROLES),
        }
        if schema is not None:
            self.apply_schema(body, schema)
        headers = {"Authorization": f"Bearer {key}"}
        async with self.client(ctx, key, headers, url) as api:
            parsed = await api.object("POST", "/chat/completions", json=body)
        content = first_content(parsed, self.service)
        text = content if isinstance(content, str) else to_text(content)
        # Kestra re-serializes the answer it parsed (compact JSON).
        return {"response": self.normalize(text, schema), "raw": orjson.dumps(parsed).decode()}


class DeepSeekChatCompletion(_ModelNameChat):
    """Send a chat to DeepSeek's chat completions API (optional JSON mode)."""

    service: ClassVar[str] = "DeepSeek"
    short: ClassVar[str | None] = "deepseek_chatcompletion"
    default_url: ClassVar[str] = DEEPSEEK_URL

    type: Literal["io.kestra.plugin.deepseek.ChatCompletion"]
    baseUrl: Str | None = DEEPSEEK_URL

    def apply_schema(self, body: dict[str, Any], schema: str) -> None:
        if schema.strip():
            body["messages"].insert(0, {"role": "system", "content": DEEPSEEK_JSON_MODE + schema})
            body["response_format"] = {"type": "json_object"}

    def normalize(self, text: str, schema: str | None) -> str | None:
        return deepseek_normalize(text, schema)


class MistralChatCompletion(_ModelNameChat):
    """Send a chat to Mistral's chat completions API (optional JSON schema output)."""

    service: ClassVar[str] = "Mistral"
    short: ClassVar[str | None] = "mistral_chatcompletion"
    default_url: ClassVar[str] = MISTRAL_URL

    type: Literal["io.kestra.plugin.mistral.ChatCompletion"]
    baseUrl: Str | None = MISTRAL_URL

    def apply_schema(self, body: dict[str, Any], schema: str) -> None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "schema": parse_json_text(schema, "jsonResponseSchema"),
                "name": "kestra_schema",
                "strict": True,
            },
        }


class PerplexityChatCompletion(ChatTask):
    """Send a chat to Perplexity's chat completions API."""

    service: ClassVar[str] = "Perplexity"
    api: ClassVar[str] = "perplexity"
    short: ClassVar[str | None] = "perplexity_chatcompletion"

    type: Literal["io.kestra.plugin.perplexity.ChatCompletion"]
    model: Str
    messages: list[ChatMessage] | Str
    temperature: NumberOrExpr | None = 0.2
    topP: NumberOrExpr | None = 0.9
    topK: IntOrExpr | None = 0
    stream: BoolOrExpr | None = False
    presencePenalty: NumberOrExpr | None = 0.0
    frequencyPenalty: NumberOrExpr | None = 0.0
    maxTokens: IntOrExpr | None = None
    jsonResponseSchema: Str | None = None

    def body(self, ctx: TaskContext) -> dict[str, Any]:
        def number(value: Any, name: str, default: float) -> float:
            got = render_float(ctx, value, name)
            return default if got is None else got

        body: dict[str, Any] = {
            "model": render_str(ctx, self.model, "model", required=True),
            "messages": render_messages(ctx, self.messages, CHAT_ROLES),
            "temperature": number(self.temperature, "temperature", 0.2),
            "top_p": number(self.topP, "topP", 0.9),
            "top_k": render_int(ctx, self.topK, "topK", 0),
            "stream": render_bool(ctx, self.stream, "stream"),
            "presence_penalty": number(self.presencePenalty, "presencePenalty", 0.0),
            "frequency_penalty": number(self.frequencyPenalty, "frequencyPenalty", 0.0),
        }
        max_tokens = render_int(ctx, self.maxTokens, "maxTokens")
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        schema = ctx.render_str(self.jsonResponseSchema)
        if schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"schema": parse_json_text(schema, "jsonResponseSchema")},
            }
        return body

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        key = api_key(ctx, self.apiKey)
        body = self.body(ctx)
        async with self.client(ctx, key, {"Authorization": f"Bearer {key}"}) as api:
            answer = await api.call("POST", "/chat/completions", json=body)
        parsed = answer.object()
        return TaskOutcome(
            state="SUCCESS",
            outputs={"outputText": first_content(parsed, self.service), "rawResponse": answer.text},
            metrics=usage_metrics(parsed.get("usage"), CHAT_USAGE),
        )


# --------------------------------------------------------------------------------------------
# Hugging Face Inference API

HUGGINGFACE_URL = "https://api-inference.huggingface.co/models"


class HuggingFaceInference(ChatTask):
    """Call a model of Hugging Face's Inference API."""

    service: ClassVar[str] = "Hugging Face"
    short: ClassVar[str | None] = "huggingface_inference"

    type: Literal["io.kestra.plugin.huggingface.Inference"]
    model: Str
    inputs: Str
    parameters: dict[str, Any] | Str | None = None
    endpoint: Str | None = HUGGINGFACE_URL
    useCache: BoolOrExpr | None = True
    waitForModel: BoolOrExpr | None = False
    options: RequestOptions | None = None

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        key = api_key(ctx, self.apiKey)
        endpoint = (ctx.render_str(self.endpoint) or HUGGINGFACE_URL).rstrip("/")
        model = render_str(ctx, self.model, "model", required=True)
        payload: dict[str, Any] = {"inputs": render_str(ctx, self.inputs, "inputs", required=True)}
        parameters = render_json(ctx, self.parameters, "parameters")
        if parameters:
            payload["parameters"] = parameters
        headers = {
            "Authorization": f"Bearer {key}",
            "x-use-cache": to_text(render_bool(ctx, self.useCache, "useCache", True)),
            "x-wait-for-model": to_text(render_bool(ctx, self.waitForModel, "waitForModel")),
        }
        opts = self.options or RequestOptions()
        read = render_seconds(ctx, opts.readIdleTimeout, "options.readIdleTimeout", 300.0)
        ctx.log("DEBUG", f"Use Huggingface Inference API with input: {to_text(payload)}")
        async with ApiClient(
            ctx, self.service, endpoint, headers=headers, secrets=[key], timeout=read
        ) as api:
            answer = await api.json("POST", f"{endpoint}/{model}", json=payload)
        ctx.log("DEBUG", f"Response: {to_text(answer)}")
        return {"output": answer}


PLUGINS: list[type[TaskPlugin]] = [
    AnthropicChatCompletion,
    GeminiChatCompletion,
    GeminiStructuredOutputCompletion,
    DeepSeekChatCompletion,
    MistralChatCompletion,
    PerplexityChatCompletion,
    HuggingFaceInference,
]
