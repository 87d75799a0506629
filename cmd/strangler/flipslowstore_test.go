package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// TestAFlipHeldUpByTheStoreHoldsNoWriteLongerThanItsTimeout: a flip that
// moves a route's writes (dual-write to modern) checks the journal's open
// writes and commits holding every dual write back, so that none is
// journaled under the route as it was after the check. With the store
// slow to answer that check (here its journal locked by another session,
// as a long migration or a forgotten transaction does), a write that came
// meanwhile waited for the flip, then for its own journaling: about 15 s
// with a primary whose timeout is 1 s, which its client took for a hang.
// Now it answers 503 with Retry-After and a JSON error within the
// primary's timeout, reaching no backend; the flip goes through once the
// store answers, and no write the facade accepted is lost.
func TestAFlipHeldUpByTheStoreHoldsNoWriteLongerThanItsTimeout(t *testing.T) {
	t.Parallel()
	dsn := testdb.Postgres(t)
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	const timeout = time.Second
	cfg := writeFacadeConfig(t, t.TempDir(), facadeConfig{legacy: legacy.URL(), modern: modern.URL(), store: dsn, timeout: timeout})
	f := startRun(t, "serve", "--config", cfg)
	if code, body, err := sendRequest("PUT", "http://"+f.public+"/items/before", `{"v":1}`, nil); code != http.StatusOK {
		t.Fatalf("a dual write before the flip: got %d %q %v", code, body, err)
	}
	// Delivered, so that the flip is not refused for writes owed to modern.
	st := openStateStore(t, dsn)
	waitDrained(t, st, 20*time.Second)

	release := lockJournal(t, dsn)
	flipped := make(chan string, 1)
	go func() { flipped <- flipAsync(f.admin, "put-item", `{"mode":"modern","reason":"cut over"}`) }()
	// The check of the journal's open writes (store.OpenPrimaries).
	waitingOn(t, dsn, "strangler_repairs", "%primary_side, state, COUNT(*)%")

	start := time.Now()
	res, err := sendPut("http://"+f.public+"/items/during", `{"v":2}`)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("a dual write while the flip waits for the store: %v", err)
	}
	bound := timeout + 2500*time.Millisecond // a loaded machine's slack; the old code took 15 s
	if res.code != http.StatusServiceUnavailable || res.retryAfter != "1" || !strings.Contains(res.body, `"error":"a change of the routes is being checked`) || took > bound {
		t.Errorf("a dual write while the flip waits for the store: got %d, Retry-After %q, %s after %s; want 503, Retry-After 1 and a JSON error within %s",
			res.code, res.retryAfter, res.body, took.Round(time.Millisecond), bound)
	}
	if got := metricValue(t, f.admin, `strangler_refused_total{reason="writes_held",route="put-item"}`); got != "1" {
		t.Errorf(`strangler_refused_total{reason="writes_held"}: got %q, want 1`, got)
	}

	release()
	if got := <-flipped; got != "200" {
		t.Fatalf("the flip once the store answers: got %s, want 200", got)
	}
	if code, body, err := sendRequest("PUT", "http://"+f.public+"/items/after", `{"v":3}`, nil); code != http.StatusOK {
		t.Fatalf("a write after the flip: got %d %q %v", code, body, err)
	}
	waitDrained(t, st, 20*time.Second)
	onLegacy, _ := legacy.snapshot()
	onModern, _ := modern.snapshot()
	if onLegacy["before"] != `{"v":1}` || onModern["before"] != `{"v":1}` || onModern["after"] != `{"v":3}` {
		t.Errorf("the writes the facade accepted: legacy %v, modern %v; want before on both and after on modern", onLegacy, onModern)
	}
	if _, ok := onLegacy["during"]; ok {
		t.Errorf("the write refused with 503 reached legacy")
	}
	if _, ok := onModern["during"]; ok {
		t.Errorf("the write refused with 503 reached modern")
	}
}

// waitingOn waits until a statement of the store's like pattern (SQL
// LIKE) waits for the lock on table in dsn's schema.
func waitingOn(t *testing.T, dsn, table, pattern string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	testkit.Eventually(t, 10*time.Second, "a statement on "+table+" waits for its lock", func() bool {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE NOT l.granted AND l.relation = $1::regclass AND a.query LIKE $2`, table, pattern).Scan(&n)
		return err == nil && n > 0
	})
}

// TestAGuardedReadRouteRolledBackWhileTheStoreIsStuckHoldsNoWrite: modern
// fails a guarded read route while the store cannot take the audit entry
// of the guard's rollback (its audit log locked by another session).
// The rollback, which moves no write (GET), took the hold on every dual
// write of the facade all the same, and waited for the store in it: a
// write to another route answered 503 (before that fix, hung) for as long
// as the store stayed stuck, since the guard tries again every second.
// Now the write is served as ever; once the store takes the audit entry
// the guard rolls the route back.
func TestAGuardedReadRouteRolledBackWhileTheStoreIsStuckHoldsNoWrite(t *testing.T) {
	t.Parallel()
	dsn := testdb.Postgres(t)
	legacy := backendAnswering(t, `{"side":"legacy"}`)
	modern := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if strings.HasPrefix(r.URL.Path, "/reads/") {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, `{"side":"modern"}`)
	})
	const timeout = time.Second
	cfg := writeFacadeConfig(t, t.TempDir(), facadeConfig{legacy: legacy.URL, modern: modern.URL, store: dsn, timeout: timeout, routes: `
  - {name: put-item, match: "PUT /items/{id}", mode: dual-write}
  - {name: reads, match: "GET /reads/{id}", mode: modern, guard: {max_error_rate: 5%, window: 1m, min_requests: 3}}
`})
	f := startRun(t, "serve", "--config", cfg)

	release := lockTable(t, dsn, "strangler_audit")
	for range 3 {
		if code, _, _ := sendRequest("GET", "http://"+f.public+"/reads/1", "", nil); code != http.StatusInternalServerError {
			t.Fatalf("a read modern fails: got %d, want its 500", code)
		}
	}
	// The guard's rollback waits to write its audit entry.
	waitingOn(t, dsn, "strangler_audit", "%INSERT INTO strangler_audit%")

	bound := timeout + 2500*time.Millisecond
	for i := range 3 {
		start := time.Now()
		res, err := sendPut(fmt.Sprintf("http://%s/items/%d", f.public, i), `{"v":1}`)
		if took := time.Since(start); err != nil || res.code != http.StatusOK || took > bound {
			t.Errorf("a dual write while the guard's rollback waits for the store: got %d %s (%v) after %s, want 200 within %s",
				res.code, res.body, err, took.Round(time.Millisecond), bound)
		}
	}

	release()
	testkit.Eventually(t, 15*time.Second, "the guard rolls the route back once the store takes its audit entry", func() bool {
		var rt struct {
			Mode string `json:"mode"`
		}
		adminGetJSON(t, f.admin, "/admin/routes/reads", &rt)
		return rt.Mode == "fallback"
	})
}

// flipAsync flips route, which has no override (If-Match "0"), through
// the admin API, off the test's goroutine, and says how it went: the
// status, or the error.
func flipAsync(admin, route, change string) string {
	req, err := http.NewRequest(http.MethodPatch, "http://"+admin+"/admin/routes/"+route, strings.NewReader(change))
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+e2eAdminToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("If-Match", `"0"`)
	res, err := e2eClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return res.Status + " " + string(b)
	}
	return "200"
}

// putAnswer is what a client got for a PUT.
type putAnswer struct {
	code       int
	retryAfter string
	body       string
}

func sendPut(url, body string) (putAnswer, error) {
	req, err := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
	if err != nil {
		return putAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := e2eClient.Do(req)
	if err != nil {
		return putAnswer{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return putAnswer{res.StatusCode, res.Header.Get("Retry-After"), string(b)}, err
}
