-- What a table's ranges were cut for (table.cutFor: its source, key,
-- target and mapping): checkpoints of another say nothing of this one's
-- rows, and a run finding them cuts the table afresh. NULL in
-- ranges recorded before this column, which are taken as they are.
ALTER TABLE strangler_backfill_checkpoints ADD COLUMN IF NOT EXISTS cut_for text;
