-- Honest fallback counts (keep in step with ../sqlite/0060_confirmed_missing.sql).
-- A not_found fallback that legacy answered 404 or 410 too is a resource
-- that exists nowhere, not a migration gap: counted apart from fallbacks,
-- it holds back neither the gates nor the retirement verdict.
ALTER TABLE strangler_route_hours ADD COLUMN confirmed_missing bigint NOT NULL DEFAULT 0;
