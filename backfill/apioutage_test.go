package backfill_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"strangler/backfill"
	"strangler/internal/testdb"
	"strangler/modern"
)

// TestAnAPIRunStopsWhenTheServiceGoesAway: the modern service goes away
// in the middle of a run: its listener closes, or the proxy in front of
// it answers 503 for every request. The run (plain, or a worker of a
// shared run on PostgreSQL) stops after stop_after_unanswered rows in a
// row got no answer, with an error naming the service and what it saw,
// instead of trying each row left max_attempts times and failing it. The
// rows not sent are not in the ledger as failed, a worker's groups are
// released at once, and a re-run once the service is back sends every
// row left, each accepted row applied once.
func TestAnAPIRunStopsWhenTheServiceGoesAway(t *testing.T) {
	const (
		rows        = 1000
		downAfter   = 300 // requests
		stopAfter   = 10
		maxAttempts = 5
		concurrency = 8
	)
	wantRejected := rows - accepted(rows)
	for _, c := range []struct {
		name   string
		closed bool // the listener closes, else a proxy answers 503
		worker bool
		saw    string
	}{
		{"listener closed", true, false, "connection refused"},
		{"proxy answers 503", false, false, "503 Service Unavailable"},
		{"a worker, proxy answers 503", false, true, "503 Service Unavailable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newAPIWorld(t, rows, 10, modern.Faults{})
			var down, gone atomic.Bool
			wentDown := make(chan struct{})
			var requests, unanswered atomic.Int64 // import requests; 503s answered while down
			h := w.modern.Handler()
			srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				// The service goes away at the downAfter-th request
				// itself, not when a poll sees it: a quick run could
				// send every row between two looks.
				if strings.HasPrefix(r.URL.Path, "/imports/") && requests.Add(1) == downAfter {
					if c.closed {
						gone.Store(true)
					} else {
						down.Store(true)
					}
					close(wentDown)
				}
				if gone.Load() {
					// A connection accepted as the listener closed, which
					// CloseClientConnections did not see yet, would go on
					// serving the rest of the run over keep-alive (seen in
					// CI): it goes too, unanswered.
					if c, _, err := rw.(http.Hijacker).Hijack(); err == nil {
						c.Close()
					}
					return
				}
				if down.Load() && strings.HasPrefix(r.URL.Path, "/imports/") {
					unanswered.Add(1)
					rw.Header().Set("Content-Type", "text/html")
					rw.WriteHeader(http.StatusServiceUnavailable)
					rw.Write([]byte("<h1>503 Service Temporarily Unavailable</h1>"))
					return
				}
				h.ServeHTTP(rw, r)
			}))
			defer srv.Close()
			cfg := w.config(t)
			cfg.API.URL = srv.URL
			cfg.Batch = 100
			cfg.Before, cfg.After, cfg.WaitUntil = nil, nil, nil
			api := cfg.Tables[0].TargetAPI
			api.Concurrency, api.Retry.MaxAttempts, api.StopAfterUnanswered = concurrency, maxAttempts, stopAfter
			ctx := context.Background()
			storeURL := testdb.Postgres(t)
			st := openStore(t, storeURL)
			opts := backfill.Options{APILedger: st, Hasher: st.Hasher(), Log: discard()}
			if c.worker {
				opts.Worker, opts.Run, opts.WorkerID = true, "backfill8-outage", "w1"
			}
			done := make(chan error, 1)
			go func() {
				_, err := backfill.Run(ctx, cfg, opts)
				done <- err
			}()
			select {
			case <-wentDown:
			case <-time.After(time.Minute):
				t.Fatalf("%d requests in a minute, want %d", requests.Load(), downAfter)
			}
			if c.closed {
				srv.CloseClientConnections()
				srv.Listener.Close()
			}
			var runErr error
			select {
			case runErr = <-done:
			case <-time.After(2 * time.Minute):
				t.Fatalf("the run still sends after 2 minutes, %d rows answered 503", unanswered.Load()/maxAttempts)
			}
			if runErr == nil || !strings.Contains(runErr.Error(), "modern service at "+srv.URL) ||
				!strings.Contains(runErr.Error(), fmt.Sprintf("none of the last %d rows", stopAfter)) || !strings.Contains(runErr.Error(), c.saw) {
				t.Errorf("the run ended with %v; want it stopped, naming the service at %s, %d rows and %q", runErr, srv.URL, stopAfter, c.saw)
			}
			// The rows in flight when it went down, and stopAfter more.
			if n, most := unanswered.Load(), int64((stopAfter+concurrency)*maxAttempts); n > most {
				t.Errorf("%d requests answered 503, want at most %d", n, most)
			}
			failed, err := st.APIBackfillFailures(ctx, "patients", "", rows)
			if err != nil {
				t.Fatal(err)
			}
			exhausted := 0
			for _, f := range failed {
				if f.Reason == "retries_exhausted" {
					exhausted++
				}
			}
			if exhausted >= stopAfter {
				t.Errorf("%d rows failed as retries_exhausted, want fewer than %d: the rows not sent are not failures", exhausted, stopAfter)
			}
			if sent, err := st.APIBackfillSentCount(ctx, "patients"); err != nil || sent > rows/2 {
				t.Errorf("the ledger records %d rows of %d sent (%v), want the rows after the stop left unsent", sent, rows, err)
			}
			if c.worker {
				// Released, not held until the lease runs out (30 s) while
				// other workers, and this one's re-run, poll for them.
				pool, err := pgxpool.New(ctx, storeURL)
				if err != nil {
					t.Fatal(err)
				}
				defer pool.Close()
				var held int64
				if err := pool.QueryRow(ctx, `SELECT count(*) FROM strangler_api_backfill_groups
					WHERE run_name = $1 AND lease_owner IS NOT NULL AND NOT done`, opts.Run).Scan(&held); err != nil {
					t.Fatal(err)
				}
				if held > 0 {
					t.Errorf("the stopped worker still holds the leases of %d groups", held)
				}
			}

			down.Store(false)
			back := httptest.NewServer(h)
			defer back.Close()
			cfg.API.URL = back.URL
			if _, err := backfill.Run(ctx, cfg, opts); err != nil {
				t.Fatalf("the re-run: %v", err)
			}
			w.appliedOnce(t, "after the re-run ", rows-wantRejected)
			if failed, err := st.APIBackfillFailures(ctx, "patients", "", rows); err != nil || int64(len(failed)) != wantRejected {
				t.Errorf("after the re-run the ledger holds %d failures (%v), want the %d the API rejected", len(failed), err, wantRejected)
			}
		})
	}
}

// TestAnAPIRunGoesOnThroughAnswersThatRefuseEveryRow: a service that
// answers every row, 500 each time, 422 or 413 (too large), is there:
// its answers are about the rows, and the run sends them all, failing
// each, rather than stopping as for a service gone.
func TestAnAPIRunGoesOnThroughAnswersThatRefuseEveryRow(t *testing.T) {
	const rows = 60
	for _, status := range []int{http.StatusInternalServerError, http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			w := newAPIWorld(t, rows, 4, modern.Faults{})
			srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				rw.Header().Set("Content-Type", "application/json")
				rw.WriteHeader(status)
				rw.Write([]byte(`{"error":"no"}`))
			}))
			defer srv.Close()
			cfg := w.config(t)
			cfg.API.URL = srv.URL
			cfg.Before, cfg.After, cfg.WaitUntil = nil, nil, nil
			cfg.Tables[0].TargetAPI.StopAfterUnanswered = 2
			report := w.run(t, cfg, backfill.Options{})
			if tr := report.Tables[0]; tr.Failed != rows {
				t.Errorf("failed %d rows, want all %d sent and failed", tr.Failed, rows)
			}
		})
	}
}
