package backfill_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
	"strangler/internal/testkit"
)

func TestExplicitKeysCopyThoseRowsAndTheirDependants(t *testing.T) {
	w := newWorld(t, fixture.Sizes{Patients: 300, MRNs: true, PhotoEvery: 17}, nil)
	rep, err := backfill.Run(context.Background(), w.cfg, backfill.Options{
		Keys: map[string][]string{"patients": {"17", "21", "99999"}}, Log: discard(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.count(t, "SELECT count(*) FROM patients"); got != 2 {
		t.Errorf("modern has %d patients, want only 17 and 21", got)
	}
	// 17 has one MRN and a photo; 21 two MRNs.
	if got := w.count(t, "SELECT count(*) FROM hospital_patients h JOIN patients p ON p.id = h.patient_id WHERE p.legacy_id IN (17, 21)"); got != 3 {
		t.Errorf("got %d MRNs of patients 17 and 21, want 3", got)
	}
	if got := w.count(t, "SELECT count(*) FROM photos WHERE legacy_id = 17"); got != 1 {
		t.Errorf("got %d photos of patient 17, want 1", got)
	}
	if p := rep.Tables[0]; p.Table != "patients" || p.NotInSource != 1 || p.Inserted != 2 {
		t.Errorf("patients: %+v; want 2 inserted and 1 key not in the source", p)
	}
	if got := w.count(t, "SELECT count(*) FROM strangler_backfill_checkpoints"); got != 0 {
		t.Errorf("copying keys left %d checkpoints, want none", got)
	}
}

// repairKeys is the facade's read-repair queue as backfill sees it.
type repairKeys struct {
	mu      sync.Mutex
	pending map[string][]string
	done    map[string][]string
}

func (r *repairKeys) Pending(_ context.Context, table string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pending[table]), nil
}

func (r *repairKeys) Done(_ context.Context, table string, keys []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done[table] = append(r.done[table], keys...)
	r.pending[table] = slices.DeleteFunc(r.pending[table], func(k string) bool { return slices.Contains(keys, k) })
	return nil
}

func TestReadRepairKeysAreCopiedFirst(t *testing.T) {
	w := newWorld(t, fixture.Sizes{Patients: 200, MRNs: true}, nil)
	w.exec(t, "SET SESSION sql_mode = ''")
	w.exec(t, "UPDATE Patient SET DateOfBirth = '0000-00-00' WHERE PatientSerNum = 76")
	repairs := &repairKeys{pending: map[string][]string{"patients": {"75", "76", "4242"}}, done: map[string][]string{}}
	// A rate so low that the bulk copy cannot get far within the test.
	w.cfg.Rate = 20
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := backfill.Run(ctx, w.cfg, backfill.Options{Repairs: repairs, Log: discard()})
		done <- err
	}()
	waitFor(t, func() bool {
		repairs.mu.Lock()
		defer repairs.mu.Unlock()
		return len(repairs.done["patients"]) > 0
	})
	cancel()
	<-done
	if got := repairs.done["patients"]; !slices.Equal(got, []string{"75", "76", "4242"}) {
		t.Errorf("keys reported done: %v; want 75 (copied), 76 (failed: now in the ledger) and 4242 (not in legacy)", got)
	}
	if got := w.count(t, "SELECT count(*) FROM strangler_backfill_failures WHERE table_name = 'patients' AND source_key = '76'"); got != 1 {
		t.Errorf("the failed key 76 is not in the ledger")
	}
	if got := w.count(t, "SELECT count(*) FROM patients WHERE legacy_id = 75"); got != 1 {
		t.Errorf("patient 75 is not in modern")
	}
	if got := w.count(t, "SELECT count(*) FROM hospital_patients h JOIN patients p ON p.id = h.patient_id WHERE p.legacy_id = 75"); got != 1 {
		t.Errorf("patient 75's MRN is not in modern")
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	w := newWorld(t, fixture.Sizes{Patients: 500, MRNs: true}, nil)
	rep, err := backfill.Run(context.Background(), w.cfg, backfill.Options{DryRun: true, Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.Tables[0]; p.Inserted != 500 || !rep.DryRun {
		t.Errorf("dry run reports %d inserts, want the 500 a run would do", p.Inserted)
	}
	if got := w.count(t, "SELECT count(*) FROM patients"); got != 0 {
		t.Errorf("a dry run left %d patients in modern", got)
	}
	if got := w.count(t, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'strangler_backfill%'"); got != 0 {
		t.Errorf("a dry run created %d ledger tables", got)
	}
}

func TestParallelKeyRangesCopyEveryRowOnce(t *testing.T) {
	w := newWorld(t, fixture.Sizes{Patients: 5000}, map[string]string{"BACKFILL_CONCURRENCY": "4", "BACKFILL_BATCH": "300"})
	w.exec(t, "ANALYZE TABLE Patient") // the row estimate decides on splitting
	rep, err := backfill.Run(context.Background(), w.cfg, backfill.Options{Tables: []string{"patients"}, Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.Tables[0]; p.Read != 5000 || p.Inserted != 5000 {
		t.Errorf("read %d, inserted %d; want 5000 each", p.Read, p.Inserted)
	}
	if got := w.count(t, "SELECT count(DISTINCT legacy_id) FROM patients"); got != 5000 {
		t.Errorf("modern has %d distinct patients, want 5000", got)
	}
	if got := w.count(t, "SELECT count(*) FROM strangler_backfill_checkpoints WHERE table_name = 'patients'"); got != 4 {
		t.Errorf("got %d key ranges, want 4", got)
	}
}

func TestMisconfiguredTablesFailBeforeAnyWork(t *testing.T) {
	w := newWorld(t, fixture.Sizes{Patients: 10}, nil)
	for _, tc := range []struct {
		name   string
		break_ func()
		want   string
	}{{
		"a source column that does not exist",
		func() {
			c := w.cfg.Tables[0].Columns["last_name"]
			c.From = "Surname"
			w.cfg.Tables[0].Columns["last_name"] = c
		},
		"testdata/reference.yaml:15:13: backfill.tables[0].from: reading the source: Error 1054 (42S22): Unknown column 'src.Surname'",
	}, {
		"a target column that does not exist",
		func() { w.cfg.Tables[0].Columns["surname"] = w.cfg.Tables[0].Columns["last_name"] },
		"testdata/reference.yaml:20:9: backfill.tables[0].columns.surname: no column \"surname\" in target table patients",
	}, {
		"a NOT NULL target column left out",
		func() { delete(w.cfg.Tables[0].Columns, "last_name") },
		"testdata/reference.yaml:20:9: backfill.tables[0].columns: target column \"last_name\" is NOT NULL and has no default",
	}, {
		"a lookup through a column that does not exist",
		func() { w.cfg.Tables[1].Columns["patient_id"].Lookup.Key = "legacy" },
		"testdata/reference.yaml:33:76: backfill.tables[1].columns.patient_id.lookup.key: table patients has no column \"legacy\"",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			w.cfg = w.config(t, nil)
			tc.break_()
			_, err := backfill.Run(context.Background(), w.cfg, backfill.Options{Log: discard()})
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error starting %q", err, tc.want)
			}
			if got := w.count(t, "SELECT count(*) FROM patients"); got != 0 {
				t.Errorf("%d rows were copied", got)
			}
		})
	}
}

func TestOneBackfillAtATime(t *testing.T) {
	w := newWorld(t, fixture.Sizes{Patients: 300}, map[string]string{"BACKFILL_BATCH": "10"})
	w.cfg.Rate = 50
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan error, 1)
	go func() {
		_, err := backfill.Run(ctx, w.cfg, backfill.Options{Log: discard()})
		first <- err
	}()
	waitFor(t, func() bool {
		return w.count(t, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'strangler_backfill_runs'") == 1 &&
			w.count(t, "SELECT count(*) FROM strangler_backfill_runs WHERE status = 'running'") == 1
	})
	_, err := backfill.Run(context.Background(), w.cfg, backfill.Options{Log: discard()})
	if err == nil || !strings.Contains(err.Error(), "another backfill is running") {
		t.Errorf("a second backfill on the same ledger: got %v, want a refusal", err)
	}
	cancel()
	<-first
	if got := w.count(t, "SELECT count(*) FROM strangler_backfill_runs WHERE status = 'interrupted'"); got != 1 {
		t.Errorf("the stopped run is not marked interrupted")
	}
}

// TestAReadRepairKeyTheSourceKeyCannotHoldIsNotInTheSource: a read-repair
// key is whatever a client put in a path. One with a character a latin1
// key column lacks made MariaDB refuse the query for the whole page of
// keys ("Illegal mix of collations"): the table stopped with none of
// them copied, they stayed queued, and every later run stopped it again.
// Such a key is counted as not in the source, and the others are copied.
func TestAReadRepairKeyTheSourceKeyCannotHoldIsNotInTheSource(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Person (Code VARCHAR(40) CHARACTER SET latin1 PRIMARY KEY, Name VARCHAR(40))",
		"CREATE TABLE persons (code text UNIQUE, name text)",
		config.BackfillTable{Name: "persons", From: "Person", Key: "Code", To: "persons", TargetKey: "code", Columns: cols("Code=code", "Name=name")})
	w.exec(t, "INSERT INTO Person VALUES ('Zoë', 'a'), ('b', 'b'), ('c', 'c')")
	queued := []string{"Zoë", "Zoë 😀 Quimbyfrost", "b", "Ωmega"}
	repairs := &repairKeys{pending: map[string][]string{"persons": slices.Clone(queued)}, done: map[string][]string{}}
	tr := w.run(t, backfill.Options{Repairs: repairs}).Tables[0]
	if got := repairs.done["persons"]; !slices.Equal(got, queued) {
		t.Errorf("keys done: %q; want all of %q", got, queued)
	}
	if tr.NotInSource != 2 || tr.Written() != 3 {
		t.Errorf("%d keys not in the source, %d rows written; want 2 and 3", tr.NotInSource, tr.Written())
	}
}

// TestAModernKeyTheSourceKeyCannotHoldIsAnExtraRow: a plain re-run looks
// up modern's keys in the source to find the rows legacy no longer has.
// One with a character a latin1 key column lacks stopped the table
// ("Illegal mix of collations"); it is a row legacy does not have.
func TestAModernKeyTheSourceKeyCannotHoldIsAnExtraRow(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE Person (Code VARCHAR(40) CHARACTER SET latin1 PRIMARY KEY, Name VARCHAR(40))",
		"CREATE TABLE persons (code text UNIQUE, name text)",
		config.BackfillTable{Name: "persons", From: "Person", Key: "Code", To: "persons", TargetKey: "code", Columns: cols("Code=code", "Name=name")})
	w.exec(t, "INSERT INTO Person VALUES ('Zoë', 'a'), ('b', 'b')")
	w.run(t, backfill.Options{})
	w.pg(t, "INSERT INTO persons VALUES ('Ωmega', 'x')")
	if tr := w.run(t, backfill.Options{}).Tables[0]; tr.Extra != 1 {
		t.Errorf("a plain re-run counts %d extra rows; want 1", tr.Extra)
	}
}

// TestACopyOfKeysResumesAndCountsEachRowOnce: a connection that breaks
// while --keys copies a patient's dependants, or while --only-failed
// retries, resumes the copy as a range's does, and the report counts each
// row once: those copied before the break are not copied or counted
// again, nor the keys the source lacks. Neither was resumed: the source
// restarting stopped the table ("unexpected EOF").
func TestACopyOfKeysResumesAndCountsEachRowOnce(t *testing.T) {
	for _, c := range []struct {
		name, side, marker string
		onlyFailed         bool
	}{
		// Only the copy of patients' MRNs reads them by patient.
		{"--keys, the source as it reads the dependants", "source", "`patient_hospital_identifier` as src where src.`patientsernum` in (", false},
		{"--only-failed, the target as it lists the failed rows", "target", "select source_key from strangler_backfill_failures", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, fixture.Sizes{Patients: 300, MRNs: true, PhotoEvery: 17}, nil)
			opts := backfill.Options{Keys: map[string][]string{"patients": {"17", "21", "99999"}}}
			if c.onlyFailed {
				// Every patient fails (a trigger refuses them), then is
				// retried with the trigger gone.
				w.cfg.Tables = w.cfg.Tables[:1]
				w.pg(t, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$`)
				w.pg(t, "CREATE TRIGGER refuse BEFORE INSERT ON patients FOR EACH ROW EXECUTE FUNCTION refuse()")
				w.run(t, backfill.Options{})
				w.pg(t, "DROP TRIGGER refuse ON patients")
				w.exec(t, "DELETE FROM Patient WHERE PatientSerNum = 7")
				opts = backfill.Options{OnlyFailed: true}
			}
			proxy := proxied(t, w.side(c.side))
			proxy.CutOn(c.marker)
			var logs testkit.Logs
			opts.Log = logs.Logger(slog.LevelInfo)
			rep, err := backfill.Run(context.Background(), w.cfg, opts)
			if proxy.CutsOn() != 1 {
				t.Fatalf("the %s never saw %q", c.side, c.marker)
			}
			if err != nil {
				t.Fatalf("the run: %v, want it to resume", err)
			}
			if n := len(logs.Lines(t, "backfill connection lost; resuming from the checkpoint")); n != 1 {
				t.Errorf("%d resumptions logged, want 1", n)
			}
			p := rep.Tables[0]
			if c.onlyFailed {
				if p.Inserted != 299 || p.Present != 0 || p.Failed != 0 || p.NotInSource != 1 {
					t.Errorf("patients: %d inserted, %d present, %d failed, %d not in the source; want 299, 0, 0, 1", p.Inserted, p.Present, p.Failed, p.NotInSource)
				}
				return
			}
			if p.Inserted != 2 || p.Present != 0 || p.NotInSource != 1 {
				t.Errorf("patients: %d inserted, %d present, %d not in the source; want 2, 0, 1", p.Inserted, p.Present, p.NotInSource)
			}
			if m := rep.Tables[1]; m.Inserted+m.Present != 3 {
				t.Errorf("MRNs: %d inserted, %d present; want the 3 of patients 17 and 21 counted once", m.Inserted, m.Present)
			}
			if got := w.count(t, "SELECT count(*) FROM hospital_patients h JOIN patients p ON p.id = h.patient_id WHERE p.legacy_id IN (17, 21)"); got != 3 {
				t.Errorf("got %d MRNs of patients 17 and 21, want 3", got)
			}
		})
	}
}
