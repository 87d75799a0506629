package main

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"strangler/internal/testdb"
	"strangler/internal/testkit"
	"strangler/store"
)

// TestAFacadeServesWhileItsStoreMigrationWaitsForALock: the store's
// migration waits past serve's 10 s for a lock another session holds
// (a replica's long transaction). The facade serves meanwhile and says
// the truth: /readyz 503 waiting for the state store (no snapshot),
// strangler_store_up 0, a log line naming the lock; once the lock is
// let go it migrates and is ready with no restart. Before, serve failed
// after 10 s with the migration cancelled mid-way.
// heldStoreMigration is a PostgreSQL store one migration short (0140
// empties strangler_samples, which can run again) whose table that
// migration needs another session locks in an open transaction, tx;
// holder is that session's pid.
func heldStoreMigration(t *testing.T) (dsn string, db *sql.DB, tx *sql.Tx, holder int) {
	t.Helper()
	dsn = testdb.Postgres(t)
	ctx := context.Background()
	st, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err = sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`DELETE FROM strangler_schema_migrations WHERE version = 140`); err != nil {
		t.Fatal(err)
	}
	tx, err = db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	if _, err := tx.Exec(`LOCK TABLE strangler_samples IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(`SELECT pg_backend_pid()`).Scan(&holder); err != nil {
		t.Fatal(err)
	}
	return dsn, db, tx, holder
}

// waitingBehind counts the sessions holder blocks.
func waitingBehind(t *testing.T, db *sql.DB, holder int) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))`, holder).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAFacadeServesWhileItsStoreMigrationWaitsForALock(t *testing.T) {
	t.Parallel()
	dsn, _, tx, _ := heldStoreMigration(t)

	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	dir := t.TempDir()
	cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL(), store: dsn, routes: dualWriteRoutes})
	f := launch(t, "serve", "--config", cfg)
	line := f.logs.waitFor(t, "store migration still running", nil, 30*time.Second)
	if got, _ := line["waiting_for"].(string); !strings.Contains(got, "strangler_samples") {
		t.Errorf("the migration's log line says it waits for %q, want the table it waits for", got)
	}
	if code, body := getBody(t, "http://"+f.admin+"/readyz"); code != http.StatusServiceUnavailable || body != "waiting for the state store\n" {
		t.Errorf("while migrating: /readyz got %d %q, want 503 waiting for the state store", code, body)
	}
	if got := metricValue(t, f.admin, "strangler_store_up"); got != "0" {
		t.Errorf("while migrating: strangler_store_up %s, want 0", got)
	}

	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, "the facade ready once the migration is done", func() bool {
		code, body := getBody(t, "http://"+f.admin+"/readyz")
		return code == http.StatusOK && body == "ready\n"
	})
	if got := metricValue(t, f.admin, "strangler_store_up"); got != "1" {
		t.Errorf("once migrated: strangler_store_up %s, want 1", got)
	}
	if code, body, err := sendRequest("PUT", "http://"+f.public+"/items/1", `{"v":1}`, nil); code != http.StatusOK {
		t.Errorf("a dual write once migrated: got %d %s %v", code, body, err)
	}
}

// TestSIGTERMWhileTheStoreMigratesStopsTheFacade: SIGTERM while serve
// waits for a migration held up by a lock: serve returns without error
// (exit 0, as any SIGTERM), the migration is rolled back on the server,
// no session of it is left waiting for the lock, and it is not applied
// once the lock is let go. Before, serve failed ("state store: …
// context canceled").
func TestSIGTERMWhileTheStoreMigratesStopsTheFacade(t *testing.T) {
	t.Parallel()
	dsn, db, tx, holder := heldStoreMigration(t)
	dir := t.TempDir()
	cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: "http://127.0.0.1:1", modern: "http://127.0.0.1:1", store: dsn, routes: dualWriteRoutes})
	ctx, sigterm := context.WithCancel(context.Background())
	defer sigterm()
	logs := newLogBuffer()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", cfg}, noEnv, io.Discard, logs) }()
	testkit.Eventually(t, 30*time.Second, "the migration waiting for the lock", func() bool { return waitingBehind(t, db, holder) > 0 })
	sigterm()
	var err error
	testkit.Eventually(t, 30*time.Second, "serve returning after SIGTERM", func() bool {
		select {
		case err = <-done:
			return true
		default:
			return false
		}
	})
	if err != nil {
		t.Errorf("serve stopped by SIGTERM while migrating returned %v, want nil", err)
	}
	testkit.Eventually(t, 20*time.Second, "no session left waiting for the lock", func() bool { return waitingBehind(t, db, holder) == 0 })
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM strangler_schema_migrations WHERE version = 140`).Scan(&n); err != nil || n != 0 {
		t.Errorf("migration 0140 recorded %d times (%v) by a stopped facade, want none", n, err)
	}
}
