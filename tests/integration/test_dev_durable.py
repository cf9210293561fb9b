"""`headwater dev --durable` keeps the broker's data across a restart.

A subprocess in a fresh folder (its own ports and data directory, as a user runs it): run the
example flow to SUCCESS, Ctrl-C, start again on the same data directory, and check that

- the broker kept its topics and records: hw.flows still holds the one deployed revision (the
  flow folder is not deployed again, which memory storage would do) and hw.events still holds
  the first execution's events, read straight from the broker;
- the first execution and the flow are still readable through the API;
- a second execution of the flow runs to SUCCESS;
- every process either run started is gone after its Ctrl-C.

It starts its own Tansu (S3 storage in SeaweedFS' `weed mini`) and PostgreSQL from the wheels.
Two quicker tests cover starting beside another stack: a server that lost the race for its
port is not taken as ready because another server answers there, and is started again.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import socket
import sys
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from engine.bus.topics import topics_for
from engine.bus.wire import decode_flow
from engine.devstack import broker as broker_module
from engine.devstack import postgres as postgres_module
from engine.devstack.broker import Broker, PortTaken, kafka_answers, wait_until
from engine.devstack.postgres import Postgres
from engine.devstack.procs import HOST, Child, pick_port
from engine.settings import Settings
from schemas.envelope import decode
from tests.integration.test_dev_stack import (
    Dev,
    alive,
    descendants,
    partitions_of,
    said,
    wait_for,
)

# Two dev starts (the first creates a PostgreSQL cluster) and two clean stops on a shared
# 2-core machine; each step is bounded on its own, this only stops a hung run.
TEST_TIMEOUT_S = 180
# A clean stop: components leave their groups, Tansu flushes to S3, postgres' fast shutdown.
STOP_WITHIN_S = 60.0
# Every child of a stopped run must be gone within this (they are SIGKILLed after 5 s).
CHILDREN_GONE_S = 15.0
# One poll of the records read back from the broker.
POLL_S = 0.5
# Reading a topic to its end on loopback takes well under this.
READ_TOPIC_S = 20.0
FLOW = ("company.team", "hello")
TERMINAL = ("SUCCESS", "FAILED", "KILLED", "WARNING", "CANCELLED")


@pytest.fixture
def dev(tmp_path: pathlib.Path) -> Iterator[Dev]:
    stack = Dev(tmp_path)
    stack.argv.append("--durable")
    try:
        yield stack
    finally:
        process = stack.process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        pid_file = tmp_path / "data" / "servers.pid"
        # The servers' groups, in case the test failed before its own clean stop.
        for pid in stack.server_pids() if pid_file.exists() else []:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def run_to_end(api: httpx.Client, name: str) -> str:
    started = api.post(f"/executions/{FLOW[0]}/{FLOW[1]}", json={"inputs": {"name": name}})
    assert started.status_code == 200, started.text
    execution_id: str = started.json()["id"]

    def final_state() -> str | None:
        response = api.get(f"/executions/{execution_id}")
        if response.status_code != 200:
            return None
        state: str = response.json()["state"]["current"]
        return state if state in TERMINAL else None

    assert wait_for(f"the end of execution {execution_id}", final_state) == "SUCCESS"
    return execution_id


def stop(dev: Dev) -> None:
    """Ctrl-C: exit code 0, and every process the run started (servers, weed, postgres
    backends, task processes) gone."""
    assert dev.process is not None
    tree = descendants(dev.process.pid)
    assert set(dev.server_pids()) <= tree
    dev.process.send_signal(signal.SIGINT)
    assert dev.process.wait(timeout=STOP_WITHIN_S) == 0, dev.output()
    assert "stopped" in dev.output()
    assert wait_for("every child gone", lambda: not any(alive(p) for p in tree), CHILDREN_GONE_S)
    assert not (dev.folder / "data" / "servers.pid").exists()


def read_topic(bootstrap: str, topic: str) -> list[bytes]:
    """The values of every record of ``topic``, from the start of each partition (no group)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-dev-durable-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=READ_TOPIC_S).topics[topic]
        assert meta.error is None, meta.error
        partitions = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
        consumer.assign(partitions)
        at_end: set[int] = set()
        values: list[bytes] = []

        def drain() -> bool:
            for message in consumer.consume(1000, POLL_S):
                error = message.error()
                if error is not None:
                    assert error.code() == KafkaError._PARTITION_EOF, error
                    at_end.add(message.partition() or 0)
                    continue
                values.append(message.value() or b"")
            return len(at_end) == len(partitions)

        wait_for(f"the end of {topic}", drain, READ_TOPIC_S)
        return values
    finally:
        consumer.close()


@pytest.mark.slow
@pytest.mark.timeout(TEST_TIMEOUT_S)
def test_dev_durable_keeps_flows_executions_and_records(dev: Dev, settings: Settings) -> None:
    topics = topics_for(settings.kafka)

    # First run: a new data directory, the example flow deployed and run; its topics are
    # created with 3 partitions (the dev default is 1).
    dev.env = {**os.environ, "HEADWATER_KAFKA__PARTITIONS": "3"}
    dev.start()
    assert "(durable S3 storage)" in dev.output()
    assert "deployed company.team.hello revision 1" in dev.output()
    with httpx.Client(base_url=f"{dev.url}/api/v1", timeout=10) as api:
        first = run_to_end(api, "Ada")
        assert wait_for("the log line", lambda: said(api, first, "Hello, Ada!"))
    stop(dev)

    # Second run on the same data directory (Dev keeps its ports; the log starts afresh),
    # without the setting: the kept topics keep their count (it cannot change).
    dev.env = None
    dev.start()
    output = dev.output()
    assert "(durable S3 storage)" in output
    # The folder sync read hw.flows back and found the file's revision already deployed.
    assert "deployed company.team.hello" not in output, output
    assert "creating a PostgreSQL cluster" not in output
    bootstrap = dev.bootstrap

    assert partitions_of(bootstrap, topics.commands.name) == 3
    flows = [decode_flow(value) for value in read_topic(bootstrap, topics.flows.name)]
    assert [(f.namespace, f.id, f.revision, f.deleted) for f in flows] == [(*FLOW, 1, False)]
    events = [decode(value) for value in read_topic(bootstrap, topics.events.name)]
    first_events = [e for e in events if e.execution_id == first]
    assert first_events, f"no event of {first} in {topics.events.name} after the restart"
    # Per-execution sequence numbers start at 1 in a row: the whole history survived.
    seqs = sorted({e.seq for e in first_events})
    assert seqs == list(range(1, len(seqs) + 1)), seqs

    with httpx.Client(base_url=f"{dev.url}/api/v1", timeout=10) as api:
        flow = api.get(f"/flows/{FLOW[0]}/{FLOW[1]}")
        assert flow.status_code == 200, flow.text
        assert flow.json()["revision"] == 1
        kept = api.get(f"/executions/{first}")
        assert kept.status_code == 200, kept.text
        assert kept.json()["state"]["current"] == "SUCCESS"
        assert kept.json()["inputs"] == {"name": "Ada"}
        second = run_to_end(api, "Bob")
        assert wait_for("the log line", lambda: said(api, second, "Hello, Bob!"))
        listed = api.get("/executions", params={"namespace": FLOW[0]}).json()["results"]
        assert {e["id"] for e in listed} == {first, second}
    stop(dev)


@pytest.fixture
def foreign_server() -> Iterator[int]:
    """A port where another process (this test) listens, as another dev stack's server."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        sock.listen()
        yield int(sock.getsockname()[1])


async def test_a_server_that_lost_its_port_is_not_ready_because_another_answers(
    tmp_path: pathlib.Path, foreign_server: int
) -> None:
    # The child binds the port the way a server does, and exits because it is taken.
    bind = f"import socket; socket.socket().bind(({HOST!r}, {foreign_server}))"
    child = Child("server", [sys.executable, "-c", bind], log_path=tmp_path / "server.log")
    await asyncio.to_thread(child.start)
    try:

        async def answers() -> bool:
            return True  # something always answers on the port: the foreign server

        with pytest.raises(PortTaken, match=str(foreign_server)):
            await wait_until(child, answers, READ_TOPIC_S, "ready", ports=[foreign_server])
    finally:
        await asyncio.to_thread(child.stop)


async def test_a_server_refused_a_port_held_for_a_moment_only_is_started_again(
    tmp_path: pathlib.Path,
) -> None:
    # weed's filer lost a port to a connection's ephemeral port that was free again by the
    # time we looked: only its log says why it exited, and that is a port race too.
    free = pick_port(0, set())
    exits = (
        "import sys; print('F1207 filer.go:454 Filer listener error: listen tcp "
        f"127.0.0.1:{free}: bind: address already in use', flush=True); sys.exit(255)"
    )
    child = Child("server", [sys.executable, "-c", exits], log_path=tmp_path / "server.log")
    await asyncio.to_thread(child.start)
    try:

        async def answers() -> bool:
            return False

        with pytest.raises(PortTaken, match="a port it binds was in use"):
            await wait_until(child, answers, READ_TOPIC_S, "ready", ports=[free])
    finally:
        await asyncio.to_thread(child.stop)


@pytest.fixture
async def broker(tmp_path: pathlib.Path) -> AsyncIterator[Broker]:
    started = Broker(tmp_path / "kafka", preferred_port=0)
    try:
        yield started
    finally:
        await asyncio.to_thread(started.stop)


class RacyPick:
    """pick_port whose first answer is a port someone else took since: the race, made certain."""

    def __init__(self, taken_port: int) -> None:
        self.taken_port = taken_port
        self.picks: list[int] = []

    def __call__(self, preferred: int, taken: set[int] | None = None, host: str = HOST) -> int:
        port = self.taken_port if not self.picks else pick_port(preferred, taken, host)
        self.picks.append(port)
        return port


async def test_tansu_starts_again_on_another_port_after_losing_a_race(
    broker: Broker, foreign_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    racy = RacyPick(foreign_server)
    picks = racy.picks
    monkeypatch.setattr(broker_module, "pick_port", racy)
    await broker.start(set())
    assert picks[0] == foreign_server
    assert broker.port == picks[-1] != foreign_server
    [tansu] = broker.children
    assert tansu.listens_on(broker.port)
    assert await kafka_answers(broker.port)


@pytest.fixture
async def postgres(tmp_path: pathlib.Path) -> AsyncIterator[Postgres]:
    (tmp_path / "data").mkdir()  # DevStack creates it before starting its servers
    started = Postgres(tmp_path / "data", preferred_port=0)
    try:
        yield started
    finally:
        await asyncio.to_thread(started.stop)


@pytest.mark.postgres
async def test_postgres_not_fooled_by_another_postgres_and_starts_again_on_another_port(
    postgres: Postgres, postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # deploy/local's PostgreSQL plays the other stack's server that won the race: it speaks
    # the protocol and trusts the same role, so only the port's owner tells them apart.
    other = urllib.parse.urlsplit(postgres_dsn).port or 5432
    racy = RacyPick(other)
    monkeypatch.setattr(postgres_module, "pick_port", racy)
    await postgres.start(set(), say=lambda _: None)
    assert racy.picks[0] == other
    assert postgres.port == racy.picks[-1] != other
    [server] = postgres.children
    assert server.listens_on(postgres.port)
    assert postgres.dsn.endswith(f":{postgres.port}/headwater")
