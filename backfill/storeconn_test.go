package backfill_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"strangler/backfill"
	"strangler/internal/testdb"
)

// TestARunResumesAfterItsConnectionsBreak breaks the connections to the
// source MariaDB, and to the target PostgreSQL, while a run copies: at
// arbitrary moments (after so many rows), as a batch's COMMIT goes out
// (rolled back), and after the target ran it (committed, its answer
// lost), plain and as a worker of a shared run. The run must resume by
// itself and copy every row exactly once,
// its ledger and its report counting each once (the batch whose answer
// was lost too: the ledger shows it committed); a re-run then finds
// nothing to do.
func TestARunResumesAfterItsConnectionsBreak(t *testing.T) {
	const patients = pacedRows
	for _, c := range []struct {
		name, side string
		breakIt    func(t *testing.T, w *world, p *testdb.Proxy)
		worker     bool
	}{
		{"source cut after 150 rows", "source", cutAfter(150), false},
		{"source cut after 700 rows", "source", cutAfter(700), false},
		{"target cut after 150 rows", "target", cutAfter(150), false},
		{"target cut after 700 rows", "target", cutAfter(700), false},
		{"target cut as a batch commits", "target", func(t *testing.T, w *world, p *testdb.Proxy) {
			waitFor(t, func() bool { return w.count(t, "SELECT count(*) FROM patients") >= 300 })
			p.CutOn("commit")
		}, false},
		{"target commits a batch and its answer is lost", "target", func(t *testing.T, w *world, p *testdb.Proxy) {
			waitFor(t, func() bool { return w.count(t, "SELECT count(*) FROM patients") >= 300 })
			p.MuteOn("commit")
			time.Sleep(300 * time.Millisecond)
			p.Reset()
		}, false},
		{"a worker's source cut after 700 rows", "source", cutAfter(700), true},
		{"a worker's target cut after 700 rows", "target", cutAfter(700), true},
		{"a worker's target commits a batch and its answer is lost", "target", func(t *testing.T, w *world, p *testdb.Proxy) {
			waitFor(t, func() bool { return w.count(t, "SELECT count(*) FROM patients") >= 300 })
			p.MuteOn("commit")
			time.Sleep(300 * time.Millisecond)
			p.Reset()
		}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Each case has databases of its own.
			t.Parallel()
			w := pacedPatients(t, 1000)
			u := w.cfg.Source.URL
			if c.side == "target" {
				u = w.cfg.Target.URL
			}
			proxy := proxied(t, u)
			opts := backfill.Options{Log: discard()}
			if c.worker {
				opts.Worker, opts.Run, opts.WorkerID = true, "resume", "w1"
			}
			done := w.startRun(opts)
			c.breakIt(t, w, proxy)
			res := <-done
			if p := proxy.CutsOn(); strings.Contains(c.name, " as ") && p != 1 {
				t.Fatalf("the proxy cut %d times, want 1: the test proves nothing", p)
			}
			if res.err != nil {
				t.Fatalf("the run stopped: %v, want it to resume by itself", res.err)
			}
			if got := res.rep.Tables[0]; got.Inserted+got.Present != patients || got.Failed != 0 {
				t.Errorf("the run reports %d inserted, %d present, %d failed, want %d copied once", got.Inserted, got.Present, got.Failed, patients)
			}
			if n := w.count(t, "SELECT count(*) FROM patients"); n != patients {
				t.Errorf("modern has %d patients, want %d", n, patients)
			}
			if n := w.count(t, "SELECT count(DISTINCT legacy_id) FROM patients"); n != patients {
				t.Errorf("modern has %d distinct legacy ids, want %d", n, patients)
			}
			if n := w.count(t, "SELECT coalesce(sum(rows_done), 0) FROM strangler_backfill_checkpoints WHERE table_name = 'patients'"); n != patients {
				t.Errorf("the ledger counts %d rows done, want %d", n, patients)
			}
			w.cfg.Rate = 0
			if got := w.run(t, backfill.Options{}).Tables[0]; got.Inserted != 0 || got.Failed != 0 {
				t.Errorf("a re-run inserted %d and failed %d, want nothing to do", got.Inserted, got.Failed)
			}
			if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
				t.Errorf("verify: %+v", d.Tables)
			}
		})
	}
}

// cutAfter cuts the proxy's connections once modern has n patients, and
// lets new ones through 200 ms later.
func cutAfter(n int64) func(*testing.T, *world, *testdb.Proxy) {
	return func(t *testing.T, w *world, p *testdb.Proxy) {
		waitFor(t, func() bool { return w.count(t, "SELECT count(*) FROM patients") >= n })
		p.Cut()
		time.Sleep(200 * time.Millisecond)
		p.Restore()
	}
}

// TestARunStillKeepsOthersOffAfterItsTargetConnectionBroke: the advisory
// lock that keeps a second backfill off the ledger lives in a session of
// the target; a cut connection ends that session and the lock with it.
// The run, resumed, must hold the lock again: another session cannot
// take it while the run copies on.
func TestARunStillKeepsOthersOffAfterItsTargetConnectionBroke(t *testing.T) {
	w := pacedPatients(t, 300)
	proxy := proxied(t, w.cfg.Target.URL)
	done := w.startRun(backfill.Options{Log: discard()})
	cutAfter(300)(t, w, proxy)
	waitFor(t, func() bool { return w.count(t, "SELECT count(*) FROM patients") >= 600 })
	ctx := context.Background()
	conn, err := w.modern.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtext('strangler_backfill'), hashtext(current_schema()))").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got {
		conn.Exec(ctx, "SELECT pg_advisory_unlock(hashtext('strangler_backfill'), hashtext(current_schema()))")
		t.Error("another session took the backfill's lock while the resumed run copied: a second backfill could have started beside it")
	}
	if res := <-done; res.err != nil {
		t.Fatalf("the run: %v", res.err)
	}
}
