-- What a backfill through the API sent for each row (keep in step with
-- ../postgres/0090_api_backfill_sent.sql): a migrated row now stays in
-- strangler_api_backfill_rows with the keyed hash of the request it was
-- sent with (phi.Hasher, never its values) and that request's
-- Idempotency-Key, so that a plain re-run sends a row again only when
-- its request changed, under a key of its own. '' when nothing was sent
-- (a row written before this version, or one refused before sending).
ALTER TABLE strangler_api_backfill_rows ADD COLUMN body_hash text NOT NULL DEFAULT '';
ALTER TABLE strangler_api_backfill_rows ADD COLUMN idempotency_key text NOT NULL DEFAULT '';
-- A checkpoint written before this version stands for rows sent whose
-- ledger rows were deleted on success: baseline_key keeps it, so that the
-- next plain run takes the rows at or below it with no ledger row as sent
-- (records their request's hash, sends nothing) rather than creating them
-- a second time. NULL for checkpoints written since; the run that records
-- the baseline clears it.
ALTER TABLE strangler_api_backfill_checkpoints ADD COLUMN baseline_key text;
UPDATE strangler_api_backfill_checkpoints SET baseline_key = last_key;
