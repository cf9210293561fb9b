"""``python -m tests.conformance.outside [--url URL] [--only NAME ...]``: run the shared corpus
through the public API, against a running server or a ``headwater dev`` started for it."""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import tempfile

from tests.conformance.outside.api import Client
from tests.conformance.outside.devserver import dev_server
from tests.conformance.outside.scenarios import load_manifest, report, run_corpus

CORPUS = pathlib.Path(__file__).resolve().parents[3].parent / "shared" / "conformance" / "kestra"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a running server (default: start headwater dev)")
    parser.add_argument("--corpus", type=pathlib.Path, default=CORPUS)
    parser.add_argument("--only", nargs="*", help="scenario names")
    parser.add_argument("--parallel", type=int, default=6)
    args = parser.parse_args()
    only = set(args.only) if args.only else None

    async def run(url: str) -> None:
        client = Client(url)
        try:
            results = await run_corpus(client, args.corpus, parallel=args.parallel, only=only)
        finally:
            await client.close()
        print(report(results, load_manifest(args.corpus)))

    if args.url:
        await run(args.url)
        return
    with tempfile.TemporaryDirectory(prefix="hw-outside-") as work:
        async with dev_server(pathlib.Path(work)) as url:
            await run(url)


if __name__ == "__main__":
    asyncio.run(main())
