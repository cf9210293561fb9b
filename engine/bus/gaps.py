"""Offsets a crashed broker reserved and never filled ("gaps"), and how a reader gets past them.

Tansu in durable (S3) mode advances a partition's end before it stores a batch; killed in
between, it keeps offsets that hold nothing (``tests/chaos/probe_durable.py``). A fetch at such
an offset answers nothing, every time, so a consumer positioned there stalls although records
follow. Those offsets were never acknowledged to a producer (producers are not idempotent by
default, ``KafkaSettings.idempotent_producer``: the batch is sent again and stored at later
offsets), so skipping them loses nothing.

:func:`next_served` asks a fresh, group-less consumer for the first offset at or after a
position that the broker serves. The answer at the position itself also tells a gap from a
stuck client (librdkafka sometimes stops fetching after a broker restart): when a fresh client
reads there, ours is stuck, not the broker.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, TopicPartition

log = logging.getLogger(__name__)

# The first offset's probe also connects to the broker and may meet one that is still busy
# recovering: give it time, it decides between "stuck client" and "gap".
FIRST_PROBE_S = 5.0
# Each further offset: this many fetch waits (Tansu answers an empty fetch after one wait),
# and never less than PROBE_MIN_S: a served offset answers in about one round trip.
PROBE_FETCH_WAITS = 10
PROBE_MIN_S = 0.1
# A gap is one producer batch that was lost; past this many offsets something else is wrong.
MAX_SCAN = 5000
_POLL_S = 0.02


def next_served(
    bootstrap: str,
    fetch_wait_ms: int,
    topic: str,
    partition: int,
    start: int,
    end: int,
    group_id: str,
) -> int | None:
    """The first offset in ``[start, end)`` at which a fresh consumer receives a record (its
    own offset, which may lie further), or None when none does. Blocking: run it in a thread.
    Raises ValueError when the range is longer than :data:`MAX_SCAN`."""
    if end - start > MAX_SCAN:
        raise ValueError(
            f"{topic}[{partition}]: {end - start} offsets between {start} and {end} to scan "
            f"for a gap, more than {MAX_SCAN}"
        )
    probe = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{group_id}-gap-probe",  # required by the client; nothing is committed
            "enable.auto.commit": False,
            "fetch.wait.max.ms": fetch_wait_ms,
        }
    )
    window = FIRST_PROBE_S
    try:
        for offset in range(start, end):
            probe.assign([TopicPartition(topic, partition, offset)])
            deadline = time.monotonic() + window
            while time.monotonic() < deadline:
                message = probe.poll(_POLL_S)
                if message is not None and message.error() is None:
                    found = message.offset()
                    return offset if found is None else found
            window = max(PROBE_MIN_S, PROBE_FETCH_WAITS * fetch_wait_ms / 1000)
        return None
    finally:
        probe.close()
