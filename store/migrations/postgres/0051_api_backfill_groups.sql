-- Workers of a shared run of tables sent to the API (--run NAME --worker,
-- apibackfill_groups.go) lease a group at a time: one group_by value, or
-- a key range when the table has no group_by. lease_owner sends it until
-- lease_until, renewing as it goes; another worker takes it over, from
-- last_key, once the lease has run out.
-- Keep in step with ../sqlite/0051_api_backfill_groups.sql.
CREATE TABLE strangler_api_backfill_groups (
    run_name    text NOT NULL,
    table_name  text NOT NULL,
    group_no    bigint NOT NULL,
    group_value text,                -- the group_by value (NULL: rows whose value is NULL, or no group_by)
    range_end   text,                -- without group_by: the range's last key (NULL: no end)
    last_key    text,                -- every row of the group up to this key was sent; NULL: none yet
    done        boolean NOT NULL DEFAULT false,
    lease_owner text,
    lease_until timestamptz,
    PRIMARY KEY (run_name, table_name, group_no)
);
