"""Benchmark: one big file through io.kestra.plugin.aws.s3.Upload then Download, memory bounded.

Writes a file of ``--size-mb`` (default 1024) into a throw-away internal storage, uploads it
with the Upload task to the S3 server of deploy/local (``services.py up s3``), downloads it back
with the Download task, checks the bytes (SHA-256) and prints one JSON document: parameters,
machine, seconds and MB/s of each direction, and the process's peak resident memory above what
it used before the transfers (the point: the file never sits in memory; parts are 8 MiB, four
in flight). Not run by the tests.

    .venv/bin/python benchmarks/bench_s3_transfer.py --size-mb 1024
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.stores.storage import LocalStorage, TaskLocation
from executors.base import TaskContext
from executors.registry import Registry, add_plugins

MB = 1024 * 1024
# The file is written in blocks of this size (pseudo-random, so nothing compresses it away).
BLOCK = 4 * MB


def _rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _connection() -> dict[str, str]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from deploy.local.localsvc import s3 as svc

    port = os.environ.get("HEADWATER_LOCAL_S3API_PORT", "8433")
    return {
        "endpointOverride": f"http://127.0.0.1:{port}",
        "region": svc.REGION,
        "accessKeyId": svc.ACCESS_KEY,
        "secretKeyId": svc.SECRET_KEY,
    }


async def _run(kind: str, props: dict[str, Any], storage: LocalStorage, work: Path) -> Any:
    task = {"id": "bench", "type": f"io.kestra.plugin.aws.s3.{kind}", **_connection(), **props}
    location = TaskLocation("bench", "s3", "exec1", "bench", uuid.uuid4().hex)
    ctx = TaskContext.for_job(
        execution_id="exec1",
        task_run_id="run1",
        attempt=1,
        task=task,
        variables={"flow": {"id": "s3", "namespace": "bench"}},
        storage=storage.for_task(location),
        working_dir=str(work),
    )
    outcome = await add_plugins(Registry()).run(task, ctx)
    if outcome.state != "SUCCESS":
        raise SystemExit(f"{kind} failed: {outcome.error}")
    return outcome


async def main(size_mb: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="hw-bench-s3-"))
    storage = LocalStorage(root / "storage")
    work = root / "work"
    source = root / "source.bin"
    digest = hashlib.sha256()
    seed = os.urandom(BLOCK)
    with source.open("wb") as handle:
        for i in range(max(1, size_mb * MB // BLOCK)):
            block = hashlib.sha256(i.to_bytes(8, "big")).digest() + seed[32:]
            digest.update(block)
            handle.write(block)
    uri = storage.put_file_sync(TaskLocation("bench", "s3", "exec1", "src", "r"), "big.bin", source)
    source.unlink()
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    await _run("CreateBucket", {"bucket": bucket}, storage, work)
    baseline = _rss_peak_mb()

    started = time.perf_counter()
    await _run("Upload", {"bucket": bucket, "key": "big.bin", "from": uri}, storage, work)
    upload_s = time.perf_counter() - started
    after_upload = _rss_peak_mb()

    started = time.perf_counter()
    down = await _run("Download", {"bucket": bucket, "key": "big.bin"}, storage, work)
    download_s = time.perf_counter() - started
    after_download = _rss_peak_mb()

    check = hashlib.sha256()
    with storage.local_path_sync(down.outputs["uri"]).open("rb") as handle:
        while block := handle.read(BLOCK):
            check.update(block)
    await _run("Delete", {"bucket": bucket, "key": "big.bin"}, storage, work)
    size = size_mb * MB
    return {
        "benchmark": "s3_transfer",
        "when": datetime.now(UTC).isoformat(),
        "params": {"size_mb": size_mb, "endpoint": _connection()["endpointOverride"]},
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "results": {
            "upload_s": round(upload_s, 2),
            "upload_mb_s": round(size / MB / upload_s, 1),
            "download_s": round(download_s, 2),
            "download_mb_s": round(size / MB / download_s, 1),
            "bytes_match": check.hexdigest() == digest.hexdigest(),
            "rss_before_mb": round(baseline, 1),
            "rss_peak_growth_upload_mb": round(after_upload - baseline, 1),
            "rss_peak_growth_download_mb": round(after_download - baseline, 1),
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.size_mb)), indent=2))
