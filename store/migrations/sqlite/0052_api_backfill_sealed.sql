-- The API backfill ledger under store_encryption (apibackfill.go), keep
-- in step with ../postgres/0052_api_backfill_sealed.sql.
-- sealed says a failed row's message and payload, or a group's
-- group_by value, are encrypted; keys stay in clear, as pages and leases
-- are read in key order.
ALTER TABLE strangler_api_backfill_rows ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE strangler_api_backfill_groups ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;
-- The ledger keeps failed rows only: nothing read the rows it kept of
-- every row migrated, and a migrated row now deletes its failure.
DELETE FROM strangler_api_backfill_rows WHERE state = 'migrated';
