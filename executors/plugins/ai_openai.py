"""Kestra's OpenAI types (kestra-io/plugin-openai): Chat Completions and Responses.

Shared behaviour (HTTP, errors, key masking, message roles): :mod:`executors.plugins.ai_chat`.

- ``openai.ChatCompletion``: ``apiKey``, ``model`` (required), ``prompt`` and/or ``messages``
  (``role``: system/assistant/anything else is user; at least one of the two), ``functions``
  (``name``, ``description``, ``parameters`` [``name``, ``type``, ``description``,
  ``enumValues``, ``required``] -> tools of JSON-Schema ``object`` parameters; a function without
  parameters is dropped, as in Kestra), ``functionCall`` (auto: the default; none; or the name
  of one of ``functions``, else an error), ``temperature`` (1.0, always sent), ``topP``, ``n``
  (1), ``stop``, ``maxTokens`` (sent as ``max_completion_tokens``), ``presencePenalty``,
  ``frequencyPenalty``, ``logitBias``, ``user``, ``jsonResponseSchema`` (``response_format``
  ``json_schema`` named ``kestra_schema``, strict), ``promptCaching`` (``prompt_cache_retention``
  24h). POST ``/chat/completions``. Outputs ``id``, ``object``, ``model``, ``choices``,
  ``usage`` as the API returned them; metrics ``usage.prompt.tokens``, ``usage.completion.tokens``,
  ``usage.total.tokens``, ``usage.prompt.cached_tokens``.
- ``openai.Responses``: ``model``, ``input`` (a text: one user message, or a JSON array / list of
  messages whose ``content`` items are ``input_text``, ``input_image`` (a ``kestra://`` image is
  sent inline as a base64 data URI, its type from ``mimeType`` or the file name: png, jpeg,
  webp, gif), ``input_file``), ``text``, ``tools``, ``toolChoice`` (NONE, AUTO (default),
  REQUIRED), ``store`` (true), ``previousResponseId`` (ignored when empty), ``promptId`` +
  ``promptVariables``, ``reasoning``, ``maxOutputTokens``, ``temperature`` (1.0), ``topP``,
  ``parallelToolCalls``, ``promptCaching``. POST ``/responses``. Outputs ``responseId``,
  ``outputText`` (each output item's text: a function call's arguments, a message's
  ``output_text`` parts joined by newlines; items joined by newlines, Kestra's rule, so an item
  without text adds an empty line), ``sources`` (the url_citation URLs), ``rawResponse``.

- ``openai.CreateImage``: ``prompt``, ``model`` (gpt-image-1), ``size`` (SMALL 256x256, MEDIUM
  512x512, LARGE 1024x1024 (default)), ``n``, ``quality`` (auto/low/medium/high), ``user``.
  POST ``/images/generations``. Output ``images``: each base64 image stored as a PNG in internal
  storage, else its URL. ``download`` is accepted and, as in Kestra, does not change the request.

What differs from Kestra: ``logitBias`` is sent as the map itself (Kestra nests it under a
``properties`` key the API does not know); an empty ``stop`` is not sent. ``clientTimeout`` is
accepted and, as in Kestra, not used. A Responses message whose ``content`` is a text is taken as
one ``input_text`` (Kestra's SDK refuses it).
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from executors.base import TaskContext, TaskError, TaskOutcome, to_text
from executors.plugin import (
    TaskPlugin,
    render_bool,
    render_float,
    render_int,
    render_json,
    render_str,
)
from executors.plugins.ai_chat import (
    CHAT_USAGE,
    ChatMessage,
    ChatTask,
    api_key,
    parse_json_text,
    render_messages,
    usage_metrics,
)
from schemas.flow.common import BoolOrExpr, FlowModel, IntOrExpr, NumberOrExpr, Str

IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif", "image/jpg")


class FunctionParameter(FlowModel):
    name: Str
    description: Str | None = None
    type: Str
    enumValues: list[Str] | Str | None = None
    required: BoolOrExpr | None = None


class ChatFunction(FlowModel):
    name: Str | None = None
    description: Str | None = None
    parameters: list[FunctionParameter] | Str | None = None


OPENAI_ROLES = {"ASSISTANT": "assistant", "SYSTEM": "system", "USER": "user"}


def openai_tool(function: Mapping[str, Any], index: int) -> dict[str, Any]:
    """Kestra's ``toFunctionDefinition``: parameters as a JSON Schema object."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    where = f"functions[{index}]"
    for param in function.get("parameters") or []:
        if not isinstance(param, Mapping) or not param.get("name") or not param.get("type"):
            raise TaskError(f"property '{where}.parameters': each needs a name and a type")
        name = to_text(param["name"])
        schema: dict[str, Any] = {"type": to_text(param["type"])}
        if param.get("description") is not None:
            schema["description"] = to_text(param["description"])
        enum = param.get("enumValues")
        if enum:
            schema["enum"] = [to_text(v) for v in enum]
        if str(param.get("required")).lower() == "true":
            required.append(name)
        properties[name] = schema
    if not function.get("name"):
        raise TaskError(f"property '{where}.name' is required")
    definition: dict[str, Any] = {"name": to_text(function["name"])}
    if function.get("description") is not None:
        definition["description"] = to_text(function["description"])
    definition["parameters"] = {"type": "object", "properties": properties, "required": required}
    return {"type": "function", "function": definition}


class OpenAIChatCompletion(ChatTask):
    """Send a prompt or messages to OpenAI's Chat Completions API."""

    service: ClassVar[str] = "OpenAI"
    api: ClassVar[str] = "openai"
    short: ClassVar[str | None] = "openai_chatcompletion"

    type: Literal["io.kestra.plugin.openai.ChatCompletion"]
    model: Str
    user: Str | None = None
    clientTimeout: IntOrExpr | None = 10
    messages: list[ChatMessage] | Str | None = None
    functions: list[ChatFunction] | Str | None = None
    functionCall: Str | None = "auto"
    prompt: Str | None = None
    temperature: NumberOrExpr | None = 1.0
    topP: NumberOrExpr | None = None
    n: IntOrExpr | None = 1
    stop: list[Str] | Str | None = None
    maxTokens: IntOrExpr | None = None
    presencePenalty: NumberOrExpr | None = None
    frequencyPenalty: NumberOrExpr | None = None
    logitBias: dict[str, IntOrExpr] | Str | None = None
    jsonResponseSchema: Str | None = None
    promptCaching: BoolOrExpr | None = None

    def body(self, ctx: TaskContext) -> dict[str, Any]:
        if self.messages is None and self.prompt is None:
            raise TaskError("Either `messages` or `prompt` must be set")
        messages = render_messages(ctx, self.messages, OPENAI_ROLES, default="user")
        if self.prompt is not None:
            messages.append({"role": "user", "content": ctx.render_str(self.prompt) or ""})
        body: dict[str, Any] = {
            "messages": messages,
            "model": render_str(ctx, self.model, "model", required=True),
            "n": render_int(ctx, self.n, "n", 1),
        }
        temperature = render_float(ctx, self.temperature, "temperature")
        body["temperature"] = 1.0 if temperature is None else temperature
        optional = {
            "max_completion_tokens": render_int(ctx, self.maxTokens, "maxTokens"),
            "presence_penalty": render_float(ctx, self.presencePenalty, "presencePenalty"),
            "frequency_penalty": render_float(ctx, self.frequencyPenalty, "frequencyPenalty"),
            "top_p": render_float(ctx, self.topP, "topP"),
            "user": ctx.render_str(self.user),
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        schema = ctx.render_str(self.jsonResponseSchema)
        if schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": "kestra_schema",
                    "strict": True,
                    "schema": parse_json_text(schema, "jsonResponseSchema"),
                },
            }
        if render_bool(ctx, self.promptCaching, "promptCaching"):
            body["prompt_cache_retention"] = "24h"
        self._tools(ctx, body)
        stop = render_json(ctx, self.stop, "stop")
        if stop:
            body["stop"] = [to_text(s) for s in (stop if isinstance(stop, list) else [stop])]
        bias = render_json(ctx, self.logitBias, "logitBias")
        if bias:
            body["logit_bias"] = {str(k): int(to_text(v)) for k, v in bias.items()}
        return body

    def _tools(self, ctx: TaskContext, body: dict[str, Any]) -> None:
        functions = render_json(ctx, self.functions, "functions") or []
        tools = [
            openai_tool(f, i)
            for i, f in enumerate(functions)
            if isinstance(f, Mapping) and f.get("parameters") is not None
        ]
        choice = ctx.render_str(self.functionCall) or "auto"
        if tools:
            body["tools"] = tools
            if choice.lower() in ("auto", "none"):
                body["tool_choice"] = choice.lower()
            elif choice in [t["function"]["name"] for t in tools]:
                body["tool_choice"] = {"type": "function", "function": {"name": choice}}
            else:
                raise TaskError(
                    f"Requested function '{choice}' for `functionCall` is not provided in "
                    "`functions` list."
                )
        elif choice.lower() == "none":
            body["tool_choice"] = "none"
        elif choice.lower() != "auto":
            raise TaskError(
                f"Cannot specify a function name for `functionCall` ('{choice}') when no "
                "`functions` are provided."
            )

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        key = api_key(ctx, self.apiKey)
        body = self.body(ctx)
        async with self.client(ctx, key, {"Authorization": f"Bearer {key}"}) as api:
            answer = await api.object("POST", "/chat/completions", json=body)
        usage = answer.get("usage")
        return TaskOutcome(
            state="SUCCESS",
            outputs={
                "id": answer.get("id"),
                "object": answer.get("object"),
                "model": answer.get("model"),
                "choices": answer.get("choices") or [],
                "usage": usage,
            },
            metrics=usage_metrics(usage, CHAT_USAGE),
        )


def openai_response_text(items: Any) -> str:
    """Kestra's ``extractOutputText``: one text per output item, joined by newlines."""
    texts: list[str] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        if item.get("type") == "function_call":
            texts.append(to_text(item.get("arguments")))
        elif item.get("type") == "message":
            parts = [
                to_text(c.get("text"))
                for c in item.get("content") or []
                if isinstance(c, Mapping) and c.get("type") == "output_text"
            ]
            texts.append("\n".join(parts))
        else:
            texts.append("")
    return "\n".join(texts)


def openai_sources(items: Any) -> list[str]:
    """The URLs of the url_citation annotations of the messages' output texts."""
    urls: list[str] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping) or item.get("type") != "message":
            continue
        for content in item.get("content") or []:
            notes = (content or {}).get("annotations") or []
            urls.extend(
                to_text(note.get("url"))
                for note in notes
                if isinstance(note, Mapping) and note.get("type") == "url_citation"
            )
    return urls


class OpenAIResponses(ChatTask):
    """Call OpenAI's Responses API (text, tools, structured output, conversations)."""

    service: ClassVar[str] = "OpenAI"
    api: ClassVar[str] = "openai"
    short: ClassVar[str | None] = "openai_responses"

    type: Literal["io.kestra.plugin.openai.Responses"]
    model: Str
    input: Any
    user: Str | None = None
    clientTimeout: IntOrExpr | None = 10
    text: dict[str, Any] | Str | None = None
    tools: list[dict[str, Any]] | Str | None = None
    toolChoice: Literal["NONE", "AUTO", "REQUIRED"] | Str | None = None
    store: BoolOrExpr | None = True
    previousResponseId: Str | None = None
    promptId: Str | None = None
    promptVariables: dict[str, Any] | Str | None = None
    reasoning: dict[str, Any] | Str | None = None
    maxOutputTokens: IntOrExpr | None = None
    temperature: NumberOrExpr | None = 1.0
    topP: NumberOrExpr | None = None
    parallelToolCalls: BoolOrExpr | None = None
    promptCaching: BoolOrExpr | None = None

    async def _input(self, ctx: TaskContext) -> list[dict[str, Any]]:
        rendered = ctx.render(self.input)
        if isinstance(rendered, str):
            text = rendered.strip()
            if not (text.startswith("[") and text.endswith("]")):
                return [{"role": "user", "content": [{"type": "input_text", "text": rendered}]}]
            rendered = parse_json_text(text, "input")
        if not isinstance(rendered, list):
            raise TaskError(
                f"property 'input': expected a text or a list of messages, got {rendered!r}"
            )
        messages: list[dict[str, Any]] = []
        for i, message in enumerate(rendered):
            if not isinstance(message, Mapping) or "role" not in message:
                raise TaskError(f"property 'input[{i}]': expected a message with a role")
            content = message.get("content")
            if isinstance(content, str):
                content = [{"type": "input_text", "text": content}]
            items = [await self._content(ctx, c, f"input[{i}]") for c in content or []]
            messages.append({"role": to_text(message["role"]), "content": items})
        return messages

    async def _content(self, ctx: TaskContext, item: Any, where: str) -> Any:
        if not isinstance(item, Mapping):
            raise TaskError(f"property '{where}.content': expected maps, got {item!r}")
        kind = item.get("type")
        if kind == "input_text":
            return {"type": "input_text", "text": to_text(item.get("text"))}
        if kind == "input_file":
            keep = ("file_id", "file_data", "filename")
            return {"type": "input_file", **{k: item[k] for k in keep if k in item}}
        if kind != "input_image" or not item.get("image_url"):
            return dict(item)
        url = to_text(item["image_url"])
        detail = item.get("detail") or "auto"
        if url.startswith("kestra://"):
            name = url.rstrip("/").rsplit("/", 1)[-1]
            mime = item.get("mimeType") or mimetypes.guess_type(name)[0]
            if mime is None or str(mime).lower() not in IMAGE_TYPES:
                raise TaskError(
                    f"Unsupported or unknown MIME type '{mime}' for file '{name}': give a "
                    "'mimeType' (image/png, image/jpeg, image/webp or image/gif) with the "
                    "image_url of an internal-storage file"
                )
            if ctx.storage is None:
                raise TaskError(f"{url}: this worker has no internal storage")
            data = base64.b64encode(await ctx.storage.read(url)).decode()
            url = f"data:{mime};base64,{data}"
        return {"type": "input_image", "image_url": url, "detail": detail}

    async def body(self, ctx: TaskContext) -> dict[str, Any]:
        temperature = render_float(ctx, self.temperature, "temperature")
        body: dict[str, Any] = {
            "input": await self._input(ctx),
            "model": render_str(ctx, self.model, "model", required=True),
            "store": render_bool(ctx, self.store, "store", True),
            "temperature": 1.0 if temperature is None else temperature,
        }
        top_p = render_float(ctx, self.topP, "topP")
        if top_p is not None:
            body["top_p"] = top_p
        prompt_id = ctx.render_str(self.promptId)
        if prompt_id is not None:
            body["prompt"] = {"id": prompt_id}
            variables = render_json(ctx, self.promptVariables, "promptVariables")
            if variables is not None:
                body["prompt"]["variables"] = variables
        tools = render_json(ctx, self.tools, "tools")
        if tools:
            body["tools"] = tools
        choice = (ctx.render_str(self.toolChoice) or "AUTO").upper()
        if choice not in ("NONE", "AUTO", "REQUIRED"):
            raise TaskError(
                f"property 'toolChoice': expected NONE, AUTO or REQUIRED, got {choice!r}"
            )
        body["tool_choice"] = choice.lower()
        previous = ctx.render_str(self.previousResponseId)
        if previous:
            body["previous_response_id"] = previous
        optional = {
            "reasoning": render_json(ctx, self.reasoning, "reasoning"),
            "max_output_tokens": render_int(ctx, self.maxOutputTokens, "maxOutputTokens"),
            "text": render_json(ctx, self.text, "text"),
            "user": ctx.render_str(self.user),
        }
        if self.parallelToolCalls is not None:
            optional["parallel_tool_calls"] = render_bool(
                ctx, self.parallelToolCalls, "parallelToolCalls"
            )
        body.update({k: v for k, v in optional.items() if v is not None})
        if render_bool(ctx, self.promptCaching, "promptCaching"):
            body["prompt_cache_retention"] = "24h"
        return body

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        key = api_key(ctx, self.apiKey)
        body = await self.body(ctx)
        async with self.client(ctx, key, {"Authorization": f"Bearer {key}"}) as api:
            answer = await api.object("POST", "/responses", json=body)
        metrics = usage_metrics(
            answer.get("usage"),
            {
                "usage.prompt.tokens": ("input_tokens",),
                "usage.completion.tokens": ("output_tokens",),
                "usage.total.tokens": ("total_tokens",),
                "usage.prompt.cached_tokens": ("input_tokens_details", "cached_tokens"),
            },
        )
        output = answer.get("output")
        return TaskOutcome(
            state="SUCCESS",
            outputs={
                "responseId": answer.get("id"),
                "outputText": openai_response_text(output),
                "sources": openai_sources(output),
                "rawResponse": answer,
            },
            metrics=metrics,
        )


IMAGE_SIZES = {"SMALL": "256x256", "MEDIUM": "512x512", "LARGE": "1024x1024"}
IMAGE_QUALITIES = ("AUTO", "LOW", "MEDIUM", "HIGH")


class OpenAICreateImage(ChatTask):
    """Generate images from a prompt with OpenAI's Images API."""

    service: ClassVar[str] = "OpenAI"
    api: ClassVar[str] = "openai"
    short: ClassVar[str | None] = "openai_createimage"

    type: Literal["io.kestra.plugin.openai.CreateImage"]
    prompt: Str
    user: Str | None = None
    clientTimeout: IntOrExpr | None = 10
    n: IntOrExpr | None = None
    size: Literal["SMALL", "MEDIUM", "LARGE"] | Str | None = "LARGE"
    model: Str | None = "gpt-image-1"
    quality: Literal["AUTO", "LOW", "MEDIUM", "HIGH"] | Str | None = None
    download: BoolOrExpr | None = False

    def body(self, ctx: TaskContext) -> dict[str, Any]:
        size = (ctx.render_str(self.size) or "LARGE").upper()
        if size not in IMAGE_SIZES:
            raise TaskError(f"property 'size': expected SMALL, MEDIUM or LARGE, got {size!r}")
        body: dict[str, Any] = {
            "model": ctx.render_str(self.model) or "gpt-image-1",
            "prompt": render_str(ctx, self.prompt, "prompt", required=True),
            "size": IMAGE_SIZES[size],
        }
        n = render_int(ctx, self.n, "n")
        if n is not None:
            body["n"] = n
        user = ctx.render_str(self.user)
        if user is not None:
            body["user"] = user
        quality = ctx.render_str(self.quality)
        if quality is not None:
            if quality.upper() not in IMAGE_QUALITIES:
                raise TaskError(
                    f"property 'quality': expected AUTO, LOW, MEDIUM or HIGH, got {quality!r}"
                )
            body["quality"] = quality.lower()
        return body

    async def run(self, ctx: TaskContext) -> dict[str, Any]:
        key = api_key(ctx, self.apiKey)
        body = self.body(ctx)
        async with self.client(ctx, key, {"Authorization": f"Bearer {key}"}) as api:
            answer = await api.object("POST", "/images/generations", json=body)
        images: list[str] = []
        for i, image in enumerate(answer.get("data") or []):
            if not isinstance(image, Mapping):
                continue
            if image.get("b64_json"):
                if ctx.storage is None:
                    raise TaskError("OpenAI: this worker has no internal storage for the images")
                try:
                    data = base64.b64decode(to_text(image["b64_json"]), validate=True)
                except ValueError:
                    raise TaskError(f"OpenAI: image {i} is not valid base64") from None
                images.append(await ctx.storage.put(ctx.execution_id, f"openai-{i}.png", data))
            elif image.get("url"):
                images.append(to_text(image["url"]))
        return {"images": images}


PLUGINS: list[type[TaskPlugin]] = [OpenAIChatCompletion, OpenAIResponses, OpenAICreateImage]
