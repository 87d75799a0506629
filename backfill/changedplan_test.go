package backfill_test

import (
	"context"
	"strings"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// A table's checkpoints say how far its copy went by the key it was copied
// by, into the table it was copied into, as its columns were mapped. A
// file that now names another key, source or target table made a run that
// went on from them skip every row below the old key's checkpoint, or
// write nothing into the new table, and one that maps another column
// leave the rows below it without it, each saying it was done.
func TestCheckpointsOfAnotherPlanAreNotResumed(t *testing.T) {
	for _, c := range []struct {
		name string
		// change changes the file; empty, when the target's rows were
		// written under another key, so the operator emptied it.
		change func(bt *config.BackfillTable)
		empty  bool
		into   string
	}{
		{"the key changed", func(bt *config.BackfillTable) {
			bt.Key = "id"
			bt.Columns = map[string]config.Column{"k": {From: "id"}, "name": {From: "name"}}
		}, true, "redteam21_p"},
		{"the source table changed", func(bt *config.BackfillTable) { bt.From = "redteam21_p_new" }, true, "redteam21_p"},
		{"the target table changed", func(bt *config.BackfillTable) { bt.To = "redteam21_p2" }, false, "redteam21_p2"},
		{"a column was mapped", func(bt *config.BackfillTable) {
			bt.Columns["born"] = config.Column{From: "born"}
		}, false, "redteam21_p"},
		{"a transform was added", func(bt *config.BackfillTable) {
			bt.Columns["name"] = config.Column{From: "name", Transform: []config.Transform{config.TransformTrim}}
		}, false, "redteam21_p"},
	} {
		for _, opts := range []backfill.Options{{SinceCheckpoint: true}, {Worker: true, Run: "redteam21", WorkerID: "w1"}} {
			name := c.name + ", then --since-checkpoint"
			if opts.Worker {
				name = c.name + ", then a worker"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				w := newWorld(t, fixture.Sizes{}, nil)
				// ext counts down as id counts up: the last ext copied is
				// the smallest, below every id.
				w.mapTable(t, `CREATE TABLE redteam21_p (id INT PRIMARY KEY, ext INT NOT NULL UNIQUE, name VARCHAR(20), born INT)`,
					`CREATE TABLE redteam21_p (k int PRIMARY KEY, name text, born int);
					CREATE TABLE redteam21_p2 (k int PRIMARY KEY, name text, born int)`,
					config.BackfillTable{Name: "people", From: "redteam21_p", Key: "ext", To: "redteam21_p", TargetKey: "k",
						Columns: map[string]config.Column{"k": {From: "ext"}, "name": {From: "name"}}})
				w.exec(t, `INSERT INTO redteam21_p VALUES (1, 1005, ' a', 1970), (2, 1004, ' b', 1971), (3, 1003, ' c', 1972), (4, 1002, ' d', 1973), (5, 1001, ' e', 1974)`)
				w.exec(t, `CREATE TABLE redteam21_p_new (id INT PRIMARY KEY, ext INT NOT NULL UNIQUE, name VARCHAR(20), born INT)`)
				w.exec(t, `INSERT INTO redteam21_p_new SELECT id, ext - 1000, name, born FROM redteam21_p`)
				w.cfg.Batch = 2
				w.run(t, backfill.Options{})
				if c.empty {
					w.pg(t, "TRUNCATE redteam21_p")
				}

				c.change(&w.cfg.Tables[0])
				w.run(t, opts)
				if n := w.count(t, "SELECT count(*) FROM "+c.into); n != 5 {
					t.Errorf("%s holds %d rows after the run, want the 5 the source has", c.into, n)
				}
				v := w.verify(t, backfill.VerifyOptions{}).Tables[0]
				if v.Missing != 0 || v.Changed != 0 || v.Extra != 0 {
					t.Errorf("verify finds %d rows missing, %d changed and %d extra; want none", v.Missing, v.Changed, v.Extra)
				}
			})
		}
	}
}

// A dry run is what an operator runs first after an upgrade: on the
// ledger of the release before, which lacks the ranges' plans, it said
// "column cut_for does not exist" (a SQL error the dry run met reading
// the checkpoints), where an older ledger is to ask for a run first.
func TestADryRunOnTheLedgerOfTheReleaseBeforeAsksForARunFirst(t *testing.T) {
	w := newWorld(t, fixture.Sizes{Patients: 30}, nil)
	w.cfg.Tables = w.cfg.Tables[:1]
	w.run(t, backfill.Options{})
	w.pg(t, `ALTER TABLE strangler_backfill_checkpoints DROP COLUMN cut_for, DROP COLUMN lease_no;
		DROP TABLE strangler_backfill_leases; DROP SEQUENCE strangler_backfill_lease_no;
		DELETE FROM strangler_backfill_migrations WHERE version >= 4`)

	_, err := backfill.Run(context.Background(), w.cfg, backfill.Options{DryRun: true, Log: discard()})
	if err == nil || !strings.Contains(err.Error(), "run once without --dry-run to upgrade it") {
		t.Errorf("a dry run on the ledger of the release before: got %v, want a refusal saying what to do", err)
	}
	if p := w.run(t, backfill.Options{}).Tables[0]; p.Compared != 30 || p.Written() != 0 {
		t.Errorf("the run after it compared %d and wrote %d, want 30 and none", p.Compared, p.Written())
	}
	if p := w.run(t, backfill.Options{DryRun: true}).Tables[0]; p.Written() != 0 {
		t.Errorf("a dry run after the upgrade would write %d rows, want none", p.Written())
	}
}
