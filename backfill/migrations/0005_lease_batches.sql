-- Each claim of a range by a worker is a lease of its own (lease_no,
-- from one sequence), and each batch committed under it records its last
-- key in strangler_backfill_leases in the batch's transaction: a worker
-- whose lease ended as a batch's COMMIT lost its answer tells from there
-- whether the batch committed, which the range's checkpoint no longer
-- says once whoever took the range over went on (nor when another lease
-- committed a batch ending on the same key).
CREATE SEQUENCE IF NOT EXISTS strangler_backfill_lease_no;
ALTER TABLE strangler_backfill_checkpoints ADD COLUMN IF NOT EXISTS lease_no bigint;
CREATE TABLE IF NOT EXISTS strangler_backfill_leases (lease_no bigint PRIMARY KEY, last_key bytea NOT NULL);
