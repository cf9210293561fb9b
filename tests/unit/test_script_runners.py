"""Task runners of script tasks (executors.runners, executors.docker).

No Docker Engine runs on our machines, so what is tested here is: the refusal (a task that asks
for a container on a worker without an engine fails, and runs nothing), the operator's opt-in
to the host (a WARN line, then the host), the Process runner, and the Docker runner's requests
and response handling against :class:`EngineStandIn`: a real HTTP server on a unix socket that
answers the Engine API calls the runner makes with canned answers shaped like the Engine's
documented ones (JSON bodies, the multiplexed log stream, tar archives), and records every
request so that each can be asserted. It runs no container: the script's output and the files
"written in the container" are the stand-in's canned answer. Running in a real engine is
untested here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import tarfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from engine.stores.storage import LocalStorage, TaskLocation
from executors.base import ContainerSettings, LogLine, TaskContext, TaskOutcome, run_task
from executors.plugin import PluginExecutor
from executors.python import PythonEnvironments, PythonScriptTask
from executors.shell import ShellCommandsTask
from schemas.plugins import plugins

PLUGINS = {info.type: info.cls for info in plugins()}
CID = "c0ffee1234"
DOCKER = "io.kestra.plugin.scripts.runner.docker.Docker"
# A test waits this long for the runner to reach a point (a request) on a loaded machine.
WAIT_S = 30.0


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class EngineStandIn:
    """Answers the Docker Engine API calls of one container run (see the module docstring)."""

    socket: Path
    exit_code: int = 0
    image_present: bool = False
    pull_error: str | None = None
    frames: list[tuple[int, bytes]] = field(default_factory=list)
    written: dict[str, bytes] = field(default_factory=dict)  # files the "container" writes
    hold_wait: bool = False  # /wait answers only after /kill
    requests: list[Request] = field(default_factory=list)
    killed: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: asyncio.Event = field(default_factory=asyncio.Event)  # /wait was called
    uploaded: dict[str, bytes] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def calls(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    def find(self, method: str, path: str) -> Request:
        return next(r for r in self.requests if r.method == method and r.path == path)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        key, value = line.split(":", 1)
                        headers[key.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                url = urlsplit(target)
                request = Request(method, url.path, dict(parse_qsl(url.query)), headers, body)
                self.requests.append(request)
                status, payload, ctype = await self.answer(request)
                reason = {200: "OK", 201: "Created", 204: "No Content", 404: "Not Found"}
                writer.write(
                    f"HTTP/1.1 {status} {reason.get(status, 'Error')}\r\n"
                    f"Content-Type: {ctype}\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
        writer.close()

    async def answer(self, r: Request) -> tuple[int, bytes, str]:
        js = "application/json"
        if r.path == "/_ping":
            return 200, b"OK", "text/plain"
        if r.method == "GET" and r.path.startswith("/images/"):
            if self.image_present:
                return 200, b'{"Id": "sha256:1"}', js
            return 404, b'{"message": "No such image"}', js
        if r.path == "/images/create":
            progress = [{"status": "Pulling from library/x"}]
            if self.pull_error:
                progress.append({"errorDetail": {}, "error": self.pull_error})
            return 200, b"\r\n".join(orjson.dumps(p) for p in progress), js
        if r.path == "/containers/create":
            return 201, orjson.dumps({"Id": CID, "Warnings": []}), js
        if r.path == f"/containers/{CID}/archive" and r.method == "PUT":
            with tarfile.open(fileobj=io.BytesIO(r.body)) as tar:
                for member in tar.getmembers():
                    if member.isfile():
                        source = tar.extractfile(member)
                        assert source is not None
                        self.uploaded[member.name] = source.read()
            return 200, b"", js
        if r.path == f"/containers/{CID}/start":
            return 204, b"", js
        if r.path == f"/containers/{CID}/logs":
            stream = b"".join(
                bytes([kind, 0, 0, 0]) + len(data).to_bytes(4, "big") + data
                for kind, data in self.frames
            )
            return 200, stream, "application/vnd.docker.multiplexed-stream"
        if r.path == f"/containers/{CID}/wait":
            self.waiting.set()
            if self.hold_wait:
                await self.killed.wait()
                return 200, b'{"StatusCode": 137}', js
            return 200, orjson.dumps({"StatusCode": self.exit_code}), js
        if r.path == f"/containers/{CID}/kill":
            self.killed.set()
            return 204, b"", js
        if r.path == f"/containers/{CID}/archive" and r.method == "GET":
            return 200, self.archive(r.query["path"]), "application/x-tar"
        if r.method == "DELETE" and r.path == f"/containers/{CID}":
            return 204, b"", js
        return 404, orjson.dumps({"message": f"page not found: {r.method} {r.path}"}), js

    def archive(self, path: str) -> bytes:
        """What ``GET /archive?path=<dir>`` returns: members named ``<basename>/...``."""
        base = path.rstrip("/")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            files = {"/" + name: data for name, data in self.uploaded.items()}
            files.update(self.written)
            for full, data in files.items():
                if not full.startswith(base + "/"):
                    continue
                info = tarfile.TarInfo(Path(base).name + full[len(base) :])
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()


@contextlib.asynccontextmanager
async def engine(tmp: Path, **kwargs: Any) -> AsyncIterator[EngineStandIn]:
    stand_in = EngineStandIn(tmp / "docker.sock", **kwargs)
    server = await asyncio.start_unix_server(stand_in.handle, path=str(stand_in.socket))
    async with server:
        yield stand_in


def context(
    tmp: Path, task: dict[str, Any], containers: ContainerSettings
) -> tuple[TaskContext, list[LogLine]]:
    lines: list[LogLine] = []
    storage = LocalStorage(tmp / "storage").for_task(
        TaskLocation(namespace="ns", flow_id="f", execution_id="e1", task_id="t", task_run_id="r1")
    )
    ctx = TaskContext.for_job(
        execution_id="e1",
        task_run_id="r1",
        attempt=1,
        task=task,
        variables={"flow": {"id": "f", "namespace": "ns"}},
        on_log=lines.append,
        storage=storage,
        working_dir=str(tmp / "work"),
        containers=containers,
    )
    return ctx, lines


async def run(
    tmp: Path,
    containers: ContainerSettings = ContainerSettings(),  # noqa: B008 - frozen
    executor: Any = None,
    ctx_hook: Callable[[TaskContext], None] | None = None,
    **task: Any,
) -> tuple[TaskOutcome, list[LogLine]]:
    task = {"id": "t", **task}
    ctx, lines = context(tmp, task, containers)
    if ctx_hook is not None:
        ctx_hook(ctx)
    executor = executor or PluginExecutor(PLUGINS[task["type"]])
    return await run_task(executor, task, ctx), lines


def warns(lines: list[LogLine]) -> list[str]:
    return [line.message for line in lines if line.level == "WARN"]


NODE = "io.kestra.plugin.scripts.node.Commands"


@pytest.mark.parametrize(
    ("asks", "named"),
    [
        ({"containerImage": "node:22"}, "image 'node:22'"),
        ({"taskRunner": {"type": DOCKER}}, "image 'node'"),
        ({"runner": "DOCKER", "docker": {"image": "node:20"}}, "image 'node:20'"),
        ({"docker": {"image": "node:18"}}, "image 'node:18'"),
    ],
)
async def test_a_container_without_an_engine_is_refused(
    tmp_path: Path, asks: dict[str, Any], named: str
) -> None:
    marker = tmp_path / "ran"
    outcome, _ = await run(tmp_path, type=NODE, commands=[f"touch {marker}"], **asks)
    assert outcome.state == "FAILED"
    assert outcome.error is not None
    assert outcome.error.startswith(
        f"the task asks for a container (Docker task runner, {named}) and this worker has no "
        "Docker Engine: the operator sets HEADWATER_WORKER__DOCKER_HOST"
    )
    assert "HEADWATER_WORKER__CONTAINERS_ON_HOST=true" in outcome.error
    assert not marker.exists()


async def test_remote_runners_are_refused_by_name(tmp_path: Path) -> None:
    outcome, _ = await run(
        tmp_path,
        type=NODE,
        commands=["true"],
        taskRunner={"type": "io.kestra.plugin.ee.kubernetes.runner.Kubernetes"},
    )
    assert outcome.state == "FAILED"
    assert outcome.error is not None
    assert outcome.error.startswith(
        "task runner 'io.kestra.plugin.ee.kubernetes.runner.Kubernetes' is not available"
    )


async def test_the_opt_in_runs_on_the_host_with_a_warn_line(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    outcome, lines = await run(
        tmp_path,
        ContainerSettings(on_host=True),
        type=NODE,
        commands=[f"touch {marker}", "node -e 'console.log(1 + 1)'"],
        containerImage="node:22",
        taskRunner={"type": DOCKER, "pullPolicy": "ALWAYS"},
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert marker.exists()
    assert warns(lines) == [
        "the task asks for a container (Docker task runner, image 'node:22') and this worker has "
        "no Docker Engine: the operator sets HEADWATER_WORKER__DOCKER_HOST to its socket "
        "(unix:///var/run/docker.sock) or tcp:// address; running on the worker's host instead "
        "(HEADWATER_WORKER__CONTAINERS_ON_HOST)"
    ]
    assert [line.message for line in lines if line.level == "INFO"] == ["2"]


async def test_the_process_runner_runs_on_the_host_without_a_warning(tmp_path: Path) -> None:
    outcome, lines = await run(
        tmp_path,
        executor=ShellCommandsTask(),
        type="io.kestra.plugin.scripts.shell.Commands",
        commands=["echo on the host"],
        containerImage="ubuntu:24.04",  # only a container runner would use it
        taskRunner={"type": "io.kestra.plugin.core.runner.Process"},
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert [line.message for line in lines] == ["on the host"]
    outcome, lines = await run(
        tmp_path,
        executor=ShellCommandsTask(),
        type="io.kestra.plugin.scripts.shell.Commands",
        commands=["echo legacy"],
        runner="PROCESS",
    )
    assert outcome.state == "SUCCESS", outcome.error


async def test_an_engine_that_does_not_answer(tmp_path: Path) -> None:
    gone = f"unix://{tmp_path}/no-such.sock"
    outcome, _ = await run(
        tmp_path, ContainerSettings(docker_host=gone), type=NODE, commands=["true"],
        containerImage="node:22",
    )  # fmt: skip
    assert outcome.state == "FAILED"
    assert outcome.error is not None
    assert f"and the Docker Engine at {gone} does not answer: " in outcome.error
    outcome, lines = await run(
        tmp_path, ContainerSettings(docker_host=gone, on_host=True), type=NODE,
        commands=["true"], containerImage="node:22",
    )  # fmt: skip
    assert outcome.state == "SUCCESS"
    assert len(warns(lines)) == 1


async def test_a_docker_run_sends_the_engine_the_expected_requests(tmp_path: Path) -> None:
    frames = [
        (1, b"hello from the container\n"),
        (1, b'::{"outputs": {"answer": 42}}::\n::{"metrics": [{"name": "n", "value": 2}]}::\n'),
        (2, b"a line on std"),
        (2, b"err\n"),
    ]
    async with engine(tmp_path, frames=frames) as docker:
        work = tmp_path / "work"
        outcome, lines = await run(
            tmp_path,
            ContainerSettings(docker_host=docker.host),
            type="io.kestra.plugin.scripts.node.Script",
            script="console.log('hi')",
            beforeCommands=["npm install left-pad"],
            env={"GREETING": "hi"},
            inputFiles={"data/in.txt": "input"},
            outputFiles=["*.csv"],
            containerImage="registry.example.com/team/node:22",
            taskRunner={
                "type": DOCKER,
                "cpu": {"cpus": 1.5},
                "memory": {"memory": "512MB", "memorySwap": "1GB"},
                "shmSize": "64MB",
                "user": "1000",
                "networkMode": "none",
                "extraHosts": ["db:127.0.0.1"],
                "credentials": {"username": "bot", "password": "s3cr3t-pw"},
            },
            ctx_hook=lambda ctx: docker.written.update(
                {f"{work}/result.csv": b"a,b\n", f"{work}/sub/x.bin": b"\x00"}
            ),
        )
    assert outcome.state == "SUCCESS", outcome.error
    calls = docker.calls()
    assert calls[:6] == [
        "GET /_ping",
        "GET /images/registry.example.com/team/node:22/json",
        "POST /images/create",
        "POST /containers/create",
        f"PUT /containers/{CID}/archive",
        f"POST /containers/{CID}/start",
    ]
    # The log stream and the wait run side by side: either may reach the engine first.
    assert sorted(calls[6:8]) == [f"GET /containers/{CID}/logs", f"POST /containers/{CID}/wait"]
    assert calls[8:] == [f"GET /containers/{CID}/archive", f"DELETE /containers/{CID}"]
    pull = docker.find("POST", "/images/create")
    assert pull.query == {"fromImage": "registry.example.com/team/node", "tag": "22"}
    auth = orjson.loads(base64.urlsafe_b64decode(pull.headers["x-registry-auth"]))
    assert auth == {"username": "bot", "password": "s3cr3t-pw"}
    body = docker.find("POST", "/containers/create").json()
    script_path = body["Cmd"][2].splitlines()[-1].removeprefix("node ")
    assert body["Cmd"] == ["/bin/sh", "-c", f"set -e\nnpm install left-pad\nnode {script_path}"]
    assert script_path.startswith(f"{work}/.hw_script_")
    assert script_path.endswith(".js")
    assert body["Image"] == "registry.example.com/team/node:22"
    assert body["WorkingDir"] == str(work)
    assert body["Entrypoint"] == [""]
    assert body["User"] == "1000"
    env = dict(item.split("=", 1) for item in body["Env"])
    assert env.pop("OUTPUT_DIR").startswith(f"{work}/")
    assert env == {"GREETING": "hi", "WORKING_DIR": str(work)}  # nothing of the worker's
    assert body["HostConfig"] == {
        "NanoCpus": 1_500_000_000,
        "Memory": 512 * 1024**2,
        "MemorySwap": 1024**3,
        "ShmSize": 64 * 1024**2,
        "ExtraHosts": ["db:127.0.0.1"],
        "NetworkMode": "none",
    }
    assert body["Labels"]["io.headwater.task-run-id"] == "r1"
    assert docker.find("PUT", f"/containers/{CID}/archive").query == {"path": "/"}
    rel = str(work).lstrip("/")
    assert docker.uploaded[f"{rel}/data/in.txt"] == b"input"
    assert docker.uploaded[script_path.lstrip("/")] == b"console.log('hi')"
    assert docker.find("GET", f"/containers/{CID}/logs").query == {
        "follow": "1", "stdout": "1", "stderr": "1",
    }  # fmt: skip
    assert docker.find("GET", f"/containers/{CID}/archive").query == {"path": str(work)}
    assert docker.find("DELETE", f"/containers/{CID}").query == {"force": "1", "v": "1"}
    assert outcome.outputs["exitCode"] == 0
    assert outcome.outputs["vars"] == {"answer": 42}
    assert outcome.metrics == {"n": 2}
    assert sorted(outcome.outputs["outputFiles"]) == ["result.csv"]
    storage = LocalStorage(tmp_path / "storage")
    assert storage.read_sync(outcome.outputs["outputFiles"]["result.csv"]) == b"a,b\n"
    logged = [(line.level, line.message) for line in lines]
    assert logged == [
        ("INFO", "pulling image registry.example.com/team/node:22"),
        ("INFO", "hello from the container"),
        ("ERROR", "a line on stderr"),
    ]
    assert not any("s3cr3t-pw" in message for _level, message in logged)


async def test_output_dir_files_come_back_from_the_container(tmp_path: Path) -> None:
    async with engine(tmp_path, image_present=True) as docker:

        def written(ctx: TaskContext) -> None:
            original = docker.answer

            async def answer(r: Request) -> tuple[int, bytes, str]:
                if r.path == "/containers/create":
                    out_dir = dict(e.split("=", 1) for e in r.json()["Env"])["OUTPUT_DIR"]
                    docker.written[f"{out_dir}/nested/report.txt"] = b"report"
                return await original(r)

            docker.answer = answer  # type: ignore[method-assign]

        outcome, _ = await run(
            tmp_path,
            ContainerSettings(docker_host=docker.host),
            executor=ShellCommandsTask(),
            type="io.kestra.plugin.scripts.shell.Commands",
            commands=["echo x > {{ outputDir }}/nested/report.txt"],
            taskRunner={"type": DOCKER, "delete": False},
            ctx_hook=written,
        )
    assert outcome.state == "SUCCESS", outcome.error
    assert "POST /images/create" not in docker.calls()  # present: IF_NOT_PRESENT pulls nothing
    assert f"DELETE /containers/{CID}" not in docker.calls()  # delete: false
    assert docker.find("POST", "/containers/create").json()["Image"] == "ubuntu"
    uri = outcome.outputs["outputFiles"]["nested/report.txt"]
    assert LocalStorage(tmp_path / "storage").read_sync(uri) == b"report"


async def test_a_failing_container_and_engine_errors(tmp_path: Path) -> None:
    async with engine(tmp_path, exit_code=3, frames=[(2, b"boom\n")]) as docker:
        settings = ContainerSettings(docker_host=docker.host)
        outcome, _ = await run(
            tmp_path, settings, type=NODE, commands=["node x.js"], containerImage="node:22"
        )
        assert outcome.state == "FAILED"
        assert outcome.error == "Command failed with exit code 3"
        assert outcome.outputs["exitCode"] == 3
        docker.pull_error = "pull access denied for nope, repository does not exist"
        outcome, _ = await run(
            tmp_path, settings, type=NODE, commands=["true"], containerImage="nope"
        )
        assert outcome.error == (
            "pulling image nope failed: pull access denied for nope, repository does not exist"
        )
        outcome, _ = await run(
            tmp_path, settings, type=NODE, commands=["true"], containerImage="nope",
            taskRunner={"type": DOCKER, "pullPolicy": "NEVER", "volumes": ["/etc:/host-etc"]},
        )  # fmt: skip
        assert outcome.error is not None
        assert outcome.error.startswith("taskRunner.volumes: bind mounts of host paths are")


async def test_python_in_a_container_installs_its_dependencies_there(tmp_path: Path) -> None:
    envs = PythonEnvironments("python3", tmp_path / "venvs")
    async with engine(tmp_path, image_present=True) as docker:
        outcome, _ = await run(
            tmp_path,
            ContainerSettings(docker_host=docker.host),
            executor=PythonScriptTask(envs),
            type="io.kestra.plugin.scripts.python.Script",
            script="import requests",
            dependencies=["requests>=2", "pandas"],
            taskRunner={"type": DOCKER},
        )
    assert outcome.state == "SUCCESS", outcome.error
    assert not (tmp_path / "venvs").exists()  # nothing was installed on the host
    cmd = docker.find("POST", "/containers/create").json()["Cmd"]
    lines = cmd[2].splitlines()
    assert cmd[:2] == ["/bin/sh", "-c"]
    assert lines[:2] == ["set -e", "python -m pip install -q 'requests>=2' pandas"]
    assert lines[2].startswith("python /")
    assert lines[2].endswith(".py")
    image = docker.find("POST", "/containers/create").json()["Image"]
    assert image == "python:3.13-slim"


async def test_a_kill_stops_the_container(tmp_path: Path) -> None:
    async with engine(tmp_path, hold_wait=True, image_present=True) as docker:
        task = {"id": "t", "type": NODE, "commands": ["sleep 600"], "containerImage": "node"}
        ctx, _ = context(tmp_path, task, ContainerSettings(docker_host=docker.host))
        running = asyncio.create_task(run_task(PluginExecutor(PLUGINS[NODE]), task, ctx))
        await asyncio.wait_for(docker.waiting.wait(), WAIT_S)
        ctx.cancelled.set()
        outcome = await asyncio.wait_for(running, WAIT_S)
    assert outcome.state == "KILLED"
    assert docker.killed.is_set()
    assert f"DELETE /containers/{CID}" in docker.calls()


def test_sizes_and_image_names() -> None:
    from executors.docker import port_bindings, split_image
    from executors.runners import parse_size, registry_of

    assert parse_size("512Mb", "m") == 512 * 1024**2
    assert parse_size("2GB", "m") == 2 * 1024**3
    assert parse_size("1048576", "m") == 1048576
    with pytest.raises(Exception, match="invalid size 'lots'"):
        parse_size("lots", "taskRunner.memory.memory")
    assert split_image("python") == ("python", "latest")
    assert split_image("localhost:5000/a/b:1.2") == ("localhost:5000/a/b", "1.2")
    assert split_image("localhost:5000/a/b") == ("localhost:5000/a/b", "latest")
    assert registry_of("ghcr.io/kestra-io/pydata:latest") == "ghcr.io"
    assert registry_of("kestra-io/pydata") == "docker.io"
    assert port_bindings(["8080:80", "127.0.0.1:9000:90/udp"]) == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
        "90/udp": [{"HostIp": "127.0.0.1", "HostPort": "9000"}],
    }


def test_the_worker_takes_its_container_settings_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.settings import Settings
    from engine.worker import Worker

    monkeypatch.setenv("HEADWATER_WORKER__DOCKER_HOST", "unix:///run/docker.sock")
    monkeypatch.setenv("HEADWATER_WORKER__CONTAINERS_ON_HOST", "true")
    monkeypatch.setenv("HEADWATER_WORKER__WORK_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("HEADWATER_WORKER__STORAGE_DIR", str(tmp_path / "s"))
    monkeypatch.setenv("HEADWATER_WORKER__VENV_CACHE_DIR", str(tmp_path / "v"))
    worker = Worker(Settings())
    assert worker.containers == ContainerSettings(
        docker_host="unix:///run/docker.sock", on_host=True, volumes_enabled=False
    )
    monkeypatch.delenv("HEADWATER_WORKER__DOCKER_HOST")
    monkeypatch.delenv("HEADWATER_WORKER__CONTAINERS_ON_HOST")
    assert Worker(Settings()).containers == ContainerSettings()
