-- Scheduled ramps (ramps.go) and the named leases that let one replica
-- drive them. Keep in step with ../postgres/0070_ramps.sql.

-- A route's latest ramp: running, paused, held (by the guard), done or
-- cancelled. A new ramp replaces one that is done or cancelled, never one
-- that is still under way; the audit log keeps every ramp's history.
CREATE TABLE strangler_ramps (
    route         TEXT PRIMARY KEY,
    mode          TEXT NOT NULL,             -- fallback | modern
    steps         TEXT NOT NULL,             -- JSON array of percents, rising
    every_ns      INTEGER NOT NULL CHECK (every_ns > 0),
    taken         INTEGER NOT NULL,          -- steps taken: steps[taken] is next
    state         TEXT NOT NULL CHECK (state IN ('running', 'paused', 'held', 'done', 'cancelled')),
    next_at       TEXT NOT NULL,             -- when the next step is due
    waiting       TEXT NOT NULL,             -- why a due step is not taken (a gate); '' when not waiting
    waiting_since TEXT,
    note          TEXT NOT NULL,             -- why it is paused, held, done or cancelled
    -- The route's flags as the ramp last set or saw them: a change by
    -- anyone else pauses the ramp (the guard's holds it).
    at_mode       TEXT NOT NULL,
    at_percent    REAL,
    at_version    INTEGER NOT NULL,
    actor         TEXT NOT NULL,             -- who started it
    reason        TEXT NOT NULL,
    approved_by   TEXT NOT NULL,             -- who approved it, on a route that needs approvals
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    version       INTEGER NOT NULL CHECK (version > 0)
) STRICT;

-- A lease on a job only one replica should do at a time: whoever holds it
-- renews it; once it lapses, another replica takes it over.
CREATE TABLE strangler_leases (
    name  TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until TEXT NOT NULL
) STRICT;
