-- The guard reads the latest change of a route's flags (LastFlagChange),
-- whatever came after it on the route: refused flips, repair reads. Only
-- the entries that change flags are indexed, so the look is one step
-- however many others follow. The WHERE is the query's, word for word:
-- SQLite uses a partial index only for the same terms. Keep in step with
-- ../postgres/0220_audit_route_changes.sql and store.flagChangeActions.
CREATE INDEX strangler_audit_route_changes ON strangler_audit (route, id)
	WHERE action IN ('flip', 'ramp', 'clear', 'rollback');
