-- A route's fence moves with every change of its override (SetOverride,
-- ClearOverride: in the change's transaction, before the change is
-- checked against the journal), and a dual write is journaled only under
-- the fence its replica read the route's flags at (BeginWrite and its
-- kin lock the row FOR SHARE as they journal). So a replica that has not
-- followed a change another replica made yet cannot journal a write under
-- the flags it replaced, and a change's check of the journal sees every
-- write journaled under them. An epoch is never 0: flags a replica did
-- not read from the store (the file's before the first read, a snapshot's)
-- have fence 0, and journal nothing until read. PostgreSQL only: an
-- SQLite store serves one process, whose changes hold its dual writes
-- back in memory (router.Router.HoldWrites).
CREATE TABLE strangler_route_fences (
    route text PRIMARY KEY,
    epoch bigint NOT NULL CHECK (epoch > 0)
);
-- Routes with an override get a fence here; the others when a replica
-- first reads the flags (RouteFlags).
INSERT INTO strangler_route_fences (route, epoch) SELECT route, 1 FROM strangler_overrides;
