-- What an API table's checkpoint and a shared run's groups were recorded
-- for (keep in step with ../sqlite/0210_api_backfill_plans.sql): the hash
-- of the table's plan (its source, key, path, method, body mapping and
-- group_by; backfill's table.cutFor). A checkpoint or groups of another
-- plan say nothing of this one's requests, and a run finding them reads
-- the table from its start. NULL in those recorded before this column,
-- which are taken as they are.
ALTER TABLE strangler_api_backfill_checkpoints ADD COLUMN plan text;
ALTER TABLE strangler_api_backfill_groups ADD COLUMN plan text;
