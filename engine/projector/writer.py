"""Write one :class:`~engine.projector.rows.RowBatch` into PostgreSQL in one transaction.

Each table gets one statement per batch: ``INSERT ... SELECT * FROM unnest($1::text[], ...)``
with ``ON CONFLICT DO UPDATE ... WHERE excluded.last_seq > table.last_seq``. One round trip per
table moves thousands of rows (per-row statements manage a few thousand rows/s, SERVICES.md),
and the ``WHERE`` makes the upsert idempotent and order-proof: an older or repeated event is a
no-op. Logs and flow revisions are immutable, so they are ``ON CONFLICT DO NOTHING``.

SECRET inputs are masked here, before anything reaches the table: the writer knows which
inputs each flow revision declares SECRET from ``flow_revisions`` (cached in memory). An
execution projected before its flow (possible while rebuilding: the topics are read in
parallel) is masked when the flow arrives, by the UPDATE in :func:`_write_flows`.
"""

from __future__ import annotations

from typing import Any

from engine.projector.rows import MASK, RowBatch, dumps

SecretKey = tuple[str, str, int | None]

_EXECUTIONS_SQL = """
INSERT INTO executions (id, namespace, flow_id, flow_revision, state, labels, inputs, outputs,
    trigger, parent, parent_execution_id, original_execution_id, retry_number, start_date,
    end_date, duration_ms, state_history, last_seq, updated)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::jsonb[],
    $7::jsonb[], $8::jsonb[], $9::jsonb[], $10::jsonb[], $11::text[], $12::text[], $13::int[],
    $14::timestamptz[], $15::timestamptz[], $16::bigint[], $17::jsonb[], $18::bigint[],
    $19::timestamptz[]) AS u(id, namespace, flow_id, flow_revision, state, labels, inputs,
    outputs, trigger, parent, parent_execution_id, original_execution_id, retry_number,
    start_date, end_date, duration_ms, state_history, last_seq, updated)
WHERE NOT EXISTS (SELECT 1 FROM purged_executions p WHERE p.execution_id = u.id)
ON CONFLICT (id) DO UPDATE SET
    namespace = excluded.namespace, flow_id = excluded.flow_id,
    flow_revision = excluded.flow_revision, state = excluded.state, labels = excluded.labels,
    inputs = excluded.inputs, outputs = excluded.outputs, trigger = excluded.trigger,
    parent = excluded.parent, parent_execution_id = excluded.parent_execution_id,
    original_execution_id = excluded.original_execution_id,
    retry_number = excluded.retry_number, start_date = excluded.start_date,
    end_date = excluded.end_date, duration_ms = excluded.duration_ms,
    state_history = excluded.state_history, last_seq = excluded.last_seq,
    updated = excluded.updated
WHERE excluded.last_seq > executions.last_seq
"""

_TASK_RUNS_SQL = """
INSERT INTO task_runs (id, execution_id, task_id, type, parent_id, value, "values", iteration,
    branch, state, attempts, outputs, worker, start_date, end_date, duration_ms, state_history,
    last_seq, position)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::jsonb[], $8::int[], $9::text[], $10::text[], $11::jsonb[], $12::jsonb[], $13::text[],
    $14::timestamptz[], $15::timestamptz[], $16::bigint[], $17::jsonb[], $18::bigint[],
    $19::int[])
    AS u(id, execution_id, task_id, type, parent_id, value, "values", iteration, branch, state,
    attempts, outputs, worker, start_date, end_date, duration_ms, state_history, last_seq,
    position)
WHERE NOT EXISTS (SELECT 1 FROM purged_executions p WHERE p.execution_id = u.execution_id)
ON CONFLICT (id) DO UPDATE SET
    execution_id = excluded.execution_id, task_id = excluded.task_id, type = excluded.type,
    parent_id = excluded.parent_id, value = excluded.value, "values" = excluded."values",
    iteration = excluded.iteration, branch = excluded.branch, state = excluded.state,
    attempts = excluded.attempts, outputs = excluded.outputs, worker = excluded.worker,
    start_date = excluded.start_date, end_date = excluded.end_date,
    duration_ms = excluded.duration_ms, state_history = excluded.state_history,
    last_seq = excluded.last_seq, position = excluded.position
WHERE excluded.last_seq > task_runs.last_seq
"""

_TASK_RUN_DELETE_SQL = """
DELETE FROM task_runs t USING unnest($1::text[], $2::bigint[]) AS d(id, seq)
WHERE t.id = d.id AND t.last_seq < d.seq
"""

_LOGS_SQL = """
INSERT INTO logs (log_id, execution_id, task_run_id, task_id, attempt, level, message, ts)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[],
    $7::text[], $8::timestamptz[])
    AS u(log_id, execution_id, task_run_id, task_id, attempt, level, message, ts)
WHERE NOT EXISTS (
    SELECT 1 FROM log_purges p
    WHERE p.execution_id = u.execution_id
      AND (p.levels IS NULL OR u.level = ANY(p.levels))
      AND (p.start_ts IS NULL OR u.ts >= p.start_ts)
      AND u.ts <= p.end_ts)
ON CONFLICT (log_id) DO NOTHING
"""

# Purges: remembered first (later or replayed records are then kept out), then applied.
_PURGED_EXECUTIONS_SQL = """
INSERT INTO purged_executions (execution_id, purged_at)
SELECT * FROM unnest($1::text[], $2::timestamptz[])
ON CONFLICT (execution_id) DO NOTHING
"""
_DELETE_PURGED_SQL = (
    "DELETE FROM task_runs WHERE execution_id = ANY($1::text[])",
    "DELETE FROM executions WHERE id = ANY($1::text[])",
)
_LOG_PURGE_SQL = """
INSERT INTO log_purges (id, execution_id, levels, start_ts, end_ts, purged_at)
VALUES ($1, $2, $3::text[], $4, $5, $6)
ON CONFLICT (id) DO NOTHING
"""
_DELETE_LOGS_SQL = """
DELETE FROM logs
WHERE execution_id = $1 AND ($2::text[] IS NULL OR level = ANY($2::text[]))
  AND ($3::timestamptz IS NULL OR ts >= $3) AND ts <= $4
"""

_REVISIONS_SQL = """
INSERT INTO flow_revisions (namespace, id, revision, source, flow, secret_inputs, deployed_at,
    draft)
VALUES ($1, $2, $3, $4, $5::jsonb, $6::text[], $7, $8)
ON CONFLICT (namespace, id, revision) DO NOTHING
"""

_FLOWS_SQL = """
INSERT INTO flows (namespace, id, revision, source, flow, description, labels, secret_inputs,
    deleted, updated)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7::jsonb, $8::text[], false, $9)
ON CONFLICT (namespace, id) DO UPDATE SET
    revision = excluded.revision, source = excluded.source, flow = excluded.flow,
    description = excluded.description, labels = excluded.labels,
    secret_inputs = excluded.secret_inputs, deleted = false, updated = excluded.updated
WHERE excluded.revision > flows.revision
"""

# A flow deployed after its executions were projected: mask them now (see module docstring).
_MASK_LATE_SQL = """
UPDATE executions e SET inputs = e.inputs || (
    SELECT jsonb_object_agg(k, to_jsonb($4::text)) FROM unnest($5::text[]) AS k
    WHERE e.inputs ? k AND e.inputs -> k <> 'null'::jsonb)
WHERE e.namespace = $1 AND e.flow_id = $2
  AND (e.flow_revision = $3 OR e.flow_revision IS NULL)
  AND e.inputs ?| $5::text[]
"""

_FLOW_DELETE_SQL = """
UPDATE flows SET deleted = true, updated = $4
WHERE namespace = $1 AND id = $2 AND revision <= $3
"""

_TRIGGER_FROM_FLOW_SQL = """
INSERT INTO triggers (namespace, flow_id, trigger_id, type, enabled, updated)
SELECT $1, $2, t.id, t.type, t.enabled, $3
FROM unnest($4::text[], $5::text[], $6::bool[]) AS t(id, type, enabled)
ON CONFLICT (namespace, flow_id, trigger_id) DO UPDATE SET
    type = excluded.type, enabled = excluded.enabled, updated = excluded.updated
"""

_TRIGGERS_SQL = """
INSERT INTO triggers (namespace, flow_id, trigger_id, type, enabled, last_fired, next_date,
    last_error, updated)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[],
    $6::timestamptz[], $7::timestamptz[], $8::text[], $9::timestamptz[])
ON CONFLICT (namespace, flow_id, trigger_id) DO UPDATE SET
    type = CASE WHEN excluded.type = '' THEN triggers.type ELSE excluded.type END,
    enabled = excluded.enabled, last_fired = excluded.last_fired,
    next_date = excluded.next_date, last_error = excluded.last_error,
    updated = excluded.updated
WHERE excluded.updated >= triggers.updated
"""


def _columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(col) for col in zip(*rows, strict=True)]


class SecretCache:
    """Which inputs are SECRET per (namespace, flow id, revision); filled from the DB."""

    def __init__(self) -> None:
        self._known: dict[SecretKey, frozenset[str]] = {}

    def put(self, key: SecretKey, secrets: list[str]) -> None:
        self._known[key] = frozenset(secrets)

    def get(self, key: SecretKey) -> frozenset[str]:
        return self._known.get(key, frozenset())

    async def load(self, conn: Any, keys: set[SecretKey]) -> None:
        missing = [k for k in keys if k not in self._known]
        if not missing:
            return
        rows = await conn.fetch(
            "SELECT r.namespace, r.id, r.revision, r.secret_inputs FROM flow_revisions r"
            " JOIN unnest($1::text[], $2::text[], $3::int[]) AS k(ns, id, rev)"
            " ON r.namespace = k.ns AND r.id = k.id AND r.revision = k.rev"
            " UNION ALL"
            " SELECT f.namespace, f.id, NULL, f.secret_inputs FROM flows f"
            " JOIN unnest($1::text[], $2::text[], $3::int[]) AS k(ns, id, rev)"
            " ON f.namespace = k.ns AND f.id = k.id AND k.rev IS NULL",
            [k[0] for k in missing],
            [k[1] for k in missing],
            [k[2] for k in missing],
        )
        for key in missing:  # a miss stays a miss until the flow arrives (and put() it)
            self._known[key] = frozenset()
        for r in rows:
            self._known[(r["namespace"], r["id"], r["revision"])] = frozenset(r["secret_inputs"])


async def write_batch(conn: Any, batch: RowBatch, secrets: SecretCache) -> None:
    """Apply ``batch`` inside the caller's transaction (flows first: masking needs them)."""
    await _write_flows(conn, batch, secrets)
    if batch.executions:
        keys = {(r.namespace, r.flow_id, r.flow_revision) for r in batch.executions.values()}
        await secrets.load(conn, keys)
        rows = [
            r.as_tuple(secrets.get((r.namespace, r.flow_id, r.flow_revision)))
            for r in batch.executions.values()
        ]
        await conn.execute(_EXECUTIONS_SQL, *_columns(rows))
    if batch.task_runs:
        await conn.execute(_TASK_RUNS_SQL, *_columns(list(batch.task_runs.values())))
    if batch.task_run_deletes:
        ids = list(batch.task_run_deletes)
        seqs = [batch.task_run_deletes[i][1] for i in ids]
        await conn.execute(_TASK_RUN_DELETE_SQL, ids, seqs)
    if batch.logs:
        await conn.execute(_LOGS_SQL, *_columns(list(batch.logs.values())))
    if batch.triggers:
        await conn.execute(_TRIGGERS_SQL, *_columns(list(batch.triggers.values())))
    if batch.execution_purges:
        ids = list(batch.execution_purges)
        await conn.execute(_PURGED_EXECUTIONS_SQL, ids, list(batch.execution_purges.values()))
        for sql in _DELETE_PURGED_SQL:
            await conn.execute(sql, ids)
    for purge_id, execution_id, levels, start, end, when in batch.log_purges:
        await conn.execute(_LOG_PURGE_SQL, purge_id, execution_id, levels, start, end, when)
        await conn.execute(_DELETE_LOGS_SQL, execution_id, levels, start, end)


async def _write_flows(conn: Any, batch: RowBatch, secrets: SecretCache) -> None:
    for f in batch.flows:
        secret_ids = f.secrets
        flow_json = dumps(f.flow)
        await conn.execute(
            _REVISIONS_SQL,
            f.namespace,
            f.id,
            f.revision,
            f.source,
            flow_json,
            secret_ids,
            f.deployed_at,
            f.draft,
        )
        if f.draft:  # kept with the revisions only: never the current definition
            continue
        labels = f.flow.get("labels")
        await conn.execute(
            _FLOWS_SQL,
            f.namespace,
            f.id,
            f.revision,
            f.source,
            flow_json,
            f.flow.get("description"),
            dumps(labels if isinstance(labels, dict) else {}),
            secret_ids,
            f.deployed_at,
        )
        secrets.put((f.namespace, f.id, f.revision), secret_ids)
        secrets.put((f.namespace, f.id, None), secret_ids)  # executions without a revision
        if secret_ids:
            await conn.execute(_MASK_LATE_SQL, f.namespace, f.id, f.revision, MASK, secret_ids)
        triggers = [t for t in f.flow.get("triggers") or [] if isinstance(t, dict) and "id" in t]
        if triggers:
            await conn.execute(
                _TRIGGER_FROM_FLOW_SQL,
                f.namespace,
                f.id,
                f.deployed_at,
                [str(t["id"]) for t in triggers],
                [str(t.get("type", "")) for t in triggers],
                [t.get("disabled") is not True for t in triggers],
            )
    for (namespace, flow_id), (revision, when) in batch.flow_deletes.items():
        await conn.execute(_FLOW_DELETE_SQL, namespace, flow_id, revision, when)
