-- A journaled write's sequence number is no longer a UNIQUE column (keep
-- in step with ../postgres/0085_journal_seq.sql). The numbers come from
-- one counter taken under the resource's lock, so the constraint never
-- refused anything, and its index cost each dual write three entries:
-- the NULL of a write just journaled, its removal when the primary
-- answered, and the number. The queue finds writes by their numbers
-- through strangler_repairs_pending_seq and strangler_repairs_head, which
-- hold only the writes still to be delivered. SQLite drops a column
-- constraint only by building the table again: same columns, same order,
-- same indexes.
CREATE TABLE strangler_repairs_0085 (
    id              TEXT PRIMARY KEY,
    route           TEXT NOT NULL,
    resource        TEXT NOT NULL,
    method          TEXT NOT NULL,
    target          TEXT NOT NULL,
    header          BLOB NOT NULL,
    body            BLOB NOT NULL,
    primary_side    TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN
                        ('sent', 'pending', 'skipped', 'unknown', 'done', 'dead', 'discarded')),
    seq             INTEGER,
    status          INTEGER,
    location        TEXT NOT NULL DEFAULT '',
    primary_id      TEXT NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    next_attempt_at TEXT,
    lease_owner     TEXT,
    lease_until     TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    resource_view   TEXT NOT NULL DEFAULT '',
    sealed          INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO strangler_repairs_0085 SELECT * FROM strangler_repairs ORDER BY rowid;
DROP TABLE strangler_repairs;
ALTER TABLE strangler_repairs_0085 RENAME TO strangler_repairs;
CREATE INDEX strangler_repairs_head ON strangler_repairs (resource, seq)
    WHERE state IN ('pending', 'dead');
CREATE INDEX strangler_repairs_sent ON strangler_repairs (lease_until)
    WHERE state = 'sent';
CREATE INDEX strangler_repairs_created ON strangler_repairs (created_at, id);
CREATE INDEX strangler_repairs_pending_seq ON strangler_repairs (seq)
    WHERE state = 'pending';
CREATE INDEX strangler_repairs_unhashed ON strangler_repairs (id)
    WHERE resource_view = '';
CREATE INDEX strangler_repairs_settled ON strangler_repairs (updated_at)
    WHERE state IN ('skipped', 'done', 'discarded');
CREATE INDEX strangler_repairs_unerased ON strangler_repairs (id)
    WHERE state IN ('skipped', 'done', 'discarded') AND target <> '';
CREATE INDEX strangler_repairs_unknown ON strangler_repairs (created_at, id)
    WHERE state = 'unknown';
CREATE INDEX strangler_repairs_dead ON strangler_repairs (created_at, id)
    WHERE state = 'dead';
