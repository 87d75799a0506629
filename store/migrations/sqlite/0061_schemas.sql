-- Learned response schemas (keep in step with ../postgres/0061_schemas.sql).
-- Per route, request method and answer status: the JSON shape of
-- legacy's answers (field paths, types, how often each was present) and
-- modern's drift from it. Field names and types only: values are never
-- kept, except those of compare.keep_values paths.
CREATE TABLE strangler_schemas (
    route      TEXT NOT NULL,
    method     TEXT NOT NULL,
    status     INTEGER NOT NULL,
    doc        TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (route, method, status)
) STRICT;
