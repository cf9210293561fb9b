"""A Pub/Sub server for the gcp.pubsub plugin's tests: Google's Pub/Sub emulator.

The emulator is Google's own (a Java program, ``cloud-pubsub-emulator-*-all.jar``) and ships
with the Google Cloud CLI (Debian package ``google-cloud-cli-pubsub-emulator``, from Google's
Cloud SDK apt repository), which our machine kind carries; it needs Java 11+ (Debian's
``default-jre-headless`` when ``java`` is missing). It runs as a plain ``java -jar`` process on
127.0.0.1 with its own port (8785, not its default 8085), in memory (topics and subscriptions
are gone after a restart). It serves gRPC and Pub/Sub's REST API on the same port.

Clients: ``PUBSUB_EMULATOR_HOST=127.0.0.1:<port>`` (every Pub/Sub client reads it), any project
id, no credentials checked. No topic exists at first.
"""

from __future__ import annotations

import os
import pathlib
import shutil

from . import probes
from .base import Component, Say, Server, wait_ready
from .config import PortSpec, ServiceError

# The JVM starts and binds in ~3-5 s on our shared cores.
PUBSUB_READY_TIMEOUT_S = 90.0
# Where the Google Cloud CLI keeps its components (Debian's package, or a CLOUDSDK_ROOT_DIR).
SDK_ROOTS = ("/usr/lib/google-cloud-sdk", "/usr/share/google-cloud-sdk", "/opt/google-cloud-sdk")
EMULATOR_DIR = "platform/pubsub-emulator/lib"


def emulator_host(port: int) -> str:
    """The value of ``PUBSUB_EMULATOR_HOST`` for clients."""
    return f"127.0.0.1:{port}"


def find_jar(env: dict[str, str] | None = None) -> pathlib.Path | None:
    """The emulator's jar in the Google Cloud CLI's installation, or None."""
    env = dict(os.environ) if env is None else env
    roots: list[pathlib.Path] = []
    if env.get("CLOUDSDK_ROOT_DIR"):
        roots.append(pathlib.Path(env["CLOUDSDK_ROOT_DIR"]))
    gcloud = shutil.which("gcloud", path=env.get("PATH"))
    if gcloud:
        roots.append(pathlib.Path(gcloud).resolve().parents[1])
    roots.extend(pathlib.Path(r) for r in SDK_ROOTS)
    for root in roots:
        jars = sorted((root / EMULATOR_DIR).glob("cloud-pubsub-emulator-*-all.jar"))
        if jars:
            return jars[-1]
    return None


def pubsub_argv(java: str, jar: pathlib.Path, port: int) -> list[str]:
    return [java, "-jar", str(jar), "--host=127.0.0.1", f"--port={port}"]


class PubSub(Server):
    name = "pubsub"
    port_key = "pubsub"
    ready_timeout = PUBSUB_READY_TIMEOUT_S

    def _server(self) -> Component:
        return Component(
            "pubsub-emulator",
            self.dir / "pubsub-emulator.pid",
            self.dir / "pubsub-emulator.log",
            ("cloud-pubsub-emulator", f"--port={self.cfg.ports['pubsub']}"),
            self.tag,
        )

    def components(self) -> list[Component]:
        return [self._server()]

    def ports(self) -> list[tuple[Component, PortSpec]]:
        return [(self._server(), self.cfg.port("pubsub"))]

    def ready(self) -> bool:
        return probes.http_answers(self.cfg.ports["pubsub"])

    def apt_packages(self) -> list[str]:
        return ["default-jre-headless"] if shutil.which("java") is None else []

    def preflight(self) -> None:
        if find_jar() is None:
            raise ServiceError(
                "the Pub/Sub emulator is not installed: it ships with the Google Cloud CLI "
                "(Debian package google-cloud-cli-pubsub-emulator from Google's Cloud SDK apt "
                "repository; or `gcloud components install pubsub-emulator`)"
            )

    def start(self, say: Say) -> None:
        jar = find_jar()
        java = shutil.which("java")
        if jar is None or java is None:
            self.preflight()
            raise ServiceError("java is not installed: apt-get install -y default-jre-headless")
        port = self.cfg.ports["pubsub"]
        say(f"starting the Pub/Sub emulator on 127.0.0.1:{port} ({jar.name})")
        comp = self._server()
        process = self.spawn(comp, pubsub_argv(java, jar, port), dict(os.environ), self.dir)
        wait_ready("Pub/Sub emulator", self.ready, PUBSUB_READY_TIMEOUT_S, comp.log, process)
