package backfill_test

import (
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestCheckpointsOfAnotherKeyAreNotResumedWhenTheMappingStays: the file
// keys a table on another source column (id for ext) and maps every
// target column as before. The old checkpoints are positions in ext's
// order: taken as id's, --since-checkpoint and a worker went on after
// ext's last value, above every id, and copied none of the 5 rows into
// the target the operator emptied. Mutation round mut5: the source key
// left out of the plan's hash (cutFor) passed every test, the key's case
// in TestCheckpointsOfAnotherPlanAreNotResumed also remapping a column;
// this one fails on it.
func TestCheckpointsOfAnotherKeyAreNotResumedWhenTheMappingStays(t *testing.T) {
	for _, opts := range []backfill.Options{{SinceCheckpoint: true}, {Worker: true, Run: "mut5", WorkerID: "w1"}} {
		name := "--since-checkpoint"
		if opts.Worker {
			name = "a worker"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, fixture.Sizes{}, nil)
			w.mapTable(t, `CREATE TABLE mut5_p (id INT PRIMARY KEY, ext INT NOT NULL UNIQUE, name VARCHAR(20))`,
				`CREATE TABLE mut5_p (k int PRIMARY KEY, name text)`,
				config.BackfillTable{Name: "people", From: "mut5_p", Key: "ext", To: "mut5_p", TargetKey: "k",
					Columns: map[string]config.Column{"k": {From: "ext"}, "name": {From: "name"}}})
			w.exec(t, `INSERT INTO mut5_p VALUES (1, 1005, 'a'), (2, 1004, 'b'), (3, 1003, 'c'), (4, 1002, 'd'), (5, 1001, 'e')`)
			w.cfg.Batch = 2
			w.run(t, backfill.Options{})
			w.pg(t, "TRUNCATE mut5_p")

			w.cfg.Tables[0].Key = "id"
			w.run(t, opts)
			if n := w.count(t, "SELECT count(*) FROM mut5_p"); n != 5 {
				t.Errorf("mut5_p holds %d rows after the run keyed on id, want the 5 the source has", n)
			}
		})
	}
}
