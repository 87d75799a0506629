package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// pacedWrite is one write of a paced load and how it ended.
type pacedWrite struct {
	n          int
	sent, done time.Time
	status     int // 0: no answer
}

// pacedLoad sends PUT /items/w<n> every interval, alternating between the
// facades, each from its own goroutine so a slow answer never delays the
// next, until stop is closed.
func pacedLoad(facades []*running, interval time.Duration, stop <-chan struct{}) []pacedWrite {
	var mu sync.Mutex
	var out []pacedWrite
	var wg sync.WaitGroup
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-stop:
			wg.Wait()
			slices.SortFunc(out, func(a, b pacedWrite) int { return a.n - b.n })
			return out
		case <-tick.C:
		}
		wg.Go(func() {
			w := pacedWrite{n: n, sent: time.Now()}
			url := fmt.Sprintf("http://%s/items/w%d", facades[n%len(facades)].public, n)
			w.status, _, _ = sendRequest("PUT", url, fmt.Sprintf(`{"n":%d}`, n), nil)
			w.done = time.Now()
			mu.Lock()
			out = append(out, w)
			mu.Unlock()
		})
	}
}

// TestStoreFailover runs two facades on a PostgreSQL store with a
// synchronous standby, under a paced dual-write load and a steady read
// load, and fails the primary over to the standby: reads keep working,
// writes answer 503 while there is no primary and resume within 10 s of
// the promotion, no journaled write is lost, and flips reach both
// replicas again through LISTEN/NOTIFY.
func TestStoreFailover(t *testing.T) {
	cluster := testdb.NewCluster(t)
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	routes := dualWriteRoutes + `
  - {name: flag, match: "GET /flag", mode: legacy}
`
	dir := t.TempDir()
	// A generous backend timeout: the backends are in this process, on a
	// machine the failover keeps busy, and a timed-out primary call is
	// another test's subject.
	cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL(), store: cluster.DSN(), routes: routes, timeout: 10 * time.Second})
	facades := []*running{startRun(t, "serve", "--config", cfg), startRun(t, "serve", "--config", cfg)}
	a, b := facades[0], facades[1]
	if code, _, err := sendRequest("PUT", "http://"+a.public+"/items/read-me", `{"read":"me"}`, nil); err != nil || code != http.StatusOK {
		t.Fatalf("the first write: got %d %v", code, err)
	}

	// Reads go on throughout, from the primary backend alone: the store
	// is not on their path.
	stopReads := make(chan struct{})
	var reads, failedReads int
	var readsDone sync.WaitGroup
	readsDone.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stopReads:
				return
			case <-time.After(20 * time.Millisecond):
			}
			code, _, err := sendRequest("GET", "http://"+facades[i%2].public+"/items/read-me", "", nil)
			reads++
			if err != nil || code != http.StatusOK {
				failedReads++
			}
		}
	})

	stopWrites := make(chan struct{})
	loadDone := make(chan []pacedWrite, 1)
	go func() { loadDone <- pacedLoad(facades, 10*time.Millisecond, stopWrites) }()

	time.Sleep(2 * time.Second) // the load runs on the healthy store
	journaledBefore := journaledIDs(t, cluster.Primary.DSN())
	stopped := time.Now()
	cluster.StopPrimary()
	time.Sleep(2 * time.Second) // no primary
	promoting := time.Now()
	cluster.Promote()
	promoted := time.Now()

	// The load goes on until writes have resumed on both facades for a
	// few seconds, or 20 s have passed.
	var resumedAt time.Time
	testkit.Eventually(t, 20*time.Second, "a facade acknowledges a write sent after the promotion", func() bool {
		code, _, _ := sendRequest("PUT", "http://"+a.public+"/items/probe", `{"probe":1}`, nil)
		if code == http.StatusOK && resumedAt.IsZero() {
			resumedAt = time.Now()
		}
		return !resumedAt.IsZero()
	})
	time.Sleep(3 * time.Second)
	close(stopWrites)
	writes := <-loadDone
	close(stopReads)
	readsDone.Wait()

	var acked, refused, other int
	var firstAfter time.Duration = -1
	for _, w := range writes {
		switch {
		case w.status == http.StatusOK:
			acked++
			if w.sent.After(promoted) && (firstAfter < 0 || w.done.Sub(promoted) < firstAfter) {
				firstAfter = w.done.Sub(promoted)
			}
		case w.status == http.StatusServiceUnavailable:
			refused++
		default:
			other++
			t.Errorf("write w%d sent %v after the stop: got status %d, want 200, or 503 while there is no primary",
				w.n, w.sent.Sub(stopped).Round(time.Millisecond), w.status)
		}
	}
	if firstAfter < 0 || firstAfter > 10*time.Second {
		t.Errorf("the first write sent after the promotion was acknowledged %v after it, want within 10 s", firstAfter)
	}
	if failedReads > 0 {
		t.Errorf("reads: %d of %d failed, want none", failedReads, reads)
	}

	// Every write acknowledged before the stop is still journaled, and
	// every acknowledged write reaches the secondary.
	st := openStateStore(t, cluster.DSN())
	waitDrained(t, st, 30*time.Second)
	journaledAfter := journaledIDs(t, cluster.Primary.DSN())
	lost := 0
	for id := range journaledBefore {
		if !journaledAfter[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d writes journaled before the failover are missing on the new primary", lost, len(journaledBefore))
	}
	onModern, _ := modern.snapshot()
	missing := 0
	for _, w := range writes {
		if w.status == http.StatusOK && onModern[fmt.Sprintf("w%d", w.n)] == "" {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d acknowledged writes never reached the secondary", missing)
	}
	sameRecords(t, legacy, modern)

	t.Run("flips reach both replicas through the new primary", func(t *testing.T) {
		testkit.Eventually(t, 15*time.Second, "both replicas LISTEN on the new primary", func() bool {
			return listeners(t, cluster.Primary.DSN()) >= 2
		})
		flipRoute(t, a.admin, "flag", "modern", "after the failover")
		// Generous, as a loaded machine needs: the 5 s re-read would serve
		// it within too. That a listening replica applies a flip on its
		// notification is control's TestReplicasFollowFlipsOnTheNotification.
		testkit.Eventually(t, 30*time.Second, "the other replica serves the flip", func() bool {
			resp, err := e2eClient.Get("http://" + b.public + "/flag")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.Header.Get("X-Strangler-Backend") == "modern"
		})
	})
	if errs := metricValue(t, a.admin, "strangler_store_write_errors_total"); errs == "0" || errs == "" {
		t.Errorf("strangler_store_write_errors_total: got %q, want the refused writes counted", errs)
	}

	t.Logf("failover: %d writes sent at 100/s over %v; %d acknowledged, %d answered 503 (no primary for %v, promotion took %v), %d other",
		len(writes), writes[len(writes)-1].sent.Sub(writes[0].sent).Round(time.Millisecond), acked, refused,
		promoting.Sub(stopped).Round(time.Millisecond), promoted.Sub(promoting).Round(time.Millisecond), other)
	t.Logf("failover: %d writes journaled before the stop, %d lost; writes resumed %v after the promotion (first probe %v); %d reads, %d failed",
		len(journaledBefore), lost, firstAfter.Round(time.Millisecond), resumedAt.Sub(promoted).Round(time.Millisecond), reads, failedReads)
}

// journaledWrites are the ids of the writes the store at dsn holds as
// applied by the primary (pending or done).
func journaledIDs(t *testing.T, dsn string) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT id FROM strangler_repairs WHERE state IN ('pending', 'done')`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out
}

// listeners counts the connections LISTENing for flips on the server.
func listeners(t *testing.T, dsn string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE query = $1`, "LISTEN strangler_overrides").Scan(&n); err != nil {
		return 0
	}
	return n
}
