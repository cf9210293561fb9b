"""Pure parts of log.Fetch on hw.logs (engine.worker.logfetch): where reading starts and which
lines count."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.bus.wire import log_record, logs_purged_record
from engine.settings import KafkaSettings
from engine.worker.logfetch import TopicLogSource, _line, _purge, _wanted, uuid7_time
from schemas.envelope import uuid7


def test_uuid7_execution_ids_carry_their_start() -> None:
    moment = datetime(2025, 3, 4, 5, 6, 7, 123000, tzinfo=UTC)
    eid = uuid7(int(moment.timestamp() * 1000), bytes(10))
    assert uuid7_time(eid) == moment
    assert uuid7_time("exec-123") is None
    assert uuid7_time("6ba7b810-9dad-11d1-80b4-00c04fd430c8") is None  # a uuid1


def test_a_job_knows_its_own_executions_start() -> None:
    source = TopicLogSource(KafkaSettings(), "hw.logs")
    job = source.for_job("e1", {"execution": {"id": "e1", "startDate": "2025-01-01T00:00:00Z"}})
    assert job.start == datetime(2025, 1, 1, tzinfo=UTC)
    assert source.for_job("e1", {}).start is None


def _value(log_id: str, execution_id: str, level: str, task_id: str | None) -> bytes:
    return log_record(
        log_id=log_id, execution_id=execution_id, task_run_id="r", task_id=task_id,
        attempt=1, level=level, message="m", timestamp="2025-01-01T00:00:00.000Z",
    )[1]  # fmt: skip


def test_lines_of_other_executions_duplicates_and_garbage_are_dropped() -> None:
    seen: set[str] = set()
    first = _line(_value("r:1:0", "e1", "INFO", "t"), "e1", seen)
    assert first is not None
    assert (first.task_id, first.level, first.message) == ("t", "INFO", "m")
    assert _line(_value("r:1:0", "e1", "INFO", "t"), "e1", seen) is None  # redelivered task
    assert _line(_value("r:1:1", "e2", "INFO", "t"), "e1", seen) is None
    assert _line(b"garbage", "e1", seen) is None
    assert _line(None, "e1", seen) is None


def test_level_and_task_filters() -> None:
    line = _line(_value("r:1:0", "e1", "WARN", "t"), "e1", set())
    assert line is not None
    assert _wanted(line, "INFO", None)
    assert not _wanted(line, "ERROR", None)
    assert _wanted(line, "WARN", ["t"])
    assert not _wanted(line, "TRACE", ["other"])


def test_a_logs_purged_record_removes_the_lines_it_covers() -> None:
    marker = logs_purged_record("e1", levels=["DEBUG"], start=None, end="2025-01-01T00:00:00.000Z")[
        1
    ]
    purged = _purge(marker, "e1")
    assert purged is not None
    debug = _line(_value("r:1:0", "e1", "DEBUG", "t"), "e1", set())
    info = _line(_value("r:1:1", "e1", "INFO", "t"), "e1", set())
    assert debug is not None
    assert info is not None
    assert purged(debug)
    assert not purged(info)
    assert _purge(marker, "e2") is None  # another execution's purge
    assert _purge(_value("r:1:2", "e1", "INFO", "t"), "e1") is None  # a line is no purge
