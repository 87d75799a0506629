package backfill_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// TestARunWhoseDatabaseIsGoneStopsOnce: a target PostgreSQL that goes
// away for good while a run copies has every table's rows, checkpoints
// and ledger out of reach, and a source MariaDB gone has every table's
// rows. The range that finds it gone resumes for its half minute; then
// the run stops, every table not done with it, saying which database is
// gone. It stopped each table alone: each queued after it waited out
// half a minute of futile resumptions of its own (here four more: 2 min
// 36 s and 25 resumptions to learn what the first 31 s told; a run of a
// hundred tables took most of an hour). A worker of a shared run went on
// to lease its next range, and resumed that too (1 min 2 s, 10); one cut
// off between two ranges stopped with "ledger: lease a key range: failed
// to connect", naming no database gone.
func TestARunWhoseDatabaseIsGoneStopsOnce(t *testing.T) {
	for _, c := range []struct {
		name, side string
		worker     bool
		// waiting: the worker has copied every range but one another
		// worker holds, and waits for it, when the target goes.
		waiting bool
		// quick shortens the resumption policy (QuickResumption); the
		// real policy's half minute is TestTheResumptionPolicyWaitsHalfAMinute's.
		quick bool
		// lease, when set, is the worker's lease.
		lease time.Duration
		// waited is what found the database gone.
		waited string
	}{
		{"the target", "target", false, false, true, 0, "a key range of patients resumed 5 times over 310ms"},
		{"the source", "source", false, false, true, 0, "a key range of patients resumed 5 times over 310ms"},
		// A worker's range stops when its lease cannot be renewed for
		// three quarters of its length (3 s of a 4 s lease), before its
		// third resumption (1 s + 2 s), on the real policy.
		{"a worker's target", "target", true, false, false, 4 * time.Second,
			"the lease (4s) of a key range of patients could not be renewed"},
		{"a worker's target between ranges", "target", true, true, true, 0,
			"this worker's leasing of key ranges resumed 5 times over 310ms"},
	} {
		side := c.side
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := fiveTables(t)
			proxy := proxied(t, w.side(side))
			var logs testkit.Logs
			opts := backfill.Options{Log: logs.Logger(slog.LevelInfo), Lease: c.lease}
			if c.quick {
				opts = backfill.QuickResumption(opts)
			}
			if c.worker {
				opts.Worker, opts.Run, opts.WorkerID = true, "gone", "w1"
			}
			done := w.startRun(opts)
			if c.waiting {
				// Another worker holds patients' last range; w1 copies the
				// others first (a range is 300 rows, 1.5 s at this rate).
				waitFor(t, func() bool {
					return w.count(t, "SELECT count(*) FROM (SELECT to_regclass('strangler_backfill_checkpoints') r) x WHERE r IS NOT NULL") > 0 &&
						w.count(t, "SELECT count(*) FROM strangler_backfill_checkpoints WHERE table_name = 'patients'") > 0
				})
				w.pg(t, `UPDATE strangler_backfill_checkpoints SET lease_owner = 'w0', lease_until = now() + interval '1 hour'
					WHERE table_name = 'patients' AND range_no = (SELECT max(range_no) FROM strangler_backfill_checkpoints WHERE table_name = 'patients')
					AND lease_owner IS NULL`)
				waitFor(t, func() bool {
					return w.count(t, "SELECT count(*) FROM strangler_backfill_checkpoints WHERE table_name = 'patients' AND NOT done") == 1
				})
			} else {
				// Mid-range: the first batch of a 300-row range.
				waitFor(t, func() bool { return w.count(t, "SELECT count(*) FROM patients") >= 100 })
			}
			proxy.Cut()
			stoppedOnce(t, done, &logs, side, c.waited)
			proxy.Restore()
			w.pg(t, "UPDATE strangler_backfill_checkpoints SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = 'w0'")
			w.rerunCopiesAll(t)
		})
	}
}

// TestARunWhoseDatabaseGoesAtAnyStepStopsOnce: the promise above holds
// whatever step a run is in when the source or the target goes away for
// good, not only a range's copy. A step of a table's own outside its
// ranges (moving its sequences and listing its ranges before its copy;
// comparing it, retrying its failed rows and moving its sequences after)
// stopped that table alone with the driver's error, at once, and every
// table after it the same way: the run ended "stopped early: patients:
// sequences of patients: failed to connect to ... gone0: ...", a line a
// table, naming no database gone, and a server restarting meanwhile
// stopped every table it found down.
func TestARunWhoseDatabaseGoesAtAnyStepStopsOnce(t *testing.T) {
	for _, c := range []struct {
		name, side string
		// rerun: a run copied every table before, so this one compares.
		worker, rerun bool
		// marker is what only that step sends (see testdb.Proxy.GoneOn).
		marker string
		waited string
	}{
		{"the target before a table's copy", "target", false, false, "pg_depend",
			"the start of the copy of patients resumed 5 times over 310ms"},
		{"the target in a re-run's comparison", "target", false, true, "cross join lateral",
			"the finish of the copy of patients resumed 5 times over 310ms"},
		{"the target after a table's ranges", "target", false, false, "select source_key from strangler_backfill_failures",
			"the finish of the copy of patients resumed 5 times over 310ms"},
		{"a worker's target before a table's copy", "target", true, false, "pg_depend",
			"the start of the copy of patients resumed 5 times over 310ms"},
	} {
		side := c.side
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := fiveTables(t)
			if c.rerun {
				w.cfg.Rate = 0
				w.run(t, backfill.Options{})
				w.cfg.Rate = 200
			}
			proxy := proxied(t, w.side(side))
			proxy.GoneOn(c.marker)
			var logs testkit.Logs
			opts := backfill.QuickResumption(backfill.Options{Log: logs.Logger(slog.LevelInfo)})
			if c.worker {
				opts.Worker, opts.Run, opts.WorkerID = true, "gone", "w1"
			}
			stoppedOnce(t, w.startRun(opts), &logs, side, c.waited)
			if proxy.CutsOn() != 1 {
				t.Fatalf("the %s never saw %q: the step the test takes it away at never ran", side, c.marker)
			}
			proxy.Restore()
			w.rerunCopiesAll(t)
		})
	}
}

// TestAStepThatLosesItsConnectionResumesHoldingTheLock: a target that
// restarts while a run is in a step of its own outside a range's copy
// (the session holding the run's lock breaking with the others) is
// resumed from, as a range's copy is: every row is copied, and the run
// holds its lock again, so a plain backfill started meanwhile is refused.
// A table moving its sequences before its copy stopped at once
// ("sequences of patients: unexpected EOF"); a worker whose leasing of
// ranges resumed, and either had it resumed without the lock, went on
// with none: a plain run started beside it.
func TestAStepThatLosesItsConnectionResumesHoldingTheLock(t *testing.T) {
	for _, c := range []struct {
		name   string
		worker bool
		// marker is what only that step sends.
		marker string
	}{
		{"a table's sequences before its copy", false, "pg_depend"},
		{"a worker's leasing of a range", true, "for update skip locked"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := fiveTables(t)
			proxy := proxied(t, w.cfg.Target.URL)
			proxy.CutOn(c.marker)
			var logs testkit.Logs
			opts := backfill.Options{Log: logs.Logger(slog.LevelInfo)}
			if c.worker {
				opts.Worker, opts.Run, opts.WorkerID = true, "blip", "w1"
			}
			done := w.startRun(opts)
			// patients' 1200 rows take 6 s at this rate.
			waitFor(t, func() bool { return w.count(t, "SELECT count(*) FROM patients") >= 100 })
			if _, err := backfill.Run(context.Background(), w.cfg, backfill.Options{}); err == nil || !strings.Contains(err.Error(), "another backfill is running") {
				t.Errorf("a plain backfill while the run copies: %v, want it refused", err)
			}
			res := stopped(t, done, 2*time.Minute, "its target back")
			if res.err != nil {
				t.Errorf("the run: %v, want it to resume and copy every row", res.err)
			}
			if proxy.CutsOn() != 1 {
				t.Fatalf("the target never saw %q", c.marker)
			}
			if n := len(logs.Lines(t, "backfill connection lost; resuming from the checkpoint")); n != 1 {
				t.Errorf("%d resumptions logged, want the 1 of the step that lost its connection", n)
			}
			if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
				t.Errorf("verify after the run: %+v", d.Tables)
			}
		})
	}
}

// TestARunWhoseTargetGoesBeforeItsTablesSaysSo: a target gone as the
// run sets out, before any table's work (reading a table's columns in
// the planning, taking its lock, opening and upgrading the ledger,
// recording the run's start), stops it at once saying which database and
// which step. It said "unexpected EOF" at the lock, "ledger: unexpected
// EOF" at the ledger and "…: backfill.tables[0].to: unexpected EOF" in
// the planning, naming neither the target nor the step.
func TestARunWhoseTargetGoesBeforeItsTablesSaysSo(t *testing.T) {
	for _, c := range []struct{ marker, want string }{
		{"to_regclass($1)", "backfill.tables[0].to: target: reading its columns: "},
		{"pg_try_advisory_lock", "target: taking the run's lock: "},
		{"to_regclass('strangler_backfill_checkpoints')", "target: opening the ledger: "},
		{"strangler_backfill_migrations", "target: opening the ledger: "},
		{"insert into strangler_backfill_runs", "target: recording the run's start: "},
	} {
		t.Run(c.marker, func(t *testing.T) {
			t.Parallel()
			w := fiveTables(t)
			proxy := proxied(t, w.cfg.Target.URL)
			proxy.GoneOn(c.marker)
			_, err := backfill.Run(context.Background(), w.cfg, backfill.QuickResumption(backfill.Options{}))
			if proxy.CutsOn() != 1 {
				t.Fatalf("the target never saw %q", c.marker)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "the connection to the target database broke") {
				t.Errorf("the run's error: %v, want it to say %q and that the connection to the target database broke", err, c.want)
			}
		})
	}
}

// fiveTables is a world whose run copies patients (1200 rows, paced to
// 200 a second, 100 a batch, one range at a time) and four small tables
// after it.
func fiveTables(t *testing.T) *world {
	t.Helper()
	w := newWorld(t, fixture.Sizes{Patients: 1200}, nil)
	w.cfg.Tables = w.cfg.Tables[:1]
	w.cfg.Batch, w.cfg.Rate, w.cfg.Concurrency = 100, 200, 1
	for i := range 4 {
		w.exec(t, fmt.Sprintf("CREATE TABLE Gone%d (Id INT PRIMARY KEY, Body TEXT)", i))
		w.exec(t, fmt.Sprintf("INSERT INTO Gone%d VALUES (1, 'a'), (2, 'b')", i))
		w.pg(t, fmt.Sprintf("CREATE TABLE gone%d (legacy_id bigint UNIQUE, body text)", i))
		w.cfg.Tables = append(w.cfg.Tables, config.BackfillTable{Name: fmt.Sprintf("gone%d", i), From: fmt.Sprintf("Gone%d", i),
			Key: "Id", To: fmt.Sprintf("gone%d", i), TargetKey: "legacy_id", Columns: cols("Id=legacy_id", "Body=body")})
	}
	return w
}

// side is the URL of w's source or target.
func (w *world) side(side string) *url.URL {
	if side == "target" {
		return w.cfg.Target.URL
	}
	return w.cfg.Source.URL
}

// stoppedOnce waits for the run done, whose side went away for good, and
// checks that it stopped once: its error and its report say the side's
// database is gone and what found it so (waited), and only that resumed,
// its five times (a worker's lease: at most five), no table after it.
func stoppedOnce(t *testing.T, done <-chan runResult, logs *testkit.Logs, side, waited string) {
	t.Helper()
	began := time.Now()
	res := stopped(t, done, 10*time.Minute, "its "+side+" gone")
	want := "the " + side + " database was still out of reach after " + waited
	if res.err == nil || !strings.Contains(res.err.Error(), want) {
		t.Errorf("the run's error: %v\nwant it to say %q", res.err, want)
	}
	var text strings.Builder
	if res.rep != nil {
		res.rep.WriteText(&text)
	}
	if want := "stopped early: " + want; !strings.Contains(text.String(), want) {
		t.Errorf("the report:\n%s\nwant it to say %q", text.String(), want)
	}
	lease := strings.Contains(waited, "the lease (")
	if n := len(logs.Lines(t, "backfill connection lost; resuming from the checkpoint")); n > 5 || !lease && n != 5 {
		t.Errorf("%d resumptions logged in the %s the run took to stop, want the 5 (a worker's lease: at most 5) of what found the %s gone",
			n, time.Since(began).Round(time.Second), side)
	}
}

// proxied puts a proxy in front of the database u names (w's source's
// or target's URL), which w's runs reach through it from then on.
func proxied(t *testing.T, u *url.URL) *testdb.Proxy {
	t.Helper()
	proxy, via := testdb.NewProxy(t, u.String())
	pu, err := url.Parse(via)
	if err != nil {
		t.Fatal(err)
	}
	*u = *pu
	return proxy
}

// runResult is what a run started by startRun ended with.
type runResult struct {
	rep *backfill.Report
	err error
}

// startRun runs w's backfill with opts on a goroutine of its own; its end
// comes on the channel returned.
func (w *world) startRun(opts backfill.Options) <-chan runResult {
	done := make(chan runResult, 1)
	go func() {
		rep, err := backfill.Run(context.Background(), w.cfg, opts)
		done <- runResult{rep, err}
	}()
	return done
}

// stopped waits for the run done to end, at most limit, failing the test
// saying what the run still waits on.
func stopped(t *testing.T, done <-chan runResult, limit time.Duration, waitsOn string) runResult {
	t.Helper()
	select {
	case res := <-done:
		return res
	case <-time.After(limit):
		t.Fatalf("the run still waits on %s %v on", waitsOn, limit)
		return runResult{}
	}
}

// rerunCopiesAll runs w's backfill again, unpaced, once the database a
// test took away is back: no row fails, and verify finds no deviation.
func (w *world) rerunCopiesAll(t *testing.T) {
	t.Helper()
	w.cfg.Rate = 0
	for _, tr := range w.run(t, backfill.Options{}).Tables {
		if tr.Failed != 0 {
			t.Errorf("a re-run: %s failed %d rows, want none", tr.Table, tr.Failed)
		}
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify after the re-run: %+v", d.Tables)
	}
}
