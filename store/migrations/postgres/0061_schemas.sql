-- Learned response schemas (keep in step with ../sqlite/0061_schemas.sql).
-- Per route, request method and answer status: the JSON shape of
-- legacy's answers (field paths, types, how often each was present) and
-- modern's drift from it. Field names and types only: values are never
-- kept, except those of compare.keep_values paths.
CREATE TABLE strangler_schemas (
    route      text NOT NULL,
    method     text NOT NULL,
    status     integer NOT NULL,
    doc        jsonb NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (route, method, status)
);
