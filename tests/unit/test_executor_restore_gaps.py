"""A restore cut short must not lose commands: unknown executions, unknown watermarks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from confluent_kafka import TopicPartition

from engine.bus.consumer import Partition, Record
from engine.bus.topics import topics_for
from engine.bus.wire import command_record
from engine.executor import restore
from engine.executor.admission import Admission
from engine.executor.batch import BatchDecider, UnknownExecution
from engine.executor.store import StateStore
from engine.flows.store import FlowStore
from engine.reducer.commands import Kill
from engine.settings import KafkaSettings

NOW = datetime(2024, 6, 1, tzinfo=UTC)


def _decider() -> tuple[BatchDecider, StateStore, str]:
    topics = topics_for(KafkaSettings(topic_prefix="x."))
    store = StateStore(purge_after_s=60)
    admission = Admission(topics.commands.name, topics.executor_state.name)
    return BatchDecider(topics, store, admission, FlowStore()), store, topics.commands.name


def _kill(topic: str, execution: str) -> Record:
    cmd = Kill(command_id=f"k-{execution}", execution_id=execution)
    return Record(topic, 3, 7, *command_record(cmd), None, 0)


def test_strict_batch_stops_on_an_execution_neither_known_nor_purged() -> None:
    decider, _, topic = _decider()
    with pytest.raises(UnknownExecution) as caught:
        decider.run([_kill(topic, "ghost")], NOW, strict=True)
    assert (caught.value.execution_id, caught.value.partition) == ("ghost", 3)
    # After a second restore the same command is a stray one: dropped, not raised.
    assert decider.run([_kill(topic, "ghost")], NOW, strict=False).dropped == 1


def test_a_tombstone_read_on_restore_marks_the_execution_purged() -> None:
    decider, store, topic = _decider()
    store.restore([Record("x.executor-state", 3, 0, b"gone", None, None, 0)])
    result = decider.run([_kill(topic, "gone")], NOW, strict=True)
    assert result.dropped == 1
    assert "gone" in store.purged


class _FakeClient:
    def __init__(self, answers: list[int | Exception]) -> None:
        self.answers = answers
        self.calls = 0

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        if isinstance(answer, Exception):
            raise answer
        return 0, answer


class _FakeConsumer:
    """Serves ``records`` once, then empty polls; its watermark answers come from a list."""

    def __init__(self, answers: list[int | Exception], records: list[Record]) -> None:
        self.client = _FakeClient(answers)
        self.records = records

    def _client(self) -> _FakeClient:
        return self.client

    async def assign(self, partitions: Mapping[Partition, int | None]) -> None:
        self.assigned = set(partitions)

    async def unassign(self) -> None:
        self.assigned = set()

    async def consume(self, max_records: int, timeout_s: float) -> list[Record]:
        out, self.records = self.records, []
        return out


def _state(offset: int) -> Record:
    return Record("s", 0, offset, b"e", b"{}", None, 0)


async def test_an_unknown_watermark_is_retried_not_taken_as_empty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(restore, "WATERMARK_RETRY_S", 0.0)
    consumer = _FakeConsumer([-1, -1, 2], [_state(0), _state(1)])
    records = await restore.read_partitions(consumer, "s", {0})  # type: ignore[arg-type]
    assert [r.offset for r in records] == [0, 1]
    assert consumer.client.calls == 3
    assert consumer.assigned == set()  # the restorer stops fetching once done


async def test_a_watermark_that_never_comes_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(restore, "WATERMARK_RETRY_S", 0.0)
    monkeypatch.setattr(restore, "WATERMARK_DEADLINE_S", 0.0)
    consumer = _FakeConsumer([-1], [])
    with pytest.raises(restore.RestoreIncomplete, match="no watermark"):
        await restore.read_partitions(consumer, "s", {0})  # type: ignore[arg-type]


async def test_records_short_of_the_watermark_fail_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(restore, "RESTORE_DEADLINE_S", 0.0)
    consumer = _FakeConsumer([5], [_state(0)])  # the broker says 5, only offset 0 arrives
    with pytest.raises(restore.RestoreIncomplete, match="not read to their end"):
        await restore.read_partitions(consumer, "s", {0})  # type: ignore[arg-type]
    assert consumer.assigned == set()
