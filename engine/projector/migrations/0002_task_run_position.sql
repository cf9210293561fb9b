-- Task runs keep their creation order in the execution (Kestra's taskRunList order: parents
-- before children), which creation times cannot give: many runs are created in one decision.
ALTER TABLE task_runs ADD COLUMN position integer;
CREATE INDEX task_runs_execution_position_idx ON task_runs (execution_id, position);
