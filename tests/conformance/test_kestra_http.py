"""Kestra's corpus through the public REST API only, as an outside user runs it.

``headwater dev`` runs as a separate process (its own embedded broker and database); the
client (:mod:`tests.conformance.outside`) imports nothing of Headwater and talks httpx to it.
The pass count is printed (``-s``) and must not fall below ``MIN_PASSING``.
"""

from __future__ import annotations

import ast
import json
import pathlib
import shutil
import tempfile
from typing import Any

import pytest

from tests.conformance.outside.api import Client
from tests.conformance.outside.devserver import dev_server
from tests.conformance.outside.scenarios import load_manifest, report, run_corpus
from tests.conftest import CONFORMANCE

# Scenarios that must pass through the public API: 81 of the 82 (allow-failure-no-crash
# starts a flow without its required input, which Kestra's API refuses too: 422).
MIN_PASSING = 81
OUTSIDE = pathlib.Path(__file__).parent / "outside"
_HEADWATER = ("engine", "executors", "triggers", "schemas")


def test_outside_client_imports_nothing_of_headwater() -> None:
    for path in OUTSIDE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in _HEADWATER, f"{path.name} imports {name}"


@pytest.mark.conformance
@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_kestra_corpus_through_the_public_api() -> None:
    # Not pytest's tmp_path: a concurrent pytest run of the same user prunes old basetemp
    # directories, which would delete the server's database under it.
    work = pathlib.Path(tempfile.mkdtemp(prefix="hw-outside-"))
    try:
        async with dev_server(work) as url:
            client = Client(url)
            try:
                results = await run_corpus(client, CONFORMANCE)
                await webhook_answers_after_the_end(client)
            finally:
                await client.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report(results, load_manifest(CONFORMANCE))
    print("\n" + text)
    passed = sum(1 for failures in results.values() if not failures)
    assert passed >= MIN_PASSING, text


WAITING_HOOKS = """
id: hook-wait
namespace: outside.webhooks
tasks:
  - id: greet
    type: io.kestra.plugin.core.debug.Return
    format: "{{ trigger.body.name }}"
  - id: maybe_fail
    type: io.kestra.plugin.core.execution.Fail
    condition: "{{ trigger.body.name == 'fail' }}"
outputs:
  - id: greeting
    type: STRING
    value: "{{ outputs.greet.value }}"
triggers:
  - id: outputs_json
    type: io.kestra.plugin.core.trigger.Webhook
    key: json-key
    wait: true
    returnOutputs: true
  - id: outputs_text
    type: io.kestra.plugin.core.trigger.Webhook
    key: text-key
    wait: true
    returnOutputs: true
    responseContentType: text/plain
    responseCode: "{{ outputs.greet.value == 'Ada' ? 201 : 202 }}"
  - id: execution
    type: io.kestra.plugin.core.trigger.Webhook
    key: exec-key
    wait: true
  - id: no_wait
    type: io.kestra.plugin.core.trigger.Webhook
    key: now-key
"""


async def webhook_answers_after_the_end(client: Client) -> None:
    """Kestra's Webhook ``wait``/``returnOutputs``/``responseContentType``/``responseCode``:
    the call answers once the execution ended, with its outputs or the execution itself."""
    await client.deploy(WAITING_HOOKS)

    async def call(key: str, name: str) -> Any:
        body = json.dumps({"name": name}).encode()
        headers = {"Content-Type": "application/json"}
        return await client.webhook("POST", "outside.webhooks", "hook-wait", key, body, headers)

    as_json = await call("json-key", "Ada")
    assert as_json.status_code == 200, as_json.text
    assert as_json.json() == {"greeting": "Ada"}
    as_text = await call("text-key", "Ada")
    assert as_text.status_code == 201, as_text.text  # responseCode, rendered
    assert as_text.headers["content-type"].startswith("text/plain")
    assert json.loads(as_text.text) == {"greeting": "Ada"}  # a map: written as JSON text
    assert (await call("text-key", "Bob")).status_code == 202
    ended = await call("exec-key", "Ada")
    assert ended.status_code == 200, ended.text
    assert ended.json()["state"]["current"] == "SUCCESS"
    failed = await call("exec-key", "fail")
    assert failed.status_code == 500, failed.text  # the execution FAILED
    assert failed.json()["state"]["current"] == "FAILED"
    created = await call("now-key", "Ada")
    assert created.status_code == 200, created.text
    assert created.json()["state"] == "CREATED"  # answered at once
