-- Kestra 2.0 draft revisions: kept and listed with their flow's revisions, never the flow's
-- current definition (the `flows` row stays on the latest revision that is not a draft).

ALTER TABLE flow_revisions ADD COLUMN IF NOT EXISTS draft boolean NOT NULL DEFAULT false;
