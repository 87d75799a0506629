-- A journaled write's sequence number is no longer a UNIQUE column (keep
-- in step with ../sqlite/0085_journal_seq.sql). The numbers come from one
-- sequence taken under the resource's lock, so the constraint never
-- refused anything, and its index took an entry for each of a dual
-- write's three row versions. The queue finds writes by their numbers
-- through strangler_repairs_pending_seq and strangler_repairs_head, which
-- hold only the writes still to be delivered.
ALTER TABLE strangler_repairs DROP CONSTRAINT strangler_repairs_seq_key;
