-- The audit log as a SHA-256 hash chain (auditchain.go). Keep in step with
-- ../postgres/0040_audit_chain.sql. Each entry stores the previous entry's
-- hash and its own; the head row holds the newest entry's id and hash.
-- SQLite lets one writer in at a time, so appends are linear anyway.
ALTER TABLE strangler_audit ADD COLUMN prev_hash TEXT;
ALTER TABLE strangler_audit ADD COLUMN hash TEXT;

CREATE TABLE strangler_audit_head (
    one               INTEGER PRIMARY KEY CHECK (one = 1),
    last_id           INTEGER NOT NULL,  -- the newest chained entry; 0 for none
    hash              TEXT NOT NULL,     -- its hash, hex; the genesis hash (64 zeros) for none
    -- Entries up to this id were written before the chain existed. The
    -- migration chains them as they are now (migrate.go's after-step), so
    -- a change to them is detectable from then on, not before.
    pre_chain_last_id INTEGER NOT NULL,
    started_at        TEXT NOT NULL
) STRICT;
INSERT INTO strangler_audit_head (one, last_id, hash, pre_chain_last_id, started_at)
SELECT 1, 0, '0000000000000000000000000000000000000000000000000000000000000000', coalesce(max(id), 0), strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM strangler_audit;
