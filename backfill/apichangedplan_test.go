package backfill_test

import (
	"context"
	"strconv"
	"testing"

	"strangler/backfill"
	"strangler/config"
	"strangler/internal/testdb"
	"strangler/modern"
	"strangler/store"
)

// An API table's checkpoint, and a shared run's groups, say how far its
// rows were sent by the key they were read by, from the source they were
// read from, as requests the file then made of them. A file that now
// names another key, source, path, mapping or group_by made --since-checkpoint,
// and a worker joining the run again, go on from them: every row below
// the old checkpoint, or in a group done, left as the old requests sent
// it, and the run exited 0.
func TestAPICheckpointsOfAnotherPlanAreNotResumed(t *testing.T) {
	const rows = 20
	for _, c := range []struct {
		name   string
		change func(tc *config.BackfillTable)
		// sent checks the service (or, after a key change, the ledger)
		// holds every row as the new file sends it.
		sent func(t *testing.T, w *apiWorld, st *store.Store)
	}{
		{"the key changed", func(tc *config.BackfillTable) { tc.Key = "Ext" }, func(t *testing.T, w *apiWorld, st *store.Store) {
			keys := make([]string, rows)
			for k := range keys {
				keys[k] = strconv.Itoa(k + 1 - 1000)
			}
			sent, err := st.APIBackfillSentRows(context.Background(), "patients", keys)
			if err != nil {
				t.Fatal(err)
			}
			if len(sent) != rows {
				t.Errorf("the ledger has %d of the %d rows under their new keys", len(sent), rows)
			}
		}},
		{"the source table changed", func(tc *config.BackfillTable) { tc.From = "planhash2_patient" },
			countPatients("last_name = 'Byron'")},
		{"the path changed", func(tc *config.BackfillTable) { tc.TargetAPI.Path = "/imports/patients/{Alt}" },
			countPatients("legacy_id > 1000")},
		{"a field was mapped from another column", func(tc *config.BackfillTable) {
			tc.TargetAPI.Body["last_name"] = config.Column{From: "FirstName", Transform: []config.Transform{config.TransformTrim}}
		}, countPatients("last_name = first_name")},
		{"group_by changed", func(tc *config.BackfillTable) { tc.TargetAPI.GroupBy = "" }, func(t *testing.T, w *apiWorld, _ *store.Store) {
			// Each request is as it was: found sent, none sent twice.
			w.appliedOnce(t, "", accepted(rows))
		}},
		{"a transform was added", func(tc *config.BackfillTable) {
			tc.TargetAPI.Body["last_name"] = config.Column{From: "LastName", Transform: []config.Transform{config.TransformUpper}}
		}, countPatients("last_name = 'LOVELACE'")},
	} {
		for _, mode := range []string{"sqlite, then --since-checkpoint", "postgres, then --since-checkpoint", "postgres, then a worker"} {
			t.Run(c.name+" ("+mode+")", func(t *testing.T) {
				t.Parallel()
				w := newAPIWorld(t, rows, 3, modern.Faults{})
				for _, q := range []string{
					"ALTER TABLE Patient ADD COLUMN Ext INT, ADD COLUMN Alt INT",
					"UPDATE Patient SET Ext = PatientSerNum - 1000, Alt = PatientSerNum + 1000",
					"ALTER TABLE Patient MODIFY Ext INT NOT NULL UNIQUE",
					"CREATE TABLE planhash2_patient AS SELECT * FROM Patient",
					"ALTER TABLE planhash2_patient ADD PRIMARY KEY (PatientSerNum)",
					"UPDATE planhash2_patient SET LastName = 'Byron'",
				} {
					if _, err := w.legacy.Exec(q); err != nil {
						t.Fatal(err)
					}
				}
				st := w.store
				if mode != "sqlite, then --since-checkpoint" {
					st = openStore(t, testdb.Postgres(t))
				}
				cfg := w.config(t)
				cfg.Batch = 5
				cfg.Before, cfg.After, cfg.WaitUntil = nil, nil, nil
				first, then := backfill.Options{}, backfill.Options{SinceCheckpoint: true}
				if mode == "postgres, then a worker" {
					first = backfill.Options{Worker: true, Run: "planhash2", WorkerID: "w1"}
					then = backfill.Options{Worker: true, Run: "planhash2", WorkerID: "w2"}
				}
				run := func(opts backfill.Options) *backfill.Report {
					opts.APILedger, opts.Hasher, opts.Log = st, st.Hasher(), discard()
					rep, err := backfill.Run(context.Background(), cfg, opts)
					if err != nil {
						t.Fatalf("backfill: %v", err)
					}
					return rep
				}
				run(first)
				c.change(&cfg.Tables[0])
				rep := run(then)
				if tr := rep.Tables[0]; tr.Read != rows {
					t.Errorf("the run under the new file read %d rows, want the %d the source has", tr.Read, rows)
				}
				c.sent(t, w, st)
				// Now recorded for the new file, they are gone on from.
				if tr := run(then).Tables[0]; tr.Read != 0 || tr.Written() != 0 {
					t.Errorf("a run again under the new file read %d rows and sent %d, want none", tr.Read, tr.Written())
				}
			})
		}
	}
}

// countPatients checks that the service holds every accepted row as one
// patient matching cond.
func countPatients(cond string) func(t *testing.T, w *apiWorld, st *store.Store) {
	return func(t *testing.T, w *apiWorld, _ *store.Store) {
		t.Helper()
		var n int64
		if err := w.pool.QueryRow(context.Background(), "SELECT count(*) FROM patients WHERE "+cond).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if want := accepted(20); n != want {
			t.Errorf("the service has %d patients with %s, want %d", n, cond, want)
		}
	}
}
