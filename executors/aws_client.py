"""One AWS service client (aiobotocore) with Kestra's connection properties, for every AWS family.

The connection is Kestra's ``AbstractConnection``, read exactly as the S3 family reads it
(:func:`executors.remote.s3.render_settings`): ``accessKeyId`` + ``secretKeyId`` (+
``sessionToken``) when both are set, else botocore's default chain; ``stsRoleArn`` (with
``stsRoleExternalId``, ``stsRoleSessionName``, ``stsRoleSessionDuration`` PT15M,
``stsEndpointOverride``) is assumed first; ``region``; ``endpointOverride`` (a link-local
address is refused, as Kestra refuses it). ``compatibilityMode`` and ``forcePathStyle`` only
matter to S3 and are accepted. Every credential is one of the task's secrets: masked in logs.

:meth:`AwsClient.call` turns every failure into a TaskError that names the service, the
operation and the thing, and carries the server's answer (``ResourceNotFoundException: ...``,
``UnrecognizedClientException: The security token included in the request is invalid``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

from executors.base import TaskContext, TaskError, error_message
from executors.remote.s3 import CONNECT_TIMEOUT_S, S3Settings, _assume_role, render_settings

# The SDK's "standard" retry mode with Kestra's SDK default of 3 attempts: throttling and 5xx
# answers are retried with back-off, a refusal (4xx) is not.
MAX_ATTEMPTS = 3
# A synchronous call (a Lambda invocation runs up to 15 minutes) must not be cut by the
# client: the task's own ``timeout`` bounds it.
READ_TIMEOUT_S = 900.0

_XML_CODE = re.compile(r"<Code>([^<]*)</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")


class AwsClient:
    """An open client of one service; use :func:`connect`."""

    def __init__(self, client: Any, label: str) -> None:
        self.client = client
        self.label = label

    async def call(self, operation: str, what: str = "", **params: Any) -> dict[str, Any]:
        """One API call (``operation`` in botocore's snake case); None parameters are left out."""
        clean = {k: v for k, v in params.items() if v is not None}
        try:
            result: dict[str, Any] = await getattr(self.client, operation)(**clean)
        except TaskError:
            raise
        except Exception as exc:
            raise aws_error(self.label, operation, what, exc) from exc
        return result


def aws_error(label: str, operation: str, what: str, exc: BaseException) -> TaskError:
    """``<Service> <Operation> <what> failed: <Code>: <message>`` from a botocore error."""
    name = "".join(part.capitalize() for part in operation.split("_"))
    response = getattr(exc, "response", None)
    text = error_message(exc)
    if isinstance(response, dict):
        error = response.get("Error") or {}
        code = str(error.get("Code") or "")
        message = str(error.get("Message") or "")
        # A JSON-protocol service that answered with an XML error document (an S3-style
        # gateway or proxy): its code and message are inside.
        if message.lstrip().startswith("<"):
            found_code = _XML_CODE.search(message)
            found_message = _XML_MESSAGE.search(message)
            code = found_code.group(1) if found_code else code
            message = found_message.group(1) if found_message else message
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        if code or message:
            text = f"{code}: {message}" if code and message else code or message
            if status:
                text += f" (HTTP {status})"
    target = f" {what}" if what else ""
    return TaskError(f"{label} {name}{target} failed: {text}")


@contextlib.asynccontextmanager
async def connect(
    ctx: TaskContext,
    task: Any,
    service: str,
    label: str,
    settings: S3Settings | None = None,
    read_timeout_s: float = READ_TIMEOUT_S,
) -> AsyncIterator[AwsClient]:
    """A client of ``service`` (botocore's name: "athena", "lambda"...) for the block."""
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    settings = settings or render_settings(ctx, task)
    key, secret, token = settings.access_key, settings.secret_key, settings.session_token
    if settings.role_arn:
        key, secret, token = await _assume_role(settings)
        ctx.secrets = ctx.secrets | {secret, token}
    kwargs: dict[str, Any] = {
        "config": AioConfig(
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=read_timeout_s,
            retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        )
    }
    if settings.region:
        kwargs["region_name"] = settings.region
    if settings.endpoint:
        kwargs["endpoint_url"] = settings.endpoint.strip()
    if key and secret:
        kwargs.update(aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token)
    session = get_session()
    try:
        context = session.create_client(service, **kwargs)
        client = await context.__aenter__()
    except Exception as exc:
        if type(exc).__name__ == "NoRegionError":
            raise TaskError(
                f"{label}: no AWS region: set the 'region' property (or AWS_REGION on the worker)"
            ) from exc
        raise TaskError(f"{label}: cannot create the client: {error_message(exc)}") from exc
    try:
        yield AwsClient(client, label)
    finally:
        await context.__aexit__(None, None, None)
