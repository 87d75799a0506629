package backfill_test

import (
	"context"
	"database/sql"
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
// commits its recording (the group done, its lease given up) while the
// answer is lost. The resumed try found the group no longer this
// worker's, took it for one taken over and ended it: the report left
// out every row of it, which the worker had sent and the ledger had
// migrated or failed (290 read of 300, one range of 10 short). Now the
// resumed try records the batch again as a plain run's does, its rows
// the API accepted counted already sent (not sent again), and the report
// counts every row once.
func TestAnAPIWorkerCountsAGroupWhoseLastRecordingLostItsAnswer(t *testing.T) {
	const rows = 300
	wantRejected := rows - accepted(rows)
	w := newAPIWorld(t, rows, 10, modern.Faults{})
	cfg := w.config(t)
	cfg.Before, cfg.After, cfg.WaitUntil = nil, nil, nil
	// Key ranges of about 10 rows, one at a time, in batches of 100:
	// each range's one batch is its last.
	cfg.Tables[0].TargetAPI.GroupBy = ""
	cfg.Batch = 100
	// The first request waits until the store's answers are muted, so
	// that the commit muted is the recording of the first range sent.
	arrived, release := make(chan struct{}), make(chan struct{})
	var first sync.Once
	target, err := url.Parse(w.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	fwd := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/imports/") {
			first.Do(func() {
				close(arrived)
				<-release
			})
		}
		fwd.ServeHTTP(rw, r)
	}))
	t.Cleanup(front.Close)
	cfg.API.URL = front.URL
	direct := testdb.Postgres(t)
	proxy, storeURL := testdb.NewProxy(t, direct)
	st := openStore(t, storeURL)
	ctx := context.Background()
	done := make(chan runResult, 1)
	go func() {
		rep, err := backfill.Run(ctx, cfg, backfill.QuickResumption(backfill.Options{APILedger: st, Hasher: st.Hasher(), Log: discard(),
			Worker: true, Run: "flaky3_lost", WorkerID: "w1"}))
		done <- runResult{rep, err}
	}()
	select {
	case <-arrived:
	case res := <-done:
		t.Fatalf("the run ended before it sent a row: %v", res.err)
	}
	proxy.MuteOn("commit")
	close(release)
	db, err := sql.Open("pgx", direct)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	testkit.Eventually(t, time.Minute, "a range recorded done", func() bool {
		var n int
		if err := db.QueryRow("SELECT count(*) FROM strangler_api_backfill_groups WHERE run_name = 'flaky3_lost' AND done").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	})
	proxy.Reset()
	res := stopped(t, done, 2*time.Minute, "its store back")
	if res.err != nil {
		t.Fatalf("the worker stopped: %v, want it to resume by itself", res.err)
	}
	w.appliedOnce(t, "", rows-wantRejected)
	if tr := res.rep.Tables[0]; tr.Read != rows || tr.Written()+tr.Present != rows-wantRejected || tr.Failed != wantRejected {
		t.Errorf("the worker reports %d read, %d migrated, %d already sent, %d failed; want %d read, %d migrated or already sent, %d failed",
			tr.Read, tr.Written(), tr.Present, tr.Failed, rows, rows-wantRejected, wantRejected)
	}
}
