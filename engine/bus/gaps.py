"""Offsets a crashed broker reserved and never filled ("gaps"), and how a reader gets past them.

Tansu in durable (S3) mode advances a partition's end before it stores a batch; killed in
between, it keeps offsets that hold nothing (``tests/chaos/probe_durable.py``). A fetch at such
an offset answers nothing, every time, so a consumer positioned there stalls although records
follow. Those offsets were never acknowledged to a producer (producers are not idempotent by
default, ``KafkaSettings.idempotent_producer``: the batch is sent again and stored at later
offsets), so skipping them loses nothing.

:func:`next_served` asks a fresh, group-less consumer with a patient fetch wait for the first
offset at or after a position that the broker serves. When that is the position itself, the
broker has the records but does not give them to the consumer's short fetches: Tansu in S3 mode
serves a batch it reads back from storage (seen after a restart) only to a fetch that
waits long enough. :func:`read_patiently` reads them for it (engine.bus.stall).

The probe connects like the consumer it helps (same cluster, TLS and SASL settings). A probe
that cannot authenticate or is not authorized receives nothing anywhere, which would read as
"everything is a gap": it raises :class:`BusError` instead, because skipping would lose records.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from engine.errors import BusError

log = logging.getLogger(__name__)

# The first offset's probe also connects to the broker and may meet one that is still busy
# recovering: give it time, it decides between "served" (read patiently) and "gap".
FIRST_PROBE_S = 5.0
# Each further offset: this many fetch waits (Tansu answers an empty fetch after one wait),
# and never less than PROBE_MIN_S: a served offset answers in about one round trip, but a
# loaded S3-backed broker can take a few hundred ms. The offset just before the one found is
# then checked with FIRST_PROBE_S (see next_served): skipping a served record would lose it.
PROBE_FETCH_WAITS = 3
PROBE_MIN_S = 0.3
# The fetch wait of a probe and of read_patiently, at least: Tansu in S3 mode serves a batch
# it has to read back from S3 (seen after a restart) only to a fetch that waits long enough.
# Measured in the durable chaos run: fresh readers with a 5 ms wait received nothing at such
# offsets for 3 s, again after another reader had read them; with 100 ms they read them all.
PATIENT_FETCH_WAIT_MS = 250
# One read_patiently call stops after this long or this many records (the stall check calls
# it again when the reader is still behind).
PATIENT_BUDGET_S = 10.0
PATIENT_MAX_RECORDS = 5000
# A gap is one producer batch that was lost; past this many offsets something else is wrong.
MAX_SCAN = 2000
_POLL_S = 0.02

# What the probe takes from the config of the consumer it helps: where and how to connect, not
# its group, callbacks or tuning.
_CONNECTION_KEYS = frozenset({"bootstrap.servers", "client.id"})
_CONNECTION_PREFIXES = ("security.", "sasl.", "ssl.")
# Errors after which the probe can never see a record: answering "gap" would skip served ones.
_DENIED = frozenset(
    {
        KafkaError._AUTHENTICATION,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError._SSL,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    }
)


def probe_config(cluster: str | Mapping[str, Any]) -> dict[str, Any]:
    """The connection settings of a probe: ``cluster`` is a bootstrap string or a client's
    librdkafka config (``KafkaSettings.client_config()``, or a consumer's whole config)."""
    if isinstance(cluster, str):
        return {"bootstrap.servers": cluster}
    return {
        k: v
        for k, v in cluster.items()
        if k in _CONNECTION_KEYS or k.startswith(_CONNECTION_PREFIXES)
    }


class _Denials:
    """The probe's error callback: remembers the first error that denies it every read."""

    def __init__(self) -> None:
        self.first: KafkaError | None = None

    def __call__(self, error: KafkaError) -> None:
        if self.first is None and (error.code() in _DENIED or error.fatal()):
            self.first = error

    def check(self, topic: str, partition: int) -> None:
        if self.first is not None:
            raise BusError(
                f"the gap probe of {topic}[{partition}] was refused by the broker "
                f"({self.first.str()}): check the Kafka security settings "
                "(HEADWATER_KAFKA__SECURITY_PROTOCOL, SASL_*, SSL_*) and the ACLs",
                retriable=False,
            )


def next_served(
    cluster: str | Mapping[str, Any],
    fetch_wait_ms: int,
    topic: str,
    partition: int,
    start: int,
    end: int,
    group_id: str,
) -> int | None:
    """The first offset in ``[start, end)`` at which a fresh consumer receives a record (its
    own offset, which may lie further), or None when none does. Blocking: run it in a thread.
    ``cluster``: see :func:`probe_config`. Raises ValueError when ``start`` is not served and
    the range is longer than :data:`MAX_SCAN`, BusError when the broker refuses the probe
    (authentication, ACLs)."""
    if end <= start:
        return None
    denials = _Denials()
    probe = Consumer(
        {
            **probe_config(cluster),
            "error_cb": denials,
            "group.id": f"{group_id}-gap-probe",  # required by the client; nothing is committed
            "enable.auto.commit": False,
            "fetch.wait.max.ms": max(fetch_wait_ms, PATIENT_FETCH_WAIT_MS),
        }
    )
    quick = max(PROBE_MIN_S, PROBE_FETCH_WAITS * max(fetch_wait_ms, PATIENT_FETCH_WAIT_MS) / 1000)

    def served(offset: int, window: float) -> int | None:
        found = _served(probe, topic, partition, offset, window, denials)
        denials.check(topic, partition)
        return found

    try:
        if served(start, FIRST_PROBE_S) is not None:
            # Also the answer when the client is far behind: a busy reader of a long backlog
            # (its position unmoved while it worked through another partition) is no gap.
            return start
        if end - start > MAX_SCAN:
            raise ValueError(
                f"{topic}[{partition}]: {end - start} offsets between {start} and {end} to "
                f"scan for a gap, more than {MAX_SCAN}"
            )
        found = None
        for offset in range(start + 1, end):
            found = served(offset, quick)
            if found is not None:
                break
        if found is None or found - 1 == start:
            return found
        # The quick windows may have missed a slow answer: if the offset before the one found
        # is served after all, find the gap's real end with patient probes (one gap assumed:
        # a broker crash loses the batch it was storing).
        if served(found - 1, FIRST_PROBE_S) is None:
            return found
        low, high = start, found - 1  # low: nothing served; high: served
        while high - low > 1:
            middle = (low + high) // 2
            if served(middle, FIRST_PROBE_S) is None:
                low = middle
            else:
                high = middle
        return high
    finally:
        probe.close()


def read_patiently(
    cluster: str | Mapping[str, Any],
    topic: str,
    partition: int,
    start: int,
    end: int,
    group_id: str,
) -> list[Message]:
    """The records of ``[start, end)`` of ``partition``, read with a patient fetch wait
    (:data:`PATIENT_FETCH_WAIT_MS`) for a consumer whose short fetches receive nothing there;
    at most :data:`PATIENT_MAX_RECORDS`, within :data:`PATIENT_BUDGET_S` (possibly none).
    Blocking: run it in a thread."""
    denials = _Denials()
    reader = Consumer(
        {
            **probe_config(cluster),
            "error_cb": denials,
            "group.id": f"{group_id}-patient",  # required by the client; nothing is committed
            "enable.auto.commit": False,
            "fetch.wait.max.ms": PATIENT_FETCH_WAIT_MS,
        }
    )
    out: list[Message] = []
    reached = start
    try:
        reader.assign([TopicPartition(topic, partition, start)])
        deadline = time.monotonic() + PATIENT_BUDGET_S
        while (
            reached < end
            and len(out) < PATIENT_MAX_RECORDS
            and time.monotonic() < deadline
            and denials.first is None
        ):
            for message in reader.consume(1000, 2 * PATIENT_FETCH_WAIT_MS / 1000):
                offset = message.offset()
                if message.error() is None and offset is not None and offset >= reached:
                    out.append(message)
                    reached = offset + 1
        denials.check(topic, partition)
        return out[:PATIENT_MAX_RECORDS]
    finally:
        reader.close()


def _served(
    probe: Consumer, topic: str, partition: int, offset: int, window: float, denials: _Denials
) -> int | None:
    """The offset of the first record the probe receives from ``offset`` on within ``window``
    seconds, or None (also as soon as the broker refused the probe: see ``denials``)."""
    probe.assign([TopicPartition(topic, partition, offset)])
    deadline = time.monotonic() + window
    while time.monotonic() < deadline and denials.first is None:
        message = probe.poll(_POLL_S)
        if message is None:
            continue
        error = message.error()
        if error is None:
            found = message.offset()
            return offset if found is None else found
        denials(error)  # a refused fetch comes back as a message error, not through error_cb
    return None
