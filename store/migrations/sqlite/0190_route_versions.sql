-- A route's version (the ETag of GET /admin/routes/{name}, which a change
-- must send as If-Match) is its epoch here less one: every change of its
-- override moves the epoch, a clear too, and nothing moves it back, so a
-- version names one state of the route over its life in the store
-- (store.Store.moveVersion). A route without a row is at epoch 1,
-- version 0. On PostgreSQL the epoch is also the route's fence, which
-- dual writes are journaled under (migration 0180); an SQLite store
-- serves one process and fences nothing. Releases before this one
-- counted the override's own version, which started again at 1 after a
-- clear. Every version they handed out is at most the number of the
-- route's audit entries (each change appends one), so each epoch starts
-- one past that: no ETag read before the upgrade names a state after
-- it. A ramp and a pending change request decided at the route's version
-- as it was are at its version as it is (each also names the mode and
-- share it was decided on), and so is the override's own version, which
-- releases since 0180 still read and check during a rolling upgrade.
-- Keep in step with ../postgres/0190_route_versions.sql.
CREATE TABLE strangler_route_fences (
    route TEXT PRIMARY KEY,
    epoch INTEGER NOT NULL CHECK (epoch > 0)
) STRICT;

INSERT INTO strangler_route_fences (route, epoch)
SELECT route, max(n) FROM (
    SELECT route, count(*) + 1 AS n FROM strangler_audit GROUP BY route
    UNION ALL
    SELECT route, version + 1 FROM strangler_overrides
) GROUP BY route;

UPDATE strangler_ramps SET at_version = (SELECT epoch - 1 FROM strangler_route_fences f WHERE f.route = strangler_ramps.route)
WHERE route IN (SELECT route FROM strangler_route_fences)
  AND at_version = coalesce((SELECT version FROM strangler_overrides o WHERE o.route = strangler_ramps.route), 0);

UPDATE strangler_changes SET base_version = (SELECT epoch - 1 FROM strangler_route_fences f WHERE f.route = strangler_changes.route)
WHERE state = 'pending' AND route IN (SELECT route FROM strangler_route_fences)
  AND base_version = coalesce((SELECT version FROM strangler_overrides o WHERE o.route = strangler_changes.route), 0);

UPDATE strangler_overrides SET version = (SELECT epoch - 1 FROM strangler_route_fences f WHERE f.route = strangler_overrides.route)
WHERE route IN (SELECT route FROM strangler_route_fences);
