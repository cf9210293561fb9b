"""The chaos run's stack: every Headwater component as a separate OS process.

:class:`ComponentProcess` is one ``headwater <component>`` process in its own process group
(so a SIGKILL also ends what it forked: a worker's watchdog and task processes) with its
output appended to one log file across restarts. :class:`ChaosStack` starts the set the chaos
test asks for (2 executors, 2 workers, 1 projector, 1 trigger runtime, 1 API) against the
given broker, with its own topic prefix, consumer groups and a fresh Postgres database, all
through HEADWATER_* variables exactly as an operator would run them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from engine.devstack.procs import pick_port

REPO = Path(__file__).resolve().parents[2]
# A SIGKILLed process is gone within milliseconds; this bounds a stuck (D-state) one.
REAP_S = 10.0
# On SIGTERM at the end, a component finishes its batch and leaves its group: a few seconds.
STOP_GRACE_S = 10.0
# The set of components the issue asks for, by name and count.
LAYOUT: dict[str, int] = {"executor": 2, "worker": 2, "projector": 1, "triggers": 1, "api": 1}
# Our Kafka client settings: group joins take about half the session timeout on Tansu, so a
# short one lets the survivors take over a SIGKILLed member's partitions within seconds.
SESSION_TIMEOUT_MS = 3000
HEARTBEAT_MS = 500
FETCH_WAIT_MS = 5  # the default; a run against a durable broker passes a longer one
PARTITIONS = 4


@dataclass
class ComponentProcess:
    """One component process; ``kill`` and ``start`` may alternate any number of times."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0
    # Exits nobody asked for (crashes): the exit codes, in order.
    crashes: list[int] = field(default_factory=list)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            out.write(f"\n===== start #{self.starts + 1} =====\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=REPO,
                process_group=0,
            )
        self.starts += 1

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check(self) -> int | None:
        """The exit code when the process died by itself since the last check (recorded as a
        crash), else None. A process we killed is not a crash: ``kill`` reaps it first."""
        if self.process is None:
            return None
        code = self.process.poll()
        if code is None:
            return None
        self.crashes.append(code)
        self.process = None
        return code

    def kill(self) -> None:
        """SIGKILL the whole process group and reap the leader."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=REAP_S)
        self.kills += 1

    def stop(self) -> None:
        """SIGTERM, then SIGKILL of the group after the grace (the end of the run)."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=REAP_S)

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def tracebacks(self) -> int:
        try:
            return self.log_path.read_text(errors="replace").count("Traceback (most recent")
        except OSError:
            return 0


@dataclass
class StackConfig:
    bootstrap: str
    dsn: str
    work: Path
    topic_prefix: str = field(default_factory=lambda: f"chaos{uuid.uuid4().hex[:8]}.")
    # The API refuses to serve without credentials; the load sends this bearer key.
    api_key: str = field(default_factory=lambda: uuid.uuid4().hex)
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    fetch_wait_ms: int = FETCH_WAIT_MS


class ChaosStack:
    """The component processes of one chaos run (nothing runs until :meth:`start`)."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.api_port = pick_port(0)
        self.components: list[ComponentProcess] = []
        for name, count in LAYOUT.items():
            for i in range(count):
                label = name if count == 1 else f"{name}-{i + 1}"
                self.components.append(
                    ComponentProcess(
                        label,
                        [sys.executable, "-c", "from engine.cli import main; main()", name],
                        self._env(label),
                        config.work / "logs" / f"{label}.log",
                    )
                )

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _env(self, label: str) -> dict[str, str]:
        c = self.config
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")},
            "HEADWATER_KAFKA__BOOTSTRAP_SERVERS": c.bootstrap,
            "HEADWATER_KAFKA__TOPIC_PREFIX": c.topic_prefix,
            "HEADWATER_KAFKA__PARTITIONS": str(PARTITIONS),
            "HEADWATER_KAFKA__SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
            "HEADWATER_KAFKA__HEARTBEAT_INTERVAL_MS": str(HEARTBEAT_MS),
            "HEADWATER_KAFKA__FETCH_WAIT_MAX_MS": str(c.fetch_wait_ms),
            "HEADWATER_KAFKA__REQUEST_TIMEOUT_S": "5",
            "HEADWATER_KAFKA__CLIENT_ID": f"chaos-{label}",
            "HEADWATER_POSTGRES__DSN": c.dsn,
            "HEADWATER_EXECUTOR__GROUP_ID": f"chaos-executor-{c.tag}",
            "HEADWATER_EXECUTOR__POLL_TIMEOUT_S": "0.1",
            "HEADWATER_PROJECTOR__GROUP_ID": f"chaos-projector-{c.tag}",
            "HEADWATER_PROJECTOR__POLL_TIMEOUT_S": "0.2",
            "HEADWATER_TRIGGERS__GROUP_PREFIX": f"chaos-triggers-{c.tag}",
            "HEADWATER_API__HOST": "127.0.0.1",
            "HEADWATER_API__PORT": str(self.api_port),
            "HEADWATER_API__API_KEYS": json.dumps([c.api_key]),
            "HEADWATER_WORKER__HEARTBEAT_INTERVAL_S": "1.0",
            "HEADWATER_WORKER__SHUTDOWN_GRACE_S": "2",
            "HEADWATER_WORKER__WORK_DIR": str(c.work / "work"),
            "HEADWATER_WORKER__STORAGE_DIR": str(c.work / "storage"),
            "PYTHONUNBUFFERED": "1",
        }

    def by_name(self, name: str) -> ComponentProcess:
        return next(c for c in self.components if c.name == name)

    def start(self) -> None:
        for component in self.components:
            component.start()

    def stop(self) -> None:
        """Stop every component: SIGTERM all first so that they leave their groups in
        parallel, then reap each (blocking; bounded by the grace)."""
        for component in self.components:
            if component.alive() and component.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    component.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for component in self.components:
            if component.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    component.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            component.stop()
