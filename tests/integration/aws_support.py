"""What the AWS service tests share: the moto server of deploy/local (`up moto`), its IAM
credentials, a raw client to set up and inspect what the tasks did, and a task runner whose
credentials come from ``secret()`` as a flow would give them."""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from deploy.local.localsvc.config import load_config
from deploy.local.localsvc.moto_aws import credentials
from engine.expressions.runtime import ExpressionHooks
from executors.base import TaskContext, TaskOutcome
from executors.registry import Registry, add_plugins
from tests.remote_support import ctx_for

CREDS = credentials(load_config())
ENDPOINT = CREDS["endpoint"]
REGION = CREDS["region"]
SECRETS = {"AWS_ACCESS_KEY_ID": CREDS["accessKeyId"], "AWS_SECRET_KEY_ID": CREDS["secretKeyId"]}
# How a flow gives the connection: the keys from secrets.
CONNECTION = {
    "endpointOverride": ENDPOINT,
    "region": REGION,
    "accessKeyId": "{{ secret('AWS_ACCESS_KEY_ID') }}",
    "secretKeyId": "{{ secret('AWS_SECRET_KEY_ID') }}",
}


@contextlib.asynccontextmanager
async def aws(service: str) -> AsyncIterator[Any]:
    """A raw aiobotocore client of the moto server (test setup and inspection)."""
    from aiobotocore.session import get_session

    async with get_session().create_client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=CREDS["accessKeyId"],
        aws_secret_access_key=CREDS["secretKeyId"],
    ) as client:
        yield client


def moto_api(path: str, body: Any) -> None:
    """POST to moto's own API (canned Athena results, state transitions...)."""
    request = urllib.request.Request(
        ENDPOINT + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


def context(task: dict[str, Any], tmp_path: Path, secrets: dict[str, str]) -> TaskContext:
    return ctx_for(
        task, tmp_path, expression_hooks=ExpressionHooks(secret=lambda name: secrets[name])
    )


async def run(
    type_: str, task: dict[str, Any], tmp_path: Path, **extra: Any
) -> tuple[TaskOutcome, TaskContext]:
    """Run one task with the moto connection (``extra`` overrides it); secrets as ``SECRETS``."""
    secrets = dict(SECRETS)
    for name, value in list(extra.items()):
        if name.startswith("secret:"):
            secrets[name.removeprefix("secret:")] = value
            del extra[name]
    task = {"id": "step", "type": type_, **CONNECTION, **extra, **task}
    ctx = context(task, tmp_path, secrets)
    outcome = await add_plugins(Registry()).run(task, ctx)
    return outcome, ctx
