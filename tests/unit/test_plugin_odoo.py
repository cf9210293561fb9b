"""odoo.Query against a real XML-RPC server on 127.0.0.1 (Python's own server, playing Odoo's
``/xmlrpc/2/common`` and ``/xmlrpc/2/object`` endpoints): the exact calls per operation, the fetch
types, a fault, and wrong credentials."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xmlrpc.server import MultiPathXMLRPCServer, SimpleXMLRPCDispatcher, SimpleXMLRPCRequestHandler

import pytest

from engine.stores.storage import LocalStorage, TaskLocation
from executors import ion
from executors.base import TaskContext, TaskOutcome
from executors.registry import Registry, add_plugins
from tests.unit.api_receiver import context

LOC = TaskLocation("company.team", "f", "exec1", "t", "tr1")
PARTNERS = [
    {"id": 1, "name": "Acme", "email": "a@acme.io"},
    {"id": 2, "name": "Beta", "email": False},
]


class FakeOdoo:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def authenticate(self, db: str, user: str, password: str, env: dict[str, Any]) -> Any:
        self.calls.append(("authenticate", db, user, password, env))
        return 7 if password == "odoo-SECRET" else False

    def execute_kw(
        self,
        db: str,
        uid: int,
        password: str,
        model: str,
        method: str,
        args: list[Any],
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        self.calls.append(("execute_kw", db, uid, password, model, method, args, kwargs))
        if model == "nope.model":
            raise ValueError(f"Object {model} doesn't exist with password {password}")
        return {
            "search_read": PARTNERS,
            "read": PARTNERS[:1],
            "search": [1, 2],
            "search_count": 2,
            "create": 42,
            "write": True,
            "unlink": True,
        }[method]


@pytest.fixture
def odoo() -> Iterator[tuple[str, FakeOdoo]]:
    fake = FakeOdoo()

    class Handler(SimpleXMLRPCRequestHandler):
        rpc_paths = ("/xmlrpc/2/common", "/xmlrpc/2/object")

        def log_message(self, *args: Any) -> None:
            pass

    server = MultiPathXMLRPCServer(
        ("127.0.0.1", 0), requestHandler=Handler, allow_none=True, logRequests=False
    )
    for path, name in (("/xmlrpc/2/common", "authenticate"), ("/xmlrpc/2/object", "execute_kw")):
        dispatcher = SimpleXMLRPCDispatcher(allow_none=True)
        dispatcher.register_function(getattr(fake, name), name)
        server.add_dispatcher(path, dispatcher)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", fake
    server.shutdown()
    server.server_close()


async def run(url: str, task: dict[str, Any], tmp_path: Path) -> tuple[TaskOutcome, TaskContext]:
    task = {
        "id": "t",
        "type": "io.kestra.plugin.odoo.Query",
        "url": url,
        "db": "demo",
        "username": "me@demo.com",
        "password": "odoo-SECRET",
        "model": "res.partner",
        **task,
    }
    ctx = context(task, storage=LocalStorage(tmp_path / "storage").for_task(LOC))
    return await add_plugins(Registry()).run(task, ctx), ctx


async def test_search_read_and_fetch_types(odoo: tuple[str, FakeOdoo], tmp_path: Path) -> None:
    url, fake = odoo
    task = {
        "operation": "SEARCH_READ",
        "filters": [["is_company", "=", True], ["email", "=", "{{ flow.id }}"]],
        "fields": ["name", "email"],
        "limit": 10,
        "fetchType": "FETCH",
    }
    outcome, _ = await run(url, task, tmp_path)
    assert outcome.state == "SUCCESS", outcome.error
    assert outcome.outputs == {"size": 2, "rows": PARTNERS}
    assert fake.calls == [
        ("authenticate", "demo", "me@demo.com", "odoo-SECRET", {}),
        (
            "execute_kw",
            "demo",
            7,
            "odoo-SECRET",
            "res.partner",
            "search_read",
            [[["is_company", "=", True], ["email", "=", "f"]]],
            {"fields": ["name", "email"], "limit": 10},
        ),
    ]
    outcome, _ = await run(url, {**task, "fetchType": "FETCH_ONE"}, tmp_path)
    assert outcome.outputs == {"size": 1, "row": PARTNERS[0]}
    outcome, _ = await run(url, {**task, "fetchType": "STORE"}, tmp_path)
    stored = LocalStorage(tmp_path / "storage").read_sync(outcome.outputs["uri"])
    assert ion.loads(stored.decode()) == PARTNERS
    outcome, _ = await run(url, {"operation": "SEARCH", "fetchType": "FETCH"}, tmp_path)
    assert outcome.outputs == {"size": 2, "rows": [{"id": 1}, {"id": 2}]}
    assert fake.calls[-1][5:] == ("search", [[]], None)
    outcome, _ = await run(url, {"operation": "SEARCH_COUNT"}, tmp_path)
    assert outcome.outputs == {"size": 2}


async def test_changes_and_failures(odoo: tuple[str, FakeOdoo], tmp_path: Path) -> None:
    url, fake = odoo
    outcome, _ = await run(
        url, {"operation": "CREATE", "values": {"name": "New", "is_company": True}}, tmp_path
    )
    assert outcome.outputs == {"size": 1, "ids": [42]}
    assert fake.calls[-1][5:] == ("create", [{"name": "New", "is_company": True}], None)
    outcome, _ = await run(
        url, {"operation": "WRITE", "ids": [1, 2], "values": {"active": False}}, tmp_path
    )
    assert outcome.outputs == {"size": 2, "ids": [1, 2]}
    assert fake.calls[-1][5:] == ("write", [[1, 2], {"active": False}], None)
    outcome, _ = await run(url, {"operation": "UNLINK"}, tmp_path)
    assert outcome.error == "IDs are required for unlink operation"
    outcome, _ = await run(url, {"operation": "SEARCH", "model": "nope.model"}, tmp_path)
    assert outcome.state == "FAILED"
    assert "Failed to execute nope.model.search:" in (outcome.error or "")
    assert "doesn't exist with password ********" in (outcome.error or "")
    outcome, _ = await run(url, {"operation": "SEARCH", "password": "wrong"}, tmp_path)
    assert outcome.error == (
        "Failed to authenticate with Odoo: Unexpected authentication response from Odoo: false"
    )
    outcome, _ = await run("http://127.0.0.1:9", {"operation": "SEARCH"}, tmp_path)
    assert (outcome.error or "").startswith("Failed to authenticate with Odoo: [Errno 111]")
