-- What a backfill through the API sent for each row (keep in step with
-- ../postgres/0090_api_backfill_sent.sql): a migrated row now stays in
-- strangler_api_backfill_rows with the keyed hash of the request it was
-- sent with (phi.Hasher, never its values) and that request's
-- Idempotency-Key, so that a plain re-run sends a row again only when
-- its request changed, under a key of its own. '' when nothing was sent
-- (a row written before this version, or one refused before sending).
ALTER TABLE strangler_api_backfill_rows ADD COLUMN body_hash text NOT NULL DEFAULT '';
ALTER TABLE strangler_api_backfill_rows ADD COLUMN idempotency_key text NOT NULL DEFAULT '';
