-- Patient data (keep in step with ../postgres/0030_patient_data.sql).
-- A journaled write's resource becomes a keyed digest (the queue's
-- ordering key, equal for equal paths, unreadable) and resource_view the
-- path with its parameters hashed, for listings. sealed says the row's
-- target, header, body, location and primary_id are encrypted
-- (store_encryption); they are erased once the write is settled.
ALTER TABLE strangler_repairs ADD COLUMN resource_view TEXT NOT NULL DEFAULT '';
ALTER TABLE strangler_repairs ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;
-- What the sweep looks for: settled writes that still hold their request
-- (target is never empty until erased), and rows journaled before this
-- migration, whose resources are still in clear. Both sets are empty once
-- the facade has run; the indexes keep the hourly sweep from reading the
-- whole table.
CREATE INDEX strangler_repairs_unerased ON strangler_repairs (id)
    WHERE state IN ('done', 'skipped', 'discarded') AND target <> '';
CREATE INDEX strangler_repairs_unhashed ON strangler_repairs (id)
    WHERE resource_view = '';
-- A sealed sample is a JSON string holding the encrypted sample.
ALTER TABLE strangler_samples ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;
-- With store_encryption a queued key is stored as its keyed digest (for
-- deduplication) and encrypted in sealed_key.
ALTER TABLE strangler_repair_keys ADD COLUMN sealed_key TEXT NOT NULL DEFAULT '';
-- The store's own secrets: the hash key behind every keyed hash, shared
-- by every replica, encrypted when the store is.
CREATE TABLE strangler_secrets (
    name       TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    sealed     INTEGER NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
-- Samples and client versions of earlier releases kept values in clear.
DELETE FROM strangler_samples;
DELETE FROM strangler_legacy_clients;
