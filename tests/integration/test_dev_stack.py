"""`headwater dev` as a user runs it: a subprocess in a fresh folder, with its own ports and
data directory. It must come up, deploy the example flow, run it to SUCCESS, follow an edit
of the flow file, serve `headwater run`, and leave no process behind after Ctrl-C (SIGINT).

It starts its own embedded Tansu and PostgreSQL (from the wheels), not deploy/local's.
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka.admin import AdminClient

from engine.devstack.procs import pick_port

pytestmark = [pytest.mark.slow]

HEADWATER = pathlib.Path(sys.executable).with_name("headwater")
# A cold first start creates a PostgreSQL cluster (initdb) on a shared 2-core machine.
READY_WITHIN_S = 90.0
# Things crossing the bus and the projection; generous, never hit when things work.
ARRIVAL_S = 30.0
READY_LINE = re.compile(r"Headwater is ready in [\d.]+ s: (http://\S+)")


class Dev:
    def __init__(self, folder: pathlib.Path) -> None:
        self.folder = folder
        taken: set[int] = set()
        self.port = pick_port(0, taken)
        self.argv = [
            str(HEADWATER), "dev", "--port", str(self.port),
            "--kafka-port", str(pick_port(0, taken)),
            "--postgres-port", str(pick_port(0, taken)),
            "--data-dir", str(folder / "data"),
        ]  # fmt: skip
        self.log = folder / "dev.out"
        self.env: dict[str, str] | None = None  # None: this process's environment
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.argv, cwd=self.folder, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + READY_WITHIN_S
        while time.monotonic() < deadline:
            match = READY_LINE.search(self.output())
            if match:
                self.url = match.group(1)
                return
            if self.process.poll() is not None:
                pytest.fail(
                    f"headwater dev exited with {self.process.returncode}:\n{self.output()}"
                )
            time.sleep(0.1)
        pytest.fail(f"headwater dev not ready within {READY_WITHIN_S} s:\n{self.output()}")

    @property
    def bootstrap(self) -> str:
        """The embedded broker's address, as the start banner says it."""
        return self.output().split("Kafka ", 1)[1].split(" ", 1)[0]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def server_pids(self) -> list[int]:
        text = (self.folder / "data" / "servers.pid").read_text()
        return [int(line.split()[0]) for line in text.splitlines() if line.strip()]


def descendants(pid: int) -> set[int]:
    """Every process whose parent chain reaches ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    out: set[int] = set()
    frontier = {pid}
    while frontier:
        children = {p for p, parent in parents.items() if parent in frontier}
        out |= children
        frontier = children
    return out


def alive(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def dev(tmp_path: pathlib.Path) -> Iterator[Dev]:
    stack = Dev(tmp_path)
    try:
        stack.start()
        yield stack
    finally:
        process = stack.process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        # The servers' groups, in case the test failed before its own clean stop.
        for pid in stack.server_pids() if (tmp_path / "data" / "servers.pid").exists() else []:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def partitions_of(bootstrap: str, topic: str) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    meta = admin.list_topics(topic, timeout=10).topics[topic]
    assert meta.error is None, meta.error
    return len(meta.partitions)


def said(api: httpx.Client, execution_id: str, message: str) -> bool:
    """Whether the execution's logs show ``message`` (hw.logs is projected beside hw.events,
    so a line can land just after the execution shows as ended)."""
    logs = api.get(f"/executions/{execution_id}/logs").json()
    return any(line["message"] == message for line in logs)


def wait_for(what: str, check: Any, timeout_s: float = ARRIVAL_S) -> Any:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    pytest.fail(f"{what} did not happen within {timeout_s} s (last: {last!r})")


@pytest.fixture
def api(dev: Dev) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{dev.url}/api/v1", timeout=10) as client:
        yield client


def test_dev_deploys_runs_follows_edits_and_stops_clean(dev: Dev, api: httpx.Client) -> None:
    assert (dev.folder / "flows" / "hello.yaml").is_file()
    assert "deployed company.team.hello revision 1" in dev.output()

    def flow_revision() -> int | None:
        response = api.get("/flows/company.team/hello")
        return response.json()["revision"] if response.status_code == 200 else None

    assert wait_for("the example flow in the read model", flow_revision) == 1
    # One process reads every topic: one partition each (DEV_PARTITIONS).
    assert partitions_of(dev.bootstrap, "hw.commands") == 1

    started = api.post("/executions/company.team/hello", json={"inputs": {"name": "Ada"}})
    assert started.status_code == 200, started.text
    execution_id = started.json()["id"]

    def final_state() -> str | None:
        response = api.get(f"/executions/{execution_id}")
        if response.status_code != 200:
            return None
        state: str = response.json()["state"]["current"]
        return state if state in ("SUCCESS", "FAILED", "KILLED", "WARNING") else None

    assert wait_for("the execution's end", final_state) == "SUCCESS"
    # hw.logs is projected beside hw.events: the line may land just after the end shows.
    assert wait_for("the log line", lambda: said(api, execution_id, "Hello, Ada!"))

    # An edit is deployed as the next revision; a broken file is reported, not deployed.
    flow_file = dev.folder / "flows" / "hello.yaml"
    flow_file.write_text(flow_file.read_text().replace("Hello, ", "Hi, "))
    assert wait_for("revision 2", lambda: flow_revision() == 2)
    (dev.folder / "flows" / "broken.yaml").write_text("id: broken\nnamespace: a\ntasks: [\n")
    wait_for("the problem report", lambda: "flows/broken.yaml:4:1:" in dev.output())
    assert "deployed a.broken" not in dev.output()

    # `headwater run` against this stack: success exits 0 with the logs, failure exits 1.
    env = {**os.environ, "HEADWATER_CLIENT__API_URL": dev.url}
    ok = subprocess.run(
        [str(HEADWATER), "run", "flows/hello.yaml", "-i", "name=Bob"],
        cwd=dev.folder, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Hi, Bob!" in ok.stdout
    assert "SUCCESS" in ok.stdout
    failing = dev.folder / "failing.yaml"
    failing.write_text(
        "id: failing\nnamespace: company.team\ntasks:\n"
        "  - id: boom\n    type: io.kestra.plugin.core.execution.Fail\n"
    )
    bad = subprocess.run(
        [str(HEADWATER), "run", str(failing), "--json"],
        cwd=dev.folder, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert '"current": "FAILED"' in bad.stdout

    # The CLI's tables, piped (no terminal; even a narrow COLUMNS): whole names and ids. A
    # webhook call shows as the trigger's "last fired" in `headwater triggers list`.
    hook = api.post("/executions/webhook/company.team/hello/hello-key")
    assert hook.status_code == 200, hook.text
    narrow = {**env, "COLUMNS": "40"}

    def cli(*args: str) -> str:
        done = subprocess.run(
            [str(HEADWATER), *args], cwd=dev.folder, env=narrow, capture_output=True,
            text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    listed = cli("execution", "list", "--flow", "hello")
    assert execution_id in listed
    assert "company.team.hello" in listed
    assert "…" not in listed

    def hook_fired() -> bool:
        rows = [line.split() for line in cli("triggers", "list").splitlines()]
        return any(r[:4] == ["company.team.hello", "webhook", "Webhook", "yes"] and r[4] != "-"
                   for r in rows if len(r) >= 5)  # fmt: skip

    assert wait_for("the webhook's last fired in `triggers list`", hook_fired)

    # Ctrl-C: every process it started (servers, postgres backends, task processes) ends.
    assert dev.process is not None
    tree = descendants(dev.process.pid)
    servers = dev.server_pids()
    assert set(servers) <= tree
    dev.process.send_signal(signal.SIGINT)
    assert dev.process.wait(timeout=60) == 0, dev.output()
    assert "stopped" in dev.output()
    assert wait_for("every child gone", lambda: not any(alive(p) for p in tree), 15)
    assert not (dev.folder / "data" / "servers.pid").exists()

    # A restart on the memory broker: the log is empty, so the read model is too. Nothing
    # deployed outside ./flows is still listed, ./flows is deployed afresh (revision 1), and
    # an execution of the earlier run is unknown (404), never a command accepted and dropped.
    dev.start()
    assert "the read model starts empty" in dev.output()
    with httpx.Client(base_url=f"{dev.url}/api/v1", timeout=10) as again:
        assert wait_for("hello redeployed", lambda: _revision(again, "hello")) == 1
        assert again.get("/flows/company.team/failing").status_code == 404
        listed = {f["id"] for f in again.get("/flows/search").json()["results"]}
        assert listed == {"hello"}
        assert again.get(f"/executions/{execution_id}").status_code == 404
        assert again.post(f"/executions/{execution_id}/resume").status_code == 404
        assert again.post(f"/executions/{execution_id}/kill").status_code == 404


def _revision(api: httpx.Client, flow_id: str) -> int | None:
    response = api.get(f"/flows/company.team/{flow_id}")
    return response.json()["revision"] if response.status_code == 200 else None
