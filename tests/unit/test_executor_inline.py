"""I/O-free core tasks run inside the executor's batch; everything else still goes to a worker."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.bus.consumer import Record
from engine.bus.topics import topics_for
from engine.bus.wire import command_record, decode_job, decode_log, state_record
from engine.executor.admission import Admission
from engine.executor.batch import BatchDecider, BatchResult
from engine.executor.inline import InlineRunner
from engine.executor.store import StateStore
from engine.flows import flow_to_dict, load_flow
from engine.flows.store import FlowStore
from engine.reducer.commands import StartExecution
from engine.settings import KafkaSettings

NOW = datetime(2024, 6, 1, tzinfo=UTC)
TOPICS = topics_for(KafkaSettings(topic_prefix="x."))


def _decider(*, inline: bool = True, limit: int = 10_000) -> tuple[BatchDecider, StateStore]:
    store = StateStore(purge_after_s=60)
    admission = Admission(TOPICS.commands.name, TOPICS.executor_state.name)
    runner = InlineRunner(TOPICS.logs.name, worker_id="ex-1", output_limit_bytes=limit)
    decider = BatchDecider(TOPICS, store, admission, FlowStore(), inline=runner if inline else None)
    return decider, store


def _start(flow_yaml: str, execution_id: str = "e1", inputs: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    flow = flow_to_dict(load_flow(flow_yaml, "f.yaml"))
    cmd = StartExecution(
        command_id=f"start-{execution_id}",
        execution_id=execution_id,
        namespace=flow["namespace"],
        flow_id=flow["id"],
        flow=flow,
        inputs=inputs or {},
    )
    return Record(TOPICS.commands.name, 0, 1, *command_record(cmd), None, 0)


def _on(result: BatchResult, topic: str) -> list[bytes]:
    return [r.value for r in result.records if r.topic == topic and r.value is not None]


CHAIN = """
id: chain
namespace: t
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "hello {{ flow.id }}"
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.hello is defined }}-x"
  - id: out
    type: io.kestra.plugin.core.output.OutputValues
    values:
      v: "{{ outputs.ret.value }}"
"""


def test_a_chain_of_core_tasks_ends_in_one_batch_without_a_job() -> None:
    decider, store = _decider()
    result = decider.run([_start(CHAIN)], NOW, strict=True)
    state = store.get("e1")
    assert state is not None
    assert state.state.value == "SUCCESS"
    assert _on(result, TOPICS.jobs.name) == []
    runs = {r.task_id: r for r in state.task_runs.values()}
    assert runs["out"].outputs == {"values": {"v": "false-x"}}
    history = [h[0] for h in runs["hello"].history]
    assert history == ["CREATED", "RUNNING", "SUCCESS"]
    lines = [decode_log(v) for v in _on(result, TOPICS.logs.name)]
    assert "hello chain" in [line["message"] for line in lines]
    # Each attempt records how many lines it sent, so a reader knows when all are projected.
    for run in runs.values():
        prefix = f"{run.id}:1:"
        sent = [line for line in lines if line["log_id"].startswith(prefix)]
        assert run.attempts[-1].log_lines == len(sent)
    assert runs["hello"].attempts[-1].log_lines == 1
    # One snapshot for the execution, like any other batch.
    assert len(_on(result, TOPICS.executor_state.name)) == 1


def test_a_redone_batch_produces_the_same_log_ids_and_result() -> None:
    first, _ = _decider()
    second, _ = _decider()
    a = first.run([_start(CHAIN)], NOW, strict=True)
    b = second.run([_start(CHAIN)], NOW, strict=True)
    ids_a = [decode_log(v)["log_id"] for v in _on(a, TOPICS.logs.name)]
    ids_b = [decode_log(v)["log_id"] for v in _on(b, TOPICS.logs.name)]
    assert ids_a == ids_b
    assert len(set(ids_a)) == len(ids_a)


def _job_types(result: BatchResult) -> list[str]:
    jobs = [decode_job(v) for v in _on(result, TOPICS.jobs.name)]
    return [str(j.task["type"]) for j in jobs if hasattr(j, "task")]


def test_tasks_that_need_a_worker_are_sent_to_one() -> None:
    flow = """
id: mixed
namespace: t
tasks:
  - id: secret
    type: io.kestra.plugin.core.log.Log
    message: "{{ secret('TOKEN') }}"
"""
    decider, store = _decider()
    result = decider.run([_start(flow)], NOW, strict=True)
    assert _job_types(result) == ["io.kestra.plugin.core.log.Log"]
    # The discarded attempt left nothing behind: no log line, the task run still CREATED.
    assert _on(result, TOPICS.logs.name) == []
    state = store.get("e1")
    assert state is not None
    assert [r.state.value for r in state.task_runs.values()] == ["CREATED"]


def test_sleep_worker_groups_and_disabled_inline_go_to_workers() -> None:
    flow = """
id: w
namespace: t
tasks:
  - id: nap
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT1S
"""
    decider, _ = _decider()
    assert _job_types(decider.run([_start(flow)], NOW)) == ["io.kestra.plugin.core.flow.Sleep"]
    grouped = """
id: g
namespace: t
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: hi
    workerGroup:
      key: gpu
"""
    decider, _ = _decider()
    result = decider.run([_start(grouped)], NOW)
    assert any(r.topic.endswith("gpu") for r in result.records)
    decider, _ = _decider(inline=False)
    assert _job_types(decider.run([_start(CHAIN)], NOW)) == ["io.kestra.plugin.core.log.Log"]


def test_outputs_above_the_inline_limit_go_to_a_worker() -> None:
    flow = """
id: big
namespace: t
tasks:
  - id: ret
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.text }}"
inputs:
  - id: text
    type: STRING
"""
    decider, _ = _decider(limit=100)
    result = decider.run([_start(flow, inputs={"text": "y" * 500})], NOW)
    assert _job_types(result) == ["io.kestra.plugin.core.debug.Return"]
    decider, store = _decider(limit=100)
    decider.run([_start(flow, inputs={"text": "small"})], NOW)
    state = store.get("e1")
    assert state is not None
    assert state.state.value == "SUCCESS"


def test_a_failing_inline_task_fails_the_execution_with_its_error_logs() -> None:
    flow = """
id: boom
namespace: t
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: "broke on {{ flow.id }}"
errors:
  - id: why
    type: io.kestra.plugin.core.debug.Return
    format: "{{ errorLogs()[0].message }}"
"""
    decider, store = _decider()
    decider.run([_start(flow)], NOW)
    state = store.get("e1")
    assert state is not None
    assert state.state.value == "FAILED"
    runs = {r.task_id: r for r in state.task_runs.values()}
    assert runs["why"].outputs == {"value": "broke on boom"}


def test_a_start_redelivered_after_the_purge_does_not_run_again() -> None:
    decider, store = _decider()
    decider.run([_start(CHAIN)], NOW)
    state = store.get("e1")
    assert state is not None
    # Restore from a snapshot and the execution's tombstone, as a restarted executor would.
    key, _value = state_record(state)
    fresh, fresh_store = _decider()
    fresh_store.restore([Record(TOPICS.executor_state.name, 0, 0, key, None, None, 0)])
    again = fresh.run([_start(CHAIN)], NOW, strict=True)
    assert again.dropped == 1
    assert again.records == []
    assert fresh_store.get("e1") is None
