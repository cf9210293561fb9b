"""lambda.Invoke's answers that moto cannot give (its Lambda runs no code and knows every
name): a function's own error and an unknown function, played by a local receiver speaking
Lambda's REST API, which also shows the exact request the task sends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.stores.storage import LocalStorage, TaskLocation
from executors.plugins.aws_lambda import content_type, function_name
from executors.registry import Registry, add_plugins
from tests.unit.api_receiver import context, serve

PATH = (
    "/2015-03-31/functions/"
    "arn%3Aaws%3Alambda%3Aeu-central-1%3A123456789012%3Afunction%3Amy-function/invocations"
)
SECRET = "s3cr3t-lambda-key-99"


async def invoke(url: str, tmp_path: Path, **task: Any) -> tuple[Any, Any]:
    definition = {
        "id": "invoke",
        "type": "io.kestra.plugin.aws.lambda.Invoke",
        "endpointOverride": url,
        "region": "eu-central-1",
        "accessKeyId": "AKIATESTTESTTEST0000",
        "secretKeyId": SECRET,
        "functionArn": "arn:aws:lambda:eu-central-1:123456789012:function:my-function",
        **task,
    }
    storage = LocalStorage(tmp_path).for_task(TaskLocation("company.team", "f", "e", "t", "r"))
    ctx = context(definition, storage=storage, working_dir=str(tmp_path / "work"))
    outcome = await add_plugins(Registry()).run(definition, ctx)
    return outcome, ctx


async def test_a_function_error_fails_with_its_json_payload(tmp_path: Path) -> None:
    error = {"errorMessage": "'path'", "errorType": "KeyError"}
    with serve() as receiver:
        receiver.on("POST", PATH, (200, error, {"X-Amz-Function-Error": "Unhandled"}))
        receiver.on("POST", "/", (400, {"__type": "ResourceNotFoundException"}))
        outcome, ctx = await invoke(receiver.url, tmp_path, functionPayload={"id": 1})
    sent = receiver.sent("POST", PATH)[0]
    assert sent.body == b'{"id":1}'
    assert "Credential=AKIATESTTESTTEST0000/" in sent.headers["authorization"]
    assert "/eu-central-1/lambda/aws4_request" in sent.headers["authorization"]
    assert outcome.state == "FAILED"
    assert outcome.error == (
        "Lambda Invoke task responded with error for function: "
        "arn:aws:lambda:eu-central-1:123456789012:function:my-function. "
        'Error: {"errorMessage": "\'path\'", "errorType": "KeyError"}'
    )
    assert all(SECRET not in line.message for line in ctx.logs)


async def test_a_text_function_error_leaves_the_payload_out(tmp_path: Path) -> None:
    with serve() as receiver:
        receiver.on("POST", PATH, (200, "boom", {"X-Amz-Function-Error": "Handled"}))
        outcome, _ = await invoke(receiver.url, tmp_path)
    assert receiver.sent("POST", PATH)[0].body == b""
    assert outcome.error == (
        "Lambda Invoke task responded with error for function: "
        "arn:aws:lambda:eu-central-1:123456789012:function:my-function"
    )


async def test_an_unknown_function_fails_with_the_services_answer(tmp_path: Path) -> None:
    missing = {
        "Type": "User",
        "message": "Function not found: arn:aws:lambda:eu-central-1:123456789012:function:x",
    }
    with serve() as receiver:
        receiver.on("POST", PATH, (404, missing, {"x-amzn-ErrorType": "ResourceNotFoundException"}))
        outcome, _ = await invoke(receiver.url, tmp_path)
    assert outcome.state == "FAILED"
    assert outcome.error == (
        "Lambda Invoke task execution failed for function: "
        "arn:aws:lambda:eu-central-1:123456789012:function:my-function: "
        "ResourceNotFoundException: Function not found: "
        "arn:aws:lambda:eu-central-1:123456789012:function:x (HTTP 404)"
    )


async def test_a_binary_answer_is_stored_as_octet_stream(tmp_path: Path) -> None:
    with serve() as receiver:
        receiver.on("POST", PATH, (200, b"\x00\x01binary", {}))
        receiver.on("POST", "/", (400, {"__type": "ResourceNotFoundException"}))
        outcome, ctx = await invoke(receiver.url, tmp_path)
    # The receiver answers text/plain for bytes: a known type, kept.
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs["contentType"] == "text/plain"
    assert outcome.outputs["contentLength"] == 8
    assert any("Failed to fetch CloudWatch logs" in line.message for line in ctx.logs)


def test_content_types_as_kestra_parses_them() -> None:
    assert content_type("application/json") == "application/json"
    assert content_type("application/json; charset=utf-8") == "application/json; charset=UTF-8"
    assert content_type("application/vnd.custom+json") == "application/octet-stream"
    assert content_type(None) == "application/octet-stream"
    assert function_name("arn:aws:lambda:eu-central-1:1:function:ResultHandler:kestra") == (
        "ResultHandler"
    )
    assert function_name("demo") == "demo"
