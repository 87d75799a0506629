-- The journal's CHECK on state and the partial indexes of settled writes
-- spell their lists of states as ORed equalities, not IN. For a constant
-- IN list of three or more values SQLite builds a temporary b-tree each
-- time a statement evaluates it, and every INSERT into the journal and
-- every change of a write's state evaluated the CHECK (seven states) and
-- both settled indexes' conditions, old row and new: 13 temporary b-trees
-- a dual write, a third of the instructions of its journal entries. The
-- store's queries spell lists of states the same way (statesIn), as
-- SQLite uses a partial index only for a condition spelled as the
-- index's is. PostgreSQL evaluates IN without such a cost and needs no
-- change. SQLite changes a CHECK only by building the table again: same
-- columns, same order, same indexes.
CREATE TABLE strangler_repairs_0105 (
    id              TEXT PRIMARY KEY,
    route           TEXT NOT NULL,
    resource        TEXT NOT NULL,
    method          TEXT NOT NULL,
    target          TEXT NOT NULL,
    header          BLOB NOT NULL,
    body            BLOB NOT NULL,
    primary_side    TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state = 'sent' OR state = 'pending' OR state = 'skipped' OR state = 'unknown'
                        OR state = 'done' OR state = 'dead' OR state = 'discarded'),
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
INSERT INTO strangler_repairs_0105 SELECT * FROM strangler_repairs ORDER BY rowid;
DROP TABLE strangler_repairs;
ALTER TABLE strangler_repairs_0105 RENAME TO strangler_repairs;
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
    WHERE (state = 'skipped' OR state = 'done' OR state = 'discarded');
CREATE INDEX strangler_repairs_unerased ON strangler_repairs (id)
    WHERE (state = 'skipped' OR state = 'done' OR state = 'discarded') AND target <> '';
CREATE INDEX strangler_repairs_unknown ON strangler_repairs (created_at, id)
    WHERE state = 'unknown';
CREATE INDEX strangler_repairs_dead ON strangler_repairs (created_at, id)
    WHERE state = 'dead';
