-- What the retirement verdict needs besides fallbacks (keep in step with
-- ../postgres/0115_retirement_evidence.sql).
-- legacy: the requests legacy answered itself, not as a fallback (legacy
-- mode, a percent below 100, shadow and dual-write with legacy primary, a
-- guard's rollback): while legacy serves any, retiring it would break
-- someone. NULL for the hours counted before this column: the store then
-- reads every request modern did not serve as legacy's, which can only
-- hold the verdict back, never make it retirable.
-- modern_failed: of modern's answers, those that were a 5xx or broke off:
-- no service to count towards retire_min_requests.
ALTER TABLE strangler_route_hours ADD COLUMN legacy INTEGER;
ALTER TABLE strangler_route_hours ADD COLUMN modern_failed INTEGER NOT NULL DEFAULT 0;
