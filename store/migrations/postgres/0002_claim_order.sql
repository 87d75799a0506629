-- Claims walk pending writes in sequence order and stop at their limit:
-- without this index every claim checked and sorted the whole backlog.
CREATE INDEX strangler_repairs_pending_seq ON strangler_repairs (seq)
    WHERE state = 'pending';
