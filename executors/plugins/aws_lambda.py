"""Kestra's Lambda task, ``io.kestra.plugin.aws.lambda.Invoke``, on :mod:`executors.aws_client`.

What Kestra does (kestra-io/plugin-aws ``lambda.Invoke``):

- Properties: the AWS connection; ``functionArn`` (required: an ARN or a function name),
  ``functionPayload`` (a map, sent as compact JSON; none or an empty map sends no payload).
- A synchronous ``Invoke`` (RequestResponse). The response's ``Content-Type`` is kept when it
  is one of the well-known MIME types (``application/json``, ``text/plain``...), with its
  charset when the header had one; anything else is ``application/octet-stream``.
- A function error (``X-Amz-Function-Error``) fails the task: "Lambda Invoke task responded
  with error for function: <arn>. Error: <payload>" (the payload only for a JSON response).
  A service error (unknown function, refused credentials) fails it with "Lambda Invoke task
  execution failed for function: <arn>" and the server's answer.
- Otherwise the response body is stored in internal storage. Outputs ``uri``,
  ``contentLength``, ``contentType``; metrics ``file.size``, ``duration``.
- Then the function's CloudWatch logs (log group ``/aws/lambda/<name>``, events since 5 s before
  the call, up to 1000) are copied into the task's logs as ``[lambda] <message>``: up to 5
  ``FilterLogEvents`` attempts 3 s apart until some appear; a failure to read them is a WARN,
  never the task's failure.

Nothing differs but the wording of the service-error message, which carries the server's answer
here (Kestra chains it as the exception's cause).
"""

from __future__ import annotations

import time
import uuid
from typing import Any, ClassVar, Literal

import orjson

from executors.aws_client import connect
from executors.base import TaskContext, TaskError, TaskOutcome, error_message
from executors.plugin import TaskPlugin, render_map, render_str
from executors.plugins.aws_s3 import S3Connection
from executors.remote import common as c
from executors.remote.s3 import render_settings
from schemas.flow.common import Str

# Kestra's log polling: 5 attempts, 3 s apart, from 5 s before the invocation.
LOG_ATTEMPTS = 5
LOG_RETRY_S = 3.0
LOG_LOOKBACK_S = 5.0
LOG_MAX_EVENTS = 1000
# Apache HttpCore's ContentType constants (what ``ContentType.getByMimeType`` knows).
KNOWN_TYPES = frozenset(
    {
        "application/atom+xml",
        "application/x-www-form-urlencoded",
        "application/json",
        "application/octet-stream",
        "application/soap+xml",
        "application/svg+xml",
        "application/xhtml+xml",
        "application/xml",
        "image/bmp",
        "image/gif",
        "image/jpeg",
        "image/png",
        "image/svg+xml",
        "image/tiff",
        "image/webp",
        "multipart/form-data",
        "text/html",
        "text/plain",
        "text/xml",
    }
)
OCTET_STREAM = "application/octet-stream"


def content_type(header: str | None) -> str:
    """Kestra's ``parseContentType``: a known MIME type (with the charset given), else binary."""
    if not header:
        return OCTET_STREAM
    mime, _, params = header.partition(";")
    mime = mime.strip().lower()
    if mime not in KNOWN_TYPES:
        return OCTET_STREAM
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return f"{mime}; charset={value.strip().strip(chr(34)).upper()}"
    return mime


def function_name(arn: str) -> str:
    """The function's name in an ARN (``...:function:<name>[:qualifier]``) or a bare name."""
    if ":function:" in arn:
        return arn.split(":function:", 1)[1].split(":", 1)[0]
    return arn


class Invoke(TaskPlugin, S3Connection):
    """Invoke an AWS Lambda function synchronously and store its response."""

    family: ClassVar[str] = "aws"

    type: Literal["io.kestra.plugin.aws.lambda.Invoke"]
    functionArn: Str
    functionPayload: dict[str, Any] | Str | None = None

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        started = time.monotonic()
        since = ctx.clock().timestamp() - LOG_LOOKBACK_S
        arn = render_str(ctx, self.functionArn, "functionArn", required=True)
        assert arn is not None
        payload = render_map(ctx, self.functionPayload, "functionPayload")
        settings = render_settings(ctx, self)
        async with connect(ctx, self, "lambda", "Lambda", settings) as client:
            try:
                answer = await client.call(
                    "invoke",
                    arn,
                    FunctionName=arn,
                    Payload=orjson.dumps(payload) if payload else None,
                )
            except TaskError as exc:
                detail = str(exc).split(" failed: ", 1)[-1]
                raise TaskError(
                    f"Lambda Invoke task execution failed for function: {arn}: {detail}"
                ) from exc
            headers = (answer.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
            kind = content_type(headers.get("content-type"))
            body = answer.get("Payload")
            try:
                data: bytes = await body.read() if body is not None else b""
            except Exception as exc:
                raise TaskError(
                    f"Lambda Invoke task failed to read data for function: {arn}: "
                    f"{error_message(exc)}"
                ) from exc
            finally:
                if body is not None:
                    body.close()
        if answer.get("FunctionError"):
            _raise_function_error(ctx, arn, kind, data)
        ctx.log("DEBUG", f"Lambda {arn} invoked successfully")
        path = c.scratch_dir(ctx) / f".hw-lambda-{uuid.uuid4().hex}"
        path.write_bytes(data)
        uri = await c.store(ctx, path, uuid.uuid4().hex)
        await _copy_logs(ctx, settings, arn, since)
        metrics = {"file.size": len(data), "duration": time.monotonic() - started}
        outputs = {"uri": uri, "contentLength": len(data), "contentType": kind}
        return TaskOutcome("SUCCESS", outputs, metrics=metrics)


def _raise_function_error(ctx: TaskContext, arn: str, kind: str, data: bytes) -> None:
    try:
        text: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    ctx.log("DEBUG", f"Lambda function error for {arn}: response type: {kind}")
    message = f"Lambda Invoke task responded with error for function: {arn}"
    if text is not None and kind.split(";")[0] == "application/json":
        message += f". Error: {text}"
    raise TaskError(message)


async def _copy_logs(ctx: TaskContext, settings: Any, arn: str, since: float) -> None:
    """The function's CloudWatch log lines into the task's logs (Kestra's
    ``fetchAndLogLambdaLogs``); never fails the task."""
    group = f"/aws/lambda/{function_name(arn)}"
    try:
        async with connect(ctx, None, "logs", "CloudWatch Logs", settings) as logs:
            for attempt in range(LOG_ATTEMPTS):
                answer = await logs.call(
                    "filter_log_events",
                    group,
                    logGroupName=group,
                    startTime=int(since * 1000),
                )
                events = answer.get("events") or []
                if events:
                    for event in events[:LOG_MAX_EVENTS]:
                        message = str(event.get("message") or "").strip()
                        if message:
                            ctx.log("INFO", f"[lambda] {message}")
                    return
                if attempt < LOG_ATTEMPTS - 1 and not await ctx.sleep(LOG_RETRY_S):
                    return
        ctx.log("DEBUG", f"No CloudWatch logs found for {group} after {LOG_ATTEMPTS} attempts.")
    except TaskError as exc:
        ctx.log("WARN", f"Failed to fetch CloudWatch logs for Lambda {arn}: {exc}")


PLUGINS: list[type[TaskPlugin]] = [Invoke]
