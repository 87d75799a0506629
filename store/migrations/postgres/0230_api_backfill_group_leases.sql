-- Each claim of a shared run's group by a worker is a lease of its own
-- (lease_no, one more than the group's claim before), and each batch
-- recorded under it records its last key in
-- strangler_api_backfill_group_leases in the batch's transaction: a
-- worker whose lease ended as a batch's recording lost its answer tells
-- from there whether the batch was recorded, which the group's last_key
-- no longer says once whoever took the group over went on, and which a
-- batch with no row newly migrated (rows rejected, or sent before) has
-- nothing else to tell by. Rows go with their run's groups.
-- Keep in step with ../sqlite/0230_api_backfill_group_leases.sql.
ALTER TABLE strangler_api_backfill_groups ADD COLUMN lease_no bigint;
CREATE TABLE strangler_api_backfill_group_leases (
    run_name   text NOT NULL,
    table_name text NOT NULL,
    group_no   bigint NOT NULL,
    lease_no   bigint NOT NULL,
    last_key   text NOT NULL,
    PRIMARY KEY (run_name, table_name, group_no, lease_no)
);
