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

The probe connects like the consumer it helps (same cluster, TLS and SASL settings). A probe
that cannot authenticate or is not authorized receives nothing anywhere, which would read as
"everything is a gap": it raises :class:`BusError` instead, because skipping would lose records.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from engine.errors import BusError

log = logging.getLogger(__name__)

# The first offset's probe also connects to the broker and may meet one that is still busy
# recovering: give it time, it decides between "stuck client" and "gap".
FIRST_PROBE_S = 5.0
# Each further offset: this many fetch waits (Tansu answers an empty fetch after one wait),
# and never less than PROBE_MIN_S: a served offset answers in about one round trip, but a
# loaded S3-backed broker can take a few hundred ms. The offset just before the one found is
# then checked with FIRST_PROBE_S (see next_served): skipping a served record would lose it.
PROBE_FETCH_WAITS = 10
PROBE_MIN_S = 0.3
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
    ``cluster``: see :func:`probe_config`. Raises ValueError when the range is longer than
    :data:`MAX_SCAN`, BusError when the broker refuses the probe (authentication, ACLs)."""
    if end <= start:
        return None
    if end - start > MAX_SCAN:
        raise ValueError(
            f"{topic}[{partition}]: {end - start} offsets between {start} and {end} to scan "
            f"for a gap, more than {MAX_SCAN}"
        )
    denials = _Denials()
    probe = Consumer(
        {
            **probe_config(cluster),
            "error_cb": denials,
            "group.id": f"{group_id}-gap-probe",  # required by the client; nothing is committed
            "enable.auto.commit": False,
            "fetch.wait.max.ms": fetch_wait_ms,
        }
    )
    quick = max(PROBE_MIN_S, PROBE_FETCH_WAITS * fetch_wait_ms / 1000)

    def served(offset: int, window: float) -> int | None:
        found = _served(probe, topic, partition, offset, window, denials)
        denials.check(topic, partition)
        return found

    try:
        if served(start, FIRST_PROBE_S) is not None:
            return start
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
