-- Workers of a shared run of tables sent to the API lease groups from a
-- PostgreSQL store only (several machines cannot share a SQLite file);
-- the table is here so that both stores have the same schema.
-- Keep in step with ../postgres/0051_api_backfill_groups.sql.
CREATE TABLE strangler_api_backfill_groups (
    run_name    TEXT NOT NULL,
    table_name  TEXT NOT NULL,
    group_no    INTEGER NOT NULL,
    group_value TEXT,
    range_end   TEXT,
    last_key    TEXT,
    done        INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until TEXT,
    PRIMARY KEY (run_name, table_name, group_no)
) STRICT;
