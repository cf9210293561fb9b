"""FlowSync: keep hw.flows in step with a folder of flow files (``headwater dev``).

When something changes under the folder (inotify, engine.devstack.watch; every
``POLL_INTERVAL_S`` where that is unavailable) the folder is scanned (``*.yml`` / ``*.yaml``,
recursively) and files whose modification time or size changed are loaded again:

- a valid file whose YAML differs from the deployed revision is deployed as the next
  revision (the same rule as the API: an unchanged source deploys nothing);
- a file with problems prints each as ``file:line:col: message`` and is not deployed (the
  revision deployed before stays, as when a bad save happens in an editor);
- a deleted file deletes its flow, and a file whose ``id``/``namespace`` changed deletes the
  old flow, unless another file of the folder still defines it.

Comparing mtimes costs microseconds for a folder of flows; a scan also runs every
``BACKSTOP_S`` while watching, for changes a file system does not report (network mounts).
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
from collections.abc import Callable
from dataclasses import dataclass

from engine.bus.producer import AsyncProducer
from engine.bus.topics import topics_for
from engine.bus.wire import decode_flow, flow_deleted_record, flow_deployed_record
from engine.devstack.watch import FolderWatch, watch_folder
from engine.flows import FlowValidationError, flow_to_dict, load_flow
from engine.flows.store import FlowFollower, FlowStore
from engine.settings import KafkaSettings

log = logging.getLogger(__name__)

# Without inotify: the delay between saving a flow file and its deployment; a scan of a few
# files costs ~0.1 ms.
POLL_INTERVAL_S = 0.5
# With inotify: a scan this long after the first event (an editor's save is several events),
# and one every BACKSTOP_S in any case.
SETTLE_S = 0.05
BACKSTOP_S = 5.0
SUFFIXES = (".yml", ".yaml")
EXAMPLE_FLOW = pathlib.Path(__file__).with_name("example_flow.yaml")

Say = Callable[[str], None]
FlowId = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one scan did (for tests and the dev banner)."""

    deployed: list[str]
    deleted: list[str]
    invalid: list[str]


def ensure_folder(folder: pathlib.Path, say: Say) -> None:
    """Create ``folder`` with the example flow when it does not exist."""
    if folder.exists():
        return
    folder.mkdir(parents=True)
    target = folder / "hello.yaml"
    target.write_text(EXAMPLE_FLOW.read_text())
    say(f"created {folder}/ with the example flow {target.name}")


class FlowSync:
    """Deploys a folder's flows to hw.flows and follows its changes until stopped."""

    def __init__(self, kafka: KafkaSettings, folder: pathlib.Path, say: Say) -> None:
        self.kafka = kafka
        self.folder = folder
        self.say = say
        self.topic = topics_for(kafka).flows.name
        self._seen: dict[pathlib.Path, tuple[int, int]] = {}
        self._defines: dict[pathlib.Path, FlowId] = {}
        self._follower: FlowFollower | None = None
        self._producer: AsyncProducer | None = None

    @property
    def store(self) -> FlowStore:
        assert self._follower is not None, "start() first"
        return self._follower.store

    async def start(self) -> Outcome:
        """Read hw.flows to its end, then deploy what the folder holds now."""
        self._producer = AsyncProducer(self.kafka)
        await self._producer.start()
        self._follower = FlowFollower(self.kafka, self.topic)
        await self._follower.start()
        return await self.scan()

    async def run(self, stop: asyncio.Event) -> None:
        watch = watch_folder(self.folder)
        try:
            while await self._wait(stop, watch):
                await self.scan()
        finally:
            if watch is not None:
                watch.close()

    async def _wait(self, stop: asyncio.Event, watch: FolderWatch | None) -> bool:
        """Until the folder may have changed (True) or ``stop`` is set (False)."""
        if watch is None:
            try:
                async with asyncio.timeout(POLL_INTERVAL_S):
                    await stop.wait()
            except TimeoutError:
                return True
            return False
        changed = asyncio.ensure_future(watch.changed(BACKSTOP_S))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({changed, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            stopping.cancel()
        if stop.is_set():
            return False
        if changed.result():
            await asyncio.sleep(SETTLE_S)
        else:
            watch.watch_tree()  # directories made while a watch was missing
        return True

    async def close(self) -> None:
        if self._follower is not None:
            await self._follower.close()
        if self._producer is not None:
            await self._producer.close()

    async def scan(self) -> Outcome:
        outcome = Outcome([], [], [])
        files = await asyncio.to_thread(self._stamped_files)
        for path in [p for p in self._seen if p not in files]:
            del self._seen[path]
            gone = self._defines.pop(path, None)
            if gone is not None:
                await self._delete_unless_defined(gone, path, outcome)
        for path, stamp in sorted(files.items()):
            if self._seen.get(path) == stamp:
                continue
            self._seen[path] = stamp
            await self._load(path, outcome)
        return outcome

    def _stamped_files(self) -> dict[pathlib.Path, tuple[int, int]]:
        if not self.folder.is_dir():
            return {}
        found = (p for p in self.folder.rglob("*") if p.suffix in SUFFIXES and p.is_file())
        return {p: _stamp(p) for p in found}

    async def _load(self, path: pathlib.Path, outcome: Outcome) -> None:
        try:
            text = await asyncio.to_thread(path.read_text)
        except (OSError, UnicodeDecodeError) as exc:
            self.say(f"{path}: cannot read: {exc}")
            outcome.invalid.append(str(path))
            return
        try:
            flow = load_flow(text, str(path))
        except FlowValidationError as exc:
            for problem in exc.problems:
                self.say(str(problem))
            self.say(f"{path}: not deployed ({len(exc.problems)} problem(s))")
            outcome.invalid.append(str(path))
            return
        key = (flow.namespace, flow.id)
        previous = self._defines.get(path)
        self._defines[path] = key
        if previous is not None and previous != key:
            await self._delete_unless_defined(previous, path, outcome)
        current = self.store.record(*key)
        if current is not None and current.source == text:
            return
        revision = max((r.revision for r in self.store.revisions(*key)), default=0) + 1
        kv = flow_deployed_record(flow.namespace, flow.id, revision, text, flow_to_dict(flow))
        assert self._producer is not None
        await self._producer.produce(self.topic, kv[0], kv[1])
        self.store.apply(decode_flow(kv[1]))
        name = f"{flow.namespace}.{flow.id}"
        self.say(f"deployed {name} revision {revision} ({path})")
        outcome.deployed.append(name)

    async def _delete_unless_defined(self, key: FlowId, path: pathlib.Path, out: Outcome) -> None:
        if key in self._defines.values():
            return
        current = self.store.record(*key)
        if current is None:
            return
        kv = flow_deleted_record(key[0], key[1], current.revision)
        assert self._producer is not None
        await self._producer.produce(self.topic, kv[0], kv[1])
        self.store.apply(decode_flow(kv[1]))
        name = f"{key[0]}.{key[1]}"
        self.say(f"deleted {name} (no file defines it any more; last seen in {path})")
        out.deleted.append(name)


def _stamp(path: pathlib.Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (0, -1)
    return (stat.st_mtime_ns, stat.st_size)
