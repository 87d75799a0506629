package backfill_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"strangler/backfill"
	"strangler/config"
	"strangler/modern"
)

// TestAnAPIRunStopsOnceAtAnAnswerAboutTheRun: some answers are about the
// run, not its rows: the run's credentials revoked mid-run (401), a
// proxy asking for its own (407), a path or method the service does not
// serve (404, 405), credentials that may not send these rows (403), a
// service that takes no JSON there (415), a redirect (here to another
// host, which is sent nothing: no credentials follow it). The run stops
// once, saying what came back, instead of failing every row left the
// same way as "rejected": at once for 401 and 407, which no row earns
// alone; after stop_after_unanswered rows in a row answered the same for
// the others, which one row may earn (a merged patient's resource moved,
// a parent not there). No row is in the ledger as failed for it, and a
// re-run against the service sends every row left, each applied once.
func TestAnAPIRunStopsOnceAtAnAnswerAboutTheRun(t *testing.T) {
	const (
		rows        = 400
		stopAfter   = 5
		concurrency = 4
	)
	wantRejected := rows - accepted(rows)
	elsewhere := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		t.Errorf("the redirect's other host got %s %s (Authorization %q), want nothing sent there", r.Method, r.URL.Path, r.Header.Get("Authorization"))
	}))
	defer elsewhere.Close()
	for _, c := range []struct {
		name   string
		status int
		after  int64 // import requests the service accepts first
		most   int64 // answers of status, at most
		says   string
	}{
		{"credentials revoked mid-run", http.StatusUnauthorized, 150, concurrency, "refused the run's credentials (401 Unauthorized)"},
		{"a proxy asking for credentials", http.StatusProxyAuthRequired, 150, concurrency, "407 Proxy Authentication Required"},
		{"a path the service does not serve", http.StatusNotFound, 0, stopAfter + concurrency, "answered 404 Not Found to each of the last 5 rows: check api.url and the table's target_api method and path"},
		{"a method the path does not take", http.StatusMethodNotAllowed, 0, stopAfter + concurrency, "answered 405 Method Not Allowed to each of the last 5 rows"},
		{"credentials that may not send the rows", http.StatusForbidden, 150, stopAfter + concurrency, "answered 403 Forbidden to each of the last 5 rows: the run's credentials may not send them"},
		{"no JSON taken there", http.StatusUnsupportedMediaType, 0, stopAfter + concurrency, "answered 415 Unsupported Media Type to each of the last 5 rows"},
		{"a redirect to another host", http.StatusPermanentRedirect, 150, stopAfter + concurrency, "answered 308 Permanent Redirect to each of the last 5 rows: it redirects them (to " + elsewhere.URL + ")"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newAPIWorld(t, rows, 10, modern.Faults{})
			h := w.modern.Handler()
			var requests, refused atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				if !strings.HasPrefix(r.URL.Path, "/imports/") || requests.Add(1) <= c.after {
					h.ServeHTTP(rw, r)
					return
				}
				refused.Add(1)
				if c.status/100 == 3 {
					rw.Header().Set("Location", elsewhere.URL+r.URL.Path)
				}
				rw.Header().Set("Content-Type", "application/json")
				rw.WriteHeader(c.status)
				rw.Write([]byte(`{"error":"no"}`))
			}))
			defer srv.Close()
			cfg := w.config(t)
			cfg.API.URL = srv.URL
			cfg.Batch = 50
			api := cfg.Tables[0].TargetAPI
			api.Concurrency, api.StopAfterUnanswered = concurrency, stopAfter
			ctx := context.Background()
			opts := backfill.Options{APILedger: w.store, Hasher: w.store.Hasher(), Log: discard()}
			_, err := backfill.Run(ctx, cfg, opts)
			if err == nil || !strings.Contains(err.Error(), "stopped: the modern service at "+srv.URL+" ") || !strings.Contains(err.Error(), c.says) {
				t.Errorf("the run ended with %v; want it stopped, naming the service at %s and saying %q", err, srv.URL, c.says)
			}
			if err != nil && strings.Contains(err.Error(), `"error"`) {
				t.Errorf("the run's error %q quotes the answer's body", err)
			}
			if n := refused.Load(); n > c.most {
				t.Errorf("%d requests answered %d, want at most %d: the rows left are not sent", n, c.status, c.most)
			}
			failed, ferr := w.store.APIBackfillFailures(ctx, "patients", "", rows)
			if ferr != nil {
				t.Fatal(ferr)
			}
			for _, f := range failed {
				if f.Status == c.status {
					t.Errorf("row %s is in the ledger as failed with %d, want it left unsent", f.Key, f.Status)
					break
				}
			}

			cfg.API.URL = w.srv.URL
			if _, err := backfill.Run(ctx, cfg, opts); err != nil {
				t.Fatalf("the re-run: %v", err)
			}
			w.appliedOnce(t, "after the re-run ", rows-wantRejected)
		})
	}
}

// TestAnAPIRunStopsAtOnceAtACertificateItDoesNotTrust: a service whose
// certificate this host does not trust (self-signed, another name, run
// out) will not be trusted on the next attempt either: the run stops at
// the first, saying so, rather than trying stop_after_unanswered rows
// max_attempts times each.
func TestAnAPIRunStopsAtOnceAtACertificateItDoesNotTrust(t *testing.T) {
	const concurrency = 4
	w := newAPIWorld(t, 200, 10, modern.Faults{})
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(w.modern.Handler())
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes the run fails
	srv.StartTLS()
	defer srv.Close()
	cfg := w.config(t)
	cfg.API.URL = srv.URL
	cfg.Before, cfg.After, cfg.WaitUntil = nil, nil, nil
	api := cfg.Tables[0].TargetAPI
	api.Concurrency, api.StopAfterUnanswered = concurrency, 5
	_, err := backfill.Run(context.Background(), cfg, backfill.Options{APILedger: w.store, Hasher: w.store.Hasher(), Log: discard()})
	if err == nil || !strings.Contains(err.Error(), "has a certificate this host does not trust (tls: failed to verify certificate: x509:") {
		t.Errorf("the run ended with %v; want it stopped at the untrusted certificate", err)
	}
	if n := conns.Load(); n > concurrency {
		t.Errorf("%d connections tried, want at most %d (the groups in flight)", n, concurrency)
	}
	if sent, err := w.store.APIBackfillSentCount(context.Background(), "patients"); err != nil || sent != 0 {
		t.Errorf("the ledger records %d rows sent (%v), want none", sent, err)
	}
}

// TestAnAPIRunGoesOnThroughARowsOwnNotFound: a 404 (or a redirect, a
// 403) may be a row's own answer: its parent resource is not there. Rows
// answered so between rows the service accepts are failed each, as
// rejected, and the run goes on: only stop_after_unanswered rows in a
// row answered the same stop it.
func TestAnAPIRunGoesOnThroughARowsOwnNotFound(t *testing.T) {
	const rows = 200
	w := newAPIWorld(t, rows, 4, modern.Faults{})
	h := w.modern.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var k int
		if _, err := fmt.Sscanf(r.URL.Path, "/imports/patients/%d", &k); err == nil && k%3 == 0 {
			http.Error(rw, `{"error":"no such ward"}`, http.StatusNotFound)
			return
		}
		h.ServeHTTP(rw, r)
	}))
	defer srv.Close()
	cfg := w.config(t)
	cfg.API.URL = srv.URL
	// One group at a time: the rows go in a known order, in which rows
	// 198 and 3, the ends of two groups, are two 404s in a row.
	cfg.Tables[0].TargetAPI.StopAfterUnanswered = 3
	cfg.Tables[0].TargetAPI.Concurrency = 1
	report := w.run(t, cfg, backfill.Options{})
	var want int64
	for k := 1; k <= rows; k++ {
		if k%3 == 0 || rejected(k) {
			want++
		}
	}
	if tr := report.Tables[0]; tr.Failed != want || tr.Read != rows {
		t.Errorf("read %d, failed %d; want all %d read and %d failed (the 404s and the 422s)", tr.Read, tr.Failed, rows, want)
	}
}

// TestWaitUntilStopsAtCredentialsRefused: a service that refuses the
// run's credentials while the run waits for its jobs will not take them
// on the next poll either: wait_until stops at the first 401, saying so,
// rather than polling until its timeout (30m by default) and then
// reporting the wait not reached.
func TestWaitUntilStopsAtCredentialsRefused(t *testing.T) {
	w := newAPIWorld(t, 20, 2, modern.Faults{})
	h := w.modern.Handler()
	var polls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/admin/jobs" {
			polls.Add(1)
			http.Error(rw, `{"error":"token expired"}`, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(rw, r)
	}))
	defer srv.Close()
	cfg := w.config(t)
	cfg.API.URL = srv.URL
	cfg.WaitUntil.Timeout = config.Duration(3 * time.Second) // what the old code polled for
	_, err := backfill.Run(context.Background(), cfg, backfill.Options{APILedger: w.store, Hasher: w.store.Hasher(), Log: discard()})
	if err == nil || !strings.Contains(err.Error(), "wait_until: stopped: the modern service at "+srv.URL+" refused the run's credentials (401 Unauthorized)") {
		t.Errorf("the run ended with %v; want the wait stopped at the 401", err)
	}
	if n := polls.Load(); n != 1 {
		t.Errorf("wait_until polled %d times, want once", n)
	}
}
