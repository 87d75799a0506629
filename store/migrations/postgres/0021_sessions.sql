-- The status page's logins, shared by every replica. Keep in step with
-- ../sqlite/0021_sessions.sql. The cookie's session id is stored only as
-- a SHA-256 hash, so a copy of the store opens no session.
CREATE TABLE strangler_sessions (
    id         text PRIMARY KEY,      -- SHA-256 of the cookie's session id, hex
    actor      text NOT NULL,         -- the admin token's name
    binding    text NOT NULL,         -- ties the session to that token's value
    created_at timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL   -- idle sessions expire from here
);
CREATE INDEX strangler_sessions_last_seen ON strangler_sessions (last_seen);
