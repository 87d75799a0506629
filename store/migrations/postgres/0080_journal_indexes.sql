-- Fewer index pages rewritten per dual write (keep in step with
-- ../sqlite/0080_journal_indexes.sql). Each index a state change touches
-- costs every journal transaction index entries and WAL records (on
-- SQLite a whole page per commit). strangler_repairs_state (state,
-- updated_at) was rewritten by all three of a write's transactions, and
-- strangler_repairs_due by two, which no query uses (claims walk
-- strangler_repairs_pending_seq). In their place, indexes that the
-- journal's usual path (sent, pending, done) touches once at most: the
-- purge finds settled writes by when they settled, and the queue depth and
-- operators' listings find unknown and dead writes by their own. Sent and
-- pending writes keep theirs (strangler_repairs_sent, _pending_seq).
-- The settled states are listed as the store's queries list them: SQLite
-- uses a partial index only for a condition spelled as the index's is,
-- which strangler_repairs_unerased (0030) was not, so the hourly sweep
-- read the whole journal; it is made again here, spelled alike.
DROP INDEX strangler_repairs_due;
DROP INDEX strangler_repairs_state;
DROP INDEX strangler_repairs_unerased;
CREATE INDEX strangler_repairs_settled ON strangler_repairs (updated_at)
    WHERE state IN ('skipped', 'done', 'discarded');
CREATE INDEX strangler_repairs_unerased ON strangler_repairs (id)
    WHERE state IN ('skipped', 'done', 'discarded') AND target <> '';
CREATE INDEX strangler_repairs_unknown ON strangler_repairs (created_at, id)
    WHERE state = 'unknown';
CREATE INDEX strangler_repairs_dead ON strangler_repairs (created_at, id)
    WHERE state = 'dead';
