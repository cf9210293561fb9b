-- Purges (PurgeExecutions / PurgeLogs tasks): what was deleted, so that a later or replayed
-- record can never bring it back (a rebuild reads hw.events and hw.logs side by side).

CREATE TABLE purged_executions (
    execution_id  text        PRIMARY KEY,
    purged_at     timestamptz NOT NULL
);

CREATE TABLE log_purges (
    id            text        PRIMARY KEY,   -- the LogsPurged envelope id
    execution_id  text        NOT NULL,
    levels        text[],                    -- null: every level
    start_ts      timestamptz,               -- null: from the first line
    end_ts        timestamptz NOT NULL,
    purged_at     timestamptz NOT NULL
);
CREATE INDEX log_purges_execution_idx ON log_purges (execution_id);
