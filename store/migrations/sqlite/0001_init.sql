-- The facade's durable state in an embedded SQLite file. Keep in step with
-- ../postgres/0001_init.sql: the same tables, columns and meanings. Times
-- are TEXT in one fixed-width UTC layout (2006-01-02T15:04:05.000000Z), so
-- comparing them as text compares them as times. Tables are STRICT so a
-- value of the wrong type fails instead of being stored as something else.

CREATE TABLE strangler_repairs (
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
    seq             INTEGER UNIQUE,
    status          INTEGER,
    location        TEXT NOT NULL DEFAULT '',
    primary_id      TEXT NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    next_attempt_at TEXT,
    lease_owner     TEXT,
    lease_until     TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;
-- SQLite has no sequences: one counter row per sequence.
CREATE TABLE strangler_sequences (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
INSERT INTO strangler_sequences (name, value) VALUES ('strangler_repair_seq', 0);
CREATE INDEX strangler_repairs_head ON strangler_repairs (resource, seq)
    WHERE state IN ('pending', 'dead');
CREATE INDEX strangler_repairs_due ON strangler_repairs (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX strangler_repairs_sent ON strangler_repairs (lease_until)
    WHERE state = 'sent';
CREATE INDEX strangler_repairs_state ON strangler_repairs (state, updated_at);
CREATE INDEX strangler_repairs_created ON strangler_repairs (created_at, id);

CREATE TABLE strangler_overrides (
    route      TEXT PRIMARY KEY,
    mode       TEXT NOT NULL,
    percent    REAL,
    version    INTEGER NOT NULL CHECK (version > 0),
    actor      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE strangler_audit (
    id           INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    route        TEXT NOT NULL,
    from_mode    TEXT NOT NULL,
    to_mode      TEXT NOT NULL,
    from_percent REAL,
    to_percent   REAL,
    reason       TEXT NOT NULL,
    forced       INTEGER NOT NULL,
    detail       TEXT NOT NULL
) STRICT;
CREATE INDEX strangler_audit_at ON strangler_audit (at, id);
CREATE INDEX strangler_audit_route ON strangler_audit (route, at, id);

CREATE TABLE strangler_route_hours (
    route             TEXT NOT NULL,
    hour              TEXT NOT NULL,
    requests          INTEGER NOT NULL,
    modern            INTEGER NOT NULL,
    fallbacks         INTEGER NOT NULL,
    shadow_matches    INTEGER NOT NULL,
    shadow_mismatches INTEGER NOT NULL,
    last_fallback_at  TEXT,
    PRIMARY KEY (route, hour)
) STRICT;
CREATE INDEX strangler_route_hours_hour ON strangler_route_hours (hour);

CREATE TABLE strangler_legacy_clients (
    route    TEXT NOT NULL,
    hour     TEXT NOT NULL,
    client   TEXT NOT NULL,
    requests INTEGER NOT NULL,
    PRIMARY KEY (route, hour, client)
) STRICT;
CREATE INDEX strangler_legacy_clients_hour ON strangler_legacy_clients (hour);

CREATE TABLE strangler_samples (
    id     INTEGER PRIMARY KEY,
    route  TEXT NOT NULL,
    at     TEXT NOT NULL,
    sample TEXT NOT NULL
) STRICT;
CREATE INDEX strangler_samples_route ON strangler_samples (route, at, id);
CREATE INDEX strangler_samples_at ON strangler_samples (at, id);

CREATE TABLE strangler_noise (
    route    TEXT NOT NULL,
    path     TEXT NOT NULL,
    added_at TEXT NOT NULL,
    PRIMARY KEY (route, path)
) STRICT;

CREATE TABLE strangler_repair_keys (
    entity   TEXT NOT NULL,
    key      TEXT NOT NULL,
    added_at TEXT NOT NULL,
    PRIMARY KEY (entity, key)
) STRICT;
CREATE INDEX strangler_repair_keys_added ON strangler_repair_keys (entity, added_at, key);
