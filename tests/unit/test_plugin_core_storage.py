"""The core storage tasks on a real LocalStorage in a temporary directory: the files they
write (bytes on disk), their outputs, line endings, block boundaries, ION items, expressions
over items, and the errors a user's mistake gets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.flows import flow_to_dict, load_flow
from engine.stores.storage import LocalStorage, TaskLocation
from executors.base import TaskContext, TaskOutcome
from executors.plugins import core_storage
from executors.registry import Registry, add_plugins

P = "io.kestra.plugin.core.storage."
LOC = TaskLocation("company.team", "files", "exec1", "t", "run1")
OTHER = TaskLocation("company.team", "files", "exec2", "t", "run9")
VARS: dict[str, Any] = {
    "flow": {"id": "files", "namespace": "company.team"},
    "execution": {"id": "exec1"},
    "vars": {"limit": 10},
}


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "storage")


async def run(
    storage: LocalStorage, tmp_path: Path, type_name: str, **props: Any
) -> tuple[TaskOutcome, TaskContext]:
    task = {"id": "t", "type": P + type_name, **props}
    ctx = TaskContext.for_job(
        execution_id="exec1",
        task_run_id="run1",
        attempt=1,
        task=task,
        variables=VARS,
        storage=storage.for_task(LOC),
        working_dir=str(tmp_path / "work"),
    )
    outcome = await add_plugins(Registry()).run(task, ctx)
    return outcome, ctx


def content(storage: LocalStorage, uri: str) -> bytes:
    return storage.local_path_sync(uri).read_bytes()


async def put(storage: LocalStorage, name: str, data: bytes) -> str:
    return await storage.put(LOC, name, data)


async def test_write(storage: LocalStorage, tmp_path: Path) -> None:
    outcome, _ = await run(
        storage, tmp_path, "Write", content="id={{ flow.id }}\n", extension=".csv"
    )
    assert outcome.state == "SUCCESS", outcome.error
    uri = outcome.outputs["uri"]
    assert uri == "kestra:///company/team/files/executions/exec1/tasks/t/run1/t.csv"
    assert content(storage, uri) == b"id=files\n"
    outcome, _ = await run(storage, tmp_path, "Write", content="é")
    assert outcome.outputs["uri"].endswith("/t.tmp")
    assert content(storage, outcome.outputs["uri"]) == "é".encode()
    outcome, _ = await run(storage, tmp_path, "Write", content="x", extension="json")
    assert outcome.outputs["uri"].endswith("/t.json")
    assert list((tmp_path / "work").iterdir()) == []  # temporary files moved away


async def test_concat(storage: LocalStorage, tmp_path: Path) -> None:
    a, b = await put(storage, "a.txt", b"A1\nA2"), await put(storage, "b.txt", b"B1")
    outcome, _ = await run(storage, tmp_path, "Concat", files=[a, b], separator="\n")
    assert outcome.state == "SUCCESS", outcome.error
    assert content(storage, outcome.outputs["uri"]) == b"A1\nA2\nB1\n"
    assert outcome.outputs["uri"].endswith(".tmp")
    as_json = f'["{b}", "{a}"]'
    outcome, _ = await run(storage, tmp_path, "Concat", files=as_json, extension=".txt")
    assert content(storage, outcome.outputs["uri"]) == b"B1A1\nA2"
    missing = a.replace("a.txt", "zz.txt")
    outcome, _ = await run(storage, tmp_path, "Concat", files=[a, missing])
    assert outcome.state == "FAILED"
    assert outcome.error == f"internal storage file {missing} does not exist"


async def test_split_by_rows_partitions_bytes_and_regex(
    storage: LocalStorage, tmp_path: Path
) -> None:
    src = await put(storage, "in.csv", b"l1\r\nl2\nl3\rl4\nl5")
    outcome, _ = await run(storage, tmp_path, "Split", **{"from": src, "rows": 2})
    assert outcome.state == "SUCCESS", outcome.error
    uris = outcome.outputs["uris"]
    assert [content(storage, u) for u in uris] == [b"l1\nl2\n", b"l3\nl4\n", b"l5\n"]
    assert all(u.endswith(".csv") for u in uris)
    outcome, _ = await run(storage, tmp_path, "Split", **{"from": src, "partitions": 2})
    assert [content(storage, u) for u in outcome.outputs["uris"]] == [
        b"l1\nl3\nl5\n",
        b"l2\nl4\n",
    ]
    outcome, _ = await run(storage, tmp_path, "Split", **{"from": src, "partitions": 9})
    assert len(outcome.outputs["uris"]) == 5  # empty partitions are dropped
    # bytes: a new file once the current one holds at least 6 bytes (2 lines of 3).
    outcome, _ = await run(storage, tmp_path, "Split", **{"from": src, "bytes": "6"})
    assert [content(storage, u) for u in outcome.outputs["uris"]] == [
        b"l1\nl2\n",
        b"l3\nl4\n",
        b"l5\n",
    ]
    logs = await put(storage, "app.log", b"[INFO] a\n[WARN] b\nnoise\n[INFO] c\n")
    regex = {"from": logs, "regexPattern": r"^\[(\w+)\]", "separator": ";"}
    outcome, _ = await run(storage, tmp_path, "Split", **regex)
    assert [content(storage, u) for u in outcome.outputs["uris"]] == [
        b"[INFO] a;[INFO] c;",
        b"[WARN] b;",
    ]
    outcome, _ = await run(storage, tmp_path, "Split", **{"from": src})
    assert outcome.error == "Invalid configuration with no size, count, rows, nor regexPattern"
    outcome, _ = await run(storage, tmp_path, "Split", **{"from": src, "bytes": "ten"})
    assert (outcome.error or "").startswith("Invalid size with value 'ten'")


def test_readable_bytes() -> None:
    assert core_storage._parse_bytes("10MB") == 10 * 1024 * 1024
    assert core_storage._parse_bytes("200kb") == 200 * 1024
    assert core_storage._parse_bytes("1GB") == 1024**3
    assert core_storage._parse_bytes("512") == 512


async def test_lines_across_block_boundaries(
    storage: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core_storage, "BLOCK_BYTES", 3)
    data = b"alpha\r\nbe\rgamma\n\ndelta\r\n"
    src = await put(storage, "x.txt", data)
    outcome, _ = await run(storage, tmp_path, "Split", **{"from": src, "rows": 100})
    assert content(storage, outcome.outputs["uris"][0]) == b"alpha\nbe\ngamma\n\ndelta\n"
    outcome, _ = await run(storage, tmp_path, "Reverse", **{"from": src})
    assert content(storage, outcome.outputs["uri"]) == b"delta\n\ngamma\nbe\nalpha\n"


async def test_reverse(storage: LocalStorage, tmp_path: Path) -> None:
    src = await put(storage, "r.txt", b"a\nb\nc\n")
    outcome, _ = await run(storage, tmp_path, "Reverse", **{"from": src})
    assert outcome.state == "SUCCESS", outcome.error
    assert content(storage, outcome.outputs["uri"]) == b"c\nb\na\n"
    assert outcome.outputs["uri"].endswith(".txt")
    src = await put(storage, "r2.txt", "x\r\nété".encode())
    outcome, _ = await run(storage, tmp_path, "Reverse", **{"from": src, "separator": "|"})
    assert content(storage, outcome.outputs["uri"]) == "été|x|".encode()
    empty = await put(storage, "e.txt", b"")
    outcome, _ = await run(storage, tmp_path, "Reverse", **{"from": empty})
    assert content(storage, outcome.outputs["uri"]) == b""
    outcome, _ = await run(storage, tmp_path, "Reverse", **{"from": src, "charset": "UTF-16"})
    assert outcome.error == "property 'charset': UTF-16 is not supported by Reverse"


async def test_size_and_delete(storage: LocalStorage, tmp_path: Path) -> None:
    uri = await put(storage, "s.bin", b"12345")
    outcome, _ = await run(storage, tmp_path, "Size", uri=uri)
    assert outcome.outputs == {"size": 5}
    outcome, _ = await run(storage, tmp_path, "Delete", uri=uri)
    assert outcome.outputs == {"uri": uri, "deleted": True}
    assert not storage.path_of(uri).exists()
    outcome, _ = await run(storage, tmp_path, "Delete", uri=uri)
    assert outcome.state == "SUCCESS"
    assert outcome.outputs == {"uri": uri, "deleted": False}
    outcome, _ = await run(storage, tmp_path, "Delete", uri=uri, errorOnMissing=True)
    assert outcome.error == f"Unable to find file '{uri}'"
    outcome, _ = await run(storage, tmp_path, "Size", uri=uri)
    assert outcome.error == f"internal storage file {uri} does not exist"
    outcome, _ = await run(storage, tmp_path, "Size", uri="file:///etc/passwd")
    assert outcome.state == "FAILED"
    assert "is not an internal storage URI" in (outcome.error or "")


ITEMS = (
    b'{id:1,name:"a",total:5}\n'
    b'{id:2,name:"b",total:50}\n'
    b'{id:1,name:"c",total:12}\n'
    b'{id:3,name:"d"}\n'
)


async def test_deduplicate_items_keeps_the_last_of_each_key(
    storage: LocalStorage, tmp_path: Path
) -> None:
    src = await put(storage, "items.ion", ITEMS)
    outcome, _ = await run(
        storage, tmp_path, "DeduplicateItems", **{"from": src, "expr": "{{ id }}"}
    )
    assert outcome.state == "SUCCESS", outcome.error
    out = outcome.outputs
    assert (out["numKeys"], out["processedItemsTotal"], out["droppedItemsTotal"]) == (3, 4, 1)
    assert content(storage, out["uri"]) == (
        b'{id:2,name:"b",total:50}\n{id:1,name:"c",total:12}\n{id:3,name:"d"}\n'
    )
    assert out["uri"].endswith(".ion")


async def test_filter_items(storage: LocalStorage, tmp_path: Path) -> None:
    src = await put(storage, "items.ion", ITEMS)
    include = {"from": src, "filterCondition": "{{ total > vars.limit }}"}
    outcome, _ = await run(storage, tmp_path, "FilterItems", **include)
    assert outcome.state == "FAILED"  # the last item has no total: FAIL by default
    assert "line 4" in (outcome.error or "")
    outcome, _ = await run(
        storage, tmp_path, "FilterItems", **include, errorOrNullBehavior="EXCLUDE"
    )
    assert outcome.state == "SUCCESS", outcome.error
    assert content(storage, outcome.outputs["uri"]) == (
        b'{id:2,name:"b",total:50}\n{id:1,name:"c",total:12}\n'
    )
    assert outcome.outputs["droppedItemsTotal"] == 2
    assert outcome.outputs["processedItemsTotal"] == 4
    exclude = {"from": src, "filterCondition": "{{ name == 'a' }}", "filterType": "EXCLUDE"}
    outcome, _ = await run(storage, tmp_path, "FilterItems", **exclude)
    assert content(storage, outcome.outputs["uri"]).count(b"\n") == 3
    bad = await put(storage, "bad.ion", b'{id:1,name:"z"}\nnot ion [\n')
    outcome, _ = await run(storage, tmp_path, "FilterItems", **{**exclude, "from": bad})
    assert (outcome.error or "").startswith("line 2 is not an ION value")


async def test_local_files(storage: LocalStorage, tmp_path: Path) -> None:
    stored = await put(storage, "seed.json", b'{"a": 1}')
    inputs = {"hello.txt": "Hello {{ flow.id }}\n", "sub/seed.json": stored}
    outputs = ["hello.txt", "sub/**"]
    outcome, _ = await run(storage, tmp_path, "LocalFiles", inputs=inputs, outputs=outputs)
    assert outcome.state == "SUCCESS", outcome.error
    uris = outcome.outputs["uris"]
    assert sorted(uris) == ["hello.txt", "sub/seed.json"]
    assert content(storage, uris["hello.txt"]) == b"Hello files\n"
    assert content(storage, uris["sub/seed.json"]) == b'{"a": 1}'


async def test_purge_current_execution_files(storage: LocalStorage, tmp_path: Path) -> None:
    mine = [await put(storage, "1.txt", b"1"), await storage.put(LOC, "2.txt", b"2")]
    theirs = await storage.put(OTHER, "keep.txt", b"k")
    outcome, _ = await run(storage, tmp_path, "PurgeCurrentExecutionFiles")
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs["uris"] == sorted(mine)
    assert content(storage, theirs) == b"k"
    assert not (tmp_path / "storage/company/team/files/executions/exec1").exists()


def test_flows_with_storage_tasks_validate_old_and_new_names() -> None:
    flow = flow_to_dict(
        load_flow(
            "id: f\nnamespace: company.team\ntasks:\n"
            "  - id: w\n    type: io.kestra.plugin.core.storage.Write\n    content: x\n"
            "  - id: s\n    type: io.kestra.core.tasks.storages.Split\n"
            "    from: '{{ outputs.w.uri }}'\n    rows: 10\n"
            "  - id: r\n    type: io.kestra.plugin.core.storage.Reverse\n"
            "    from: '{{ outputs.w.uri }}'\n"
        )
    )
    types = [t["type"] for t in flow["tasks"]]
    assert types == [P + "Write", P + "Split", P + "Reverse"]
    assert flow["tasks"][1]["from"] == "{{ outputs.w.uri }}"
