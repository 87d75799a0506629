package backfill_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"strangler/backfill"
	"strangler/modern"
)

// TestAPIBackfillBoundsTheWaitARetryAfterAsksFor: a modern service
// answering 503 with Retry-After: 3600 (an hour, as a service in
// maintenance says) must not hold the run for an hour without a word: a
// row is tried again after at most retry.max_backoff, like repairs and
// shadow copies bound the wait, and fails as retries_exhausted if the
// service keeps refusing it, for an --only-failed re-run to take later.
func TestAPIBackfillBoundsTheWaitARetryAfterAsksFor(t *testing.T) {
	const rows = 6
	w := newAPIWorld(t, rows, 2, modern.Faults{})
	h := w.modern.Handler()
	var mu sync.Mutex
	refused := map[string]bool{}
	hostile := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		// Each row's first request is refused for an hour.
		if strings.HasPrefix(r.URL.Path, "/imports/") {
			mu.Lock()
			first := !refused[r.URL.Path]
			refused[r.URL.Path] = true
			mu.Unlock()
			if first {
				rw.Header().Set("Retry-After", "3600")
				rw.Header().Set("Content-Type", "application/json")
				rw.WriteHeader(http.StatusServiceUnavailable)
				rw.Write([]byte(`{"error":"down for maintenance"}`))
				return
			}
		}
		h.ServeHTTP(rw, r)
	}))
	defer hostile.Close()
	cfg := w.config(t)
	cfg.API.URL = hostile.URL

	// Far less than the hour asked for, far more than max_backoff (100ms).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	report, err := backfill.Run(ctx, cfg, backfill.Options{APILedger: w.store, Hasher: w.store.Hasher(), Log: discard()})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("backfill after %s: %v", took.Round(time.Millisecond), err)
	}
	var want int64
	for k := 1; k <= rows; k++ {
		if !rejected(k) {
			want++
		}
	}
	if tr := report.Tables[0]; tr.Written() != want || tr.Failed != rows-want {
		t.Errorf("after %s: migrated %d, failed %d; want %d and %d, each row sent again after at most max_backoff",
			took.Round(time.Millisecond), tr.Written(), tr.Failed, want, rows-want)
	}
}

// TestAPIBackfillReportGroupsFailuresBoundedly: an API that refuses rows
// with a message of its own for each (naming the row, or a request id,
// as many do) must not make a failure group per row: the report would be
// as long as the table, and the run would hold every message in memory
// to write it. Past a bound, further reasons are counted together; the
// ledger keeps each row's own message.
func TestAPIBackfillReportGroupsFailuresBoundedly(t *testing.T) {
	const rows = 400
	w := newAPIWorld(t, rows, 4, modern.Faults{})
	hostile := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/imports/") {
			w.modern.Handler().ServeHTTP(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(http.StatusUnprocessableEntity)
		fmt.Fprintf(rw, `{"error":"%s refused (request %s)"}`, r.URL.Path, strings.Repeat("f", 4000))
	}))
	defer hostile.Close()
	cfg := w.config(t)
	cfg.API.URL = hostile.URL
	cfg.Tables[0].Redact = nil // the API's messages are kept only for tables without redacted fields
	report := w.run(t, cfg, backfill.Options{})
	tr := report.Tables[0]
	if tr.Failed != rows {
		t.Fatalf("failed %d, want all %d", tr.Failed, rows)
	}
	var counted int64
	var longest int
	for _, g := range tr.Failures {
		counted += g.Count
		longest = max(longest, len(g.Reason))
	}
	if counted != rows {
		t.Errorf("the failure groups count %d rows, want %d", counted, rows)
	}
	if len(tr.Failures) > 101 || longest > 1000 {
		t.Errorf("%d failure groups for %d rows, the longest reason %d bytes; want at most 101 (100 reasons and the rest together), each short",
			len(tr.Failures), rows, longest)
	}
	failed, err := w.store.APIBackfillFailures(context.Background(), "patients", "", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || !strings.Contains(failed[0].Message, "refused (request ffff") {
		t.Errorf("the ledger's failure %+v, want the API's own message", failed)
	}
}

// TestAPIBackfillTakesNoSignInPageForAnAcceptance: a sign-in proxy put
// in front of the modern service answers every request 200 with its
// login page. No row is migrated by that: each fails, saying what came
// back, and a run once api.url points at the service itself sends them
// all. Taken for acceptances, the rows were marked migrated, and no
// re-run sent them again.
func TestAPIBackfillTakesNoSignInPageForAnAcceptance(t *testing.T) {
	const rows = 30
	w := newAPIWorld(t, rows, 3, modern.Faults{})
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/imports/") {
			w.modern.Handler().ServeHTTP(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		rw.Write([]byte("<!doctype html><title>Sign in</title><form action=/login>…</form>"))
	}))
	defer proxy.Close()
	cfg := w.config(t)
	cfg.API.URL = proxy.URL
	report := w.run(t, cfg, backfill.Options{})
	if tr := report.Tables[0]; tr.Written() != 0 || tr.Failed != rows {
		t.Errorf("behind the sign-in page: migrated %d, failed %d; want 0 and %d", tr.Written(), tr.Failed, rows)
	}
	if f := report.Tables[0].Failures; len(f) == 0 || !strings.Contains(f[0].Reason, "HTML page") {
		t.Errorf("failures %+v, want them saying an HTML page came back", f)
	}

	report = w.run(t, w.config(t), backfill.Options{})
	var applied int64
	if err := w.pool.QueryRow(context.Background(), "SELECT count(DISTINCT patient_id) FROM import_log").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	var want int64
	for k := 1; k <= rows; k++ {
		if !rejected(k) {
			want++
		}
	}
	if tr := report.Tables[0]; applied != want || tr.Written() != want {
		t.Errorf("run against the service: it applied %d rows, the report says %d migrated; want %d", applied, tr.Written(), want)
	}
}
