-- A write whose exchange with the primary ended unanswered, left sent for
-- recovery to resend, keeps its resource's turn in the store until it
-- leaves sent (KeepTurn), and the process's later writes to the resource
-- ask for theirs (TakeTurn): at most one sent write per resource holds
-- it. Its column came with 0120; the index is
-- ../postgres/0120_resource_turn.sql's.
CREATE UNIQUE INDEX strangler_repairs_turn ON strangler_repairs (resource)
    WHERE turn AND state = 'sent';
