-- Change requests (changes.go): a flip, clear or ramp that moves a route
-- with approvals forward waits here for other token names to approve it.
-- Keep in step with ../sqlite/0071_change_requests.sql.
CREATE TABLE strangler_changes (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    route         text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('flip', 'clear', 'ramp')),
    -- flip and clear: where the route would go; ramp: the ramp's mode.
    mode          text NOT NULL,
    percent       double precision,
    forced        boolean NOT NULL,
    ramp_steps    text NOT NULL,             -- ramp: JSON array of percents; '' otherwise
    ramp_every_ns bigint NOT NULL,
    -- The route as the requester saw it: approving a request for a route
    -- that changed since applies nothing.
    from_mode     text NOT NULL,
    from_percent  double precision,
    base_version  bigint NOT NULL,
    requester     text NOT NULL,
    reason        text NOT NULL,
    needed        integer NOT NULL CHECK (needed > 0),  -- approvals besides the requester's
    approvers     text NOT NULL,             -- JSON array of token names, in order
    state         text NOT NULL CHECK (state IN ('pending', 'applied', 'rejected', 'expired', 'stale')),
    decided_by    text NOT NULL,
    decision      text NOT NULL,             -- the rejection's reason, or why it is stale
    decided_at    timestamptz,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    version       bigint NOT NULL CHECK (version > 0)
);
-- One pending request per route: a second would be decided on a route
-- the first may have changed.
CREATE UNIQUE INDEX strangler_changes_pending ON strangler_changes (route) WHERE state = 'pending';
CREATE INDEX strangler_changes_created ON strangler_changes (created_at, id);
