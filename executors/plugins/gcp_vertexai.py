"""Kestra's ``io.kestra.plugin.gcp.vertexai.ChatCompletion``: a chat with a Gemini model on
Vertex AI (``generateContent`` of Vertex AI's REST API, v1).

What Kestra does (the Vertex AI Java SDK's ``ChatSession``), and what this module ports: the
credentials (as every GCP type), ``region``, ``modelId`` (``gemini-pro``), ``parameters``
(``temperature`` 0.2, ``maxOutputTokens`` 128, ``topK`` 40, ``topP`` 0.95). A chat session
starts with ``history`` (each message's ``content`` as a user turn: Kestra ignores its
``author``), then the deprecated ``context`` is sent as a first message, then each of
``messages`` in turn; every model answer joins the conversation, so each request carries the
turns before it (``POST https://{region}-aiplatform.googleapis.com/v1/projects/{p}/locations/
{region}/publishers/google/models/{model}:generateContent``). Output ``predictions``: for each
candidate of each answer to ``messages``, ``content`` (its first part's text),
``safetyAttributes`` (``scores``: severity scores, ``categories``, ``blocked``: any blocked)
and ``citationMetadata`` (``citations``: each citation's title). Metrics
``candidate.token.count``, ``prompt.token.count``, ``total.token.count`` (summed). Google's
refusal fails the task with its message. Not tested against Google itself: tests run against a
local receiver answering as Vertex AI does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from executors.api_client import ApiTask
from executors.base import TaskContext, TaskError, TaskOutcome
from executors.plugin import render_str
from executors.plugins.gcp_gcs import GcpConnection
from executors.remote.google_api import VERTEX_AI, google_api, render_settings
from schemas.flow.common import FlowModel, NumberOrExpr, Str


class ModelParameter(FlowModel):
    temperature: NumberOrExpr = 0.2
    maxOutputTokens: NumberOrExpr = 128
    topK: NumberOrExpr = 40
    topP: NumberOrExpr = 0.95


class Message(FlowModel):
    author: Str | None = None
    content: Str


class Example(FlowModel):
    input: Str | None = None
    output: Str | None = None


def turn(role: str, text: str | None) -> dict[str, Any]:
    return {"role": role, "parts": [{"text": text or ""}]}


def prediction(candidate: Mapping[str, Any]) -> dict[str, Any]:
    """Kestra's ``Prediction.of``."""
    ratings = candidate.get("safetyRatings") or []
    parts = (candidate.get("content") or {}).get("parts") or []
    if not parts:
        reason = candidate.get("finishReason", "no content")
        raise TaskError(f"Vertex AI: a candidate has no content (finishReason {reason})")
    citations = (candidate.get("citationMetadata") or {}).get("citations") or []
    return {
        "safetyAttributes": {
            "scores": [float(r.get("severityScore") or 0.0) for r in ratings],
            "categories": [str(r.get("category")) for r in ratings],
            "blocked": any(bool(r.get("blocked")) for r in ratings),
        },
        "citationMetadata": {"citations": [{"citations": [c.get("title")]} for c in citations]},
        "content": parts[0].get("text"),
    }


class ChatCompletion(ApiTask, GcpConnection):
    """Chat with a Gemini model on Vertex AI."""

    family: ClassVar[str] = "gcp"

    type: Literal["io.kestra.plugin.gcp.vertexai.ChatCompletion"]
    region: Str
    modelId: Str = "gemini-pro"
    parameters: ModelParameter = ModelParameter()
    context: Str | None = None
    examples: list[Example] | None = None
    messages: list[Message]
    history: list[Message] | None = None

    def generation(self, ctx: TaskContext) -> dict[str, Any]:
        p = self.parameters
        rendered = ctx.render(p.model_dump())
        try:
            return {
                "temperature": float(rendered["temperature"]),
                "maxOutputTokens": int(rendered["maxOutputTokens"]),
                "topK": int(float(rendered["topK"])),
                "topP": float(rendered["topP"]),
            }
        except (TypeError, ValueError) as exc:
            raise TaskError(f"property 'parameters': {exc}") from exc

    async def execute(self, ctx: TaskContext) -> TaskOutcome:
        region = render_str(ctx, self.region, "region", required=True) or ""
        model = render_str(ctx, self.modelId, "modelId", required=True)
        config = self.generation(ctx)
        contents = [turn("user", render_str(ctx, m.content, "content")) for m in self.history or []]
        metrics = {"candidate.token.count": 0, "prompt.token.count": 0, "total.token.count": 0}
        predictions: list[dict[str, Any]] = []
        async with google_api(ctx, render_settings(ctx, self), VERTEX_AI, region=region) as api:
            path = (
                f"/v1/projects/{api.project}/locations/{region}/publishers/google/models/"
                f"{model}:generateContent"
            )

            async def send(text: str | None) -> list[dict[str, Any]]:
                contents.append(turn("user", text))
                answer = await api.json(
                    "POST", path, json={"contents": contents, "generationConfig": config}
                )
                answer = answer or {}
                candidates: list[dict[str, Any]] = answer.get("candidates") or []
                usage = answer.get("usageMetadata") or {}
                metrics["candidate.token.count"] += int(usage.get("candidatesTokenCount") or 0)
                metrics["prompt.token.count"] += int(usage.get("promptTokenCount") or 0)
                metrics["total.token.count"] += int(usage.get("totalTokenCount") or 0)
                if candidates:
                    reply = candidates[0].get("content") or {}
                    contents.append({"role": "model", "parts": reply.get("parts") or []})
                return candidates

            if self.context is not None:
                await send(render_str(ctx, self.context, "context"))
            for message in self.messages:
                answered = await send(render_str(ctx, message.content, "content"))
                predictions.extend(prediction(candidate) for candidate in answered)
        return TaskOutcome("SUCCESS", {"predictions": predictions}, metrics=metrics)


PLUGINS: list[type[ApiTask]] = [ChatCompletion]
