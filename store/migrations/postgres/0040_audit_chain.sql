-- The audit log as a SHA-256 hash chain (auditchain.go). Keep in step with
-- ../sqlite/0040_audit_chain.sql. Each entry stores the previous entry's
-- hash and its own; the head row holds the newest entry's id and hash and
-- is locked by every append (SELECT … FOR UPDATE), so replicas sharing
-- this database append one after the other and the chain stays linear.
ALTER TABLE strangler_audit ADD COLUMN prev_hash text, ADD COLUMN hash text;

CREATE TABLE strangler_audit_head (
    one               smallint PRIMARY KEY CHECK (one = 1),
    last_id           bigint NOT NULL,  -- the newest chained entry; 0 for none
    hash              text NOT NULL,    -- its hash, hex; the genesis hash (64 zeros) for none
    -- Entries up to this id were written before the chain existed. The
    -- migration chains them as they are now (migrate.go's after-step), so
    -- a change to them is detectable from then on, not before.
    pre_chain_last_id bigint NOT NULL,
    started_at        timestamptz NOT NULL
);
INSERT INTO strangler_audit_head (one, last_id, hash, pre_chain_last_id, started_at)
SELECT 1, 0, '0000000000000000000000000000000000000000000000000000000000000000', coalesce(max(id), 0), now() FROM strangler_audit;
