-- The status page's logins, shared by every replica. Keep in step with
-- ../postgres/0021_sessions.sql. The cookie's session id is stored only
-- as a SHA-256 hash, so a copy of the store opens no session.
CREATE TABLE strangler_sessions (
    id         TEXT PRIMARY KEY,  -- SHA-256 of the cookie's session id, hex
    actor      TEXT NOT NULL,     -- the admin token's name
    binding    TEXT NOT NULL,     -- ties the session to that token's value
    created_at TEXT NOT NULL,
    last_seen  TEXT NOT NULL      -- idle sessions expire from here
) STRICT;
CREATE INDEX strangler_sessions_last_seen ON strangler_sessions (last_seen);
