package backfill_test

import (
	"context"
	"strings"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
)

// oldLedger is the ledger as versions that kept keys as text wrote it,
// one run in, stopped after patient 100, with patient 7 failed.
const oldLedger = `
CREATE TABLE strangler_backfill_runs (id bigserial PRIMARY KEY, started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz, status text NOT NULL, mode text NOT NULL, tables text[] NOT NULL, report jsonb, error text);
CREATE TABLE strangler_backfill_checkpoints (table_name text NOT NULL, range_no integer NOT NULL, range_end text,
  last_key text, done boolean NOT NULL DEFAULT false, rows_done bigint NOT NULL DEFAULT 0, run_id bigint,
  updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (table_name, range_no));
CREATE TABLE strangler_backfill_failures (table_name text NOT NULL, source_key text NOT NULL, reason text NOT NULL,
  payload jsonb NOT NULL, attempts integer NOT NULL DEFAULT 1, first_failed_at timestamptz NOT NULL DEFAULT now(),
  last_failed_at timestamptz NOT NULL DEFAULT now(), run_id bigint, PRIMARY KEY (table_name, source_key));
INSERT INTO strangler_backfill_runs (status, mode, tables) VALUES ('interrupted', 'full', '{patients}');
INSERT INTO strangler_backfill_checkpoints (table_name, range_no, last_key, rows_done, run_id) VALUES ('patients', 0, '100', 99, 1);
INSERT INTO strangler_backfill_failures (table_name, source_key, reason, payload, run_id) VALUES ('patients', '7', 'was bad', '{}', 1);`

func TestAnOlderLedgerIsUpgradedInPlace(t *testing.T) {
	w := newWorld(t, fixture.Sizes{Patients: 300}, nil)
	w.cfg.Tables = w.cfg.Tables[:1]
	w.pg(t, oldLedger)
	w.pg(t, "INSERT INTO patients (legacy_id, first_name, last_name) SELECT g, 'F', 'L' FROM generate_series(1, 100) g WHERE g <> 7")

	_, err := backfill.Run(context.Background(), w.cfg, backfill.Options{DryRun: true, Log: discard()})
	if err == nil || !strings.Contains(err.Error(), "run once without --dry-run to upgrade it") {
		t.Errorf("a dry run on the older ledger: got %v, want a refusal saying what to do", err)
	}
	p := w.run(t, backfill.Options{}).Tables[0]
	// The rest after the checkpoint, patient 7 retried, and the 99 before
	// the checkpoint compared (and, being made up here, rewritten).
	if p.Inserted != 201 || p.Compared != 300 || p.Failed != 0 {
		t.Errorf("inserted %d, compared %d, failed %d; want 201 (101 to 300, and 7), 300, 0", p.Inserted, p.Compared, p.Failed)
	}
	if n := w.count(t, "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND data_type = 'bytea' AND column_name IN ('source_key', 'range_end', 'last_key') AND table_name IN ('strangler_backfill_failures', 'strangler_backfill_checkpoints')"); n != 3 {
		t.Errorf("%d of the 3 key columns are bytea, want all", n)
	}
	if n := w.count(t, "SELECT count(*) FROM strangler_backfill_migrations WHERE version IN (1, 2)"); n != 2 {
		t.Errorf("%d of the ledger's 2 migrations are recorded, want both", n)
	}
	if n := w.count(t, "SELECT count(*) FROM strangler_backfill_failures"); n != 0 {
		t.Errorf("the ledger holds %d failures, want patient 7's cleared", n)
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify: %+v", d.Tables)
	}
}
