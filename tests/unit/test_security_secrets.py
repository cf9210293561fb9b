"""Secrets: the store's namespace scoping (file and environment backends) and masking.

A secret of namespace ``a.b`` is visible to ``a.b`` and ``a.b.c``, never to ``a.bc`` or
``x.y``; environment secrets are global unless a prefix scopes them; every known value is
masked in the read model's rows and in what the API answers.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from engine.api.models import ExecutionOut, LogOut, StateOut, TaskRunOut
from engine.api.routes_executions import masked_execution, masked_log
from engine.errors import ConfigError
from engine.expressions import ExpressionHooks
from engine.projector.rows import build_batch
from engine.reducer.model import Job
from engine.settings import SecretsSettings
from engine.stores.secrets import (
    EnvBackend,
    FileBackend,
    SecretMasker,
    SecretStore,
    namespace_chain,
)
from engine.worker.run import JobRun, RunDeps
from executors.base import SECRET_MASK, TaskError
from tests.unit.test_projector_rows import ROLES, ex_event, rec, tr_event


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write(path: Path, data: Any) -> None:
    path.write_bytes(orjson.dumps(data))


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "secrets"
    directory.mkdir()
    write(directory / "a.b.json", {"DB": "ab-db", "ONLY_AB": "ab-only"})
    (directory / "a.yml").write_text("DB: a-db\nROOT_A: a-root\n")
    write(directory / "x.y.json", {"DB": "xy-db"})
    return directory


def test_namespace_chain_walks_to_the_root() -> None:
    assert namespace_chain("a.b.c") == ["a.b.c", "a.b", "a"]
    assert namespace_chain("") == []


def test_file_secrets_are_scoped_to_the_namespace_and_its_children(store_dir: Path) -> None:
    store = SecretStore([FileBackend(store_dir), EnvBackend({})])
    assert store.get("a.b", "DB") == "ab-db"
    assert store.get("a.b.c", "DB") == "ab-db"  # a child sees its parent's
    assert store.get("a.b.c", "ROOT_A") == "a-root"  # and the grandparent's
    assert store.get("a", "DB") == "a-db"  # a parent never sees a child's
    assert store.get("x.y", "DB") == "xy-db"
    for namespace in ("x.y", "a.bc", "a", "ab", "b"):
        with pytest.raises(TaskError, match="Cannot find secret for key 'ONLY_AB'"):
            store.get(namespace, "ONLY_AB")


def test_the_error_names_the_namespace_not_where_the_secret_lives(store_dir: Path) -> None:
    store = SecretStore([FileBackend(store_dir), EnvBackend({})])
    with pytest.raises(TaskError) as info:
        store.get("x.y", "ONLY_AB")
    assert "x.y" in str(info.value)
    assert "a.b" not in str(info.value)


def test_one_file_maps_namespaces_and_is_reread_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_text("team.one:\n  TOKEN: t1\n")
    now = [0.0]
    backend = FileBackend(path, clock=lambda: now[0])
    store = SecretStore([backend])
    assert store.get("team.one.etl", "TOKEN") == "t1"
    path.write_text("team.one:\n  TOKEN: t1-rotated-and-longer\nteam.two:\n  TOKEN: t2\n")
    assert store.get("team.one", "TOKEN") == "t1"  # not re-checked within FILE_RECHECK_S
    now[0] = 10.0
    assert store.get("team.one", "TOKEN") == "t1-rotated-and-longer"
    assert store.get("team.two", "TOKEN") == "t2"


def test_a_broken_store_is_a_config_error_that_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        FileBackend(tmp_path / "missing")
    bad = tmp_path / "bad.yaml"
    bad.write_text("ns:\n  - not a mapping\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        FileBackend(bad)


def test_env_secrets_are_global_unless_a_prefix_scopes_them() -> None:
    env = {
        "SECRET_API": b64("global-api"),
        "SECRET_PAY_DB": b64("pay-db"),
        "SECRET_PAY_EU_DB": b64("pay-eu-db"),
        "PATH": "/bin",
    }
    store = SecretStore(
        [EnvBackend(env, scopes={"PAY_": "company.pay", "PAY_EU_": "company.pay.eu"})]
    )
    assert store.get("anything.at.all", "API") == "global-api"
    assert store.get(None, "API") == "global-api"
    assert store.get("company.pay", "DB") == "pay-db"
    assert store.get("company.pay.eu.etl", "DB") == "pay-eu-db"  # longest prefix, nearest ns
    for namespace in ("company", "company.payments", "x.y"):
        with pytest.raises(TaskError):
            store.get(namespace, "DB")
    with pytest.raises(TaskError):
        store.get("x.y", "PAY_DB")  # a scoped variable is not also global under its full name


def test_strict_env_mode_ignores_unscoped_variables() -> None:
    env = {"SECRET_API": b64("global-api"), "SECRET_T_API": b64("team-api")}
    store = SecretStore([EnvBackend(env, scopes={"T_": "team"}, global_secrets=False)])
    assert store.get("team.x", "API") == "team-api"
    with pytest.raises(TaskError):
        store.get("other", "API")


def test_file_store_wins_over_env_at_the_same_level_and_nearest_level_wins(
    store_dir: Path,
) -> None:
    env = {"SECRET_DB": b64("global-db"), "SECRET_AB_DB": b64("env-ab-db")}
    settings = SecretsSettings(path=str(store_dir), env_scopes={"AB_": "a.b.c"})
    store = SecretStore.from_settings(settings, environ=env)
    assert store.get("a.b", "DB") == "ab-db"  # file a.b beats the global env secret
    assert store.get("a.b.c", "DB") == "env-ab-db"  # env scoped to a.b.c is nearer
    assert store.get("z", "DB") == "global-db"
    assert store.values() >= {"ab-db", "a-db", "xy-db", "global-db", "env-ab-db", "a-root"}


def test_masker_masks_strings_keys_and_numbers_longest_first() -> None:
    masker = SecretMasker(["hunter2", "hunter", "4242"])
    value = {"a": "x hunter2 y hunter", "hunter2": [1, 4242, "pin=4242"], "n": None, "b": True}
    assert masker.json(value) == {
        "a": f"x {SECRET_MASK} y {SECRET_MASK}",
        SECRET_MASK: [1, SECRET_MASK, f"pin={SECRET_MASK}"],
        "n": None,
        "b": True,
    }
    assert masker.text("hunter22") == f"{SECRET_MASK}2"
    assert not SecretMasker([]).active
    assert SecretMasker([]).json({"a": "hunter2"}) == {"a": "hunter2"}


def test_masker_learns_values_added_to_its_source() -> None:
    values = {"old-secret"}
    now = [0.0]
    masker = SecretMasker(lambda: set(values), clock=lambda: now[0])
    assert masker.text("old-secret new-secret") == f"{SECRET_MASK} new-secret"
    values.add("new-secret")
    now[0] = 60.0
    assert masker.text("old-secret new-secret") == f"{SECRET_MASK} {SECRET_MASK}"


def test_projector_rows_mask_outputs_inputs_values_and_logs() -> None:
    masker = SecretMasker(["s3cr3t-value"])
    ex = ex_event(2, "SUCCESS", outputs={"out": "got s3cr3t-value"}, trigger={"b": "s3cr3t-value"})
    tr = tr_event(3, "SUCCESS")
    tr.payload["outputs"] = {"token": "s3cr3t-value", "nested": [{"k": "s3cr3t-value!"}]}
    tr.payload["value"] = "s3cr3t-value"
    log = ex_event(4, "SUCCESS")
    log_line = type(log).new(
        "LogLine",
        "ex1",
        0,
        {"log_id": "l1", "execution_id": "ex1", "message": "token=s3cr3t-value", "level": "INFO"},
        occurred=log.occurred,
    )
    records = [rec("e", ex, 0), rec("e", tr, 1), rec("l", log_line, 2)]
    batch = build_batch(records, ROLES, masker)
    row = batch.executions["ex1"]
    assert row.outputs == {"out": f"got {SECRET_MASK}"}
    assert row.trigger == {"b": SECRET_MASK}
    task_run = batch.task_runs["tr1"]
    assert "s3cr3t-value" not in repr(task_run)
    assert orjson.loads(task_run[11]) == {
        "token": SECRET_MASK,
        "nested": [{"k": f"{SECRET_MASK}!"}],
    }
    assert task_run[5] == SECRET_MASK  # the loop value
    assert batch.logs["l1"][6] == f"token={SECRET_MASK}"
    # Without a masker (or with no secrets known) the rows keep what the events say.
    plain = build_batch(records, ROLES)
    assert plain.executions["ex1"].outputs == {"out": "got s3cr3t-value"}


def test_api_answers_mask_execution_and_task_run_outputs_and_log_lines() -> None:
    services: Any = SimpleNamespace(masker=SecretMasker(["pa55word"]))
    state = StateOut(current="SUCCESS", histories=[])
    run = TaskRunOut(
        id="r",
        taskId="t",
        type="Return",
        value="pa55word",
        state=state,
        attempts=[{"error": "bad pa55word"}],
        outputs={"value": "pa55word"},
    )
    out = ExecutionOut(
        id="e",
        namespace="ns",
        flowId="f",
        state=state,
        labels=[],
        inputs={"note": "pa55word"},
        outputs={"result": "is pa55word"},
        trigger={"body": {"pw": "pa55word"}},
        taskRunList=[run],
    )
    shown = masked_execution(services, out).model_dump_json()
    assert "pa55word" not in shown
    assert shown.count(SECRET_MASK) == 6
    line = LogOut(
        logId="l",
        executionId="e",
        level="INFO",
        message="login pa55word",
        timestamp="2024-01-01T00:00:00Z",
    )
    assert masked_log(services, line).message == f"login {SECRET_MASK}"


class _Shipper:
    def add(self, line: Any) -> None:
        pass


def _job_run(namespace: str, store: SecretStore, tmp_path: Path) -> JobRun:
    job = Job(
        execution_id="e1",
        task_run_id="tr1",
        attempt=1,
        task={"id": "t", "type": "io.kestra.plugin.core.log.Log", "message": "x"},
        context={"flow": {"namespace": namespace, "id": "f"}},
    )
    deps = RunDeps(
        registry=None,  # type: ignore[arg-type]
        producer=None,  # type: ignore[arg-type]
        commands_topic="commands",
        shipper=_Shipper(),  # type: ignore[arg-type]
        storage=None,
        secrets=store,
        worker_id="w",
        heartbeat_interval_s=1.0,
        output_limit_bytes=1000,
        work_dir=tmp_path,
    )
    return JobRun(job, deps)


def test_a_task_reads_its_own_namespaces_secrets_only(store_dir: Path, tmp_path: Path) -> None:
    store = SecretStore([FileBackend(store_dir), EnvBackend({})])
    own = _job_run("a.b.etl", store, tmp_path)
    assert own.ctx.render("{{ secret('ONLY_AB') }}") == "ab-only"
    assert "ab-only" in own.ctx.secrets  # learned, so masked in its log lines
    own.ctx.log("INFO", "using ab-only")
    other = _job_run("x.y", store, tmp_path)
    with pytest.raises(Exception, match="Cannot find secret for key 'ONLY_AB'"):
        other.ctx.render("{{ secret('ONLY_AB') }}")
    hooks = other.ctx.expression_hooks
    assert isinstance(hooks, ExpressionHooks)
    assert hooks.secret is not None
    assert hooks.secret("DB") == "xy-db"


def test_the_worker_builds_its_store_from_settings(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(os.environ, "SECRET_GLOBAL_ONE", b64("g1"))
    store = SecretStore.from_settings(SecretsSettings(path=str(store_dir)))
    assert store.get("x.y", "GLOBAL_ONE") == "g1"
    assert store.get("x.y", "DB") == "xy-db"
