package backfill_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"strangler/backfill"
	"strangler/config"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
	"strangler/modern"
	"strangler/store"
)

// apistoreStore opens a PostgreSQL state store through a proxy the test
// can silence.
func apistoreStore(t *testing.T, dsn string) (*store.Store, *testdb.Proxy) {
	t.Helper()
	p, via := testdb.NewProxy(t, dsn)
	st := openStore(t, via)
	return st, p
}

// accepted is how many of the fixture's first rows the API does not
// refuse.
func accepted(rows int) int64 {
	var n int64
	for k := 1; k <= rows; k++ {
		if !rejected(k) {
			n++
		}
	}
	return n
}

// TestAPIBackfillStopsOnASilentStateStoreAndAReRunFinishes: the state
// store (PostgreSQL) drops every packet in the middle of a plain run.
// The run must stop within a bound, saying the state store did not
// answer, rather than wait on TCP for a quarter of an hour; once the
// store is back a re-run sends the rest, every row applied once.
func TestAPIBackfillStopsOnASilentStateStoreAndAReRunFinishes(t *testing.T) {
	// Most of it waits out the bound, on databases of its own.
	t.Parallel()
	const rows = 1500
	w := newAPIWorld(t, rows, 10, modern.Faults{})
	cfg := w.config(t)
	cfg.Batch, cfg.Rate = 100, 300
	cfg.BatchTimeout = config.Duration(time.Second)
	dsn := testdb.Postgres(t)
	st, proxy := apistoreStore(t, dsn)
	// The silence is found at its bound: the resumptions after it need
	// not be waited out.
	opts := backfill.QuickResumption(backfill.Options{APILedger: st, Hasher: st.Hasher(), Log: discard()})
	done := make(chan error, 1)
	go func() {
		_, err := backfill.Run(context.Background(), cfg, opts)
		done <- err
	}()
	testkit.Eventually(t, 60*time.Second, "300 rows sent", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.arrivals) >= 300
	})
	proxy.Silence()
	silenced := time.Now()
	var err error
	select {
	case err = <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("the run still waits on the silent state store after 3 minutes")
	}
	t.Logf("the run stopped %s after the state store went silent: %v", time.Since(silenced).Round(time.Second), err)
	if err == nil || !strings.Contains(err.Error(), "the state store did not answer within batch_timeout (1s)") {
		t.Fatalf("run error %v, want it to say the state store did not answer within batch_timeout", err)
	}

	proxy.Restore()
	// The stopped run could not let go of its tables: its hold lapses.
	db, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(context.Background(), "DELETE FROM strangler_api_backfill_holds"); err != nil {
		t.Fatal(err)
	}
	rep, err := backfill.Run(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("re-run: %v", err)
	}
	if tr := rep.Tables[0]; tr.Read != rows {
		t.Errorf("the re-run read %d rows, want all %d compared", tr.Read, rows)
	}
	w.appliedOnce(t, "", accepted(rows))
}

// TestAPIWorkerStopsSendingAGroupWhoseLeaseItCannotRenew: worker w1
// leases both groups of a table and sends them slowly (a rate-limited
// API); its state store then goes silent, so it cannot renew the
// leases. Worker w2, on the same store, takes the groups over once the
// leases ran out. w1 must have stopped sending each group before w2
// sends any of it: two workers sending one group at once put an old
// version of a row after a new one, and double every request. Once w1's
// store is back it finds nothing left, and every row was applied once.
func TestAPIWorkerStopsSendingAGroupWhoseLeaseItCannotRenew(t *testing.T) {
	// Most of it is spent waiting for a rate-limited API and leases that
	// run out.
	t.Parallel()
	const rows, groups = 400, 2
	w := newAPIWorld(t, rows, groups, modern.Faults{})
	type arrival struct {
		worker string
		group  int
		at     time.Time
	}
	var mu sync.Mutex
	var arrivals []arrival
	h := w.modern.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if k, ok := strings.CutPrefix(r.URL.Path, "/imports/patients/"); ok {
			n, _ := strconv.Atoi(k)
			mu.Lock()
			arrivals = append(arrivals, arrival{r.Header.Get("X-Worker"), n % groups, time.Now()})
			mu.Unlock()
		}
		h.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	worker := func(id string, rate int) *config.Backfill {
		cfg := w.config(t)
		cfg.Batch = 100
		cfg.BatchTimeout = config.Duration(time.Second)
		cfg.API.URL = srv.URL
		cfg.API.Headers["X-Worker"] = config.Secret(id)
		cfg.Tables[0].TargetAPI.Concurrency = groups
		cfg.Tables[0].TargetAPI.Rate = rate
		return cfg
	}
	dsn := testdb.Postgres(t)
	st1, proxy := apistoreStore(t, dsn)
	st2 := openStore(t, dsn)
	run := func(id string, st *store.Store, cfg *config.Backfill, done chan<- error) {
		_, err := backfill.Run(context.Background(), cfg, backfill.Options{APILedger: st, Hasher: st.Hasher(), Log: discard(),
			Worker: true, Run: "nightly", WorkerID: id, Lease: 4 * time.Second})
		done <- err
	}
	done1, done2 := make(chan error, 1), make(chan error, 1)
	// 20 requests a second: a batch of 100 rows of a group takes w1 10 s,
	// longer than its lease.
	go run("w1", st1, worker("w1", 20), done1)
	sent := func(id string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, a := range arrivals {
			if a.worker == id {
				n++
			}
		}
		return n
	}
	testkit.Eventually(t, 60*time.Second, "w1 sending", func() bool { return sent("w1") >= 10 })
	proxy.Silence()
	go run("w2", st2, worker("w2", 0), done2)
	if err := <-done2; err != nil {
		t.Fatalf("w2: %v", err)
	}
	proxy.Restore()
	if err := <-done1; err != nil && !errors.Is(err, context.Canceled) {
		t.Logf("w1: %v", err)
	}

	mu.Lock()
	first := map[int]time.Time{} // w2's first request of each group
	for _, a := range arrivals {
		if _, ok := first[a.group]; a.worker == "w2" && !ok {
			first[a.group] = a.at
		}
	}
	late := 0
	for _, a := range arrivals {
		if f, ok := first[a.group]; a.worker == "w1" && ok && a.at.After(f) {
			late++
		}
	}
	mu.Unlock()
	if len(first) != groups {
		t.Errorf("w2 sent %d groups, want both taken over", len(first))
	}
	if late > 0 {
		t.Errorf("w1 sent %d requests of groups after w2 took them over, want none", late)
	}
	w.appliedOnce(t, "", accepted(rows))
	if left, err := st2.APIBackfillGroupsLeft(context.Background(), "nightly", "patients"); left || err != nil {
		t.Errorf("groups left undone (%v)", err)
	}
}

// TestAPIBackfillTakesNoStalledAnswerForAnAcceptance: a service that
// takes each request and never answers, or answers 200 and then stalls
// its body (a proxy that sent the status of a request still running
// behind it), has applied nothing anyone can tell. The run must stop
// after stop_after_unanswered rows, naming the service, with none of
// them marked migrated: a re-run against the service itself then
// applies every row once.
func TestAPIBackfillTakesNoStalledAnswerForAnAcceptance(t *testing.T) {
	// Most of it is spent waiting out the API's timeout.
	t.Parallel()
	const rows = 60
	for _, c := range []struct {
		name   string
		header bool
	}{{"no answer", false}, {"200 and a stalled body", true}} {
		t.Run(c.name, func(t *testing.T) {
			w := newAPIWorld(t, rows, 4, modern.Faults{})
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				if c.header {
					rw.Header().Set("Content-Type", "application/json")
					rw.WriteHeader(http.StatusOK)
					rw.Write([]byte(`{"id":`))
					rw.(http.Flusher).Flush()
				}
				select {
				case <-r.Context().Done():
				case <-release:
				}
			}))
			defer srv.Close()
			defer close(release)
			cfg := w.config(t)
			cfg.API.URL = srv.URL
			cfg.API.Timeout = config.Duration(300 * time.Millisecond)
			cfg.Before, cfg.After, cfg.WaitUntil = nil, nil, nil
			api := cfg.Tables[0].TargetAPI
			api.StopAfterUnanswered, api.Retry.MaxAttempts = 3, 2
			_, err := backfill.Run(context.Background(), cfg, backfill.Options{APILedger: w.store, Hasher: w.store.Hasher(), Log: discard()})
			if err == nil || !strings.Contains(err.Error(), "answered none of the last 3 rows") {
				t.Fatalf("run error %v, want it stopped for a service that answered none of the last 3 rows", err)
			}
			rep := w.run(t, w.config(t), backfill.Options{})
			if tr := rep.Tables[0]; tr.Inserted+tr.Failed != rows {
				t.Errorf("the re-run had the API accept %d rows and fail %d, want all %d sent", tr.Inserted, tr.Failed, rows)
			}
			w.appliedOnce(t, "", accepted(rows))
		})
	}
}
