-- Each claim of a shared run's group by a worker is a lease of its own
-- (lease_no), and each batch recorded under it records its last key in
-- strangler_api_backfill_group_leases. Workers lease groups from a
-- PostgreSQL store only; the table is here so that both stores have the
-- same schema.
-- Keep in step with ../postgres/0230_api_backfill_group_leases.sql.
ALTER TABLE strangler_api_backfill_groups ADD COLUMN lease_no INTEGER;
CREATE TABLE strangler_api_backfill_group_leases (
    run_name   TEXT NOT NULL,
    table_name TEXT NOT NULL,
    group_no   INTEGER NOT NULL,
    lease_no   INTEGER NOT NULL,
    last_key   TEXT NOT NULL,
    PRIMARY KEY (run_name, table_name, group_no, lease_no)
) STRICT;
