package backfill_test

import (
	"context"
	"database/sql"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"strangler/backfill"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
	"strangler/modern"
)

// TestAnAPIWorkerCountsAGroupWhoseLastRecordingLostItsAnswer: a worker
// of a shared run sends a group's last batch, and the state store
// commits its recording (the group done, its lease ended) while the
// answer is lost. The resumed try found the group no longer this
// worker's, took it for one taken over and ended it: the report left
// out every row of it, which the worker had sent and the ledger had
// migrated or failed (290 read of 300, one range of 10 short). Now the
// resumed try records the batch again as a plain run's does, its rows
// the API accepted counted already sent (not sent again), and the report
// counts every row once.
func TestAnAPIWorkerCountsAGroupWhoseLastRecordingLostItsAnswer(t *testing.T) {
	l := newLostRecording(t)
	done := l.start(t, backfill.Options{Log: discard()})
	l.muteFirstRecording(t, done)
	l.proxy.Reset()
	l.countsEveryRowOnce(t, done)
}

// TestAnAPIWorkerCountsABatchRecordedAsItsLeaseLapsed: the state store
// commits a worker's recording of a batch and the answer does not come
// before the worker's lease lapses, which ends the group's work as taken
// over. The batch is in the ledger, its range done (or resumed after
// it, by whoever takes the range), so nobody sent it again, and the
// worker's report left it out (290 read of 300). Now the worker counts
// it once the ledger shows it recorded by this run.
func TestAnAPIWorkerCountsABatchRecordedAsItsLeaseLapsed(t *testing.T) {
	l := newLostRecording(t)
	var logs testkit.Logs
	// Renewed every second; with no renewal answered, the lease lapses
	// within 2.25 s.
	done := l.start(t, backfill.Options{Log: logs.Logger(slog.LevelDebug), Lease: 3 * time.Second})
	l.muteFirstRecording(t, done)
	testkit.Eventually(t, time.Minute, "the worker to give the range up", func() bool {
		return len(logs.Lines(t, "backfill group taken over")) > 0
	})
	l.proxy.Reset()
	l.countsEveryRowOnce(t, done)
}

// lostRecording is a worker of a shared run that sends key ranges of
// about 10 rows, one range at a time and each in one batch, its last, to
// an API whose first request waits until the test releases it; its
// state store is behind a proxy.
type lostRecording struct {
	w                 *apiWorld
	proxy             *testdb.Proxy
	storeURL          string
	ledger            *sql.DB // the state store, not through the proxy
	arrived, released chan struct{}
}

const lostRecordingRows = 300

func newLostRecording(t *testing.T) *lostRecording {
	t.Helper()
	l := &lostRecording{w: newAPIWorld(t, lostRecordingRows, 10, modern.Faults{}),
		arrived: make(chan struct{}), released: make(chan struct{})}
	var first sync.Once
	target, err := url.Parse(l.w.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	fwd := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/imports/") {
			first.Do(func() {
				close(l.arrived)
				<-l.released
			})
		}
		fwd.ServeHTTP(rw, r)
	}))
	t.Cleanup(front.Close)
	l.w.srv.URL = front.URL
	direct := testdb.Postgres(t)
	l.proxy, l.storeURL = testdb.NewProxy(t, direct)
	if l.ledger, err = sql.Open("pgx", direct); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.ledger.Close() })
	return l
}

// start runs the worker with opts (its ledger, run and id set here).
func (l *lostRecording) start(t *testing.T, opts backfill.Options) <-chan runResult {
	t.Helper()
	cfg := l.w.config(t)
	cfg.Before, cfg.After, cfg.WaitUntil = nil, nil, nil
	cfg.Tables[0].TargetAPI.GroupBy = ""
	cfg.Batch = 100
	cfg.API.URL = l.w.srv.URL
	st := openStore(t, l.storeURL)
	opts.APILedger, opts.Hasher = st, st.Hasher()
	opts.Worker, opts.Run, opts.WorkerID = true, "flaky3_lost", "w1"
	done := make(chan runResult, 1)
	go func() {
		rep, err := backfill.Run(context.Background(), cfg, backfill.QuickResumption(opts))
		done <- runResult{rep, err}
	}()
	return done
}

// muteFirstRecording mutes the store's answers from the COMMIT of the
// first range's recording on (no other COMMIT comes between: the first
// request waits for the mute), and returns once that COMMIT went through.
func (l *lostRecording) muteFirstRecording(t *testing.T, done <-chan runResult) {
	t.Helper()
	select {
	case <-l.arrived:
	case res := <-done:
		t.Fatalf("the worker ended before it sent a row: %v", res.err)
	}
	l.proxy.MuteOn("commit")
	close(l.released)
	testkit.Eventually(t, time.Minute, "a range recorded done", func() bool {
		var n int
		if err := l.ledger.QueryRow("SELECT count(*) FROM strangler_api_backfill_groups WHERE run_name = 'flaky3_lost' AND done").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	})
}

// countsEveryRowOnce waits for the worker's end and checks that the API
// applied every accepted row once and that its report counts each row
// once.
func (l *lostRecording) countsEveryRowOnce(t *testing.T, done <-chan runResult) {
	t.Helper()
	res := stopped(t, done, 2*time.Minute, "its store back")
	if res.err != nil {
		t.Fatalf("the worker stopped: %v, want it to resume by itself", res.err)
	}
	wantRejected := lostRecordingRows - accepted(lostRecordingRows)
	l.w.appliedOnce(t, "", lostRecordingRows-wantRejected)
	if tr := res.rep.Tables[0]; tr.Read != lostRecordingRows || tr.Written()+tr.Present != lostRecordingRows-wantRejected || tr.Failed != wantRejected {
		t.Errorf("the worker reports %d read, %d migrated, %d already sent, %d failed; want %d read, %d migrated or already sent, %d failed",
			tr.Read, tr.Written(), tr.Present, tr.Failed, lostRecordingRows, lostRecordingRows-wantRejected, wantRejected)
	}
}
