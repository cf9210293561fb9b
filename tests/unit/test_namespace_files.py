"""Namespace files on a real storage folder: the store (paths, Kestra's patterns), the
``namespace.*`` tasks, ``read()`` of a namespace file, and the API's endpoints (through the
ASGI app, with an API key) sharing the same folder as the tasks."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from pydantic import SecretStr

from engine.api import ApiServices, create_app
from engine.expressions import ExpressionHooks
from engine.settings import ApiSettings, Settings, WorkerSettings
from engine.stores.nsfiles import NamespaceFiles, glob_regex, normalize
from engine.stores.storage import LocalStorage, StorageError, TaskLocation
from executors.base import TaskContext, TaskOutcome
from executors.registry import add_plugins, core_registry

NS = "company.team"
P = "io.kestra.plugin.core.namespace."


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "storage")


@pytest.fixture
def nsfiles(storage: LocalStorage) -> NamespaceFiles:
    return NamespaceFiles(storage)


# ------------------------------------------------------------------------------ the store


def test_paths_are_logical_and_cannot_escape(nsfiles: NamespaceFiles, tmp_path: Path) -> None:
    assert normalize("scripts/etl.py") == "/scripts/etl.py"
    assert normalize("\\a\\b") == "/a/b"
    entry = nsfiles.put_sync(NS, "scripts/my query.sql", b"select 1")
    assert entry is not None
    assert entry.path == "/scripts/my query.sql"
    assert entry.uri == "kestra:///company/team/_files/scripts/my query.sql"
    assert (tmp_path / "storage/company/team/_files/scripts/my query.sql").read_bytes() == (
        b"select 1"
    )
    for bad in ("../x", "/a/../../x", "a/\x00b"):
        with pytest.raises(StorageError):
            nsfiles.put_sync(NS, bad, b"x")
    with pytest.raises(StorageError, match="invalid namespace"):
        nsfiles.put_sync("../etc", "x", b"x")


@pytest.mark.parametrize(
    ("pattern", "path", "matched"),
    [
        ("**input.txt", "/input.txt", True),
        ("**input.txt", "/a/b/input.txt", True),
        ("*.sql", "/q.sql", False),  # no leading word character: a plain glob, one level
        ("/*.sql", "/q.sql", True),
        ("/*.sql", "/a/q.sql", False),
        ("scripts/*.py", "/scripts/etl.py", True),  # **/ added: any depth
        ("scripts/*.py", "/x/scripts/etl.py", True),
        ("scripts/*.py", "/scripts/sub/etl.py", False),
        ("glob:**/dbt/**", "/p/dbt/models/a.sql", True),
        ("glob:**/dbt/**", "/dbt.sql", False),
        ("**.{sql,py}", "/a/b.py", True),
        ("**/[ab].txt", "/x/a.txt", True),
        ("**/[!ab].txt", "/x/a.txt", False),
        ("regex:.*\\.ya?ml", "/flows/f.yml", True),
        ("**", "/anything/at/all", True),
    ],
)
def test_kestra_file_patterns(pattern: str, path: str, matched: bool) -> None:
    assert bool(glob_regex(pattern).fullmatch(path)) is matched


def test_conflicts_and_listing(nsfiles: NamespaceFiles) -> None:
    nsfiles.put_sync(NS, "/a.txt", b"1")
    assert nsfiles.put_sync(NS, "/a.txt", b"2", "SKIP") is None
    assert nsfiles.read_sync(NS, "/a.txt") == b"1"
    with pytest.raises(StorageError, match="conflict is set to ERROR"):
        nsfiles.put_sync(NS, "/a.txt", b"3", "ERROR")
    nsfiles.put_sync(NS, "/a.txt", b"4")
    assert nsfiles.read_text(NS, "a.txt") == "4"
    nsfiles.put_sync(NS, "/d/e/f.txt", b"x")
    assert [(e.path, e.is_dir) for e in nsfiles.children_sync(NS, "/")] == [
        ("/a.txt", False),
        ("/d", True),
    ]
    assert [e.path for e in nsfiles.all_files_sync(NS)] == ["/a.txt", "/d/e/f.txt"]


# ------------------------------------------------------------------------------ the tasks


async def run(
    task: dict[str, Any], storage: LocalStorage, tmp_path: Path
) -> tuple[TaskOutcome, TaskContext]:
    nsfiles = NamespaceFiles(storage)
    ctx = TaskContext.for_job(
        execution_id="e1",
        task_run_id="r1",
        attempt=1,
        task=task,
        variables={"flow": {"id": "f", "namespace": NS}, "execution": {"id": "e1"}},
        storage=storage.for_task(TaskLocation(NS, "f", "e1", task["id"], "r1")),
        namespace_files=nsfiles,
        working_dir=str(tmp_path / "work"),
    )
    ctx.expression_hooks = ExpressionHooks(read=storage.read_text, namespace_file=nsfiles.read_text)
    return await add_plugins(core_registry()).run(task, ctx), ctx


async def test_upload_download_delete(storage: LocalStorage, tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "dbt/models").mkdir(parents=True)
    (work / "dbt/models/a.sql").write_text("select a")
    (work / "dbt/b.sql").write_text("select b")
    (work / "notes.md").write_text("# notes")
    stored = await storage.put(TaskLocation(NS, "f", "e0", "w", "r0"), "lic.txt", b"MIT")
    upload = {
        "id": "up",
        "type": P + "UploadFiles",
        "files": ["glob:**/dbt/**"],
        "filesMap": {"LICENSE": stored, "gone.txt": stored.replace("lic.txt", "nope.txt")},
        "destination": "project",
    }
    outcome, ctx = await run(upload, storage, tmp_path)
    assert outcome.state == "SUCCESS", outcome.error
    nsfiles = NamespaceFiles(storage)
    assert [e.path for e in nsfiles.all_files_sync(NS)] == [
        "/project/LICENSE",
        "/project/dbt/b.sql",
        "/project/dbt/models/a.sql",
    ]
    assert any(line.level == "WARN" and "gone.txt" in line.message for line in ctx.logs)
    again = {**upload, "files": ["notes.md", "dbt/b.sql"], "conflict": "ERROR"}
    del again["filesMap"]
    outcome, _ = await run(again, storage, tmp_path)
    assert outcome.state == "FAILED"
    assert "already exists in namespace 'company.team' and conflict is set to ERROR" in (
        outcome.error or ""
    )

    download = {"id": "down", "type": P + "DownloadFiles", "namespace": NS, "files": "**.sql"}
    outcome, _ = await run(download, storage, tmp_path)
    assert outcome.state == "SUCCESS", outcome.error
    files = outcome.outputs["files"]
    assert sorted(files) == ["/project/dbt/b.sql", "/project/dbt/models/a.sql"]
    uri = files["/project/dbt/models/a.sql"]
    assert uri.endswith("/tasks/down/r1/project/dbt/models/a.sql")
    assert storage.local_path_sync(uri).read_text() == "select a"
    assert outcome.metrics == {"downloaded": 2}

    delete = {
        "id": "del",
        "type": P + "DeleteFiles",
        "namespace": NS,
        "files": ["/project/dbt/**"],
        "deleteParentFolder": True,
    }
    outcome, _ = await run(delete, storage, tmp_path)
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.metrics == {"deleted": 2}
    assert [e.path for e in nsfiles.all_files_sync(NS)] == ["/project/LICENSE"]
    assert [e.path for e in nsfiles.children_sync(NS, "/project")] == ["/project/LICENSE"]


async def test_read_a_namespace_file_in_an_expression(
    storage: LocalStorage, tmp_path: Path
) -> None:
    nsfiles = NamespaceFiles(storage)
    nsfiles.put_sync(NS, "/sql/q.sql", b"select 42")
    nsfiles.put_sync("other.ns", "/hello.txt", b"hi")
    log = {
        "id": "log",
        "type": "io.kestra.plugin.core.log.Log",
        "message": [
            "{{ read('sql/q.sql') }}",
            "{{ read('nsfile:///sql/q.sql') }}",
            "{{ read('hello.txt', namespace='other.ns') }}",
            "{{ read('nsfile://other.ns/hello.txt') }}",
        ],
    }
    outcome, ctx = await run(log, storage, tmp_path)
    assert outcome.state == "SUCCESS", outcome.error
    assert [line.message for line in ctx.logs] == ["select 42", "select 42", "hi", "hi"]
    missing = {"id": "log", "type": "io.kestra.plugin.core.log.Log", "message": "{{ read('x') }}"}
    outcome, _ = await run(missing, storage, tmp_path)
    assert outcome.state == "FAILED"
    assert "namespace file '/x' does not exist in namespace 'company.team'" in (outcome.error or "")


# -------------------------------------------------------------------------------- the API

KEY = "k-123"
F = "/api/v1/namespaces/company.team/files"


def api(tmp_path: Path) -> httpx.AsyncClient:
    settings = Settings(
        worker=WorkerSettings(storage_dir=str(tmp_path / "storage")),
        api=ApiSettings(api_keys=[SecretStr(KEY)]),
    )
    app = create_app(settings, cast(ApiServices, SimpleNamespace(settings=settings)))
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://api",
        headers={"Authorization": f"Bearer {KEY}"},
    )


async def test_api_files_round_trip(tmp_path: Path) -> None:
    async with api(tmp_path) as client:
        assert (await client.get(F + "/stats")).json()["type"] == "Directory"  # root made
        up = await client.post(
            F + "",
            params={"path": "/scripts/etl.py"},
            files={"fileContent": ("etl.py", b"print(1)")},
        )
        assert up.status_code == 200, up.text
        got = await client.get(F, params={"path": "/scripts/etl.py"})
        assert got.status_code == 200
        assert got.content == b"print(1)"
        assert got.headers["content-type"] == "application/octet-stream"
        stats = (await client.get(F + "/stats", params={"path": "/scripts/etl.py"})).json()
        assert stats["fileName"] == "etl.py"
        assert stats["type"] == "File"
        assert stats["size"] == 8
        listing = (await client.get(F + "/directory", params={"path": "/"})).json()
        assert [(e["fileName"], e["type"]) for e in listing] == [("scripts", "Directory")]
        assert (await client.post(F + "/directory", params={"path": "/empty"})).status_code == 200
        assert (await client.get(F + "/search", params={"q": "etl"})).json() == ["/scripts/etl.py"]
        moved = await client.put(F, params={"from": "/scripts", "to": "/src"})
        assert moved.status_code == 200, moved.text
        assert (await client.get(F, params={"path": "/src/etl.py"})).content == b"print(1)"
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("conf/app.yml", "a: 1")
            zf.writestr("README.md", "hello")
        up = await client.post(
            F + "", params={"path": "/"}, files={"fileContent": ("bundle.zip", archive.getvalue())}
        )
        assert up.status_code == 200, up.text
        exported = await client.get(F + "/export")
        with zipfile.ZipFile(io.BytesIO(exported.content)) as zf:
            assert sorted(zf.namelist()) == ["README.md", "conf/app.yml", "src/etl.py"]
        assert (await client.delete(F, params={"path": "/src"})).status_code == 200
        missing = await client.get(F, params={"path": "/src/etl.py"})
        assert missing.status_code == 404
        assert missing.json()["detail"] == (
            "namespace file '/src/etl.py' does not exist in namespace 'company.team'"
        )
    # The tasks' store sees what the API wrote.
    nsfiles = NamespaceFiles(LocalStorage(tmp_path / "storage"))
    assert nsfiles.read_text("company.team", "/conf/app.yml") == "a: 1"


async def test_api_refuses_escapes_flows_and_anonymous_calls(tmp_path: Path) -> None:
    async with api(tmp_path) as client:
        bad = await client.get(F, params={"path": "/../../etc/passwd"})
        assert bad.status_code == 422
        flows = await client.post(
            F + "", params={"path": "/_flows/f.yml"}, files={"fileContent": ("f.yml", b"id: f")}
        )
        assert flows.status_code == 422
        evil = io.BytesIO()
        with zipfile.ZipFile(evil, "w") as zf:
            zf.writestr("../outside.txt", "x")
        up = await client.post(
            F + "", params={"path": "/"}, files={"fileContent": ("evil.zip", evil.getvalue())}
        )
        assert up.status_code == 422
        assert not (tmp_path / "storage/company/team/outside.txt").exists()
        anonymous = await client.get(F + "/stats", headers={"Authorization": ""})
        assert anonymous.status_code == 401
