package main

import (
	"context"
		"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"strangler/internal/testdb"
)

// These tests put the facade in front of things that fail the way real
// ones do at their worst: a state store that takes a statement and never
// answers it, a backend that answers half and then stalls. The facade must
// not make such an outage worse: every client gets an answer within the
// documented bounds, and no write is lost or left undecided.

// lockJournal takes, in a session of its own, the lock a long migration
// or an operator's forgotten transaction holds on the PostgreSQL store's
// journal: every statement on it waits. release ends the session.
func lockJournal(t *testing.T, dsn string) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "BEGIN; LOCK TABLE strangler_repairs IN ACCESS EXCLUSIVE MODE"); err != nil {
		conn.Close(ctx)
		t.Fatal(err)
	}
	once := sync.OnceFunc(func() { conn.Close(ctx) })
	t.Cleanup(once)
	return once
}

// TestAJournalThatHangsHoldsNoRequest: another session holds a lock on
// the PostgreSQL store's journal, so each statement on it waits. A new
// dual write answers 503 within the store's bound (10s) and the primary
// never sees it; one that was at the primary gets the primary's answer
// within that bound, its outcome kept in memory; reads go on. Once the
// lock is gone, the kept write reaches the secondary and new writes are
// journaled again.
func TestAJournalThatHangsHoldsNoRequest(t *testing.T) {
	dsn := testdb.Postgres(t)
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	g := &gate{next: legacy, open: make(chan struct{})}
	primary := httptestServer(t, g.ServeHTTP)
	dir := t.TempDir()
	cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: primary.URL, modern: modern.URL(), store: dsn, timeout: 5 * time.Second})
	f := startRun(t, "serve", "--config", cfg)
	const bound = 10*time.Second + 3*time.Second // storeTimeout and a loaded machine's slack

	// A write at the primary when the lock is taken.
	type answer struct {
		code int
		body string
		err  error
		at   time.Time
	}
	held := make(chan answer, 1)
	go func() {
		code, body, err := sendRequest("PUT", "http://"+f.public+"/items/held", `{"v":1}`, nil)
		held <- answer{code, body, err, time.Now()}
	}()
	pollUntil(t, "the write is journaled and at the primary", 10*time.Second, func() bool { return g.waiting.Load() == 1 })
	release := lockJournal(t, dsn)
	opened := time.Now()
	close(g.open)

	start := time.Now()
	code, body, err := sendRequest("PUT", "http://"+f.public+"/items/locked", `{"v":2}`, nil)
	if took := time.Since(start); code != http.StatusServiceUnavailable || !strings.Contains(body, `"error":`) || took > bound {
		t.Errorf("a new dual write while the journal is locked: got %d %q (%v) after %s, want 503 with a JSON error within %s",
			code, body, err, took.Round(time.Millisecond), bound)
	}
	a := <-held
	if took := a.at.Sub(opened); a.code != http.StatusOK || took > bound {
		t.Errorf("the write at the primary when the journal was locked: got %d %q (%v) %s after the primary answered, want its 200 within %s",
			a.code, a.body, a.err, took.Round(time.Millisecond), bound)
	}
	if code, _ := getBody(t, "http://"+f.public+"/items/held"); code != http.StatusOK {
		t.Errorf("a read while the journal is locked: got %d, want 200", code)
	}

	release()
	if code, body, err := sendRequest("PUT", "http://"+f.public+"/items/after", `{"v":3}`, nil); code != http.StatusOK {
		t.Errorf("a dual write after the lock is gone: %d %q %v", code, body, err)
	}
	waitDrained(t, openStateStore(t, dsn), 20*time.Second)
	onModern, _ := modern.snapshot()
	for key, want := range map[string]string{"held": `{"v":1}`, "after": `{"v":3}`} {
		if got := onModern[key]; got != want {
			t.Errorf("write %s on the secondary: got %q, want %q", key, got, want)
		}
	}
	onLegacy, _ := legacy.snapshot()
	_, onPrimary := onLegacy["locked"]
	_, onSecondary := onModern["locked"]
	if onPrimary || onSecondary {
		t.Errorf("the write refused with 503 reached a backend (primary %t, secondary %t)", onPrimary, onSecondary)
	}
}
