package backfill_test

import (
	"context"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"strangler/backfill"
	"strangler/config"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// TestAWorkerCountsABatchCommittedAsItsLeaseLapsed: the target commits a
// worker's batch, its rows and its checkpoint, and the answer does not
// come before the worker's lease lapses, which ends the range's copy as
// taken over. Whoever takes the range (this worker, once the lease ran
// out) goes on after the batch, so nobody copied it again, and the
// worker's report left it out (1100 read of 1200). Now the worker counts
// it once the ledger shows it committed under its lease.
func TestAWorkerCountsABatchCommittedAsItsLeaseLapsed(t *testing.T) {
	l := newLostCommit(t)
	done := l.start(l.w.cfg, "w1")
	l.muteNextCommit(t)
	l.proxy.Reset()
	l.countsEveryRowOnce(t, stopped(t, done, 2*time.Minute, "its target back"))
}

// TestSharedWorkersCountABatchCommittedAsALeaseLapsed: as above, and
// another worker takes the range over and copies it to its end before
// the first worker's target answers again, so the range's checkpoint no
// longer shows the batch (nor would it tell it from one of the taker's
// ending on the same key). The workers' reports together left the batch
// out (1100 read of 1200); now they count every row once.
func TestSharedWorkersCountABatchCommittedAsALeaseLapsed(t *testing.T) {
	l := newLostCommit(t)
	first := l.start(l.w.cfg, "w1")
	l.muteNextCommit(t)
	cfg := *l.w.cfg
	cfg.Target = config.DatabaseURL{URL: &l.direct}
	second := l.start(&cfg, "w2")
	b := stopped(t, second, 2*time.Minute, "the other worker's ranges")
	if b.err != nil {
		t.Fatalf("the second worker stopped: %v", b.err)
	}
	if n := l.w.count(t, "SELECT count(*) FROM strangler_backfill_checkpoints WHERE table_name = 'patients' AND NOT done"); n != 0 {
		t.Fatalf("%d ranges left undone by the second worker, want none: the test proves nothing", n)
	}
	l.proxy.Reset()
	a := stopped(t, first, 2*time.Minute, "its target back")
	if a.err != nil {
		t.Fatalf("the first worker stopped: %v", a.err)
	}
	sum := a.rep.Tables[0]
	o := b.rep.Tables[0]
	sum.Read += o.Read
	sum.Inserted += o.Inserted
	sum.Updated += o.Updated
	sum.Present += o.Present
	sum.Failed += o.Failed
	l.countsEveryRowOnce(t, runResult{rep: &backfill.Report{Tables: []backfill.TableReport{sum}}})
}

// lostCommit is a shared run ("flaky4_lost") of pacedPatients (ranges of
// 300 rows, batches of 100, 500 rows a second), one range at a time per
// worker, with a lease of 3 s (renewed every second;
// unanswered, it lapses within 2.25 s) and the target behind a proxy.
type lostCommit struct {
	w      *world
	proxy  *testdb.Proxy
	direct url.URL // the target, not through the proxy
	logs   testkit.Logs
}

func newLostCommit(t *testing.T) *lostCommit {
	t.Helper()
	l := &lostCommit{w: pacedPatients(t, 500)}
	l.w.cfg.Concurrency = 1 // one batch in flight
	l.direct = *l.w.cfg.Target.URL
	l.proxy = proxied(t, l.w.cfg.Target.URL)
	return l
}

// start runs a worker named id of the run with cfg.
func (l *lostCommit) start(cfg *config.Backfill, id string) <-chan runResult {
	done := make(chan runResult, 1)
	opts := backfill.QuickResumption(backfill.Options{Log: l.logs.Logger(slog.LevelDebug).With("worker", id),
		Worker: true, Run: "flaky4_lost", WorkerID: id, Lease: 3 * time.Second})
	go func() {
		rep, err := backfill.Run(context.Background(), cfg, opts)
		done <- runResult{rep, err}
	}()
	return done
}

// muteNextCommit, once a range is copied part way (a batch with rows
// still to come: a range's empty last batch commits too), mutes the
// proxy from the next COMMIT on (every answer after it is dropped, the
// lease's renewals' too) and returns once that COMMIT went through and
// the worker gave its range up.
func (l *lostCommit) muteNextCommit(t *testing.T) {
	t.Helper()
	waitFor(t, func() bool { return l.w.count(t, "SELECT count(*) FROM patients") > 0 }) // the ledger is there
	waitFor(t, func() bool {
		return l.w.count(t, "SELECT count(*) FROM strangler_backfill_checkpoints WHERE table_name = 'patients' AND NOT done AND rows_done BETWEEN 1 AND 199") > 0
	})
	before := l.w.count(t, "SELECT count(*) FROM patients")
	l.proxy.MuteOn("commit")
	testkit.Eventually(t, time.Minute, "a batch committed with its answer lost", func() bool {
		return l.w.count(t, "SELECT count(*) FROM patients") > before
	})
	testkit.Eventually(t, time.Minute, "the worker to give the range up", func() bool {
		return len(l.logs.Lines(t, "backfill range taken over")) > 0
	})
}

// countsEveryRowOnce checks that the run copied every row once and that
// res's report counts each once.
func (l *lostCommit) countsEveryRowOnce(t *testing.T, res runResult) {
	t.Helper()
	if res.err != nil {
		t.Fatalf("the worker stopped: %v, want it to resume by itself", res.err)
	}
	if got := res.rep.Tables[0]; got.Read != pacedRows || got.Written()+got.Present != pacedRows || got.Failed != 0 {
		t.Errorf("reported %d read, %d written, %d present, %d failed; want %d read and written or present once, 0 failed",
			got.Read, got.Written(), got.Present, got.Failed, pacedRows)
	}
	if n := l.w.count(t, "SELECT count(DISTINCT legacy_id) FROM patients"); n != pacedRows {
		t.Errorf("modern has %d distinct patients, want %d", n, pacedRows)
	}
	if n := l.w.count(t, "SELECT count(*) FROM patients"); n != pacedRows {
		t.Errorf("modern has %d patients, want %d", n, pacedRows)
	}
	if n := l.w.count(t, "SELECT coalesce(sum(rows_done), 0) FROM strangler_backfill_checkpoints WHERE table_name = 'patients'"); n != pacedRows {
		t.Errorf("the ledger counts %d rows done, want %d", n, pacedRows)
	}
}
