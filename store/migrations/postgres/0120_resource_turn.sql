-- A sent write may hold its resource's turn with the primary (TakeTurn):
-- at most one sent write per resource does, across every replica sharing
-- the store. Leaving sent (its outcome recorded, skipped, marked unknown)
-- takes it out of the index, which ends the turn. Keep in step with
-- ../sqlite/0120_resource_turn.sql.
ALTER TABLE strangler_repairs ADD COLUMN turn boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX strangler_repairs_turn ON strangler_repairs (resource)
    WHERE turn AND state = 'sent';
