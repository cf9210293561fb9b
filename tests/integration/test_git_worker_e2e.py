"""The git tasks and script namespaceFiles on the real path: Kafka (Tansu), the executor, the real
engine.worker.Worker with its storage on disk; flows deployed to hw.flows, a bare repository.

- A flow runs PushFlows (the worker reads the deployed flows from hw.flows) and a shell task with
  ``namespaceFiles`` (the worker's namespace file store); the repository holds the exported flow,
  the shell task ran the namespace file.
- The repository changes; a flow runs SyncFlows: the new revision is on hw.flows (read back by a
  follower of the topic, as the executor and the API read it), deployed by the worker through
  the API's path.
"""

from __future__ import annotations

import pathlib

import pytest

from engine.flows.store import FlowFollower
from engine.reducer.model import State
from engine.stores.nsfiles import NamespaceFiles
from tests.conformance.e2e_stack import Stack, stack_settings
from tests.git_support import git
from tests.git_tasks_support import bare_repo, checkout

pytestmark = [pytest.mark.kafka]

APP = """id: app
namespace: company.team
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: version one
"""

EXPORT = """id: export
namespace: ops
tasks:
  - id: push
    type: io.kestra.plugin.git.PushFlows
    url: URL
    sourceNamespace: company.team
    authorName: Ops
    authorEmail: ops@example.com
  - id: script
    type: io.kestra.plugin.scripts.shell.Commands
    namespaceFiles:
      namespaces: [company.team]
      include: [scripts/**]
    commands:
      - sh scripts/hello.sh
"""

IMPORT = """id: import
namespace: ops
tasks:
  - id: sync
    type: io.kestra.plugin.git.SyncFlows
    url: URL
    targetNamespace: company.team
"""


async def test_push_sync_and_namespace_files_on_the_real_worker(tmp_path: pathlib.Path) -> None:
    stack = Stack(stack_settings(partitions=2))
    follower: FlowFollower | None = None
    try:
        await stack.start(real_worker=tmp_path / "worker")
        assert stack.real is not None
        await stack.real.wait_ready()
        bare = bare_repo(tmp_path, "flows.git", {"README.md": "flows\n"})
        NamespaceFiles(stack.real.worker.storage).put_sync(
            "company.team",
            "/scripts/hello.sh",
            b'echo \'::{"outputs":{"said":"hello from a namespace file"}}::\'\n',
        )
        await stack.deploy(APP)
        await stack.deploy(EXPORT.replace("URL", bare.as_uri()))
        await stack.deploy(IMPORT.replace("URL", bare.as_uri()))

        execution = await stack.start_execution("ops", "export")
        state = await stack.wait_terminal(execution)
        runs = {r.task_id: r for r in state.task_runs.values()}
        assert state.state == State.SUCCESS, {k: (r.state, r.attempts) for k, r in runs.items()}
        assert runs["script"].outputs["vars"] == {"said": "hello from a namespace file"}
        seen = checkout(bare, "main", tmp_path / "seen")
        assert (seen / "_flows" / "app.yml").read_text() == APP
        assert (
            git("log", "-1", "--format=%an|%s", cwd=seen)
            == "Ops|Add flows from company.team namespace"
        )

        # Someone changes the flow in Git; the import deploys it as revision 2.
        (seen / "_flows" / "app.yml").write_text(APP.replace("version one", "version two"))
        git("commit", "-qam", "v2", cwd=seen)
        git("push", "-q", "origin", "main", cwd=seen)
        execution = await stack.start_execution("ops", "import")
        state = await stack.wait_terminal(execution)
        runs = {r.task_id: r for r in state.task_runs.values()}
        assert state.state == State.SUCCESS, {k: (r.state, r.attempts) for k, r in runs.items()}

        follower = FlowFollower(stack.kafka, stack.topics.flows.name)
        await follower.start()
        deployed = await follower.wait_for("company.team", "app", revision=2, timeout_s=30)
        assert deployed["tasks"][0]["message"] == "version two"
        record = follower.store.record("company.team", "app")
        assert record is not None
        assert record.revision == 2
    finally:
        if follower is not None:
            await follower.close()
        await stack.close()
