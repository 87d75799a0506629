package backfill_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"strangler/backfill"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
	"strangler/modern"
)

// TestAnAPIRunResumesAfterItsConnectionsBreak breaks the connections to
// the source MariaDB, and to the PostgreSQL state store that keeps the
// ledger, while a run sends a table through the API, plain and as a
// worker of a shared run: at an arbitrary moment, and after the store ran
// a batch's COMMIT (its answer lost). The run must resume by itself; the
// API applies every accepted row once, the report counts every row once,
// and a re-run finds nothing to send.
func TestAnAPIRunResumesAfterItsConnectionsBreak(t *testing.T) {
	const rows = 1500
	wantRejected := rows - accepted(rows)
	for _, c := range []struct {
		name, side string
		worker     bool
		breakIt    func(t *testing.T, w *apiWorld, p *testdb.Proxy)
	}{
		{"source cut", "source", false, cutAfterImports(600)},
		{"store cut", "store", false, cutAfterImports(600)},
		{"store commits a batch and its answer is lost", "store", false, muteAfterImports(600)},
		{"a worker's source cut", "source", true, cutAfterImports(600)},
		{"a worker's store cut", "store", true, cutAfterImports(600)},
		{"a worker's store commits a batch and its answer is lost", "store", true, muteAfterImports(600)},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Each case has databases and a service of its own.
			t.Parallel()
			w := newAPIWorld(t, rows, 10, modern.Faults{})
			cfg := w.config(t)
			cfg.Batch, cfg.Rate = 100, 1000
			cfg.Before, cfg.After, cfg.WaitUntil = nil, nil, nil
			storeURL := testdb.Postgres(t)
			var proxy *testdb.Proxy
			if c.side == "store" {
				proxy, storeURL = testdb.NewProxy(t, storeURL)
			} else {
				proxy = proxied(t, cfg.Source.URL)
			}
			ctx := context.Background()
			st := openStore(t, storeURL)
			opts := backfill.Options{APILedger: st, Hasher: st.Hasher(), Log: discard()}
			if c.worker {
				opts.Worker, opts.Run, opts.WorkerID = true, "resume", "w1"
			}
			done := make(chan runResult, 1)
			go func() {
				rep, err := backfill.Run(ctx, cfg, opts)
				done <- runResult{rep, err}
			}()
			c.breakIt(t, w, proxy)
			res := <-done
			if res.err != nil {
				t.Fatalf("the run stopped: %v, want it to resume by itself", res.err)
			}
			w.appliedOnce(t, "", rows-wantRejected)
			if tr := res.rep.Tables[0]; tr.Read != rows || tr.Written()+tr.Present != rows-wantRejected || tr.Failed != wantRejected {
				t.Errorf("the run reports %d read, %d migrated, %d already sent, %d failed; want %d read, %d migrated or already sent, %d failed",
					tr.Read, tr.Written(), tr.Present, tr.Failed, rows, rows-wantRejected, wantRejected)
			}
			if failed, err := st.APIBackfillFailures(ctx, "patients", "", rows); err != nil || int64(len(failed)) != wantRejected {
				t.Errorf("the ledger holds %d failures (%v), want %d", len(failed), err, wantRejected)
			}
			cfg.Rate = 0
			again, err := backfill.Run(ctx, cfg, backfill.Options{APILedger: st, Hasher: st.Hasher(), Log: discard()})
			if err != nil {
				t.Fatal(err)
			}
			if tr := again.Tables[0]; tr.Written() != 0 || tr.Present != rows-wantRejected {
				t.Errorf("a re-run migrated %d and found %d already sent, want 0 and %d", tr.Written(), tr.Present, rows-wantRejected)
			}
		})
	}
}

// TestAnAPIOnlyFailedRunResumesAfterItsConnectionsBreak: --only-failed
// through the API resumes, as a plain run does, when the connection to
// the source or to the state store breaks while it sends the failed
// rows again: it stopped with the driver's error ("read patients:
// invalid connection"), the rows after the page under way not sent.
// Now the API applies each failed row once, the report counts each once,
// and the ledger holds no failure. A page whose recording the store
// committed with its answer lost is counted too: the ledger had it
// migrated, so the resumed page left its rows out, and the report
// under-counted them (read and migrated 10 short).
func TestAnAPIOnlyFailedRunResumesAfterItsConnectionsBreak(t *testing.T) {
	const rows = 1500
	wantRejected := rows - accepted(rows)
	for _, c := range []struct {
		name, side string
		breakIt    func(n int64) func(*testing.T, *apiWorld, *testdb.Proxy)
	}{
		{"source", "source", cutAfterImports},
		{"store", "store", cutAfterImports},
		{"store commits a page and its answer is lost", "store", muteAfterImports},
	} {
		side := c.side
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newAPIWorld(t, rows, 10, modern.Faults{})
			cfg := w.config(t)
			cfg.Before, cfg.After, cfg.WaitUntil = nil, nil, nil
			storeURL := testdb.Postgres(t)
			var proxy *testdb.Proxy
			if side == "store" {
				proxy, storeURL = testdb.NewProxy(t, storeURL)
			} else {
				proxy = proxied(t, cfg.Source.URL)
			}
			ctx := context.Background()
			st := openStore(t, storeURL)
			opts := backfill.Options{APILedger: st, Hasher: st.Hasher(), Log: discard()}
			if _, err := backfill.Run(ctx, cfg, opts); err != nil {
				t.Fatal(err)
			}
			if _, err := w.legacy.Exec("UPDATE Patient SET Email = CONCAT('p', PatientSerNum, '@example.org') WHERE Email LIKE '% at %'"); err != nil {
				t.Fatal(err)
			}
			// Pages of 10 failed rows at 100 rows a second: the cut
			// comes on the third page of four.
			cfg.Batch, cfg.Rate = 10, 100
			opts.OnlyFailed = true
			done := make(chan runResult, 1)
			go func() {
				rep, err := backfill.Run(ctx, cfg, opts)
				done <- runResult{rep, err}
			}()
			c.breakIt(rows-wantRejected+25)(t, w, proxy)
			res := stopped(t, done, 2*time.Minute, "its "+side+" back")
			if res.err != nil {
				t.Fatalf("--only-failed stopped: %v, want it to resume by itself", res.err)
			}
			w.appliedOnce(t, "", rows)
			if tr := res.rep.Tables[0]; tr.Read != wantRejected || tr.Written() != wantRejected || tr.Failed != 0 || tr.NotInSource != 0 {
				t.Errorf("--only-failed reports %d read, %d migrated, %d failed, %d not in the source; want %d, %d, 0, 0",
					tr.Read, tr.Written(), tr.Failed, tr.NotInSource, wantRejected, wantRejected)
			}
			if failed, err := st.APIBackfillFailures(ctx, "patients", "", rows); err != nil || len(failed) != 0 {
				t.Errorf("the ledger holds %d failures (%v), want none", len(failed), err)
			}
		})
	}
}

// imported is how many imports the API applied.
func (w *apiWorld) imported(t *testing.T) int64 {
	var n int64
	if err := w.pool.QueryRow(context.Background(), "SELECT count(*) FROM import_log").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// cutAfterImports cuts the proxy's connections once the API applied n
// imports, and lets new ones through 200 ms later.
func cutAfterImports(n int64) func(*testing.T, *apiWorld, *testdb.Proxy) {
	return func(t *testing.T, w *apiWorld, p *testdb.Proxy) {
		// Generous: a loaded CI machine took over 10 s to reach 600.
		testkit.Eventually(t, time.Minute, fmt.Sprintf("%d imports", n), func() bool { return w.imported(t) >= n })
		p.Cut()
		time.Sleep(200 * time.Millisecond)
		p.Restore()
	}
}

// muteAfterImports lets the next COMMIT through once the API applied n
// imports and drops its answer, then cuts the connections and lets new
// ones through.
func muteAfterImports(n int64) func(*testing.T, *apiWorld, *testdb.Proxy) {
	return func(t *testing.T, w *apiWorld, p *testdb.Proxy) {
		// Generous: a loaded CI machine took over 10 s to reach 600.
		testkit.Eventually(t, time.Minute, fmt.Sprintf("%d imports", n), func() bool { return w.imported(t) >= n })
		p.MuteOn("commit")
		time.Sleep(300 * time.Millisecond)
		p.Reset()
	}
}

// TestAnAPIRestartCountsRowsTheServiceHadAsPresent: --restart sends every
// row again, an unchanged one under the key the API accepted it with; the
// service replays its answer and holds the row as it was, so the report
// counts it already present, not inserted, and the API applies nothing.
func TestAnAPIRestartCountsRowsTheServiceHadAsPresent(t *testing.T) {
	const rows = 300
	wantRejected := rows - accepted(rows)
	w := newAPIWorld(t, rows, 5, modern.Faults{})
	cfg := w.config(t)
	cfg.Before, cfg.After, cfg.WaitUntil = nil, nil, nil
	w.run(t, cfg, backfill.Options{})
	applied := w.imported(t)
	tr := w.run(t, cfg, backfill.Options{Restart: true}).Tables[0]
	if tr.Inserted != 0 || tr.Updated != 0 || tr.Present != rows-wantRejected || tr.Failed != wantRejected {
		t.Errorf("--restart reports %d inserted, %d updated, %d already present, %d failed; want 0, 0, %d, %d",
			tr.Inserted, tr.Updated, tr.Present, tr.Failed, rows-wantRejected, wantRejected)
	}
	if n := w.imported(t); n != applied {
		t.Errorf("the API applied %d imports after --restart, want the %d it had", n, applied)
	}
}

// TestASecondPlainAPIRunOfATableIsRefused: while a plain run sends a
// table, a second plain run of it (another process on the same plan) is
// refused with a message naming the run and the process holding it, and
// sends nothing; once the first is done, a run goes ahead.
func TestASecondPlainAPIRunOfATableIsRefused(t *testing.T) {
	const rows = 1000
	w := newAPIWorld(t, rows, 5, modern.Faults{})
	cfg := w.config(t)
	cfg.Before, cfg.After, cfg.WaitUntil = nil, nil, nil
	cfg.Batch, cfg.Rate = 50, 500
	opts := backfill.Options{APILedger: w.store, Hasher: w.store.Hasher(), Log: discard()}
	first := make(chan error, 1)
	go func() {
		_, err := backfill.Run(context.Background(), cfg, opts)
		first <- err
	}()
	waitFor(t, func() bool { return w.imported(t) >= 100 })
	_, err := backfill.Run(context.Background(), cfg, opts)
	host, _ := os.Hostname()
	if err == nil || !strings.Contains(err.Error(), "patients is being sent by run 1 of "+host+" (pid ") {
		t.Errorf("a second plain run: %v; want it refused, naming run 1 and its holder", err)
	}
	if err := <-first; err != nil {
		t.Fatalf("the first run: %v", err)
	}
	tr := w.run(t, cfg, backfill.Options{}).Tables[0]
	if tr.Read != rows || tr.Written() != 0 {
		t.Errorf("a run after the first: read %d, migrated %d; want %d read, nothing to send", tr.Read, tr.Written(), rows)
	}
}
