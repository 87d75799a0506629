-- The audit log is listed in chain order (id), newest first, also per
-- route (AuditLog): an entry's time is taken before it waits its turn at
-- the chain's head, so times need not rise with ids. The index by route
-- and time served the listing by time; this one serves it by id. Keep in
-- step with ../sqlite/0110_audit_route_chain_order.sql.
DROP INDEX strangler_audit_route;
CREATE INDEX strangler_audit_route_id ON strangler_audit (route, id);
