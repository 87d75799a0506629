-- The facade's durable state on PostgreSQL. Keep in step with
-- ../sqlite/0001_init.sql: the same tables, columns and meanings.

-- The dual-write journal and repair queue: one row per write intent, from
-- "sent" (primary call in flight) to "done", "skipped" or "discarded".
CREATE TABLE strangler_repairs (
    id              text PRIMARY KEY,  -- UUID, also the Idempotency-Key
    route           text NOT NULL,
    resource        text NOT NULL,     -- route + path params: the FIFO unit
    method          text NOT NULL,
    target          text NOT NULL,     -- path?query
    header          bytea NOT NULL,    -- HTTP/1.1 wire format, byte-exact
    body            bytea NOT NULL,
    primary_side    text NOT NULL,     -- legacy | modern
    state           text NOT NULL CHECK (state IN
                        ('sent', 'pending', 'skipped', 'unknown', 'done', 'dead', 'discarded')),
    seq             bigint UNIQUE,     -- order of the primary's answers; set on 2xx
    status          integer,           -- the primary's status
    location        text NOT NULL DEFAULT '',
    primary_id      text NOT NULL DEFAULT '',
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text NOT NULL DEFAULT '',
    next_attempt_at timestamptz,
    -- In state sent: how long the facade may still record the outcome.
    -- In state pending: the repair worker's claim.
    lease_owner     text,
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE SEQUENCE strangler_repair_seq AS bigint;
-- The head of a resource: its lowest seq among pending and dead items.
CREATE INDEX strangler_repairs_head ON strangler_repairs (resource, seq)
    WHERE state IN ('pending', 'dead');
CREATE INDEX strangler_repairs_due ON strangler_repairs (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX strangler_repairs_sent ON strangler_repairs (lease_until)
    WHERE state = 'sent';
CREATE INDEX strangler_repairs_state ON strangler_repairs (state, updated_at);
CREATE INDEX strangler_repairs_created ON strangler_repairs (created_at, id);

-- Route flag overrides: each wins over the config file until cleared.
CREATE TABLE strangler_overrides (
    route      text PRIMARY KEY,
    mode       text NOT NULL,
    percent    double precision,
    version    bigint NOT NULL CHECK (version > 0),
    actor      text NOT NULL,
    reason     text NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE strangler_audit (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL,
    actor        text NOT NULL,
    action       text NOT NULL,
    route        text NOT NULL,
    from_mode    text NOT NULL,
    to_mode      text NOT NULL,
    from_percent double precision,
    to_percent   double precision,
    reason       text NOT NULL,
    forced       boolean NOT NULL,
    detail       text NOT NULL
);
CREATE INDEX strangler_audit_at ON strangler_audit (at, id);
CREATE INDEX strangler_audit_route ON strangler_audit (route, at, id);

-- Per route and UTC hour: what the retirement report adds up.
CREATE TABLE strangler_route_hours (
    route             text NOT NULL,
    hour              timestamptz NOT NULL,
    requests          bigint NOT NULL,
    modern            bigint NOT NULL,
    fallbacks         bigint NOT NULL,
    shadow_matches    bigint NOT NULL,
    shadow_mismatches bigint NOT NULL,
    last_fallback_at  timestamptz,
    PRIMARY KEY (route, hour)
);
CREATE INDEX strangler_route_hours_hour ON strangler_route_hours (hour);

-- Per route, UTC hour and client app version: requests that reached legacy.
CREATE TABLE strangler_legacy_clients (
    route    text NOT NULL,
    hour     timestamptz NOT NULL,
    client   text NOT NULL,
    requests bigint NOT NULL,
    PRIMARY KEY (route, hour, client)
);
CREATE INDEX strangler_legacy_clients_hour ON strangler_legacy_clients (hour);

CREATE TABLE strangler_samples (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    route  text NOT NULL,
    at     timestamptz NOT NULL,
    sample jsonb NOT NULL
);
CREATE INDEX strangler_samples_route ON strangler_samples (route, at, id);
CREATE INDEX strangler_samples_at ON strangler_samples (at, id);

-- Response fields learned to differ on every call (timestamps, ids).
CREATE TABLE strangler_noise (
    route    text NOT NULL,
    path     text NOT NULL,
    added_at timestamptz NOT NULL,
    PRIMARY KEY (route, path)
);

-- Entities a fallback found missing in modern, waiting for the backfill.
CREATE TABLE strangler_repair_keys (
    entity   text NOT NULL,
    key      text NOT NULL,
    added_at timestamptz NOT NULL,
    PRIMARY KEY (entity, key)
);
CREATE INDEX strangler_repair_keys_added ON strangler_repair_keys (entity, added_at, key);
