-- Keep in step with ../postgres/0120_resource_turn.sql. One process uses
-- an SQLite store and its turns are the router's, so no write takes a
-- turn here (TakeTurn) and the column stays 0: it is here so that the
-- journal's statements are the same on both.
ALTER TABLE strangler_repairs ADD COLUMN turn INTEGER NOT NULL DEFAULT 0;
