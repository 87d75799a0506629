-- The backfill's ledger. Versions before this runner created these
-- tables unversioned; IF NOT EXISTS makes this file a no-op for them.
CREATE TABLE IF NOT EXISTS strangler_backfill_runs (
  id bigserial PRIMARY KEY,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  -- running, succeeded, failed or interrupted
  status text NOT NULL,
  -- full, restart, only-failed or keys
  mode text NOT NULL,
  tables text[] NOT NULL,
  report jsonb,
  error text
);
CREATE TABLE IF NOT EXISTS strangler_backfill_checkpoints (
  table_name text NOT NULL,
  -- A table is copied in key ranges; range n covers the keys after range
  -- n-1's end up to its own end (NULL: no end, the last range). Keys are
  -- the bytes MySQL sends, whatever their type.
  range_no integer NOT NULL,
  range_end bytea,
  -- Every key up to last_key is copied; NULL: nothing yet.
  last_key bytea,
  done boolean NOT NULL DEFAULT false,
  rows_done bigint NOT NULL DEFAULT 0,
  run_id bigint,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (table_name, range_no)
);
CREATE TABLE IF NOT EXISTS strangler_backfill_failures (
  table_name text NOT NULL,
  source_key bytea NOT NULL,
  reason text NOT NULL,
  -- The row as it would have been written, redacted columns elided and
  -- values jsonb cannot hold described.
  payload jsonb NOT NULL,
  attempts integer NOT NULL DEFAULT 1,
  first_failed_at timestamptz NOT NULL DEFAULT now(),
  last_failed_at timestamptz NOT NULL DEFAULT now(),
  run_id bigint,
  PRIMARY KEY (table_name, source_key)
);
-- Modern rows removed by --propagate-deletes because their legacy row was
-- gone: the audit trail of every delete.
CREATE TABLE IF NOT EXISTS strangler_backfill_deletes (
  run_id bigint NOT NULL,
  table_name text NOT NULL,
  target_key text NOT NULL,
  deleted_at timestamptz NOT NULL DEFAULT now()
);
