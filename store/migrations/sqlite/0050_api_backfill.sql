-- The ledger of backfills through the modern service's API (apibackfill.go).
-- Keep in step with ../postgres/0050_api_backfill.sql.

-- One row per run: its mode, how it ended and its report (JSON).
CREATE TABLE strangler_api_backfill_runs (
    id          INTEGER PRIMARY KEY,
    mode        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    report      TEXT NOT NULL
) STRICT;

-- One row per source row sent: migrated, or failed with the API's answer
-- and the payload (redacted fields hashed). A row migrated later
-- replaces its failure.
CREATE TABLE strangler_api_backfill_rows (
    table_name TEXT NOT NULL,
    row_key    TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('migrated', 'failed')),
    status     INTEGER NOT NULL,           -- the API's last HTTP status; 0 when it never answered
    reason     TEXT NOT NULL,              -- a closed set: rejected, retries_exhausted…; '' when migrated
    message    TEXT NOT NULL,              -- the API's error message
    payload    TEXT NOT NULL,              -- the request body, redacted
    run_id     INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (table_name, row_key)
) STRICT;
CREATE INDEX strangler_api_backfill_failed ON strangler_api_backfill_rows (table_name, state, row_key);

-- Each table's checkpoint: every row up to last_key was sent.
CREATE TABLE strangler_api_backfill_checkpoints (
    table_name TEXT PRIMARY KEY,
    last_key   TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
