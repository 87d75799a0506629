-- Idempotency-Key on dual-write routes: which journaled write a client's
-- key names. Keep in step with ../postgres/0020_idempotency_keys.sql.
-- Neither the key nor the request is stored, only SHA-256 hashes of them:
-- a client's key is free text and may say more than it should.
CREATE TABLE strangler_idempotency_keys (
    key         TEXT PRIMARY KEY,  -- SHA-256 of the client's key, hex
    fingerprint TEXT NOT NULL,     -- SHA-256 of method, target and body, hex
    intent_id   TEXT NOT NULL,     -- the journaled write (strangler_repairs.id)
    at          TEXT NOT NULL      -- when it named that write; swept a day later
) STRICT;
CREATE INDEX strangler_idempotency_keys_at ON strangler_idempotency_keys (at);
-- The purge of finished writes keeps those a remembered key names.
CREATE INDEX strangler_idempotency_keys_intent ON strangler_idempotency_keys (intent_id);
