-- The ledger of backfills through the modern service's API (apibackfill.go).
-- Keep in step with ../sqlite/0050_api_backfill.sql.

-- One row per run: its mode, how it ended and its report (JSON).
CREATE TABLE strangler_api_backfill_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mode        text NOT NULL,
    status      text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    report      text NOT NULL
);

-- One row per source row sent: migrated, or failed with the API's answer
-- and the payload (redacted fields hashed). A row migrated later
-- replaces its failure.
CREATE TABLE strangler_api_backfill_rows (
    table_name text NOT NULL,
    row_key    text NOT NULL,
    state      text NOT NULL CHECK (state IN ('migrated', 'failed')),
    status     bigint NOT NULL,           -- the API's last HTTP status; 0 when it never answered
    reason     text NOT NULL,              -- a closed set: rejected, retries_exhausted…; '' when migrated
    message    text NOT NULL,              -- the API's error message
    payload    text NOT NULL,              -- the request body, redacted
    run_id     bigint NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (table_name, row_key)
);
CREATE INDEX strangler_api_backfill_failed ON strangler_api_backfill_rows (table_name, state, row_key);

-- Each table's checkpoint: every row up to last_key was sent.
CREATE TABLE strangler_api_backfill_checkpoints (
    table_name text PRIMARY KEY,
    last_key   text NOT NULL,
    updated_at timestamptz NOT NULL
);
