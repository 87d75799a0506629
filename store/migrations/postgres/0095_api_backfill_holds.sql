-- The tables plain runs of backfills through the API are sending
-- (apibackfill_holds.go): one row per table, renewed by its run until it
-- ends, so that a second plain run of the table is refused rather than
-- racing the first. Keep in step with ../sqlite/0095_api_backfill_holds.sql.
CREATE TABLE strangler_api_backfill_holds (
    table_name TEXT PRIMARY KEY,
    run_id     BIGINT NOT NULL,
    holder     TEXT NOT NULL,
    until      TIMESTAMPTZ NOT NULL
);
