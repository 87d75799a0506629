-- Workers of a shared run (--run NAME --worker) lease a range at a time:
-- lease_owner copies it until lease_until, renewing as it goes, and a
-- batch commits only while its worker still holds the lease.
ALTER TABLE strangler_backfill_checkpoints ADD COLUMN IF NOT EXISTS lease_owner text,
  ADD COLUMN IF NOT EXISTS lease_until timestamptz;
ALTER TABLE strangler_backfill_runs ADD COLUMN IF NOT EXISTS name text;
