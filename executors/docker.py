"""Run a script task's command in a container, through the Docker Engine API.

A small async client of the Engine's HTTP API (httpx, over the unix socket of ``unix://PATH``
or to ``tcp://HOST:PORT``; unversioned paths, so the engine's own API version is used, as the
docker CLI does when it negotiates). One run, as Kestra's Docker task runner does it:

1. ``GET /images/{image}/json`` (pullPolicy IF_NOT_PRESENT) and ``POST /images/create`` (pull,
   with ``X-Registry-Auth`` when credentials are given; a progress message with ``error``
   fails the task);
2. ``POST /containers/create``: ``Image``, ``Cmd`` (the interpreter's argv), ``Entrypoint``,
   ``Env`` (only the task's ``env`` plus ``WORKING_DIR``/``OUTPUT_DIR``: never the worker's
   own environment), ``WorkingDir`` (the run's directory, the same path as on the worker, so
   ``{{ workingDir }}`` means the same thing in both), ``User``, ``Labels``, ``HostConfig``;
3. fileHandlingStrategy VOLUME: ``PUT /containers/{id}/archive?path=/`` with a tar of the
   working directory (input files, the script); MOUNT: the directory is a bind mount instead;
4. ``POST /containers/{id}/start``; ``GET /containers/{id}/logs?follow=1`` (the multiplexed
   stream: 8-byte frame headers, 1 = stdout, 2 = stderr) feeds the same line handling as a host
   process (logs, ``::{"outputs": ...}::``); ``POST /containers/{id}/wait`` gives the exit code;
5. VOLUME: ``GET /containers/{id}/archive?path=<dir>`` brings the directory back, so that
   ``outputFiles`` and ``{{ outputDir }}`` work as on the host;
6. ``DELETE /containers/{id}?force=1`` unless ``delete: false``.

A kill (or timeout) sends ``POST /containers/{id}/kill`` (or ``/stop?t=N`` with a
killGracePeriod). An engine error is a task failure quoting the engine's message.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import tarfile
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

from executors.base import TaskContext, TaskError
from executors.process import LineSink, LineSplitter, ProcessResult
from executors.runners import Container

# An engine call other than a pull or the log stream: a local engine answers in milliseconds,
# a busy one in seconds; past this it is stuck.
API_TIMEOUT_S = 60.0
# A ping that does not answer this fast means "no engine here" for the runner choice.
PING_TIMEOUT_S = 5.0
# Frames of the multiplexed log stream: stream type (1 stdout, 2 stderr), 3 zero bytes, length.
_FRAME_HEADER = 8
# After the container exited, the log stream gets this long to deliver its last frames.
_DRAIN_S = 10.0
_LABEL_PREFIX = "io.headwater."


class EngineError(TaskError):
    """The Docker Engine refused a call (the message quotes it) or could not be reached."""


def client(host: str) -> httpx.AsyncClient:
    """An HTTP client of the engine at ``host`` (``unix:///path`` or ``tcp://host:port``)."""
    parts = urlsplit(host)
    timeout = httpx.Timeout(API_TIMEOUT_S)
    if parts.scheme == "unix":
        transport = httpx.AsyncHTTPTransport(uds=parts.path)
        return httpx.AsyncClient(transport=transport, base_url="http://docker", timeout=timeout)
    if parts.scheme in ("tcp", "http"):
        return httpx.AsyncClient(base_url=f"http://{parts.netloc}", timeout=timeout)
    if parts.scheme == "https":
        return httpx.AsyncClient(base_url=f"https://{parts.netloc}", timeout=timeout)
    raise TaskError(f"Docker host {host!r}: expected unix:///path/docker.sock or tcp://host:port")


async def ping(host: str) -> str | None:
    """None when the engine at ``host`` answers ``GET /_ping``; otherwise why not."""
    try:
        async with client(host) as http:
            response = await http.get("/_ping", timeout=PING_TIMEOUT_S)
    except TaskError as exc:
        return str(exc)
    except (httpx.HTTPError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if response.status_code != 200:
        return f"GET /_ping answered HTTP {response.status_code}"
    return None


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code < 300:
        return
    try:
        message = response.json().get("message") or response.text
    except ValueError:
        message = response.text
    raise EngineError(f"Docker Engine: {what} failed (HTTP {response.status_code}): {message}")


def split_image(image: str) -> tuple[str, str]:
    """(repository, tag or digest) of an image reference; no tag means ``latest``."""
    if "@" in image:
        repo, digest = image.split("@", 1)
        return repo, digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1 :]
    return image, "latest"


async def _pull(http: httpx.AsyncClient, ctx: TaskContext, image: str, auth: str | None) -> None:
    repo, tag = split_image(image)
    headers = {"X-Registry-Auth": auth} if auth else {}
    ctx.log("INFO", f"pulling image {image}")
    params = {"fromImage": repo, "tag": tag}
    async with http.stream(
        "POST", "/images/create", params=params, headers=headers, timeout=None
    ) as response:
        if response.status_code >= 300:
            await response.aread()
            _check(response, f"pulling image {image}")
        async for line in response.aiter_lines():
            try:
                progress = orjson.loads(line) if line.strip() else None
            except orjson.JSONDecodeError:
                continue
            if isinstance(progress, dict) and progress.get("error"):
                raise EngineError(f"pulling image {image} failed: {progress['error']}")


def create_body(
    run: Container, argv: Sequence[str], env: Mapping[str, str], root: Path, ctx: TaskContext
) -> dict[str, Any]:
    """The ``POST /containers/create`` body of one run."""
    opts = run.options
    host_config: dict[str, Any] = dict(opts.host_config)
    binds = [f"{root}:{root}:rw"] if opts.mount else []
    binds += opts.volumes
    if binds:
        host_config["Binds"] = binds
    if opts.extra_hosts:
        host_config["ExtraHosts"] = opts.extra_hosts
    if opts.network_mode:
        host_config["NetworkMode"] = opts.network_mode
    exposed: dict[str, Any] = {}
    if opts.port_bindings:
        host_config["PortBindings"] = port_bindings(opts.port_bindings)
        exposed = {port: {} for port in host_config["PortBindings"]}
    body: dict[str, Any] = {
        "Image": opts.image,
        "Cmd": list(argv),
        "Env": [f"{k}={v}" for k, v in env.items()],
        "WorkingDir": str(root),
        "Labels": {
            f"{_LABEL_PREFIX}execution-id": ctx.execution_id,
            f"{_LABEL_PREFIX}task-run-id": ctx.task_run_id,
            f"{_LABEL_PREFIX}task-id": ctx.task_id or "",
            f"{_LABEL_PREFIX}attempt": str(ctx.attempt),
        },
        "AttachStdout": True,
        "AttachStderr": True,
        "Tty": False,
        "OpenStdin": False,
        "HostConfig": host_config,
    }
    if opts.entry_point is not None:
        body["Entrypoint"] = opts.entry_point
    if opts.user:
        body["User"] = opts.user
    if exposed:
        body["ExposedPorts"] = exposed
    return body


def port_bindings(specs: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    """docker run's ``-p [ip:]hostPort:containerPort[/proto]`` as the API's PortBindings."""
    out: dict[str, list[dict[str, str]]] = {}
    for spec in specs:
        port, _, proto = spec.partition("/")
        parts = port.rsplit(":", 2)
        if len(parts) == 1 or not parts[-1].isdigit():
            raise TaskError(f"taskRunner.portBindings: {spec!r} is not [ip:]hostPort:containerPort")
        ip = parts[0] if len(parts) == 3 else ""
        key = f"{parts[-1]}/{proto or 'tcp'}"
        out.setdefault(key, []).append({"HostIp": ip, "HostPort": parts[-2]})
    return out


def tar_directory(root: Path) -> bytes:
    """A tar of ``root`` whose member names are absolute paths without the leading ``/``, so
    that extracting it at ``/`` recreates the directory, parents included."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(str(root), arcname=str(root).lstrip("/"))
    return buffer.getvalue()


def untar_directory(data: bytes, root: Path) -> None:
    """Extract ``GET /archive?path=<root>``'s tar (members ``<basename>/...``) into ``root``."""
    prefix = root.name + "/"
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        for member in tar.getmembers():
            if not member.name.startswith(prefix) or not (member.isfile() or member.isdir()):
                continue
            target = (root / member.name[len(prefix) :]).resolve()
            if not target.is_relative_to(root.resolve()):
                continue  # a name with ../ does not leave the working directory
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            if source is not None:
                target.write_bytes(source.read())
                os.chmod(target, member.mode & 0o777)


async def frames(stream: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    """(stream type, payload) of the engine's multiplexed stdout/stderr stream."""
    buf = bytearray()
    async for chunk in stream:
        buf += chunk
        while len(buf) >= _FRAME_HEADER:
            size = int.from_bytes(buf[4:8], "big")
            if len(buf) < _FRAME_HEADER + size:
                break
            kind = buf[0]
            payload = bytes(buf[_FRAME_HEADER : _FRAME_HEADER + size])
            del buf[: _FRAME_HEADER + size]
            yield kind, payload


async def _follow_logs(http: httpx.AsyncClient, cid: str, sink: LineSink) -> None:
    out, err = LineSplitter(sink, "INFO"), LineSplitter(sink, "ERROR")
    params = {"follow": "1", "stdout": "1", "stderr": "1"}
    async with http.stream("GET", f"/containers/{cid}/logs", params=params, timeout=None) as resp:
        if resp.status_code >= 300:
            await resp.aread()
            _check(resp, "reading the container's logs")
        async for kind, payload in frames(resp.aiter_bytes()):
            (err if kind == 2 else out).feed(payload)
    out.close()
    err.close()


async def run_in_container(
    run: Container, argv: Sequence[str], env: Mapping[str, str], root: Path, ctx: TaskContext
) -> ProcessResult:
    """Run ``argv`` in a container of ``run`` (see the module docstring); cancellable."""
    result = ProcessResult()
    sink = LineSink(ctx, result)
    opts = run.options
    try:
        async with client(run.host) as http:
            await _prepare_image(http, ctx, opts.image, opts.pull_policy, opts.registry_auth)
            created = await http.post(
                "/containers/create", json=create_body(run, argv, env, root, ctx)
            )
            _check(created, f"creating a container of {opts.image}")
            cid = str(created.json()["Id"])
            try:
                await _run(http, cid, run, root, ctx, sink, result)
            finally:
                if opts.delete:
                    with contextlib.suppress(httpx.HTTPError, OSError):
                        await http.delete(f"/containers/{cid}", params={"force": "1", "v": "1"})
    except (httpx.HTTPError, OSError) as exc:
        raise EngineError(f"Docker Engine at {run.host}: {type(exc).__name__}: {exc}") from exc
    return result


async def _prepare_image(
    http: httpx.AsyncClient, ctx: TaskContext, image: str, policy: str, auth: str | None
) -> None:
    if policy == "NEVER":
        return
    if policy == "IF_NOT_PRESENT":
        found = await http.get(f"/images/{quote(image, safe='/:@')}/json")
        if found.status_code == 200:
            return
        if found.status_code != 404:
            _check(found, f"inspecting image {image}")
    await _pull(http, ctx, image, auth)


async def _run(
    http: httpx.AsyncClient,
    cid: str,
    run: Container,
    root: Path,
    ctx: TaskContext,
    sink: LineSink,
    result: ProcessResult,
) -> None:
    if not run.options.mount:
        data = await asyncio.to_thread(tar_directory, root)
        put = await http.put(
            f"/containers/{cid}/archive",
            params={"path": "/"},
            content=data,
            headers={"Content-Type": "application/x-tar"},
        )
        _check(put, "copying the working directory into the container")
    _check(await http.post(f"/containers/{cid}/start"), "starting the container")
    logs = asyncio.create_task(_follow_logs(http, cid, sink))
    waiter = asyncio.create_task(http.post(f"/containers/{cid}/wait", timeout=None))
    cancel = asyncio.create_task(ctx.cancelled.wait())
    try:
        await asyncio.wait({waiter, cancel}, return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            result.killed = True
            await _kill(http, cid, run.options.kill_grace_s)
            await asyncio.wait({waiter}, timeout=API_TIMEOUT_S)
        await asyncio.wait({logs}, timeout=_DRAIN_S)
        if logs.done() and not logs.cancelled() and logs.exception() is not None:
            raise logs.exception()  # type: ignore[misc]
        if waiter.done() and not result.killed:
            answer = waiter.result()
            _check(answer, "waiting for the container")
            status = answer.json()
            result.exit_code = int(status.get("StatusCode", -1))
            error = (status.get("Error") or {}).get("Message")
            if error:
                ctx.log("ERROR", f"Docker Engine: {error}")
        if not run.options.mount:
            got = await http.get(f"/containers/{cid}/archive", params={"path": str(root)})
            _check(got, "copying the working directory out of the container")
            await asyncio.to_thread(untar_directory, got.content, root)
    except asyncio.CancelledError:
        with contextlib.suppress(httpx.HTTPError, OSError):
            await asyncio.shield(_kill(http, cid, 0.0))
        raise
    finally:
        for task in (logs, waiter, cancel):
            task.cancel()


async def _kill(http: httpx.AsyncClient, cid: str, grace_s: float) -> None:
    if grace_s > 0:
        await http.post(f"/containers/{cid}/stop", params={"t": str(int(grace_s))})
    else:
        response = await http.post(f"/containers/{cid}/kill")
        if response.status_code not in (204, 404, 409):  # 409: not running any more
            _check(response, "killing the container")
