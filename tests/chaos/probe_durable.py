"""Probe: what a durable (S3) Tansu keeps, serves and reports across a SIGKILL + restart.

Run it by hand (it starts its own Tansu + SeaweedFS under a temporary directory)::

    .venv/bin/python tests/chaos/probe_durable.py [--records 3000] [--rounds 2] [--json]

Each round: the *old* clients (one producer, one group consumer, made before the first kill)
produce acknowledged records (acks=all) to a topic of a few partitions and commit the group's
offset; a background thread keeps producing while Tansu (the child process only) is
SIGKILLed and started again. Then, with fresh clients, for every partition: the low/high
watermarks, every record from offset 0 to the end, and the committed group offset, compared
with what the broker had acknowledged. Also: how long the old producer and consumer take to
work again, and where records produced right after the restart land (a collision with an old
offset would be an overwrite).

It prints one JSON document of findings; nothing here is asserted (it is evidence, not a test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from engine.devstack.broker import KAFKA_READY_TIMEOUT_S, Broker, kafka_answers, wait_until

TOPIC = "probe.durable"
PARTITIONS = 3
GROUP = "probe-group"
# One metadata / watermark / committed call; the broker is on loopback.
CALL_S = 5.0
# A consumer read of a whole partition ends after this long without a record.
QUIET_S = 1.5
# How long old clients get to work again after the restart before we call them wedged.
RECOVER_LIMIT_S = 20.0
# Records per producer flush: several batches per partition (Tansu's watermark counts batches).
BATCH = 100
# librdkafka's own log lines (one per failed reconnect) would drown the findings: errors only.
LOG_LEVEL = 2

NO_OFFSET: list[bytes] = []  # values acknowledged without an offset (Message.offset() None)

Acked = dict[tuple[int, int], bytes]  # (partition, offset) -> value the broker acknowledged


IDEMPOTENT = "--no-idempotence" not in sys.argv


def producer(bootstrap: str) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": IDEMPOTENT,
            # Without idempotence, one request in flight keeps per-partition order on retries.
            "max.in.flight.requests.per.connection": 5 if IDEMPOTENT else 1,
            "acks": "all",
            "linger.ms": 1,
            "message.timeout.ms": 30_000,
            "log_level": LOG_LEVEL,
        }
    )


def consumer(bootstrap: str, group: str, **extra: Any) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
            "fetch.wait.max.ms": 5,
            "log_level": LOG_LEVEL,
            **extra,
        }
    )


T0 = time.monotonic()


def say(what: str) -> None:
    print(f"[{time.monotonic() - T0:7.2f}s] {what}", file=sys.stderr, flush=True)


def note_ack(acked: Acked, msg: Any) -> None:
    if msg.offset() is None or msg.offset() < 0:
        NO_OFFSET.append(msg.value())
    else:
        acked[(msg.partition(), msg.offset())] = msg.value()


def produce(p: Producer, acked: Acked, errors: list[str], tag: str, n: int) -> None:
    def on_delivery(err: KafkaError | None, msg: Any) -> None:
        if err is None:
            note_ack(acked, msg)
        else:
            errors.append(f"{msg.value()!r}: {err.name()}")

    for i in range(n):
        p.produce(TOPIC, f"{tag}-{i}".encode(), f"k{i % 17}", on_delivery=on_delivery)
        if i % BATCH == BATCH - 1:
            p.flush(30)
    p.flush(30)


def read_all(bootstrap: str) -> dict[str, Any]:
    """Watermarks and every record of every partition, with a fresh, group-less consumer."""
    c = consumer(bootstrap, f"probe-reader-{time.monotonic_ns()}", **{"enable.partition.eof": True})
    out: dict[str, Any] = {"marks": {}, "records": {}}
    try:
        for p in range(PARTITIONS):
            out["marks"][p] = c.get_watermark_offsets(TopicPartition(TOPIC, p), CALL_S, False)
        c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
        records: dict[tuple[int, int], bytes] = {}
        eof: set[int] = set()
        last = time.monotonic()
        while time.monotonic() - last < QUIET_S and len(eof) < PARTITIONS:
            m = c.poll(0.2)
            if m is None:
                continue
            err, partition = m.error(), m.partition() or 0
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    eof.add(partition)
                continue
            last = time.monotonic()
            eof.discard(partition)
            key = (partition, m.offset() or 0)
            if key in records:
                out.setdefault("served_twice", []).append(key)
            records[key] = m.value() or b""
        out["records"] = records
    finally:
        c.close()
    return out


def committed(bootstrap: str) -> dict[int, int]:
    c = consumer(bootstrap, GROUP)
    try:
        tps = c.committed([TopicPartition(TOPIC, p) for p in range(PARTITIONS)], timeout=CALL_S)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def drain(c: Consumer, want: int, limit_s: float) -> tuple[int, float | None, float | None]:
    """Poll until ``want`` records arrived (or ``limit_s``): (count, seconds until the first,
    seconds until the last one that came)."""
    start = time.monotonic()
    got = 0
    first = last = None
    while got < want and time.monotonic() - start < limit_s:
        m = c.poll(0.2)
        if m is not None and not m.error():
            got += 1
            last = time.monotonic() - start
            first = first if first is not None else last
    return got, first, last


def compare(acked: Acked, seen: dict[str, Any]) -> dict[str, Any]:
    records: dict[tuple[int, int], bytes] = seen["records"]
    missing = sorted(k for k in acked if k not in records)
    # Offsets can lie (see NO_OFFSET); values cannot: acknowledged, and nowhere to be read.
    served_values = set(records.values())
    lost = sorted(v for v in [*acked.values(), *NO_OFFSET] if v not in served_values)
    changed = sorted(k for k, v in acked.items() if k in records and records[k] != v)
    per_partition = {}
    for p in range(PARTITIONS):
        offsets = sorted(o for q, o in records if q == p)
        acked_p = sorted(o for q, o in acked if q == p)
        low, high = seen["marks"][p]
        per_partition[p] = {
            "low": low,
            "high": high,
            "served": len(offsets),
            "max_served": offsets[-1] if offsets else None,
            "acked": len(acked_p),
            "max_acked": acked_p[-1] if acked_p else None,
            "gaps": len(offsets) and offsets[-1] + 1 - len(offsets),
            "high_past_served": bool(offsets) and high > offsets[-1] + 1,
        }
    return {
        "acked": len(acked),
        "served": len(records),
        "acked_values_never_served": len(lost),
        "lost_sample": lost[:10],
        "missing_acked": len(missing),
        "missing_sample": missing[:10],
        "overwritten": len(changed),
        "overwritten_sample": [(k, acked[k], records[k]) for k in changed[:10]],
        "gap_sample": {
            p: [
                o
                for o in range(max((o for q, o in records if q == p), default=-1))
                if (p, o) not in records
            ][:10]
            for p in range(PARTITIONS)
        },
        "served_twice": seen.get("served_twice", [])[:10],
        "partitions": per_partition,
    }


async def restart(broker: Broker) -> float:
    """SIGKILL Tansu only (not weed), start it again; seconds until it answers."""
    tansu = next(c for c in broker.children if c.name == "tansu")
    assert tansu.pid is not None
    os.kill(tansu.pid, signal.SIGKILL)
    await asyncio.to_thread(tansu.process.wait)  # type: ignore[union-attr]
    start = time.monotonic()
    await asyncio.to_thread(tansu.start)
    await wait_until(
        tansu, lambda: kafka_answers(broker.port), KAFKA_READY_TIMEOUT_S, "ready again"
    )
    return time.monotonic() - start


def round_(broker: Broker, loop: asyncio.AbstractEventLoop, n: int, r: int,
           old_p: Producer, old_c: Consumer, acked: Acked) -> dict[str, Any]:  # fmt: skip
    bootstrap = broker.bootstrap
    errors: list[str] = []
    say(f"round {r}: producing {n} records with the old producer")
    produce(old_p, acked, errors, f"r{r}-before", n)
    say("old consumer drains them and commits")
    got, _, took = drain(old_c, n, 30)
    old_c.commit(asynchronous=False)
    group_before = committed(bootstrap)
    # Keep producing while the broker dies: some of these are acknowledged just before it.
    stop = threading.Event()
    during: list[int] = [0]

    def on_ack(err: KafkaError | None, msg: Any) -> None:
        if err is None:
            note_ack(acked, msg)
        else:
            errors.append(err.name())

    def keep_producing() -> None:
        i = 0
        while not stop.is_set():
            old_p.produce(TOPIC, f"r{r}-during-{i}".encode(), f"k{i % 17}", on_delivery=on_ack)
            old_p.poll(0)
            i += 1
            time.sleep(0.002)
        during[0] = i

    producer_thread = threading.Thread(target=keep_producing, daemon=True)
    producer_thread.start()
    time.sleep(0.5)
    acked_before_kill = len(acked)
    say("SIGKILL tansu and start it again (producer thread still producing)")
    restart_f = asyncio.run_coroutine_threadsafe(restart(broker), loop)
    stop.set()  # nothing new after the kill: a batch lost in the crash leaves a tail gap
    ready_s = restart_f.result()
    killed_at = time.monotonic()
    producer_thread.join()
    say(f"tansu ready after {ready_s:.2f} s; flushing the old producer")
    remaining = old_p.flush(RECOVER_LIMIT_S)
    tail = read_all(bootstrap)
    tail_gaps = {
        p: {"high": tail["marks"][p][1],
            "end_served": 1 + max((o for q, o in tail["records"] if q == p), default=-1)}
        for p in range(PARTITIONS)
    }  # fmt: skip
    say(f"old producer flushed ({remaining} left); a new producer produces {n // 10}")
    old_producer_recovered_s = time.monotonic() - killed_at
    # Right after the restart: a new producer; where do its records land?
    fresh: Acked = {}
    produce(producer(bootstrap), fresh, errors, f"r{r}-after", n // 10)
    collisions = sorted(k for k in fresh if k in acked and acked[k] != fresh[k])
    acked.update({k: v for k, v in fresh.items() if k not in acked})
    # The old consumer: does it get the records produced during and after the restart?
    later = (f"r{r}-during".encode(), f"r{r}-after".encode())
    want = sum(1 for v in acked.values() if v.startswith(later))
    say(f"old consumer: waiting for {want} records produced during/after the restart")
    got_after, first_s, last_s = drain(old_c, want, RECOVER_LIMIT_S)
    say(f"old consumer got {got_after}/{want}; reading every partition with a fresh consumer")
    seen = read_all(bootstrap)
    return {
        "round": r,
        "old_consumer_before_kill": {"got": got, "of": n, "s": took and round(took, 2)},
        "group_committed_before_kill": group_before,
        "group_committed_after_restart": committed(bootstrap),
        "acked_before_kill_window": acked_before_kill,
        "produced_during_kill_window": during[0],
        "tansu_ready_s": round(ready_s, 2),
        "old_producer_unflushed": remaining,
        "old_producer_flushed_s_after_restart": round(old_producer_recovered_s, 2),
        "delivery_errors": errors[:10],
        "delivery_error_count": len(errors),
        "new_records_colliding_with_old_offsets": collisions[:10],
        "old_consumer_after_restart": {
            "got": got_after,
            "of": want,
            "first_s": first_s and round(first_s, 2),
            "last_s": last_s and round(last_s, 2),
        },
        "before_new_records_high_vs_served_end": tail_gaps,
        "acked_without_offset": len(NO_OFFSET),
        "audit": compare(acked, seen),
    }


async def main(n: int, rounds: int, keep: Path | None) -> dict[str, Any]:
    work = keep or Path(tempfile.mkdtemp(prefix="probe-durable-"))
    broker = Broker(work / "broker", durable=True, preferred_port=0)
    await broker.start(set())
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        for f in admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)]).values():
            f.result(CALL_S)
        old_p = producer(broker.bootstrap)
        old_c = consumer(broker.bootstrap, GROUP)
        old_c.subscribe([TOPIC])
        acked: Acked = {}
        loop = asyncio.get_running_loop()
        results = []
        for r in range(1, rounds + 1):
            results.append(await asyncio.to_thread(round_, broker, loop, n, r, old_p, old_c, acked))
        old_c.close()
        return {
            "records_per_round": n,
            "idempotent": IDEMPOTENT,
            "partitions": PARTITIONS,
            "work": str(work),
            "rounds": results,
        }
    finally:
        await asyncio.to_thread(broker.stop)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-idempotence", action="store_true", help="plain acks=all producers")
    parser.add_argument("--dir", type=Path, default=None, help="keep the broker's data here")
    args = parser.parse_args()
    report = asyncio.run(main(args.records, args.rounds, args.dir))
    print(json.dumps(report, indent=1, default=str))
