"""Where a script task runs: Kestra's task runners, chosen from the task's properties.

Kestra's script tasks (``AbstractExecScript``) run through a ``taskRunner``:

- ``io.kestra.plugin.core.runner.Process`` runs the commands on the worker's host;
- ``io.kestra.plugin.scripts.runner.docker.Docker`` runs them in a container of
  ``containerImage`` (each type has a default image: ``ubuntu``, ``python``, ``node``...);
- remote runners (Kubernetes, AWS Batch, Google Batch, Azure Batch...) are Enterprise plugins.

The deprecated ``runner: PROCESS | DOCKER`` with ``docker: {image, ...}`` still selects one,
and a task with a ``docker:`` block and no ``taskRunner`` uses Docker with those options, as
in Kestra. Kestra's default runner is Docker; **Headwater's default is the host**: a task that
names no runner, no ``docker:`` block and no ``containerImage`` runs as Process does. A task
that does ask for a container is never run elsewhere silently:

- a Docker Engine is configured (the worker's ``docker_host``, or the runner's own ``host``)
  and answers: the task runs in the image (:mod:`executors.docker`);
- otherwise the task fails, naming the runner, the image and the settings that fix it — unless
  the operator opted in to running such tasks on the host (``containers_on_host``): the task
  then runs on the host, and says so in a WARN line of its log.

Docker runner properties (Kestra's names and defaults): ``image`` (legacy; else
``containerImage``), ``host``, ``pullPolicy`` (IF_NOT_PRESENT; ALWAYS, NEVER), ``user``,
``entryPoint`` (``[""]``: the image's entrypoint is reset), ``extraHosts``, ``networkMode``,
``portBindings`` (``[ip:]hostPort:containerPort[/proto]``), ``volumes`` (``host:container[:ro]``,
only when the operator enables them, as Kestra's ``volume-enabled``), ``cpu.cpus`` (NanoCpus),
``memory.{memory, memorySwap, memorySwappiness, memoryReservation, kernelMemory,
oomKillDisable}`` (sizes like ``512MB``), ``shmSize``, ``privileged``, ``deviceRequests``,
``credentials`` / ``config`` (registry auth for the pull), ``fileHandlingStrategy`` (VOLUME:
files are copied in and out; MOUNT: the working directory is bind-mounted), ``delete`` (true),
``killGracePeriod`` (PT0S: a kill is immediate), ``resume`` (accepted; a new container is always
created). ``wait: false`` is refused: the task's outcome would be unknown.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from executors.base import TaskContext, TaskError, as_bool, parse_duration, to_text

PROCESS = "io.kestra.plugin.core.runner.Process"
DOCKER = "io.kestra.plugin.scripts.runner.docker.Docker"
# Older names of the same runners (Kestra 0.16-0.17).
_PROCESS_NAMES = frozenset(
    {
        PROCESS,
        "io.kestra.core.models.tasks.runners.types.ProcessTaskRunner",
        "io.kestra.core.models.script.types.ProcessScriptRunner",
    }
)
_DOCKER_NAMES = frozenset(
    {
        DOCKER,
        "io.kestra.plugin.scripts.runners.docker.DockerTaskRunner",
        "io.kestra.plugin.scripts.runner.docker.DockerTaskRunner",
    }
)
_DOCKER_KEYS = frozenset(
    {
        "type", "host", "config", "credentials", "image", "user", "entryPoint", "extraHosts",
        "networkMode", "portBindings", "volumes", "pullPolicy", "deviceRequests", "cpu",
        "memory", "shmSize", "privileged", "fileHandlingStrategy", "delete", "wait",
        "killGracePeriod", "resume", "version",
    }
)  # fmt: skip
_MEMORY_KEYS = {
    "memory": "Memory",
    "memorySwap": "MemorySwap",
    "memoryReservation": "MemoryReservation",
    "kernelMemory": "KernelMemory",
}
_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
SETTING_HOST = "HEADWATER_WORKER__DOCKER_HOST"
SETTING_ON_HOST = "HEADWATER_WORKER__CONTAINERS_ON_HOST"
SETTING_VOLUMES = "HEADWATER_WORKER__DOCKER_VOLUMES_ENABLED"


@dataclass(frozen=True, slots=True)
class DockerOptions:
    """A Docker runner's rendered properties (see the module docstring)."""

    image: str
    host: str | None = None
    pull_policy: str = "IF_NOT_PRESENT"
    user: str | None = None
    entry_point: list[str] | None = field(default_factory=lambda: [""])
    extra_hosts: list[str] = field(default_factory=list)
    network_mode: str | None = None
    port_bindings: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    host_config: dict[str, Any] = field(default_factory=dict)  # cpu, memory, shm, devices...
    registry_auth: str | None = None  # the X-Registry-Auth header value
    mount: bool = False  # fileHandlingStrategy MOUNT
    delete: bool = True
    kill_grace_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Host:
    """Run on the worker's host (the Process runner)."""


@dataclass(frozen=True, slots=True)
class Container:
    """Run in a container of a Docker Engine at ``host``."""

    host: str
    options: DockerOptions


Runner = Host | Container
# Answers whether the Docker Engine at a host is up: None, or why not (executors.docker.ping).
Pinger = Callable[[str], Any]


@dataclass(frozen=True, slots=True)
class _Wanted:
    """What the task asks for before the worker's capabilities are considered."""

    kind: str  # "host", "docker" or the remote runner's type
    docker: Mapping[str, Any] | None = None


def _wanted(task: Mapping[str, Any], render: Callable[[Any], Any]) -> _Wanted:
    legacy = render(task.get("runner"))
    docker_block = task.get("docker")
    if docker_block is not None and not isinstance(docker_block, Mapping):
        raise TaskError("property 'docker' must be a map of Docker options")
    if legacy is not None:
        name = to_text(legacy).strip().upper()
        if name == "PROCESS":
            return _Wanted("host")
        if name == "DOCKER":
            return _Wanted("docker", docker_block or {})
        raise TaskError(f"property 'runner' must be PROCESS or DOCKER, got {legacy!r}")
    runner = task.get("taskRunner")
    if runner is not None:
        if not isinstance(runner, Mapping) or not isinstance(runner.get("type"), str):
            raise TaskError("property 'taskRunner' must be a map with a 'type'")
        kind = runner["type"]
        if kind in _PROCESS_NAMES:
            return _Wanted("host")
        if kind in _DOCKER_NAMES:
            # Kestra: the deprecated docker options win over a Docker taskRunner's.
            return _Wanted("docker", docker_block if docker_block is not None else runner)
        return _Wanted(kind)
    if docker_block is not None:
        return _Wanted("docker", docker_block)
    if task.get("containerImage") is not None:
        return _Wanted("docker", {})
    return _Wanted("host")


async def choose_runner(
    task: Mapping[str, Any],
    ctx: TaskContext,
    render: Callable[[Any], Any],
    *,
    default_image: str | None,
    ping: Pinger,
) -> Runner:
    """The runner of this task on this worker; raises TaskError when it cannot run here."""
    wanted = _wanted(task, render)
    if wanted.kind == "host":
        return Host()
    settings = ctx.containers
    if wanted.kind != "docker":
        return _unavailable(
            ctx,
            f"task runner {wanted.kind!r} is not available in Headwater (only {PROCESS} "
            f"and {DOCKER} are)",
        )
    options = docker_options(wanted.docker or {}, task, render, default_image, ctx)
    what = f"the task asks for a container (Docker task runner, image {options.image!r})"
    host = options.host or settings.docker_host
    if not host:
        return _unavailable(
            ctx,
            f"{what} and this worker has no Docker Engine: the operator sets {SETTING_HOST} to "
            f"its socket (unix:///var/run/docker.sock) or tcp:// address",
        )
    problem = await ping(host)
    if problem is not None:
        reason = f"{what} and the Docker Engine at {host} does not answer: {problem}"
        return _unavailable(ctx, reason)
    if options.volumes and not settings.volumes_enabled:
        raise TaskError(
            f"taskRunner.volumes: bind mounts of host paths are disabled on this worker; the "
            f"operator enables them with {SETTING_VOLUMES}=true"
        )
    return Container(host=host, options=options)


def _unavailable(ctx: TaskContext, reason: str) -> Runner:
    if ctx.containers.on_host:
        ctx.log("WARN", f"{reason}; running on the worker's host instead ({SETTING_ON_HOST})")
        return Host()
    raise TaskError(
        f"{reason}. The task was not run. To run such tasks on the worker's host instead, the "
        f"operator sets {SETTING_ON_HOST}=true"
    )


def docker_options(
    props: Mapping[str, Any],
    task: Mapping[str, Any],
    render: Callable[[Any], Any],
    default_image: str | None,
    ctx: TaskContext,
) -> DockerOptions:
    """Kestra's Docker runner properties, rendered and checked (TaskError names the property)."""
    unknown = sorted(set(props) - _DOCKER_KEYS)
    if unknown:
        raise TaskError(f"taskRunner: unknown Docker runner properties {', '.join(unknown)}")
    if "wait" in props and not as_bool(render(props["wait"])):
        raise TaskError("taskRunner.wait: false is not supported (the outcome would be lost)")
    image = render(props.get("image")) or render(task.get("containerImage")) or default_image
    if not image:
        raise TaskError("the Docker task runner needs the 'containerImage' property")
    policy = to_text(render(props.get("pullPolicy")) or "IF_NOT_PRESENT").strip().upper()
    if policy not in ("ALWAYS", "IF_NOT_PRESENT", "NEVER"):
        raise TaskError(f"taskRunner.pullPolicy: ALWAYS, IF_NOT_PRESENT or NEVER, not {policy}")
    strategy = to_text(render(props.get("fileHandlingStrategy")) or "VOLUME").strip().upper()
    if strategy not in ("VOLUME", "MOUNT"):
        raise TaskError(f"taskRunner.fileHandlingStrategy must be VOLUME or MOUNT, got {strategy}")
    entry = render(props["entryPoint"]) if "entryPoint" in props else [""]
    grace = props.get("killGracePeriod")
    return DockerOptions(
        image=to_text(image),
        host=_opt_text(render(props.get("host"))),
        pull_policy=policy,
        user=_opt_text(render(props.get("user"))),
        entry_point=None if entry is None else _texts(entry, "taskRunner.entryPoint"),
        extra_hosts=_texts(render(props.get("extraHosts")), "taskRunner.extraHosts"),
        network_mode=_opt_text(render(props.get("networkMode"))),
        port_bindings=_texts(render(props.get("portBindings")), "taskRunner.portBindings"),
        volumes=_texts(render(props.get("volumes")), "taskRunner.volumes"),
        host_config=_host_config(props, render),
        registry_auth=_registry_auth(props, render, to_text(image), ctx),
        mount=strategy == "MOUNT",
        delete=as_bool(render(props.get("delete", True))),
        kill_grace_s=parse_duration(render(grace)) if grace is not None else 0.0,
    )


def _opt_text(value: Any) -> str | None:
    return None if value is None or value == "" else to_text(value)


def _texts(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [to_text(v) for v in value]
    raise TaskError(f"{what} must be a list of strings, got {value!r}")


def parse_size(value: Any, what: str) -> int:
    """Bytes in ``512MB``, ``1gb``, ``64k`` or a plain number (units of 1024, as Kestra)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(to_text(value))
    if not match:
        raise TaskError(f"{what}: invalid size {value!r} (expected e.g. 512MB, 2GB, 1048576)")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def _host_config(props: Mapping[str, Any], render: Callable[[Any], Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cpu = render(props.get("cpu"))
    if cpu is not None:
        if not isinstance(cpu, Mapping):
            raise TaskError("taskRunner.cpu must be a map such as {cpus: 1.5}")
        if cpu.get("cpus") is not None:
            try:
                out["NanoCpus"] = int(float(to_text(cpu["cpus"])) * 1_000_000_000)
            except ValueError as exc:
                raise TaskError(f"taskRunner.cpu.cpus: not a number: {cpu['cpus']!r}") from exc
    memory = render(props.get("memory"))
    if memory is not None:
        if not isinstance(memory, Mapping):
            raise TaskError("taskRunner.memory must be a map such as {memory: 512MB}")
        for key, api in _MEMORY_KEYS.items():
            if memory.get(key) is not None:
                out[api] = parse_size(memory[key], f"taskRunner.memory.{key}")
        if memory.get("memorySwappiness") is not None:
            out["MemorySwappiness"] = int(to_text(memory["memorySwappiness"]))
        if memory.get("oomKillDisable") is not None:
            out["OomKillDisable"] = as_bool(memory["oomKillDisable"])
    if props.get("shmSize") is not None:
        out["ShmSize"] = parse_size(render(props["shmSize"]), "taskRunner.shmSize")
    if props.get("privileged") is not None:
        out["Privileged"] = as_bool(render(props["privileged"]))
    devices = render(props.get("deviceRequests"))
    if devices:
        if not isinstance(devices, list) or not all(isinstance(d, Mapping) for d in devices):
            raise TaskError("taskRunner.deviceRequests must be a list of maps")
        out["DeviceRequests"] = [
            {
                "Driver": d.get("driver", ""),
                "Count": int(d.get("count", 0)),
                "DeviceIDs": list(d.get("deviceIds") or []),
                "Capabilities": list(d.get("capabilities") or []),
                "Options": dict(d.get("options") or {}),
            }
            for d in devices
        ]
    return out


def registry_of(image: str) -> str:
    """The registry host of an image reference (Docker Hub: ``docker.io``)."""
    first, sep, _rest = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def _registry_auth(
    props: Mapping[str, Any], render: Callable[[Any], Any], image: str, ctx: TaskContext
) -> str | None:
    """The X-Registry-Auth header for the pull: ``credentials``, else the ``config`` file's entry
    for the image's registry (``auths.<registry>.auth`` = base64 of user:password)."""
    creds = render(props.get("credentials"))
    auth: dict[str, str] = {}
    if creds is not None:
        if not isinstance(creds, Mapping):
            raise TaskError("taskRunner.credentials must be a map (username, password, ...)")
        pairs = {
            "username": "username",
            "password": "password",
            "registry": "serveraddress",
            "identityToken": "identitytoken",
            "registryToken": "registrytoken",
        }
        auth = {api: to_text(creds[k]) for k, api in pairs.items() if creds.get(k) is not None}
        if creds.get("auth") is not None:
            auth.update(_basic(to_text(creds["auth"])))
    elif props.get("config") is not None:
        config = render(props["config"])
        if isinstance(config, str):
            try:
                config = orjson.loads(config)
            except orjson.JSONDecodeError as exc:
                raise TaskError("taskRunner.config must be a Docker config.json (JSON)") from exc
        if not isinstance(config, Mapping):
            raise TaskError("taskRunner.config must be a Docker config.json map")
        registry = registry_of(image)
        for name, entry in (config.get("auths") or {}).items():
            if registry in str(name) and isinstance(entry, Mapping):
                auth = {"serveraddress": str(name)}
                if entry.get("auth"):
                    auth.update(_basic(str(entry["auth"])))
                if entry.get("identitytoken"):
                    auth["identitytoken"] = str(entry["identitytoken"])
                break
    for key in ("password", "identitytoken", "registrytoken"):
        if auth.get(key):
            ctx.secrets = ctx.secrets | {auth[key]}
    if not auth:
        return None
    return base64.urlsafe_b64encode(orjson.dumps(auth)).decode()


def _basic(encoded: str) -> dict[str, str]:
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except (ValueError, UnicodeDecodeError) as exc:
        raise TaskError("registry 'auth' must be base64 of username:password") from exc
    return {"username": user, "password": password}
