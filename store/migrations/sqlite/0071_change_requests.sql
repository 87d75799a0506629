-- Change requests (changes.go): a flip, clear or ramp that moves a route
-- with approvals forward waits here for other token names to approve it.
-- Keep in step with ../postgres/0071_change_requests.sql.
CREATE TABLE strangler_changes (
    id            INTEGER PRIMARY KEY,
    route         TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('flip', 'clear', 'ramp')),
    -- flip and clear: where the route would go; ramp: the ramp's mode.
    mode          TEXT NOT NULL,
    percent       REAL,
    forced        INTEGER NOT NULL,
    ramp_steps    TEXT NOT NULL,             -- ramp: JSON array of percents; '' otherwise
    ramp_every_ns INTEGER NOT NULL,
    -- The route as the requester saw it: approving a request for a route
    -- that changed since applies nothing.
    from_mode     TEXT NOT NULL,
    from_percent  REAL,
    base_version  INTEGER NOT NULL,
    requester     TEXT NOT NULL,
    reason        TEXT NOT NULL,
    needed        INTEGER NOT NULL CHECK (needed > 0),  -- approvals besides the requester's
    approvers     TEXT NOT NULL,             -- JSON array of token names, in order
    state         TEXT NOT NULL CHECK (state IN ('pending', 'applied', 'rejected', 'expired', 'stale')),
    decided_by    TEXT NOT NULL,
    decision      TEXT NOT NULL,             -- the rejection's reason, or why it is stale
    decided_at    TEXT,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    version       INTEGER NOT NULL CHECK (version > 0)
) STRICT;
-- One pending request per route: a second would be decided on a route
-- the first may have changed.
CREATE UNIQUE INDEX strangler_changes_pending ON strangler_changes (route) WHERE state = 'pending';
CREATE INDEX strangler_changes_created ON strangler_changes (created_at, id);
