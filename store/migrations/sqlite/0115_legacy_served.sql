-- Legacy's own answers (keep in step with ../postgres/0115_legacy_served.sql).
-- The requests legacy answered itself, not as a fallback (legacy mode, a
-- percent below 100, shadow and dual-write with legacy primary, a guard's
-- rollback): while legacy serves any, retiring it would break someone.
-- NULL for the hours counted before this column: the store then reads
-- every request modern did not serve as legacy's, which can only hold the
-- verdict back, never make it retirable.
ALTER TABLE strangler_route_hours ADD COLUMN legacy INTEGER;
