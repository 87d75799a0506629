-- Ledgers written before keys were kept as bytes hold them as text:
-- MySQL sent them as UTF-8 text, so convert_to gives back those bytes.
DO $$
BEGIN
  IF (SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema()
      AND table_name = 'strangler_backfill_failures' AND column_name = 'source_key') = 'text' THEN
    ALTER TABLE strangler_backfill_failures ALTER COLUMN source_key TYPE bytea USING convert_to(source_key, 'UTF8');
    ALTER TABLE strangler_backfill_checkpoints ALTER COLUMN range_end TYPE bytea USING convert_to(range_end, 'UTF8'),
      ALTER COLUMN last_key TYPE bytea USING convert_to(last_key, 'UTF8');
  END IF;
END
$$;
