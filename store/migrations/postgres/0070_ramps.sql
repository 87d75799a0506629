-- Scheduled ramps (ramps.go) and the named leases that let one replica
-- drive them. Keep in step with ../sqlite/0070_ramps.sql.

-- A route's latest ramp: running, paused, held (by the guard), done or
-- cancelled. A new ramp replaces one that is done or cancelled, never one
-- that is still under way; the audit log keeps every ramp's history.
CREATE TABLE strangler_ramps (
    route         text PRIMARY KEY,
    mode          text NOT NULL,             -- fallback | modern
    steps         text NOT NULL,             -- JSON array of percents, rising
    every_ns      bigint NOT NULL CHECK (every_ns > 0),
    taken         integer NOT NULL,          -- steps taken: steps[taken] is next
    state         text NOT NULL CHECK (state IN ('running', 'paused', 'held', 'done', 'cancelled')),
    next_at       timestamptz NOT NULL,      -- when the next step is due
    waiting       text NOT NULL,             -- why a due step is not taken (a gate); '' when not waiting
    waiting_since timestamptz,
    note          text NOT NULL,             -- why it is paused, held, done or cancelled
    -- The route's flags as the ramp last set or saw them: a change by
    -- anyone else pauses the ramp (the guard's holds it).
    at_mode       text NOT NULL,
    at_percent    double precision,
    at_version    bigint NOT NULL,
    actor         text NOT NULL,             -- who started it
    reason        text NOT NULL,
    approved_by   text NOT NULL,             -- who approved it, on a route that needs approvals
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    version       bigint NOT NULL CHECK (version > 0)
);

-- A lease on a job only one replica should do at a time: whoever holds it
-- renews it; once it lapses, another replica takes it over.
CREATE TABLE strangler_leases (
    name  text PRIMARY KEY,
    owner text NOT NULL,
    until timestamptz NOT NULL
);
