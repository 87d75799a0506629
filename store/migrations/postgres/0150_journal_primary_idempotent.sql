-- A journaled write keeps the route's primary_idempotent it was journaled
-- under (domain.Intent.PrimaryIdempotent): it picks the Idempotency-Key
-- the secondary gets and whether recovery resends the write, whatever a
-- reload says later. NULL: journaled by an earlier release, which follows
-- the route's current setting as that release did. Keep in step with
-- ../sqlite/0150_journal_primary_idempotent.sql.
ALTER TABLE strangler_repairs ADD COLUMN primary_idempotent boolean;
